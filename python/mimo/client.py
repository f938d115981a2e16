"""JSON-RPC 2.0 client for mimo_tgt (and any SPDK target), framed exactly as SPDK frames it.

Requests are written as bare JSON values one after another; replies are JSON objects that may
arrive split over several reads or several to a read, so each is cut out of the stream where
its top-level value ends and then decoded, never read line by line. One connection is kept
for the life of the client because the daemon keeps per-connection order: a notification
followed by a call on the same connection is executed before the call is answered.
"""
from __future__ import annotations

import codecs
import itertools
import json
import logging
import re
import select
import socket
import threading
import time
from typing import Any, Callable, Iterable, Optional

DEFAULT_SOCKET = "/var/tmp/mimo.sock"
DEFAULT_PORT = 5260  # rpc.py's default when -s is an IP address

log = logging.getLogger("mimo.client")


class RpcError(Exception):
    """An error response from the daemon: ``code`` is the JSON-RPC or negative errno code."""

    def __init__(self, code, message, method=None, params=None, req_id=None, data=None):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.method = method
        self.params = params
        self.req_id = req_id
        self.data = data

    def __str__(self):
        text = f"{self.code} {self.message}"
        return f"{self.method}: {text}" if self.method else text


class RpcConnectionError(ConnectionError):
    """The daemon cannot be reached, or the connection broke or went out of step."""


