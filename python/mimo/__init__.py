"""mimo: a Python client for the mimo_tgt storage daemon and its SPDK-compatible JSON-RPC.

It exists so management software written for SPDK (py-spdk's pyspdk/NvmfTgt, rpc.py scripts)
can drive mimo_tgt unchanged: ``Client`` speaks the socket protocol, ``Target`` starts and
stops the daemon, ``NvmfTgt`` and ``VhostTgt`` keep py-spdk's method names, and ``mimo.cli`` is rpc.py's
command line.
"""
from .client import Client, RpcConnectionError, RpcError
from .nvmf import NvmfTgt
from .vhost import VhostTgt
from .target import Target
from .agent import AgentClient, AgentError, CallbackReceiver

__version__ = "0.1.0"
__all__ = ["Client", "RpcError", "RpcConnectionError", "Target", "NvmfTgt", "VhostTgt", "AgentClient",
           "AgentError", "CallbackReceiver", "__version__"]
