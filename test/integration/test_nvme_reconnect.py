"""bdev_nvme reconnecting a lost controller: ctrlr_loss_timeout_sec, reconnect_delay_sec and
fast_io_fail_timeout_sec (SPDK's rules for them, on bdev_nvme_attach_controller and as
bdev_nvme_set_options' defaults, in save_config). A backend mimo_tgt serves a malloc bdev; a
frontend mimo_tgt attaches it and re-exports the bdev, and mimo_perf drives I/O through the
frontend while the backend is killed (SIGKILL) and started again on the same port."""
import json
import os
import signal
import subprocess

import pytest

from conftest import BIN, RpcFailure, clean_env, free_port, wait_until
from test_nvme import NQN, PERF, PERF_CORES, SLOW, attach, serve, trid

RE_NQN = NQN + "-re"
SPDK_RPC = "/work/spdk-peer/scripts/rpc.py"

pytestmark = pytest.mark.skipif(not os.path.exists(PERF), reason="mimo_perf is not built")


def reexport(t, port):
    """The frontend's NVMe bdev, served again by the frontend's own target on port."""
    t.result("nvmf_create_transport", {"trtype": "tcp"})
    t.result("nvmf_create_subsystem", {"nqn": RE_NQN, "allow_any_host": True})
    t.result("nvmf_subsystem_add_ns", {"nqn": RE_NQN, "namespace": {"bdev_name": "Nvme0n1"}})
    t.result("nvmf_subsystem_add_listener", {"nqn": RE_NQN, "listen_address": {
        "trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": str(port)}})


def start_perf(port, seconds, workload="randrw"):
    return subprocess.Popen([PERF, "-r", trid(port, RE_NQN), "-c", PERF_CORES, "-q", "8",
                             "-o", "4096", "-w", workload, "-t", str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env())


def finish(p):
    out, err = p.communicate(timeout=60 * SLOW)
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return p.returncode, out + err


def ops(t, bdev="Malloc0"):
    s = t.result("bdev_get_iostat", {"name": bdev})["bdevs"][0]
    return s["num_read_ops"] + s["num_write_ops"]


def state(t):
    c = t.result("bdev_nvme_get_controllers")
    return c[0]["ctrlrs"][0]["state"] if c else None


def test_reconnect_options_follow_spdks_rules(daemons, tmp_path):
    t1, t2 = daemons(), daemons()
    port = free_port()
    serve(t1, port)
    bad = [({"ctrlr_loss_timeout_sec": -2, "reconnect_delay_sec": 1}, "less than -1"),
           ({"ctrlr_loss_timeout_sec": 10}, "reconnect_delay_sec can't be 0"),
           ({"ctrlr_loss_timeout_sec": -1}, "reconnect_delay_sec can't be 0"),
           ({"ctrlr_loss_timeout_sec": 5, "reconnect_delay_sec": 6},
            "more than ctrlr_loss_timeout_sec"),
           ({"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 5,
             "fast_io_fail_timeout_sec": 4}, "more than fast_io_fail_timeout_sec"),
           ({"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 5,
             "fast_io_fail_timeout_sec": 11}, "fast_io_fail_timeout_sec can't be more"),
           ({"reconnect_delay_sec": 1}, "must be 0 if ctrlr_loss_timeout_sec is 0"),
           ({"fast_io_fail_timeout_sec": 1}, "must be 0 if ctrlr_loss_timeout_sec is 0")]
    for extra, why in bad:
        with pytest.raises(RpcFailure) as e:
            attach(t2, port, **extra)
        assert e.value.code == -22 and why in e.value.message, (extra, e.value.message)
        with pytest.raises(RpcFailure) as e:
            t2.result("bdev_nvme_set_options", extra)
        assert e.value.code == -32602 and why in e.value.message, (extra, e.value.message)
    assert t2.result("bdev_nvme_get_controllers") == []

    # The module's defaults (SPDK's rpc.py, its option names) apply to an attach that leaves
    # them out; save_config writes both the defaults and each controller's, as SPDK does.
    env = dict(clean_env(), PYTHONPATH="/work/spdk-peer/python")
    subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", t2.sock, "bdev_nvme_set_options",
                    "--ctrlr-loss-timeout-sec", "-1", "--reconnect-delay-sec", "2",
                    "--fast-io-fail-timeout-sec", "4"], check=True, env=env,
                   capture_output=True)
    assert attach(t2, port) == ["Nvme0n1"]
    cfg = t2.result("framework_get_config", {"name": "bdev"})
    opts = [m for m in cfg if m["method"] == "bdev_nvme_set_options"][0]["params"]
    assert (opts["ctrlr_loss_timeout_sec"], opts["reconnect_delay_sec"],
            opts["fast_io_fail_timeout_sec"]) == (-1, 2, 4)
    att = [m for m in cfg if m["method"] == "bdev_nvme_attach_controller"][0]["params"]
    assert (att["ctrlr_loss_timeout_sec"], att["reconnect_delay_sec"],
            att["fast_io_fail_timeout_sec"]) == (-1, 2, 4)
    assert t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True
    assert attach(t2, port, ctrlr_loss_timeout_sec=30, reconnect_delay_sec=3,
                  fast_io_fail_timeout_sec=0) == ["Nvme0n1"]
    cfg = t2.result("framework_get_config", {"name": "bdev"})
    att = [m for m in cfg if m["method"] == "bdev_nvme_attach_controller"][0]["params"]
    assert (att["ctrlr_loss_timeout_sec"], att["reconnect_delay_sec"],
            att["fast_io_fail_timeout_sec"]) == (30, 3, 0)
    # ... and a new target replays them.
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": cfg}]}))
    t3 = daemons("-c", path, name="replayed")
    assert t3.result("framework_wait_init") is True
    cfg3 = t3.result("framework_get_config", {"name": "bdev"})
    att3 = [m for m in cfg3 if m["method"] == "bdev_nvme_attach_controller"][0]["params"]
    assert att3["ctrlr_loss_timeout_sec"] == 30 and att3["reconnect_delay_sec"] == 3
    t3.stop()


