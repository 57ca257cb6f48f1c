#!/usr/bin/env bash
# Password-login throughput against the raw Argon2id hash rate of the same parameters, on the
# same machine in the same run; plus idle memory and start-up time. Bounded: about 50 s in all.
#   DURATION=10 CONNECTIONS=8 DB=sqlite|postgres ./ops/bench/login.sh
# Prints a Markdown block for ops/bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-8}"
DB="${DB:-sqlite}"
PORT="${PORT:-18080}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
bin="$PWD/target/release/kuntalaistili"
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true
            [ -n "${pgdb:-}" ] && psql -q "${KUNTALAISTILI_TEST_PG%/*}/test" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1
            rm -rf "$work"; }
trap cleanup EXIT
export KUNTALAISTILI_LISTEN="127.0.0.1:$PORT" KUNTALAISTILI_DATA_DIR="$work" KUNTALAISTILI_LOG_LEVEL=warn
if [ "$DB" = postgres ]; then
  export KUNTALAISTILI_TEST_PG="${KUNTALAISTILI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
  pgdb="kl_bench_$$"
  psql -q "$KUNTALAISTILI_TEST_PG" -c "CREATE DATABASE $pgdb" >/dev/null
  export KUNTALAISTILI_DATABASE_URL="${KUNTALAISTILI_TEST_PG%/*}/$pgdb"
else
  export KUNTALAISTILI_DATABASE_URL="sqlite://$work/kl.db"
fi
"$bin" migrate >/dev/null
echo 'bench-password-1' | "$bin" users add bench --password-stdin >/dev/null

# Start-up to ready: from exec to the first 200 from /readyz.
t0=$(date +%s%N)
"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.005; done
ready_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
sleep 1
idle_rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)

# Raw Argon2id rate, all cores, same parameters, with the server idle: measured before and after
# the load run and averaged, because a shared virtual machine's speed drifts within minutes.
raw_rate() { "$bin" argon2-bench --seconds "$DURATION" --json | sed 's/.*"hashes_per_second":\([0-9.]*\).*/\1/'; }
raw_before=$(raw_rate)

# Logins through HTTP: one CSRF pair reused (it is bound to the cookie, not to a request).
page=$(curl -s -c "$work/jar" "http://127.0.0.1:$PORT/login")
token=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//')
cookie="kl_csrf=$(awk '$6=="kl_csrf" {print $7}' "$work/jar")"
cpu_of() { # clock ticks used so far by processes named $1
  local t=0; for p in $(pgrep -x "$1"); do
    t=$(( t + $(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0) )); done; echo $t; }
srv0=$(awk '{print $14 + $15}' /proc/$pid/stat); pg0=$(cpu_of postgres); wrk0=0
out=$(COOKIE="$cookie" BODY="csrf=$token&username=bench&password=bench-password-1&next=%2Faccount" \
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s ops/bench/login.lua "http://127.0.0.1:$PORT/login")
srv_s=$(awk -v a="$(awk '{print $14 + $15}' /proc/$pid/stat)" -v b="$srv0" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (a - b) / hz }')
pg_s=$(awk -v a="$(cpu_of postgres)" -v b="$pg0" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (a - b) / hz }')
summary=$(printf '%s\n' "$out" | grep '^SUMMARY')
rps=$(printf '%s' "$summary" | sed 's/.*rps=\([0-9.]*\).*/\1/')
bad=$(printf '%s' "$summary" | sed 's/.*non2xx3xx=\([0-9]*\).*/\1/')
loaded_rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
raw_after=$(raw_rate)
raw=$(awk -v a="$raw_before" -v b="$raw_after" 'BEGIN { printf "%.1f", (a + b) / 2 }')
ratio=$(awk -v a="$rps" -v b="$raw" 'BEGIN { printf "%.1f", 100 * a / b }')

cat <<MD
### Login throughput ($DB) — $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo)
Argon2id m=19456 KiB t=2 p=1; wrk -t2 -c$CONNECTIONS -d${DURATION}s on the same machine.

| measure | value |
|---|---|
| raw Argon2id verifications/s (all cores; before / after the load) | $raw ($raw_before / $raw_after) |
| password logins/s over HTTP (303 + session + audit row) | $rps |
| login throughput / raw hash rate | **$ratio %** (target ≥ 90 %) |
| non-3xx responses during the run | $bad |
| latency | $(printf '%s' "$summary" | sed 's/.*\(p50_ms=[0-9.]*\) \(p90_ms=[0-9.]*\) \(p99_ms=[0-9.]*\).*/\1 \2 \3/') |
| start-up to ready (exec → /readyz 200) | $ready_ms ms (target < 1000 ms) |
| idle RSS | $(( idle_rss_kb / 1024 )) MB (target < 40 MB) |
| RSS after the load | $(( loaded_rss_kb / 1024 )) MB |
| CPU seconds during the load: server / PostgreSQL | $srv_s s / $pg_s s (of $(( $(nproc) * DURATION )) s on $(nproc) cores) |
MD
