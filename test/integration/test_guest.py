"""The guest harness itself (test/guest/vm.py, guest_fixtures.py): what a guest script gets
(parameters, files, helpers) and gives back (output, exit status, marks), and what a test sees
when a script fails. See docs/guest-tests.md."""
import pytest

from vm import GuestError

pytestmark = pytest.mark.guest


def test_parameters_files_output_and_status(guest):
    r = guest.run(r"""
echo "x=$GUEST_x tgt=$GUEST_tgt hostnqn=$(cat /etc/nvme/hostnqn)"
cat /data/greeting
echo "to stderr" >&2
mark halfway
exit 3
""", env={"x": "DHHC-1:00:a+b/c=:"}, files={"data/greeting": "hello\n"}, check=False)
    assert r.status == 3
    assert r.output == (f"x=DHHC-1:00:a+b/c=: tgt={guest.guest_tgt} hostnqn={guest.hostnqn}\n"
                        "hello\nto stderr\n"), r.output


def test_failure_is_reported_with_output_and_console(guest):
    run = guest.start("echo before; mark one; false; mark two")
    assert run.wait_for("one") == "before\n"
    with pytest.raises(GuestError) as e:
        run.wait_for("two")
    msg = str(e.value)
    assert "ended before mark two" in msg and "before\n" in msg, msg
    # The init dumps the kernel's log to the console when the script fails (the console has
    # only warnings otherwise: the kernel runs with `quiet`).
    assert "Run /init as init process" in msg, msg


def test_bad_parameters_are_refused(guest):
    for env in ({"a b": "1"}, {"x": "has space"}, {"x": "q'uote"}, {"x": ""},
                {"x": "v" * 3000}):
        with pytest.raises(ValueError):
            guest.start("true", env=env)
