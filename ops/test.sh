#!/usr/bin/env bash
# Runs every test: unit tests, and the end-to-end tests against SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
./ops/setup.sh
./ops/pg-up.sh
export KUNTALAISTILI_TEST_PG="${KUNTALAISTILI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
exec cargo nextest run --workspace --no-fail-fast "$@"
