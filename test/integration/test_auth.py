"""Keys and in-band authentication (DH-HMAC-CHAP): SPDK's keyring RPCs on files that hold
nvme-cli's interchange formats; the target's per-host keys, the exchange as the Python host
(nvme_tcp_host.py, written from the specification) runs it - every digest and group,
bidirectional, refusals, rotation - and what an unauthenticated queue may do; mimo's initiator
(mimo_perf, mimo_identify, bdev_nvme) authenticating to mimo_tgt; saved configurations."""
import json
import os
import subprocess

import pytest

from conftest import BIN, RpcFailure, clean_env, free_port, wait_until
from nvme_tcp_host import make_dhchap_key, make_tls_psk

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"


def key_file(tmp_path, name, text, mode=0o600):
    path = tmp_path / name
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return str(path)


def saved(d):
    """What save_config writes: every subsystem's configuration, in order."""
    return {"subsystems": [{"subsystem": s["subsystem"],
                            "config": d.result("framework_get_config", {"name": s["subsystem"]})}
                           for s in d.result("framework_get_subsystems")]}


def refused(d, method, params, says, code=None):
    with pytest.raises(RpcFailure) as e:
        d.result(method, params)
    assert says in e.value.message, e.value.message
    if code is not None:
        assert e.value.code == code, (e.value.code, e.value.message)
    return e.value


# --- the keyring -------------------------------------------------------------------------------

def test_keyring_adds_lists_and_removes_keys_without_showing_them(tgt, tmp_path):
    dh = make_dhchap_key(hh=1)
    psk = make_tls_psk(hh=2)
    p0, p1 = key_file(tmp_path, "k0", dh), key_file(tmp_path, "k1", psk, mode=0o400)
    assert tgt.result("keyring_get_keys") == []
    assert tgt.result("keyring_file_add_key", {"name": "key0", "path": p0}) is True
    assert tgt.result("keyring_file_add_key", {"name": "key1", "path": p1}) is True
    keys = tgt.result("keyring_get_keys")
    assert keys == [
        {"name": "key0", "module": "keyring_file", "removed": False, "probed": False,
         "refcnt": 1, "path": p0, "kind": "dhchap"},
        {"name": "key1", "module": "keyring_file", "removed": False, "probed": False,
         "refcnt": 1, "path": p1, "kind": "tls_psk"}]
    # The secrets appear nowhere: not in the listing, not in the saved configuration.
    listing = json.dumps(keys) + json.dumps(saved(tgt))
    for secret in (dh, psk):
        assert secret.split(":")[2] not in listing
    assert tgt.result("framework_get_config", {"name": "keyring"}) == [
        {"method": "keyring_file_add_key", "params": {"name": "key0", "path": p0}},
        {"method": "keyring_file_add_key", "params": {"name": "key1", "path": p1}}]
    refused(tgt, "keyring_file_add_key", {"name": "key0", "path": p1}, "exists already",
            code=-17)
    assert tgt.result("keyring_file_remove_key", {"name": "key0"}) is True
    refused(tgt, "keyring_file_remove_key", {"name": "key0"}, "no key named 'key0'", code=-2)
    assert [k["name"] for k in tgt.result("keyring_get_keys")] == ["key1"]
    # The name is free again.
    assert tgt.result("keyring_file_add_key", {"name": "key0", "path": p0}) is True


def test_keyring_refuses_files_it_should_not_trust(tgt, tmp_path):
    good = make_dhchap_key()
    rel = key_file(tmp_path, "rel", good)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": os.path.relpath(rel)},
            "must be absolute", code=-22)
    for mode in (0o644, 0o640, 0o604, 0o660):
        refused(tgt, "keyring_file_add_key",
                {"name": "k", "path": key_file(tmp_path, f"m{mode:o}", good, mode)},
                "it must be 0600", code=-1)
    other = key_file(tmp_path, "other", good)
    os.chown(other, 4321, 4321)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": other},
            "owned by uid 4321, must be owned by the daemon's user", code=-1)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": str(tmp_path / "none")},
            "No such file", code=-2)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": str(tmp_path)},
            "not a regular file", code=-22)
    # One base64 character changed: the CRC-32 says so.
    prefix, hh, b64, _ = good.split(":")
    typo = f"{prefix}:{hh}:{'B' if b64[0] != 'B' else 'C'}{b64[1:]}:"
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": key_file(tmp_path, "typo", typo)},
            "bad CRC-32", code=-74)
    refused(tgt, "keyring_file_add_key",
            {"name": "k", "path": key_file(tmp_path, "plain", "password123")}, "not a key")
    refused(tgt, "keyring_file_add_key",
            {"name": "k", "path": key_file(tmp_path, "hh", good.replace(":00:", ":07:"))},
            "hash 07")
    refused(tgt, "keyring_file_add_key", {"name": "", "path": key_file(tmp_path, "e", good)},
            "key name")
    refused(tgt, "keyring_file_add_key", {"name": "a b", "path": key_file(tmp_path, "s", good)},
            "key name")
    assert tgt.result("keyring_get_keys") == []


def test_keyring_is_saved_first_and_replayed_with_c(daemons, tmp_path):
    d = daemons()
    path = key_file(tmp_path, "k0", make_dhchap_key(hh=3, length=64))
    d.result("keyring_file_add_key", {"name": "key0", "path": path})
    d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 64, "block_size": 512})
    config = saved(d)
    subs = [s["subsystem"] for s in config["subsystems"]]
    assert subs[0] == "keyring" and subs.index("keyring") < subs.index("bdev")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    d.stop()
    d2 = daemons("-c", str(cfg), name="again")
    assert [(k["name"], k["path"]) for k in d2.result("keyring_get_keys")] == [("key0", path)]
    # A key file gone bad stops a replay, naming the call.
    os.chmod(path, 0o644)
    p = subprocess.run([os.path.join(BIN, "mimo_tgt"), "-r", str(tmp_path / "x.sock"), "-c",
                        str(cfg)], env=clean_env(MIMO_NOTIFY_DISABLE=1), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "keyring_file_add_key failed" in p.stderr, p.stderr
