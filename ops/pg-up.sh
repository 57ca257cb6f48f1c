#!/usr/bin/env bash
# Makes sure the PostgreSQL that the tests use answers (starts the local cluster if needed).
set -euo pipefail
url="${KUNTALAISTILI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
if pg_isready -d "$url" -q 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
  done
fi
for _ in $(seq 1 30); do
  pg_isready -d "$url" -q 2>/dev/null && exit 0
  sleep 1
done
echo "PostgreSQL is not reachable at $url (set KUNTALAISTILI_TEST_PG)" >&2
exit 1
