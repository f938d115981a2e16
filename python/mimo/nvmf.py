"""py-spdk's NvmfTgt on top of ``mimo.Client``: the legacy (SPDK <= 19.x) RPC names and
parameter shapes, so management code written against py-spdk keeps working with mimo_tgt.

Each method sends one request and returns the parsed result; error replies raise RpcError.
"""
from __future__ import annotations

from typing import Any, List

from .pyspdk_app import SpdkApp


def _listen_addresses(listen):
    """py-spdk/rpc.py accepted listen addresses as dicts or as "trtype:tcp traddr:… trsvcid:…"
    strings (several separated by commas); the daemon wants a list of dicts."""
    if isinstance(listen, (str, dict)):
        listen = [listen]
    out = []
    for item in listen or []:
        if isinstance(item, dict):
            out.append(dict(item))
            continue
        for text in item.split(","):
            pairs = (tok.partition(":") for tok in text.split())
            out.append({k.lower(): v for k, _, v in pairs})
    return out


def _hosts(hosts):
    """Host NQNs as a list, from a list or a space-separated string."""
    if isinstance(hosts, str):
        return hosts.split()
    return list(hosts or [])


def _namespaces(namespaces):
    """Namespaces as [{bdev_name, nsid?}], from names, "name:nsid" strings or dicts."""
    if isinstance(namespaces, (str, dict)):
        namespaces = namespaces.split() if isinstance(namespaces, str) else [namespaces]
    out = []
    for ns in namespaces or []:
        if isinstance(ns, dict):
            out.append(dict(ns))
            continue
        name, _, nsid = ns.partition(":")
        out.append({"bdev_name": name, "nsid": int(nsid)} if nsid and int(nsid) else
                   {"bdev_name": name})
    return out


class NvmfTgt(SpdkApp):
    """The nvmf_tgt client of py-spdk, talking to mimo_tgt through a ``mimo.Client``."""

    def construct_nvmf_subsystem(self, nqn: str, listen: Any, hosts: Any, serial_number: str,
                                 namespaces: Any, allow_any_host: bool = False) -> bool:
        return bool(self.client.call("construct_nvmf_subsystem", {
            "nqn": nqn,
            "listen_addresses": _listen_addresses(listen),
            "hosts": _hosts(hosts),
            "serial_number": serial_number,
            "namespaces": _namespaces(namespaces),
            "allow_any_host": bool(allow_any_host),
        }))

    def get_nvmf_subsystems(self) -> List[dict]:
        return self.client.call("get_nvmf_subsystems")
