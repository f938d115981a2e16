#!/bin/sh
# `make run`: start mimo_tgt in the foreground with its default configuration (etc/mimo_tgt.json:
# one 64 MiB malloc bdev) on the default socket, and say how to talk to it. Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."

SOCK=${MIMO_RPC_SOCKET:-/var/tmp/mimo.sock}
cat <<MSG
mimo_tgt: starting with etc/mimo_tgt.json (Malloc0, 64 MiB) on $SOCK.
In another terminal:
  build/bin/mimo-rpc bdev_get_bdevs                  # list block devices
  build/bin/mimo-rpc bdev_malloc_create 64 512 -b M1 # create one (64 MiB, 512-byte blocks)
  build/bin/mimo-rpc save_config                     # the configuration, as SPDK's rpc.py
  SPDK's scripts/rpc.py -s $SOCK ...                 # works unchanged
Events go to http://127.0.0.1:9090/spdk/events (MIMO_NOTIFY_URL to change; see docs/notify.md).
Stop with Ctrl-C.
MSG
exec build/bin/mimo_tgt -r "$SOCK" -c etc/mimo_tgt.json
