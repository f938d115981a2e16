#!/usr/bin/python3
"""`make bench`: run every benchmark under bench/ (each prints one JSON object)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Every benchmark script here (each prints one JSON object); helpers are not benchmarks.
BENCHES = sorted(f for f in os.listdir(HERE)
                 if f.endswith(".py") and f not in ("common.py", "run.py"))

failed = False
for name in BENCHES:
    print(f"== bench/{name}", file=sys.stderr, flush=True)
    if subprocess.run(["/usr/bin/python3", os.path.join(HERE, name)]).returncode != 0:
        failed = True
sys.exit(1 if failed else 0)
