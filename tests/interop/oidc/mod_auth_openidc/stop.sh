#!/usr/bin/env bash
# Stop the private apache2 (mod_auth_openidc RPs) started by setup.sh.   stop.sh STATE_DIR
set -euo pipefail
STATE="${1:?usage: stop.sh STATE_DIR}"
PIDFILE="$STATE/run/httpd.pid"
if [ ! -s "$PIDFILE" ]; then echo "not running (no $PIDFILE)" >&2; exit 0; fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
  kill -TERM "$PID"   # apache parent: stops its own children
  for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
fi
rm -f "$PIDFILE"
echo "stopped (pid $PID)" >&2
