#!/usr/bin/env bash
# Portal front page for a logged-in resident with 50 notices (issue 6's benchmark): requests per
# second and latency at 32 connections, wrk and the server on the same machine.
#   DUR=10s CONNS=32 DB=sqlite|postgres ./ops/bench/portal.sh
# Prints a Markdown block for ops/bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${DUR:-10s}"; CONNS="${CONNS:-32}"; DB="${DB:-sqlite}"; PORT="${PORT:-18082}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
bin="$PWD/target/release/kuntalaistili"
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true
            [ -n "${pgdb:-}" ] && psql -q "${KUNTALAISTILI_TEST_PG%/*}/test" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1
            rm -rf "$work"; }
trap cleanup EXIT
base="http://127.0.0.1:$PORT"
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
sub=$(echo 'bench-password-1' | "$bin" users add bench --password-stdin --given-name Penkki --family-name Testaaja --json \
      | sed 's/.*"id":"\([^"]*\)".*/\1/')
creds=$("$bin" clients add --name bench-poster --grant-types client_credentials --scopes "notices:write" --json)
cid=$(printf '%s' "$creds" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
csec=$(printf '%s' "$creds" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')
"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
until curl -sf "$base/readyz" >/dev/null; do sleep 0.02; done

# 50 notices through the API, as another system would post them.
at=$(curl -sf -u "$cid:$csec" -d grant_type=client_credentials "$base/oauth2/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
for i in $(seq 1 50); do
  curl -sf -o /dev/null -H "Authorization: Bearer $at" -H 'Content-Type: application/json' \
    -d "{\"sub\":\"$sub\",\"idempotency_key\":\"bench-$i\",\"service\":\"Palvelu $((i % 5))\",\"title\":\"Ilmoitus numero $i\",\"body\":\"Asiasi etenee.\",\"status\":\"in_progress\"}" \
    "$base/services/noticeboard/api/notices"
done

# Log in once through the portal (the real flow: portal → IdP login → code → portal session).
jar="$work/jar"
curl -s -o /dev/null -L -c "$jar" -b "$jar" "$base/"
page=$(curl -s -L -c "$jar" -b "$jar" "$base/auth/login")
csrf=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//')
next=$(printf '%s' "$page" | grep -o 'name="next" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//;s/&#x2F;/\//g;s/&#x3D;/=/g;s/&#x3F;/?/g;s/&amp;/\&/g')
curl -s -o "$work/front.html" -L -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" --data-urlencode "username=bench" \
  --data-urlencode "password=bench-password-1" --data-urlencode "next=$next" "$base/login"
grep -q 'Ilmoitus numero 50' "$work/front.html" || { echo "login through the portal failed" >&2; exit 1; }
cookie=$(awk '$6 ~ /^kl_/ {printf "%s=%s; ", $6, $7}' "$jar")

COOKIE="$cookie" MARKER="Ilmoitus numero 50" wrk -t1 -c4 -d2s -s ops/bench/portal.lua "$base/" >/dev/null
out=$(COOKIE="$cookie" MARKER="Ilmoitus numero 50" wrk -t2 -c"$CONNS" -d"$DUR" --latency -s ops/bench/portal.lua "$base/")
summary=$(printf '%s\n' "$out" | grep '^SUMMARY')
rss=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
val() { printf '%s' "$summary" | sed "s/.*$1=\([0-9.]*\).*/\1/"; }
cat <<MD
### Portal front page, logged-in resident with 50 notices — $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo), $DB
wrk -t2 -c$CONNS -d$DUR, release build, log level warn; each response checked for the newest notice.

| measure | value |
|---|---|
| requests/s | $(val rps) |
| latency p50 / p90 / p99 | $(val p50_ms) / $(val p90_ms) / $(val p99_ms) ms |
| non-2xx responses / responses without the notices | $(val non2xx3xx) / $(val wrong) |
| peak RSS (VmHWM) | $rss MB |

Raw: \`$summary\`
MD
