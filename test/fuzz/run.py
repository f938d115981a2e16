#!/usr/bin/python3
"""Run every libFuzzer target for a while: `make fuzz` (FUZZ_SECONDS each).

Each target starts from its committed seed corpus, test/fuzz/corpus/<name>, and keeps what it
finds in build/fuzz/corpus-<name>, so the repository is never written to. A crash leaves the
input in build/fuzz/ and fails the run."""
import argparse
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True)
ap.add_argument("--seconds", type=int, default=60)
ap.add_argument("targets", nargs="*")
args = ap.parse_args()

failed = []
# Targets of parts with their own directory (test/fuzz/<part>/) build one level down.
for exe in sorted(glob.glob(os.path.join(args.build, "test", "fuzz", "fuzz_*")) +
                  glob.glob(os.path.join(args.build, "test", "fuzz", "*", "fuzz_*"))):
    if not os.access(exe, os.X_OK) or os.path.isdir(exe):
        continue
    name = os.path.basename(exe)[len("fuzz_"):]
    if args.targets and name not in args.targets:
        continue
    work = os.path.join(args.build, "corpus-" + name)
    os.makedirs(work, exist_ok=True)
    seeds = os.path.join(HERE, "corpus", name)
    dirs = [work] + ([seeds] if os.path.isdir(seeds) else [])
    print(f"== fuzz {name}: {args.seconds} s", flush=True)
    p = subprocess.run([exe, f"-max_total_time={args.seconds}", "-print_final_stats=1",
                        "-timeout=10", "-rss_limit_mb=4096",
                        f"-artifact_prefix={args.build}/{name}-", *dirs])
    if p.returncode != 0:
        failed.append(name)
if failed:
    print("fuzz: failures in " + ", ".join(failed), file=sys.stderr)
    sys.exit(1)
print("fuzz: no failures")
