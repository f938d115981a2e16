#!/bin/sh
# `make run`: the event bridge end to end. Starts the seed's receiver (Python http.server) on
# 127.0.0.1:9090 - the bridge's default address - sends the Go bridge README's sample events
# with build/bin/notify_demo, and prints what arrives.
set -eu
cd "$(dirname "$0")/.."

PORT=9090
if /usr/bin/python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$PORT))!=0)"; then
	echo "run: port $PORT is busy; using a free port instead"
	PORT=$(/usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
fi

/usr/bin/python3 -u test/integration/seed/http_receiver.py "$PORT" 2>/dev/null &
RECEIVER=$!
trap 'kill $RECEIVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 50); do
	/usr/bin/python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$PORT)))" && break
	sleep 0.1
done

echo "run: sending sample events with build/bin/notify_demo (return codes below)"
MIMO_NOTIFY_URL="http://127.0.0.1:$PORT/spdk/events" build/bin/notify_demo
sleep 0.5
echo "run: done. The bridge needs no set-up: NotifyEvent(\"name\", \"{json}\") from any thread."
