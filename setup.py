"""Build hooks: the compiled OTLP decoder and translators, and the web UI (``ui/``) built into
the package's ``ui_dist`` when a wheel is built. Metadata lives in pyproject.toml."""

import shutil
import subprocess
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

# threadline.model._<name>.pyx; _wire.pxd holds the protobuf writing helpers they share,
# _pbscan.pxd the GIL-free protobuf reading of the OTLP decoders, _arrowbuf their Arrow hand-off
_MODULES = (
    "_arrowbuf",
    "_otlp_columns",
    "_otlp_logs",
    "_jaeger_otlp",
    "_zipkin_otlp",
    "_any_arrays",
)
_UI = Path(__file__).resolve().parent / "ui"
_UI_BUILT = Path(__file__).resolve().parent / "src" / "threadline" / "ui_dist" / "index.html"


class BuildPyWithUI(build_py):
    """Builds the web UI before the package's files are collected (an editable install leaves
    it to `make`, which rebuilds it when its sources change)."""

    def run(self) -> None:
        if not getattr(self, "editable_mode", False) and not _UI_BUILT.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise SystemExit("building threadline's web UI needs npm (Node.js 20 or later)")
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=_UI, check=True)
            subprocess.run([npm, "run", "build"], cwd=_UI, check=True)
        super().run()


setup(
    cmdclass={"build_py": BuildPyWithUI},
    ext_modules=cythonize(
        [
            Extension(
                f"threadline.model.{name}",
                [f"src/threadline/model/{name}.pyx"],
                extra_compile_args=["-O3"],
            )
            for name in _MODULES
        ],
        include_path=["src"],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
)
