"""SPDK's net_* RPCs (py-spdk's VhostTgt add_ip_address / delete_ip_address / get_interfaces)
change a Linux interface's addresses through rtnetlink: mimo_tgt runs inside a network
namespace the test makes, and `ip` (iproute2) checks what the kernel holds."""
import json
import os
import subprocess
import sys

import pytest

from conftest import BIN, REPO

sys.path.insert(0, os.path.join(REPO, "python"))
from mimo import Client, RpcError, VhostTgt  # noqa: E402


def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def veth(netns):
    """conftest's namespace with a veth pair, v0 and v1, added: the interfaces to change."""
    ip("-n", netns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    return netns


def links(ns):
    return {d["ifname"]: d["ifindex"] for d in json.loads(ip("-n", ns, "-j", "link", "show"))}


def addrs(ns, dev):
    out = json.loads(ip("-n", ns, "-j", "-4", "addr", "show", "dev", dev))
    return [f'{a["local"]}/{a["prefixlen"]}' for d in out for a in d["addr_info"]]


@pytest.fixture
def vhost(veth, daemons):
    t = daemons(prefix=("ip", "netns", "exec", veth))
    c = Client(t.sock)
    yield VhostTgt(c), t
    c.close()


def test_get_interfaces_lists_the_namespaces_links_and_addresses(veth, vhost):
    v, _ = vhost
    got = {i["name"]: i for i in v.get_interfaces()}
    assert {n: i["ifc_index"] for n, i in got.items()} == links(veth)
    assert got["lo"]["ip_addr"] == ["127.0.0.1"]
    assert got["v0"]["ip_addr"] == [] and got["v1"]["ip_addr"] == []
    assert v.client.call("net_get_interfaces") == v.get_interfaces()


def test_add_and_delete_change_what_the_kernel_holds(veth, vhost):
    v, _ = vhost
    idx = links(veth)["v0"]
    assert v.add_ip_address(idx, "192.168.77.5") is True
    assert addrs(veth, "v0") == ["192.168.77.5/32"]
    v.client.call("net_interface_add_ip_address", {"ifc_index": idx, "ip_address": "10.1.2.3"})
    assert sorted(addrs(veth, "v0")) == ["10.1.2.3/32", "192.168.77.5/32"]
    shown = {i["name"]: i["ip_addr"] for i in v.get_interfaces()}
    assert sorted(shown["v0"]) == ["10.1.2.3", "192.168.77.5"] and shown["v1"] == []
    assert v.delete_ip_address(idx, "192.168.77.5") is True
    assert addrs(veth, "v0") == ["10.1.2.3/32"]
    v.client.call("net_interface_delete_ip_address", {"ifc_index": idx, "ip_address": "10.1.2.3"})
    assert addrs(veth, "v0") == []


def test_refusals_say_what_is_wrong_and_change_nothing(veth, vhost):
    v, _ = vhost
    idx = links(veth)["v0"]
    v.add_ip_address(idx, "192.168.77.5")
    cases = [
        (lambda: v.add_ip_address(idx, "192.168.77.5"), -32602,
         f"IP address 192.168.77.5 is already added to interface {idx}"),
        (lambda: v.delete_ip_address(idx, "192.168.77.6"), -32602,
         f"IP address 192.168.77.6 is not found in interface {idx}"),
        (lambda: v.add_ip_address(9999, "192.168.77.7"), -1, "Interface 9999 not available"),
        (lambda: v.delete_ip_address(9999, "192.168.77.5"), -1, "Interface 9999 not available"),
        (lambda: v.add_ip_address(idx, "192.168.77"), -32602, "is not an IPv4 address"),
        (lambda: v.add_ip_address(idx, "fe80::1"), -32602, "is not an IPv4 address"),
        (lambda: v.client.call("net_interface_add_ip_address", {"ifc_index": idx}), -32602,
         "ip_address"),
        (lambda: v.client.call("net_get_interfaces", {"x": 1}), -32602, ""),
    ]
    for fn, code, text in cases:
        with pytest.raises(RpcError) as e:
            fn()
        assert e.value.code == code and text in e.value.message, (code, text, e.value)
    assert addrs(veth, "v0") == ["192.168.77.5/32"]


def test_rpc_py_names_and_the_command_line(veth, vhost):
    v, t = vhost
    methods = v.client.call("rpc_get_methods")
    assert {"net_interface_add_ip_address", "net_interface_delete_ip_address",
            "net_get_interfaces"} <= set(methods)
    assert {"add_ip_address", "delete_ip_address", "get_interfaces"} <= set(v.get_rpc_methods())
    idx = links(veth)["v1"]
    rpc = [os.path.join(BIN, "mimo-rpc"), "-s", t.sock]
    subprocess.run([*rpc, "add_ip_address", str(idx), "172.16.0.9"], check=True,
                   capture_output=True)
    assert addrs(veth, "v1") == ["172.16.0.9/32"]
    out = subprocess.run([*rpc, "net_get_interfaces"], check=True, capture_output=True,
                         text=True).stdout
    assert {"name": "v1", "ifc_index": idx, "ip_addr": ["172.16.0.9"]} in json.loads(out)
    r = subprocess.run([*rpc, "net_interface_delete_ip_address", str(idx), "172.16.0.8"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "is not found in interface" in r.stderr + r.stdout
    subprocess.run([*rpc, "delete_ip_address", str(idx), "172.16.0.9"], check=True,
                   capture_output=True)
    assert addrs(veth, "v1") == []
