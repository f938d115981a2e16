#!/usr/bin/python3
"""How many of SPDK's rpc.py subcommands a running mimo_tgt answers, by family.

    scripts/rpc_coverage.py --rpc-py /path/to/spdk/scripts/rpc.py -s /var/tmp/mimo.sock [--markdown]

rpc.py's subcommands are read from its own argument parser (so the list is that client's,
whatever its version); mimo's methods from rpc_get_methods with include_aliases. A subcommand
is answered when mimo has a method of that name; the client-side ones (save_config,
load_config and their per-subsystem forms, which call framework_get_config and the methods of
the file) count when mimo has framework_get_config. Families are the first word of the name,
and for bdev the module's (bdev_nvme, bdev_lvol...) when rpc.py has several of its commands.
"""
import argparse
import importlib.util
import json
import os
import socket
import sys
from collections import OrderedDict

CLIENT_SIDE = {"save_config", "load_config", "save_subsystem_config", "load_subsystem_config"}


def rpc_py_subcommands(path):
    """The subcommand names of rpc.py's parser (imports rpc.py with its python/ beside it)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(path)), "..", "python"))
    spec = importlib.util.spec_from_file_location("spdk_rpc_py", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _, subparsers = mod.create_parser()
    return sorted(subparsers.choices)


def mimo_methods(sock_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc_get_methods",
                          "params": {"include_aliases": True}}).encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return set(json.loads(buf)["result"])


def family_of(name, bdev_modules):
    if name in CLIENT_SIDE:
        return "save/load_config"
    words = name.split("_")
    if words[0] == "bdev" and len(words) > 2 and words[1] in bdev_modules:
        return "bdev_" + words[1]
    return words[0]


def coverage(subcommands, methods):
    # A bdev module is a second word that starts at least two of rpc.py's bdev commands.
    counts = {}
    for n in subcommands:
        w = n.split("_")
        if w[0] == "bdev" and len(w) > 2:
            counts[w[1]] = counts.get(w[1], 0) + 1
    # Verbs of the bdev layer's own commands (bdev_get_bdevs, bdev_set_qos_limit...).
    verbs = {"get", "set", "reset", "enable", "examine", "wait"}
    modules = {m for m, c in counts.items() if c >= 2 and m not in verbs}
    fams = {}
    for n in subcommands:
        f = family_of(n, modules)
        answered = n in methods or (n in CLIENT_SIDE and "framework_get_config" in methods)
        total, yes, names = fams.get(f, (0, 0, []))
        fams[f] = (total + 1, yes + answered, names + ([n] if answered else []))
    return OrderedDict(sorted(fams.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rpc-py", required=True, help="SPDK's scripts/rpc.py")
    ap.add_argument("-s", dest="sock", default="/var/tmp/mimo.sock", help="mimo_tgt's socket")
    ap.add_argument("--markdown", action="store_true", help="a table for docs/mimo_tgt.md")
    a = ap.parse_args()
    subs = rpc_py_subcommands(a.rpc_py)
    methods = mimo_methods(a.sock)
    fams = coverage(subs, methods)
    total = sum(v[0] for v in fams.values())
    yes = sum(v[1] for v in fams.values())
    if a.markdown:
        print("| family | rpc.py's subcommands | mimo answers |")
        print("|---|---|---|")
        for f, (t, y, _) in fams.items():
            print(f"| `{f}` | {t} | {y} |")
        print(f"| **all** | **{total}** | **{yes}** |")
    else:
        for f, (t, y, names) in fams.items():
            print(f"{f:24} {y:4}/{t:<4} {' '.join(names)}")
        print(f"{'all':24} {yes:4}/{total:<4}")
    extra = sorted(m for m in methods if m not in subs)
    print(f"\nmimo methods that are no rpc.py subcommand ({len(extra)}): {' '.join(extra)}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