def _address(socket_path, port):
    """(family, sockaddr) for a Unix path, "host:port", or an IP address with ``port``."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, socket_path)
            return family, (socket_path, port or DEFAULT_PORT)
        except OSError:
            pass
    host, sep, tail = socket_path.rpartition(":")
    if sep and host and "/" not in socket_path and tail.isdigit():
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, int(tail))
    return socket.AF_UNIX, socket_path


class _Framer:
    """Cuts complete JSON values out of the byte stream. Each character is scanned once and
    scanned pieces are joined once, so a large reply arriving in many reads costs linear
    time, where re-running raw_decode on a growing buffer would cost quadratic time."""

    _OUTSIDE = re.compile(r'["{}\[\]]')
    _INSIDE = re.compile(r'["\\]')

    def __init__(self):
        self._utf8 = codecs.getincrementaldecoder("utf-8")()  # a read may split a character
        self._done = []  # scanned pieces of the value in progress
        self._pending = ""  # text not scanned yet
        self._depth, self._in_str, self._escape = 0, False, False

    def feed(self, data):
        self._pending += self._utf8.decode(data)

    def pending(self):
        return "".join(self._done) + self._pending

    def next_value(self):
        """The next complete value, or None until more bytes arrive; ValueError if the stream
        is not JSON."""
        if not self._done:
            self._pending = self._pending.lstrip()
            if not self._pending:
                return None
            if self._pending[0] not in "{[":
                raise ValueError(f"non-JSON: {self._pending[:80]!r}")
        end = self._scan(self._pending)
        if end is None:
            self._done.append(self._pending)
            self._pending = ""
            return None
        text = "".join(self._done) + self._pending[:end]
        self._done, self._pending = [], self._pending[end:]
        return json.JSONDecoder().raw_decode(text)[0]

    def _scan(self, text):
        """Offset just past the end of the top-level value in ``text``, or None."""
        if not text:
            return None
        i = 1 if self._escape else 0
        self._escape = False
        while True:
            m = (self._INSIDE if self._in_str else self._OUTSIDE).search(text, i)
            if m is None:
                return None
            c, i = m.group(), m.end()
            if c == "\\":
                if i == len(text):  # the escaped character is in the next read
                    self._escape = True
                    return None
                i += 1
            elif c == '"':
                self._in_str = not self._in_str
            elif c in "{[":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    return i


class Client:
    """One persistent JSON-RPC connection. Calls are serialised by a lock, so a Client may be
    shared between threads, but replies are always read in the order requests were sent.

    Methods can be called by name, as SPDK's client allows: ``client.bdev_malloc_create(
    num_blocks=8, block_size=512)`` is ``client.call("bdev_malloc_create", {...})``."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: Optional[float] = 60.0,
                 port: Optional[int] = None, conn_retries: int = 0) -> None:
        self.socket_path = socket_path
        self.timeout = 60.0 if timeout is None else timeout  # None: rpc.py's default
        self._family, self._sockaddr = _address(socket_path, port)
        self._where = (socket_path if self._family == socket.AF_UNIX
                       else "%s:%d" % self._sockaddr[:2])  # named in every error
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._sock = None
        self._framer = _Framer()
        for _ in range(conn_retries):
            try:
                self._connect()
                return
            except RpcConnectionError:
                time.sleep(0.2)
        self._connect()

    def _connect(self):
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._sockaddr)
        except OSError as e:
            sock.close()
            err = RpcConnectionError(f"cannot connect to {self._where}: "
                                     f"{e.strerror or e} (is mimo_tgt running?)")
            err.errno = e.errno
            raise err from e
        self._sock = sock

    # --- public API ---------------------------------------------------------------------

    def call(self, method: str, params: Any = None) -> Any:
        """Send one request and return its "result"; raise RpcError on an error reply."""
        with self._lock:
            req = self._request(method, params, next(self._ids))
            self._send(req)
            return self._result(self._receive(method), req)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        """client.<method>(**params): the RPC of that name (names with a leading underscore
        stay attributes, so a typo in one is still an AttributeError)."""
        if method.startswith("_"):
            raise AttributeError(method)

        def rpc(**params: Any) -> Any:
            return self.call(method, params or None)
        rpc.__name__ = method
        return rpc

    def notify(self, method: str, params: Any = None) -> None:
        """Send a request without an id: the daemon runs it and sends no reply."""
        with self._lock:
            self._send(self._request(method, params, None))

    def batch(self, calls: Iterable[tuple]) -> list:
        """Send [(method, params), ...] as one JSON array; return results in request order,
        each either the result or an RpcError instance (errors are returned, not raised)."""
        calls = list(calls)
        if not calls:
            return []
        with self._lock:
            reqs = [self._request(m, p, next(self._ids)) for m, p in calls]
            self._send(reqs)
            return self._batch_results(self._receive("batch"), reqs)

    def _batch_results(self, resp, reqs):
        if not isinstance(resp, list):
            err = resp.get("error") if isinstance(resp, dict) else None
            if isinstance(err, dict):  # the whole batch was rejected (e.g. -32600)
                raise RpcError(err.get("code"), err.get("message"), "batch")
            self._drop()
            raise RpcConnectionError(f"batch reply from {self._where} is not an array")
        by_id = {r.get("id"): r for r in resp if isinstance(r, dict)}
        out = []
        for req in reqs:
            if req["id"] not in by_id:
                self._drop()
                raise RpcConnectionError(f"batch reply from {self._where} lacks id {req['id']}")
            try:
                out.append(self._result(by_id[req["id"]], req))
            except RpcError as e:
                out.append(e)
        return out

    def is_connected(self) -> bool:
        """True while the connection is open and the daemon has not closed its end."""
        if self._sock is None:
            return False
        try:
            # select, not MSG_DONTWAIT: a socket with a timeout waits before any recv.
            if not select.select([self._sock], [], [], 0)[0]:
                return True
            return bool(self._sock.recv(1, socket.MSG_PEEK))
        except OSError:
            return False

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc):
        self.close()

    # --- framing ------------------------------------------------------------------------

    @staticmethod
    def _request(method, params, req_id):
        req = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            req["params"] = params
        if req_id is not None:
            req["id"] = req_id
        return req

    def _send(self, req):
        if self._sock is None:
            raise RpcConnectionError(f"connection to {self._where} is closed")
        text = json.dumps(req)
        log.debug("request: %s", text)
        try:
            self._sock.sendall(text.encode())
        except OSError as e:
            self._drop()
            raise RpcConnectionError(f"sending to {self._where} failed: {e}") from e

    def _receive(self, method):
        """The next complete JSON value from the stream, reading until it is whole."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                value = self._framer.next_value()
            except ValueError as e:
                self._drop()
                raise RpcConnectionError(f"{method}: {self._where} sent {e}") from e
            if value is not None:
                log.debug("response: %s", json.dumps(value))
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                self._drop()  # a late reply would be taken for the next request's
                raise TimeoutError(f"{method}: no reply from {self._where} "
                                   f"within {self.timeout} s")
            try:
                self._sock.settimeout(left)
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                self._drop()
                raise RpcConnectionError(f"{method}: reading from {self._where} failed: "
                                         f"{e}") from e
            if not data:
                partial = self._framer.pending().strip()
                self._drop()
                raise RpcConnectionError(f"{method}: {self._where} closed the connection"
                                         + (f" mid-reply: {partial[:80]!r}" if partial else ""))
            self._framer.feed(data)

    def _result(self, resp, req):
        method, params, req_id = req.get("method"), req.get("params"), req.get("id")
        err = resp.get("error") if isinstance(resp, dict) else None
        if isinstance(err, dict) and resp.get("id") in (req_id, None):
            raise RpcError(err.get("code"), err.get("message"), method, params, req_id,
                           err.get("data"))
        if not isinstance(resp, dict) or resp.get("id") != req_id:
            got = resp.get("id") if isinstance(resp, dict) else type(resp).__name__
            self._drop()
            raise RpcConnectionError(f"{method}: reply id {got!r} does not match request id "
                                     f"{req_id} on {self._where}")
        if "result" not in resp:
            raise RpcConnectionError(f"{method}: reply has neither result nor error: {resp}")
        return resp["result"]

    def _drop(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._framer = _Framer()


__all__ = ["Client", "RpcError", "RpcConnectionError", "DEFAULT_SOCKET"]
