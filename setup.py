"""Build hook for the compiled OTLP decoder and translators; metadata lives in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

# threadline.model._<name>.pyx; _wire.pxd holds the protobuf writing helpers they share
_MODULES = ("_otlp_columns", "_jaeger_otlp", "_zipkin_otlp", "_any_arrays")

setup(
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
    )
)
