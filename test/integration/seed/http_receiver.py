# The receiver from seeds/0-notify-bridge.md ("Python 示例"), unchanged but for the port,
# which the test passes as the first argument (default 9090, as in the seed).
import sys
from http.server import HTTPServer, BaseHTTPRequestHandler
import json

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers['Content-Length'])
        body = self.rfile.read(length)
        data = json.loads(body.decode())
        print('收到通知:')
        print(json.dumps(data, indent=2, ensure_ascii=False))
        sys.stdout.flush()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9090
httpd = HTTPServer(('127.0.0.1', port), Handler)
print(f'监听 http://127.0.0.1:{port}/spdk/events', flush=True)
httpd.serve_forever()
