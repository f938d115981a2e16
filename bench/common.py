"""Helpers shared by the benchmarks: paths, ports, the machine description."""
import datetime
import os
import platform
import socket
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(REPO, os.environ.get("MIMO_BUILD", "build"), "bin")
PY = "/usr/bin/python3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "date": datetime.date.today().isoformat(),
    }


def bench_env(**overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMO_")}
    env["MIMO_NOTIFY_CONFIG"] = os.path.join(REPO, "test", "integration", "empty_config.json")
    env["MIMO_LOG"] = "error"
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def run_json(args, env, timeout=300):
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {p.stderr[-2000:]}")
    import json
    return json.loads(p.stdout.strip().splitlines()[-1])


def start_tgt(sock, *args, exe=None, timeout=10, log=None, env=None):
    """mimo_tgt (or exe: another JSON-RPC target, SPDK's) on a private socket; returns
    (process, mimo.Client) once it answers. log: a file for its output (else discarded);
    env: variables over bench_env's (MIMO_LOG=info, say)."""
    import sys
    sys.path.insert(0, os.path.join(REPO, "python"))
    from mimo import Client
    exe = exe or os.path.join(BIN, "mimo_tgt")
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen([exe, "-r", sock, *args],
                         env=bench_env(MIMO_NOTIFY_DISABLE=1, **(env or {})),
                         stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    if log:
        out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = Client(sock, timeout=2)
            c.call("rpc_get_methods")
            return p, c
        except (OSError, ConnectionError):
            time.sleep(0.01)
    p.kill()
    raise RuntimeError(f"{os.path.basename(exe)} did not start")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
