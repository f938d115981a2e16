#!/usr/bin/python3
"""A plugin speaking BlueKing GSE's agent IPC exactly as bk-gse-sdk's Go client does
(go/service/agent-message/client.go, go/internal/agent/protocol_message.go): a 28-byte
big-endian header {magic 0xdeadbeef, type, version 6, sequence, length, reserved0, reserved1};
a keepalive {plugin_name, version, pid, status_code, status, remark} as the whole body, sent at
once and then every interval; dispatch frames (0x9008) checked as the SDK checks them
(meta_len != 0, meta + content = body); messages up as respond frames (0x900a) with the meta
{name, transmit_type, topic, message_id, session_id} and the raw content.

    gse_plugin.py --socket PATH --name NAME [--echo] [--keepalive-s S] [--max-message-bytes N]

As the SDK's reader (go/internal/agent/buffer.go), a frame longer than --max-message-bytes (the
SDK's MaxMessageSizeBytes, default 10 MiB, header included) fails the connection: it reports
{"event":"error","error":"override buffer capacity N"} and closes.

Prints JSON lines: {"event":"keepalive_resp", ...agent's JSON}, {"event":"message","id",
"content_b64"} (or "len" and "sha256" instead of "content_b64" with --digest). Commands on
stdin: "send ID TEXT", "pause" (stop reading the socket, as a stalled plugin), "resume",
"quit".
"""
import argparse
import base64
import hashlib
import itertools
import json
import os
import socket
import struct
import sys
import threading
import time

MAGIC, VERSION = 0xDEADBEEF, 0x6
KEEPALIVE_REQ, KEEPALIVE_RESP, DISPATCH, RESPOND = 0x9006, 0x9007, 0x9008, 0x900A
HDR = struct.Struct(">IHHQIII")
_seq = itertools.count(1)
_out = threading.Lock()


def say(obj):
    with _out:
        print(json.dumps(obj), flush=True)


def frame(kind, body, meta_len=0, content_len=0):
    return HDR.pack(MAGIC, kind, VERSION, next(_seq), HDR.size + len(body), meta_len,
                    content_len) + body


class Plugin:
    def __init__(self, path, name, echo, keepalive_s, max_bytes=10 << 20, digest=False):
        self.name, self.echo, self.keepalive_s = name, echo, keepalive_s
        self.max_bytes, self.digest = max_bytes, digest
        self.reading = threading.Event()
        self.reading.set()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.wlock = threading.Lock()
        self.stop = threading.Event()

    def write(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def keepalive(self):
        body = json.dumps({"plugin_name": self.name, "version": "1.0.0", "pid": os.getpid(),
                           "status_code": 0, "status": "ok", "remark": ""}).encode()
        self.write(frame(KEEPALIVE_REQ, body))

    def keepalive_loop(self):
        while not self.stop.wait(self.keepalive_s):
            try:
                self.keepalive()
            except OSError:
                return

    def send(self, message_id, content):
        meta = json.dumps({"name": self.name, "transmit_type": 0, "topic": "",
                           "message_id": message_id, "session_id": ""}).encode()
        self.write(frame(RESPOND, meta + content, len(meta), len(content)))

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def reader(self):
        try:
            while True:
                self.reading.wait()
                magic, kind, _ver, _seq_no, length, r0, r1 = HDR.unpack(self.read_exact(HDR.size))
                if magic != MAGIC:
                    say({"event": "error", "error": "bad magic"})
                    return
                if length > self.max_bytes:
                    # The SDK's Buffer.Read: the reader fails, the connection is dropped.
                    say({"event": "error", "error": f"override buffer capacity {length}"})
                    self.sock.close()
                    return
                body = self.read_exact(length - HDR.size)
                if kind == KEEPALIVE_RESP:
                    say(dict(json.loads(body), event="keepalive_resp"))
                elif kind == DISPATCH:
                    if r0 == 0 or r0 + r1 != len(body) or r0 + r1 + HDR.size != length:
                        say({"event": "error", "error": "invalid length"})
                        continue
                    meta = json.loads(body[:r0])
                    content = body[r0:]
                    ev = {"event": "message", "id": meta["message_id"],
                          "session_id": meta.get("session_id")}
                    if self.digest:
                        ev.update(len=len(content), sha256=hashlib.sha256(content).hexdigest())
                    else:
                        ev["content_b64"] = base64.b64encode(content).decode()
                    say(ev)
                    if self.echo:
                        self.send(meta["message_id"], content)
                else:
                    say({"event": "unknown", "type": kind})
        except (EOFError, OSError):
            say({"event": "closed"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--keepalive-s", type=float, default=3.0)
    ap.add_argument("--max-message-bytes", type=int, default=10 << 20)
    ap.add_argument("--digest", action="store_true")
    args = ap.parse_args()
    deadline = time.monotonic() + 10
    while True:
        try:
            p = Plugin(args.socket, args.name, args.echo, args.keepalive_s,
                       args.max_message_bytes, args.digest)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    threading.Thread(target=p.reader, daemon=True).start()
    p.keepalive()  # the SDK's loop sends its first keepalive at once
    threading.Thread(target=p.keepalive_loop, daemon=True).start()
    for line in sys.stdin:
        parts = line.rstrip("\n").split(" ", 2)
        if parts[0] == "send" and len(parts) == 3:
            p.send(parts[1], parts[2].encode())
            say({"event": "sent", "id": parts[1]})
        elif parts[0] == "pause":
            p.reading.clear()
            say({"event": "paused"})
        elif parts[0] == "resume":
            p.reading.set()
        elif parts[0] == "quit":
            break
    p.stop.set()
    p.sock.close()


if __name__ == "__main__":
    main()
