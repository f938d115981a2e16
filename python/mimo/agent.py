"""Client of mimo_agent's and mimo_gateway's HTTP API, and a receiver for their callbacks.

``AgentClient`` registers slots (with the admin token), dispatches messages down to plugins
(mimo's binary-safe API and GSE's two endpoints), runs request-reply, and reads and writes a
plugin's cache. ``CallbackReceiver`` is an HTTP server for the messages plugins send up: it
checks each Standard Webhooks signature with the slot's secret and drops repeats of a
webhook-id (a message retried, or delivered again after a restart), so an application sees
each message once. Standard library only.

    from mimo.agent import AgentClient, CallbackReceiver
    admin = AgentClient("http://127.0.0.1:8089", admin_token=open(path).read().strip())
    with CallbackReceiver() as rx:
        slot = admin.register_slot("myplugin", rx.url)
        rx.secret = slot["secret"]
        c = AgentClient("http://127.0.0.1:8089", slot_id=slot["slot_id"], token=slot["token"])
        c.dispatch(["host-1"], b"hello")
        print(c.request("host-1", b"ping", timeout_ms=2000))
        print(rx.wait_for(1)[0]["content"])
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import base64
import hashlib
import hmac
import http.client
import http.server
import itertools
import json
import os
import threading
import time
import urllib.parse

__all__ = ["AgentClient", "AgentError", "CallbackReceiver", "verify_signature"]

_ids = itertools.count(1)


class AgentError(Exception):
    """The API refused or failed: ``status`` is the HTTP status, ``body`` the decoded answer.
    On GSE's routes, which answer errors with HTTP 200 and GSE's envelope, ``status`` is the
    envelope's non-zero ``code``."""

    def __init__(self, status, body):
        msg = body.get("error") or body.get("message") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {msg}")
        self.status = status
        self.body = body


def _message_id():
    return f"py-{os.getpid()}-{int(time.time() * 1000)}-{next(_ids)}"


def _bytes(content):
    return content.encode() if isinstance(content, str) else bytes(content)


