#!/usr/bin/env bash
# Stop the private apache2 and shibd started by setup.sh.   stop.sh STATE_DIR
set -uo pipefail
STATE="${1:?usage: stop.sh STATE_DIR}"
for name in httpd shibd; do
  PIDFILE="$STATE/run/$name.pid"
  [ -s "$PIDFILE" ] || continue
  PID="$(cat "$PIDFILE")"
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"   # apache's parent stops its own children
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
  fi
  rm -f "$PIDFILE"
  echo "stopped $name (pid $PID)" >&2
done
exit 0
