"""README.md's "Using the agent" section, run as written: its shell commands and its Python
snippet, as one script, twice in a row - on a fresh state directory, then on the state the
first run left (the slot exists) - and it must work both times. Only the places change: /tmp/
becomes the test's directory, port 8089 a free one, build/bin/ the build under test."""
import os
import re
import signal
import subprocess

import pytest

from conftest import BIN, PY, REPO, SLOW, clean_env, free_port, wait_until

README = os.path.join(REPO, "README.md")
TGT = os.path.join(BIN, "mimo_tgt")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(os.path.join(BIN, "mimo_agent")) and os.path.exists(TGT)),
    reason="mimo_agent or mimo_tgt is not built")


def readme_snippet():
    text = open(README).read()
    section = text.split("\n## Using the agent\n", 1)[1].split("\n## ", 1)[0]
    sh = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    py = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return sh, py


def group_alive(pgid):
    """Processes of the group that have not exited (zombies excluded)."""
    alive = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(pid))
    return alive


def run_readme(rundir, port, n):
    sh, py = readme_snippet()

    def here(text):
        return (text.replace("/tmp/", rundir + "/").replace("127.0.0.1:8089", f"127.0.0.1:{port}")
                .replace("build/bin/", BIN + "/"))

    pyfile = os.path.join(rundir, f"readme-{n}.py")
    with open(pyfile, "w") as f:
        f.write(here(py))
    script = here(sh) + f"\n{PY} {pyfile}\n"
    log_path = os.path.join(rundir, f"readme-{n}.log")
    with open(log_path, "w+") as log:
        # Its own session: the processes it starts in the background are one group to stop.
        p = subprocess.Popen(["/bin/bash", "-c", script], cwd=REPO, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             env=clean_env(MIMO_NOTIFY_DISABLE="1",
                                           PYTHONPATH=os.path.join(REPO, "python")))
        try:
            rc = p.wait(timeout=60 * SLOW)
        finally:
            if p.poll() is None:
                p.kill()
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                wait_until(lambda: not group_alive(p.pid), 20, "the README's processes to stop")
            except AssertionError:
                os.killpg(p.pid, signal.SIGKILL)
                raise
        log.seek(0)
        out = log.read()
    return rc, out


def test_readme_agent_example_works_on_fresh_and_existing_state(rundir):
    port = free_port()
    for n, state in enumerate(("fresh", "existing")):
        assert os.path.exists(os.path.join(rundir, "agent", "slots.json")) == (n == 1)
        rc, out = run_readme(rundir, port, n)
        assert rc == 0, f"run {n + 1} ({state} state) failed:\n{out[-4000:]}"
        assert '"result":[]' in out.replace(" ", ""), out[-4000:]
        assert "Sanitizer" not in out and "runtime error" not in out, out[-4000:]
