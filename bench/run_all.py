"""Runs every benchmark in bench/ one after the other; each prints one JSON line.

python bench/run_all.py            # full sizes (several minutes)
python bench/run_all.py --quick    # small sizes, to check they run
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    quick = args.quick
    runs = [
        ["bench_decode.py", "--seconds", "1" if quick else "3"],
        ["bench_ingest.py", "--protocol", "grpc", "--seconds", "5" if quick else "60"],
        ["bench_ingest.py", "--protocol", "http", "--seconds", "5" if quick else "60"],
        ["bench_trace_by_id.py", "--spans", "200000" if quick else "5000000"],
        ["bench_zipkin_ingest.py", "--seconds", "5" if quick else "20"],
        ["bench_jaeger_ingest.py", "--seconds", "5" if quick else "20"],
        ["bench_generator.py", "--seconds", "5" if quick else "20"],
        ["bench_metrics_query.py", "--spans", "200000" if quick else "5000000"],
        ["bench_compaction.py", "--blocks", "20" if quick else "200"],
        ["ui.py", "--spans", "200000" if quick else "5000000"],
    ]
    for script, *flags in runs:
        subprocess.run([sys.executable, str(HERE / script), *flags], check=True)


if __name__ == "__main__":
    main()
