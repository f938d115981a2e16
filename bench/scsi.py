#!/usr/bin/python3
"""The SCSI layer in process (bench/scsi_bench.c): 4 KiB READ(16) and WRITE(16) tasks per
second at queue depth 64 on one reactor against a malloc LUN, beside the same reads straight
to the bdev (median of three runs); and, under callgrind when valgrind is installed, the
instructions each task costs - the difference between runs of 20,000 and 60,000 operations,
divided by 40,000, so that set-up and teardown cancel out - in all, and in lib/scsi's own
functions (a figure the reactor's loop and the copies' alignment do not move). Prints one
JSON object."""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BIN, bench_env, machine, run_json  # noqa: E402

EXE = os.path.join(BIN, "scsi_bench")


def instructions(op, n, tmp):
    """(all instructions, those in lib/scsi's functions) of a run of n operations."""
    out = os.path.join(tmp, f"cg-{op}-{n}.out")
    p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", EXE,
                        "--count", str(n), "--op", op], env=bench_env(), capture_output=True,
                       text=True, timeout=1200)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or m is None:
        raise RuntimeError(f"callgrind {op} {n}: {p.stderr[-2000:]}")
    layer = 0
    if shutil.which("callgrind_annotate"):
        a = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", out],
                           capture_output=True, text=True).stdout
        for line in a.splitlines():
            f = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)", line)
            if f and "lib/scsi/" in f.group(2):
                layer += int(f.group(1).replace(",", ""))
    return int(m.group(1)), layer


def main():
    runs = [run_json([EXE, "3"], bench_env()) for _ in range(3)]
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["runs"] = runs
    if shutil.which("valgrind"):
        lo, hi = 20000, 60000
        with tempfile.TemporaryDirectory() as tmp:
            for op in ("read16", "write16", "bdev"):
                (a, la), (b, lb) = instructions(op, lo, tmp), instructions(op, hi, tmp)
                out[f"{op}_instructions_per_op"] = round((b - a) / (hi - lo))
                if op != "bdev":
                    out[f"{op}_lib_scsi_instructions_per_task"] = round((lb - la) / (hi - lo))
    out["machine"] = machine()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