def test_io_resumes_after_the_target_restarts(daemons):
    # The backend dies under I/O and comes back on the same port: the frontend's I/O waits
    # (queued, not failed) and completes on the new connection; mimo_perf sees no error.
    backend, front = daemons(name="backend"), daemons(name="frontend")
    port, p2 = free_port(), free_port()
    serve(backend, port)
    assert attach(front, port, ctrlr_loss_timeout_sec=60, reconnect_delay_sec=1) == ["Nvme0n1"]
    reexport(front, p2)
    perf = start_perf(p2, 4)
    wait_until(lambda: ops(backend) > 100, timeout=30, what="I/O reaching the backend")
    backend.stop(signal.SIGKILL)
    wait_until(lambda: state(front) in ("resetting", "reconnect_is_delayed"),
               what="the frontend noticing the loss")
    again = daemons(name="backend-again")
    serve(again, port)
    wait_until(lambda: state(front) == "enabled", timeout=30, what="the reconnect")
    rc, out = finish(perf)
    assert rc == 0, out
    assert ops(again) > 0  # what was queued went to the new backend
    # The bdev never went away, and still serves.
    assert [b["name"] for b in front.result("bdev_get_bdevs")] == ["Nvme0n1"]
    rc, out = finish(start_perf(p2, 1))
    assert rc == 0, out


def test_fast_io_fail_then_reconnect_forever(daemons):
    # ctrlr_loss_timeout_sec -1: the controller stays while the backend is down; its I/O
    # fails once fast_io_fail_timeout_sec has passed (mimo_perf ends with I/O errors instead
    # of hanging), and works again when the backend is back.
    backend, front = daemons(name="backend"), daemons(name="frontend")
    port, p2 = free_port(), free_port()
    serve(backend, port)
    assert attach(front, port, ctrlr_loss_timeout_sec=-1, reconnect_delay_sec=1,
                  fast_io_fail_timeout_sec=1) == ["Nvme0n1"]
    reexport(front, p2)
    perf = start_perf(p2, 2)
    wait_until(lambda: ops(backend) > 100, timeout=30, what="I/O reaching the backend")
    backend.stop(signal.SIGKILL)
    rc, out = finish(perf)
    assert rc == 2, out  # I/O errors
    assert state(front) in ("resetting", "reconnect_is_delayed")
    assert [b["name"] for b in front.result("bdev_get_bdevs")] == ["Nvme0n1"]
    again = daemons(name="backend-again")
    serve(again, port)
    wait_until(lambda: state(front) == "enabled", timeout=30, what="the reconnect")
    rc, out = finish(start_perf(p2, 1))
    assert rc == 0, out


def test_controller_deleted_after_the_loss_timeout(daemons):
    # The backend stays down past ctrlr_loss_timeout_sec: the controller and its bdev are
    # deleted (the re-exporting subsystem loses the namespace), I/O fails rather than hangs.
    backend, front = daemons(name="backend"), daemons(name="frontend")
    port, p2 = free_port(), free_port()
    serve(backend, port)
    assert attach(front, port, ctrlr_loss_timeout_sec=2, reconnect_delay_sec=1) == ["Nvme0n1"]
    reexport(front, p2)
    perf = start_perf(p2, 2)
    wait_until(lambda: ops(backend) > 100, timeout=30, what="I/O reaching the backend")
    backend.stop(signal.SIGKILL)
    rc, out = finish(perf)
    assert rc == 2, out
    wait_until(lambda: front.result("bdev_nvme_get_controllers") == [], timeout=30,
               what="the controller deleted")
    assert front.result("bdev_get_bdevs") == []
    sub = [s for s in front.result("nvmf_get_subsystems") if s["nqn"] == RE_NQN][0]
    assert sub["namespaces"] == []
    assert front.stop() == 0
