# The Flask receiver from seeds/0-notify-bridge.md, unchanged but for the port (argv[1]) and
# printing the received JSON as JSON so the test can read it back exactly.
import json
import sys

from flask import Flask, request
app = Flask(__name__)

@app.post("/spdk/events")
def receive():
    data = request.json
    print(f"收到通知: {json.dumps(data, ensure_ascii=False)}", flush=True)
    return {"status": "ok"}

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9090
    app.run(host="127.0.0.1", port=port)
