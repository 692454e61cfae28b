"""Runs one atheris harness of this folder for a bounded time: ``python fuzz/run.py NAME SECONDS``.

Owns what every harness shares: the seed corpus (each harness's ``seeds()``, written to
``.venv/fuzz-corpus/NAME`` next to what earlier runs found; failing inputs go to
``.venv/fuzz-artifacts/NAME``), the libFuzzer limits (time per
input, memory) and instrumenting threadline's Python code for coverage. A harness module has
``test_one_input(data)`` (raises only on a real failure) and ``seeds()``.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "fuzz"), str(ROOT / "tests")]  # harnesses reuse the test oracles
_ORACLES = [
    "test_otlp_decode",
    "test_hostile_decoders",
    "test_zipkin_translate",
    "test_jaeger_translate",
    "test_hostile_traceql",
]


def main() -> None:
    name, seconds = sys.argv[1], int(sys.argv[2])
    # the compiled decoders are not instrumented: the Python oracles they are checked against
    # give libFuzzer its coverage signal for them
    with atheris.instrument_imports(include=["threadline", *_ORACLES]):
        harness = importlib.import_module(name)
    corpus = ROOT / ".venv" / "fuzz-corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts = ROOT / ".venv" / "fuzz-artifacts" / name
    artifacts.mkdir(parents=True, exist_ok=True)
    for seed in harness.seeds():
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        "-timeout=10",  # seconds for one input: a hang
        "-rss_limit_mb=3072",  # unbounded memory
        "-max_len=65536",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",  # a failing input is kept here
    ]
    atheris.Setup(args, harness.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
