#!/usr/bin/env bash
# Builds and starts Kuntalaistili on embedded SQLite with a demo resident
# (username maija, password kuntalainen2026) at http://127.0.0.1:8080/login.
# State (database, master key) goes to ./data unless KUNTALAISTILI_DATA_DIR says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
./ops/setup.sh
data="${KUNTALAISTILI_DATA_DIR:-$PWD/data}"
mkdir -p "$data"
export KUNTALAISTILI_DATA_DIR="$data"
export KUNTALAISTILI_DATABASE_URL="${KUNTALAISTILI_DATABASE_URL:-sqlite://$data/kuntalaistili.db}"
cargo build --release
exec ./target/release/kuntalaistili serve --demo "$@"