class AgentClient:
    """One keep-alive HTTP connection to an agent (embedded mode) or a gateway.

    ``admin_token`` is needed for slots; ``slot_id`` and ``token`` for dispatch and request;
    the cache routes take the slot's token (or the admin token). ``admin_token_file`` names a
    file holding the admin token, read when first needed (the agent creates it at start)."""

    def __init__(self, url="http://127.0.0.1:8089", admin_token=None, slot_id=None, token=None,
                 timeout=30.0, admin_token_file=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url}")
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.base = u.path.rstrip("/")
        self._admin_token, self.slot_id, self.token = admin_token, slot_id, token
        self.admin_token_file = admin_token_file
        self.timeout = timeout
        self._conn = None
        self._lock = threading.Lock()

    @property
    def admin_token(self):
        if self._admin_token is None and self.admin_token_file is not None:
            with open(self.admin_token_file) as f:
                self._admin_token = f.read().strip()
        return self._admin_token

    @admin_token.setter
    def admin_token(self, value):
        self._admin_token = value

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the agent (or gateway) answers GET /v1/health - one just started in the
        background may not listen yet - and return self. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.health()
                return self
            except (OSError, http.client.HTTPException, AgentError) as e:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no answer from {self.host}:{self.port} within "
                                       f"{timeout:g} s: {e}") from None
            time.sleep(0.05)

    # --- transport ------------------------------------------------------------------------

    def _connection(self, timeout):
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else \
                http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=timeout)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self):
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def raw(self, method, path, body=None, headers=None, timeout=None):
        """(status, headers, bytes) of one request; the connection is kept."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        timeout = timeout or self.timeout
        with self._lock:
            for attempt in (0, 1):
                conn = self._connection(timeout)
                try:
                    conn.request(method, self.base + path, body=body, headers=hdrs)
                    resp = conn.getresponse()
                    return resp.status, dict(resp.getheaders()), resp.read()
                except (http.client.RemoteDisconnected, BrokenPipeError,
                        ConnectionResetError):
                    # A keep-alive connection the server closed: one fresh try.
                    conn.close()
                    self._conn = None
                    if attempt:
                        raise
                except Exception:
                    conn.close()
                    self._conn = None
                    raise

    def _json(self, method, path, body=None, auth=None, ok=(200, 201), timeout=None):
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        status, _, data = self.raw(method, path, body, headers, timeout)
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = data.decode(errors="replace")
        if status not in ok:
            raise AgentError(status, decoded)
        return decoded

    def _slot_auth(self):
        if self.slot_id is None or self.token is None:
            raise ValueError("this call needs slot_id and token")
        return {"slot_id": self.slot_id, "token": self.token}

    # --- slots (admin token) ----------------------------------------------------------------

    def register_slot(self, plugin_name: str, callback_url: str) -> dict:
        """{"slot_id", "token", "secret", "plugin_name", "callback_url"}: keep token and
        secret, the agent stores only a hash of the token."""
        return self._json("POST", "/v1/slots",
                          {"plugin_name": plugin_name, "callback_url": callback_url},
                          self.admin_token)

    def ensure_slot(self, plugin_name: str, callback_url: str) -> dict:
        """register_slot, or - when a slot already serves the plugin (409) - that slot with new
        credentials: the agent keeps only a hash of a token, so the way to get credentials for
        an existing slot is to rotate them (the old token and secret stop working at once).
        A slot of that plugin with another callback URL is not changed: AgentError 409."""
        try:
            return self.register_slot(plugin_name, callback_url)
        except AgentError as e:
            if e.status != 409:
                raise
        for s in self.list_slots():
            if s["plugin_name"] == plugin_name:
                if s["callback_url"] != callback_url:
                    raise AgentError(409, {"error": f"slot {s['slot_id']} serves plugin "
                                                    f"{plugin_name!r} with callback "
                                                    f"{s['callback_url']!r}, not "
                                                    f"{callback_url!r}"})
                return self.rotate_slot(s["slot_id"])
        raise AgentError(409, {"error": f"a slot serves {plugin_name!r} but is not listed"})

    def list_slots(self) -> list:
        return self._json("GET", "/v1/slots", auth=self.admin_token)["slots"]

    def delete_slot(self, slot_id: int) -> Any:
        return self._json("DELETE", f"/v1/slots/{int(slot_id)}", auth=self.admin_token)

    def rotate_slot(self, slot_id: int) -> dict:
        return self._json("POST", f"/v1/slots/{int(slot_id)}/rotate", auth=self.admin_token)

    def health(self) -> dict:
        return self._json("GET", "/v1/health")

    # --- down ---------------------------------------------------------------------------------

    def dispatch(self, agent_ids: Sequence[str], content: Union[str, bytes],
                 message_id: Optional[str] = None, ttl_ms: Optional[int] = None) -> Any:
        """mimo's binary-safe dispatch. Returns {"message_id", "results": [{"agent_id",
        "status": "delivered"|"queued"|"failed", "code", "message"}]}."""
        if isinstance(agent_ids, str):
            agent_ids = [agent_ids]
        body = dict(self._slot_auth(), message_id=message_id or _message_id(),
                    agent_ids=list(agent_ids),
                    content_base64=base64.b64encode(_bytes(content)).decode())
        if ttl_ms is not None:
            body["ttl_ms"] = ttl_ms
        return self._json("POST", "/v1/dispatch", body)

    def dispatch_gse(self, agent_ids, content, message_id=None, base_path=""):
        """GSE's dispatch_message: content is a string; only failed agents are listed."""
        body = dict(self._slot_auth(), message_id=message_id or _message_id(),
                    agent_id_list=list(agent_ids), content=content)
        return self._gse(self._json("POST", base_path + "/api/v2/cluster/dispatch_message",
                                    body))

    @staticmethod
    def _gse(out):
        # GSE's routes answer errors with HTTP 200 and a non-zero code (what GSE's SDK reads).
        if not isinstance(out, dict) or out.get("code") != 0:
            raise AgentError(out.get("code") if isinstance(out, dict) else 200, out)
        return out

    def dispatch_multi_gse(self, agent_contents, message_id=None, front_content="",
                           back_content="", base_path=""):
        body = dict(self._slot_auth(), message_id=message_id or _message_id(),
                    agent_message_list=[{"bk_agent_id": a, "content": c}
                                        for a, c in agent_contents.items()],
                    front_content=front_content, back_content=back_content)
        return self._gse(self._json("POST",
                                    base_path + "/api/v2/cluster/dispatch_multi_message", body))

    def request(self, agent_id: str, content: Union[str, bytes], message_id: Optional[str] = None,
                timeout_ms: int = 5000) -> Any:
        """Dispatch and wait for the plugin's reply with the same message_id: its bytes.
        Raises AgentError (status 504 on a timeout, 404 unknown agent, 503 not connected)."""
        body = dict(self._slot_auth(), message_id=message_id or _message_id(),
                    agent_id=agent_id, content_base64=base64.b64encode(_bytes(content)).decode(),
                    timeout_ms=timeout_ms)
        out = self._json("POST", "/v1/request", body, timeout=timeout_ms / 1000 + self.timeout)
        return base64.b64decode(out["content_base64"])

    def request_many(self, agent_ids, content, message_id=None, timeout_ms=5000):
        body = dict(self._slot_auth(), message_id=message_id or _message_id(),
                    agent_ids=list(agent_ids),
                    content_base64=base64.b64encode(_bytes(content)).decode(),
                    timeout_ms=timeout_ms)
        return self._json("POST", "/v1/request", body,
                          timeout=timeout_ms / 1000 + self.timeout)["results"]

    # --- the plugin's cache ----------------------------------------------------------------------

    def _cache_path(self, agent_id, plugin, key, tail=""):
        q = urllib.parse.quote
        return (f"/v1/agents/{q(agent_id, safe='')}/plugins/{q(plugin, safe='')}"
                f"/cache/{q(key, safe='')}{tail}")

    def _cache_auth(self):
        return {"Authorization": f"Bearer {self.token or self.admin_token}"}

    def _cache_call(self, method, path, body=None, ok=(200,)):
        status, _, data = self.raw(method, path, body, self._cache_auth())
        if status not in ok:
            try:
                raise AgentError(status, json.loads(data))
            except ValueError:
                raise AgentError(status, data.decode(errors="replace")) from None
        return data

    def cache_put(self, agent_id, plugin, key, data, offset=0):
        """STORE: write data into the plugin's cache entry at offset."""
        self._cache_call("PUT", self._cache_path(agent_id, plugin, key, f"?offset={offset}"),
                         _bytes(data))

    def cache_get(self, agent_id, plugin, key, offset=0, size=None):
        """RETRIEVE: the plugin's bytes from offset (contiguous cached bytes, up to size)."""
        tail = f"?offset={offset}" + (f"&size={size}" if size is not None else "")
        return self._cache_call("GET", self._cache_path(agent_id, plugin, key, tail))

    def cache_delete(self, agent_id, plugin, key):
        self._cache_call("DELETE", self._cache_path(agent_id, plugin, key))

    def cache_inval(self, agent_id, plugin, key, offset=0, size=0):
        self._cache_call("POST", self._cache_path(agent_id, plugin, key,
                                                  f"/inval?offset={offset}&size={size}"))

    def poll(self, agent_id, plugin, kh=0):
        q = urllib.parse.quote
        self._cache_call("POST", f"/v1/agents/{q(agent_id, safe='')}/plugins/"
                                 f"{q(plugin, safe='')}/poll?kh={int(kh)}")


