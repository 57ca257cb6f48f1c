#!/usr/bin/env bash
# Starts or stops the private Apache of the SimpleSAMLphp bench peer (set up by setup.sh in the
# same folder, which runs first when $STATE has no configuration yet).
#   run.sh start | run.sh stop        STATE as for setup.sh (/var/tmp/kuntalaistili-peer-ssp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export STATE="${STATE:-/var/tmp/kuntalaistili-peer-ssp}"
[ -f "$STATE/httpd.conf" ] || "$here/setup.sh"
case "${1:-start}" in
  start)
    apache2 -f "$STATE/httpd.conf" -k start
    for _ in $(seq 50); do [ -s "$STATE/run/httpd.pid" ] && break; sleep 0.1; done
    echo "SimpleSAMLphp peer: Apache pid $(cat "$STATE/run/httpd.pid")" ;;
  stop)
    apache2 -f "$STATE/httpd.conf" -k stop ;;
  *)
    echo "usage: run.sh start|stop" >&2; exit 2 ;;
esac
