#!/usr/bin/env bash
# Does a server's RSS come back after a burst of short websocket sessions?
#
#   bash benchmarks/rss_churn.sh APP [WS]     APP: bare | ours | pyengineio | bare_heartbeat
#
# Starts uvicorn (uvloop, httptools, --ws WS, default websockets) with benchmarks/apps/APP.py
# on 127.0.0.1 pinned to core 0, then from core 1: 200 short sessions (warm-up), then three
# rounds of 5,000 sessions (1,000 at a time), each exchanging 20 echoed messages and closing.
# Prints the server's RSS (KiB) fresh, after the warm-up and 3 s after each round.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
APP=${1:?app module}
WS=${2:-websockets}
PY="$HERE/../.venv/bin/python"
PORT=$((21000 + RANDOM % 8000))
cd "$HERE/apps"
PYTHONPATH="$HERE/..:$HERE/apps" taskset -c 0 "$PY" -m uvicorn "$APP:app" --host 127.0.0.1 --port $PORT \
  --log-level warning --loop uvloop --http httptools --ws "$WS" --no-access-log 2>/dev/null &
SPID=$!
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null || true' EXIT
sleep 2
rss() { awk '/VmRSS/ {print $2}' "/proc/$SPID/status"; }
echo "$APP fresh $(rss)"
taskset -c 1 node "$HERE/churn.js" $PORT 200 5 100 >/dev/null
sleep 2
echo "$APP after-warm-up $(rss)"
for r in 1 2 3; do
  taskset -c 1 node "$HERE/churn.js" $PORT 5000 20 1000 >/dev/null
  sleep 3
  echo "$APP after-round-$r $(rss)"
done
