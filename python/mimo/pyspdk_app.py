"""What py-spdk's two clients, NvmfTgt and VhostTgt, have in common: the legacy (SPDK <= 19.x)
bdev and process methods, on top of ``mimo.Client``. Each method sends one request and returns
the parsed result; error replies raise RpcError."""
from __future__ import annotations

from typing import List, Optional

from .client import Client, RpcConnectionError


class SpdkApp:
    """The methods py-spdk's NvmfTgt and VhostTgt share."""

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
