"""py-spdk's NvmfTgt on top of ``mimo.Client``: the legacy (SPDK <= 19.x) RPC names and
parameter shapes, so management code written against py-spdk keeps working with mimo_tgt.

Each method sends one request and returns the parsed result; error replies raise RpcError.
"""
from __future__ import annotations

from typing import Any, List, Optional

from .client import Client, RpcConnectionError


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


class NvmfTgt:
    """The nvmf_tgt client of py-spdk, talking to mimo_tgt through a ``mimo.Client``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _call(self, method, **params):
        """Drop unset parameters; send no params at all when none are left, as rpc.py does
        (SPDK rejects params on methods that take none)."""
        params = {k: v for k, v in params.items() if v is not None}
        return self.client.call(method, params or None)

    def get_rpc_methods(self) -> List[str]:
        """With aliases, so the legacy names this class calls are in the list, as they were
        in the SPDK py-spdk was written for."""
        return self.client.call("get_rpc_methods", {"include_aliases": True})

    def get_bdevs(self, name: Optional[str] = None) -> List[dict]:
        return self._call("get_bdevs", name=name)

    def delete_bdev(self, name: str) -> bool:
        return bool(self._call("delete_bdev", name=name))

    def kill_instance(self, sig_name: str) -> bool:
        """A daemon told to die may close the connection before it replies: that is success."""
        try:
            self._call("kill_instance", sig_name=sig_name)
        except RpcConnectionError:
            pass
        return True

    def construct_aio_bdev(self, filename: str, name: str,
                           block_size: Optional[int] = None) -> str:
        return self._call("construct_aio_bdev", filename=filename, name=name,
                          block_size=block_size)

    def construct_error_bdev(self, basename: str) -> bool:
        self._call("construct_error_bdev", base_name=basename)
        return True

    def construct_nvme_bdev(self, name: str, trtype: str, traddr: str,
                            adrfam: Optional[str] = None, trsvcid: Optional[str] = None,
                            subnqn: Optional[str] = None) -> List[str]:
        return self._call("construct_nvme_bdev", name=name, trtype=trtype, traddr=traddr,
                          adrfam=adrfam, trsvcid=trsvcid, subnqn=subnqn)

    def construct_null_bdev(self, name: str, total_size: int, block_size: int) -> str:
        """``total_size`` in MiB, as py-spdk passed it."""
        return self._call("construct_null_bdev", name=name, total_size=total_size,
                          block_size=block_size)

    def construct_malloc_bdev(self, total_size: int, block_size: int,
                              name: Optional[str] = None) -> str:
        """``total_size`` in MiB, as py-spdk passed it."""
        return self._call("construct_malloc_bdev", total_size=total_size,
                          block_size=block_size, name=name)

    def delete_nvmf_subsystem(self, nqn: str) -> bool:
        return bool(self._call("delete_nvmf_subsystem", nqn=nqn))

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
