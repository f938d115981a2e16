"""Shared fixtures for mimo's integration tests: paths, free ports, real HTTP receivers."""
import os
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from receivers import Receiver  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(REPO, "build", "bin")
LIB = os.path.join(REPO, "build", "lib")
PY = "/usr/bin/python3"
# An explicit, empty bridge configuration: no file on this machine changes the tests.
EMPTY_CONFIG = os.path.join(os.path.dirname(__file__), "empty_config.json")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def clean_env(**overrides):
    """The environment for a program under test: no inherited MIMO_* settings, no config
    file from the machine, logs at warn."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMO_")}
    env["MIMO_NOTIFY_CONFIG"] = EMPTY_CONFIG
    env["MIMO_LOG"] = "warn"
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def receiver():
    receivers = []

    def make(**kw):
        r = Receiver(**kw)
        r.start()
        receivers.append(r)
        return r

    yield make
    for r in receivers:
        r.stop()


@pytest.fixture
def procs():
    """Start processes that are killed at the end of the test."""
    started = []

    def start(args, **kw):
        p = subprocess.Popen(args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()
