"""py-spdk's VhostTgt on top of ``mimo.Client``: the client py-spdk wrote for SPDK's vhost
application, with its legacy (SPDK <= 19.x) method names, for mimo_tgt's vhost target.

Each method sends one request and returns the parsed result; error replies raise RpcError.
"""
from __future__ import annotations

from typing import List

from .pyspdk_app import SpdkApp


class VhostTgt(SpdkApp):
    """The vhost client of py-spdk (get_scsi_devices, get_luns, the interface addresses, and
    the bdev and process methods it shares with NvmfTgt)."""

    def get_scsi_devices(self) -> List[dict]:
        return self.client.call("get_scsi_devices")

    def get_luns(self) -> List[dict]:
        return self.client.call("get_luns")

    def get_interfaces(self) -> List[dict]:
        return self.client.call("get_interfaces")

    def add_ip_address(self, ifc_index: int, ip_addr: str) -> bool:
        return bool(self.client.call("add_ip_address",
                                     {"ifc_index": int(ifc_index), "ip_address": ip_addr}))

    def delete_ip_address(self, ifc_index: int, ip_addr: str) -> bool:
        return bool(self.client.call("delete_ip_address",
                                     {"ifc_index": int(ifc_index), "ip_address": ip_addr}))
