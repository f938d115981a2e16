"""A real HTTP receiver for tests: Python's ThreadingHTTPServer on a loopback port, recording
every request, answering from a script of responses (or hanging)."""
import http.server
import json
import threading
import time


class Request:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.time = time.monotonic()
        self.status = None  # what the receiver answered (None: it never answered)

    def json(self):
        return json.loads(self.body.decode())


class Receiver:
    """responses: list of (status, {header: value}) used in order, then 200 for ever.
    hang: accept and read requests but never answer.
    outage: (after, seconds, status): once `after` requests have been answered, answer
    `status` to every request for `seconds` from the first one so answered (a backend that is
    down for a while), then 200 again."""

    def __init__(self, port=0, responses=None, hang=False, path="/spdk/events", outage=None):
        self.responses = list(responses or [])
        self.outage = outage
        self.outage_started = None
        self.hang = hang
        self.path = path
        self.requests = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without this the body waits for the client's delayed ACK: ~40 ms a request.
            disable_nagle_algorithm = True

            def do_POST(self):
                receiver._handle(self)

            do_PUT = do_POST

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, h):
        n = int(h.headers.get("Content-Length", "0"))
        body = h.rfile.read(n)
        with self.cond:
            req = Request(h.command, h.path, dict(h.headers), body)
            self.requests.append(req)
            status, headers = self.responses.pop(0) if self.responses else (200, {})
            if self.outage is not None and len(self.requests) > self.outage[0]:
                if self.outage_started is None:
                    self.outage_started = req.time
                if req.time - self.outage_started < self.outage[1]:
                    status, headers = self.outage[2], {}
            if not self.hang:
                req.status = status
            self.cond.notify_all()
        if self.hang:
            self.stopping.wait()
            return
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"{}")

    def wait_for(self, n, timeout=15.0):
        """Wait until at least n requests have arrived; returns the requests."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.requests)

    def events(self):
        return [r.json() for r in self.requests]

    def delivered(self):
        """The events the receiver accepted (answered 2xx), in arrival order."""
        with self.cond:
            return [r.json() for r in self.requests if r.status and 200 <= r.status < 300]