def verify_signature(secret, headers, body, tolerance_s=300):
    """Standard Webhooks: True when webhook-signature is HMAC-SHA256(secret, id.ts.body) and
    the timestamp is within tolerance_s. secret is "whsec_<base64>" (or raw text)."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and ts and sigs):
        return False
    try:
        if abs(time.time() - int(ts)) > tolerance_s:
            return False
    except ValueError:
        return False
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    want = "v1," + base64.b64encode(mac).decode()
    return any(hmac.compare_digest(want, s) for s in sigs.split())


class CallbackReceiver:
    """An HTTP server for a slot's callback (ThreadingHTTPServer, keep-alive).

    ``messages`` holds each distinct message (by webhook-id) as the decoded JSON body plus
    "_headers", "_verified" (signature checked when ``secret`` is set) and "_content" (bytes
    from content_base64). ``requests`` counts every POST, repeats included. ``responses`` is a
    list of HTTP statuses answered in order before 200 (to exercise retries)."""

    def __init__(self, secret=None, host="127.0.0.1", port=0, path="/callback", responses=None):
        self.secret = secret
        self.path = path
        self.responses = list(responses or [])
        self.messages = []
        self.requests = 0
        self.rejected = 0
        self._seen = set()
        self._cond = threading.Condition()
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = rx._take(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _take(self, headers, body):
        with self._cond:
            self.requests += 1
            if self.responses:
                return self.responses.pop(0)
            verified = verify_signature(self.secret, headers, body) if self.secret else None
            if verified is False:
                self.rejected += 1
                return 401
            wid = {k.lower(): v for k, v in headers.items()}.get("webhook-id")
            if wid in self._seen:
                return 200
            self._seen.add(wid)
            msg = json.loads(body)
            msg["_headers"] = headers
            msg["_verified"] = verified
            msg["_content"] = base64.b64decode(msg.get("content_base64", ""))
            self.messages.append(msg)
            self._cond.notify_all()
            return 200

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_for(self, n, timeout=15.0):
        """Wait until n distinct messages arrived; returns them (maybe fewer on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.messages)
