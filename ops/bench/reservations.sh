#!/usr/bin/env bash
# Facility reservations: availability queries and concurrent booking over the JSON API.
# ops/bench/reservations_seed.py seeds straight into the migrated database one unit and two
# facilities open every day 06:00-23:00 Europe/Helsinki, one-hour slots, free, confirmed at once:
# bench-a with RESERVATIONS (10 000) confirmed one-hour reservations filling every slot from
# tomorrow on (17 a day, about 590 days), bench-b empty. Then, wrk -t2 on the same cores as the
# server:
#   availability  DUR (after WARM of unmeasured load), -c$CONNS: GET
#                 /services/reservations/api/resources/bench-a/availability?from=D&to=D+7 (public,
#                 no token) for random 7-day windows among all fully booked weeks of the seed
#                 (ops/bench/reservations_availability.lua); every answer must be a 200 (a run with
#                 any other is invalid) and every 20th is looked into (119 slots taken, none free);
#   booking       BOOK_DUR, -c$BOOK_CONNS: POST /services/reservations/api/reservations
#                 {"resource":"bench-b","begins_at","ends_at"} with one resident's bearer access
#                 token (scope reservations, from the authorization code flow with PKCE of a
#                 relying party registered with the CLI, consent skipped), at random one-hour slots
#                 of a pool of BOOK_DAYS days (ops/bench/reservations_book.lua): 201 booked, 409
#                 taken (many: the pool fills within seconds), 422 a rule; anything else makes the
#                 run invalid. Afterwards, with the server stopped, the database is asked for
#                 overlapping active reservations of bench-b (must be 0) and whether the count of
#                 active reservations matches the 201 answers.
# Reports requests/s, mean / p50 / p99 / max latency, the answers, the load average before each
# run, server CPU seconds and the CPU other processes took during each run (the machine may be
# shared: each run first waits up to QUIET_WAIT=120 s for it to be idle), RSS (VmRSS idle, after
# each run, VmHWM), the seeding time. Target: ≥ 3 000 availability queries/s, p99 < 20 ms.
#   DUR=20s CONNS=32 BOOK_DUR=10s DB=sqlite|postgres ./ops/bench/reservations.sh
#   (BIN=path/to/kuntalaistili: no cargo build; PORT=18097 WARM=2s BOOK_CONNS=$CONNS BOOK_DAYS=30
#    RESERVATIONS=10000 HOURS=1 (2 or 3: booking lengths of 1…HOURS hours, so attempts also
#    overlap partly and some run past closing, 422); DB=postgres uses KUNTALAISTILI_TEST_PG's
#    server, default postgres://postgres@127.0.0.1:5432/test, and a database of its own;
#    KEEP=1: keep the work directory with serve.log, the wrk outputs and, on SQLite, the database)
# Prints a Markdown block for ops/bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${DUR:-20s}"; CONNS="${CONNS:-32}"; BOOK_DUR="${BOOK_DUR:-10s}"; BOOK_CONNS="${BOOK_CONNS:-$CONNS}"
DB="${DB:-sqlite}"; PORT="${PORT:-18097}"; WARM="${WARM:-2s}"; BOOK_DAYS="${BOOK_DAYS:-30}"
RESERVATIONS="${RESERVATIONS:-10000}"; HOURS="${HOURS:-1}"; THREADS=2
here="$PWD/ops/bench"
die() { echo "reservations.sh: $*" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
for c in python3 curl; do command -v "$c" >/dev/null || die "$c is needed"; done
case "$HOURS" in 1|2|3) ;; *) die "HOURS must be 1, 2 or 3";; esac
! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" || die "port $PORT is already in use (set PORT=)"
work=$(mktemp -d)
pid= pgdb=
stop() { # stop the server we started, by its id, and reap it
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
}
cleanup() {
  stop
  if [ -n "$pgdb" ]; then
    psql -q "$KUNTALAISTILI_TEST_PG" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "reservations.sh: kept $work (serve.log, wrk outputs, the database)" >&2
  else rm -rf "$work"; fi
}
trap cleanup EXIT; trap "exit 130" INT TERM
if [ -n "${BIN:-}" ]; then
  bin=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN"); build="given binary $BIN"
  case "$bin" in */debug/*) build="$build (**debug build: the figures say nothing about release**)";; esac
else
  cargo build --release -q 2>"$work/build.log" || { cat "$work/build.log" >&2; die "cargo build --release failed"; }
  bin="$PWD/target/release/kuntalaistili"; build="release build"
fi
[ -x "$bin" ] || die "no binary at $bin"
rev="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
[ -z "$(git status --porcelain -- . ':!ops/bench' 2>/dev/null)" ] || rev="$rev + uncommitted changes"

# --- Database
unset RUST_LOG
base="http://127.0.0.1:$PORT"
export KUNTALAISTILI_LISTEN="127.0.0.1:$PORT" KUNTALAISTILI_PUBLIC_URL="$base" KUNTALAISTILI_DATA_DIR="$work"
export KUNTALAISTILI_LOG_LEVEL=warn
if [ "$DB" = postgres ]; then
  command -v psql >/dev/null || die "psql is needed for DB=postgres"
  export KUNTALAISTILI_TEST_PG="${KUNTALAISTILI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
  pgdb="bench_reservations_$$"
  psql -q "$KUNTALAISTILI_TEST_PG" -c "CREATE DATABASE $pgdb" >/dev/null
  export KUNTALAISTILI_DATABASE_URL="${KUNTALAISTILI_TEST_PG%/*}/$pgdb"
  db_label="PostgreSQL $(psql -Atq "$KUNTALAISTILI_DATABASE_URL" -c 'SHOW server_version' | cut -d' ' -f1) (local)"
elif [ "$DB" = sqlite ]; then
  export KUNTALAISTILI_DATABASE_URL="sqlite://$work/kl.db"
  db_label="SQLite"
else
  die "DB must be sqlite or postgres"
fi
cli() { "$bin" "$@" 2>>"$work/cli.log" || { cat "$work/cli.log" >&2; die "kuntalaistili $1 ${2:-} failed"; }; }
cli migrate >/dev/null

# --- Seed (timed: generation in Python + writing into the database)
t0=$(date +%s%N)
files=(--windows "$work/windows.txt" --slots "$work/slots.txt" --probe "$work/probe.txt")
if [ "$DB" = postgres ]; then
  seed=$(python3 "$here/reservations_seed.py" --reservations "$RESERVATIONS" --book-days "$BOOK_DAYS" \
    --pg-dir "$work/pg" "${files[@]}") || die "reservations_seed.py failed"
  {
    echo 'BEGIN;'
    for t in res_units res_resources res_hours res_reservations; do
      echo "\\copy $t ($(cat "$work/pg/$t.cols")) FROM '$work/pg/$t.tsv'"
    done
    echo 'COMMIT;'
    echo 'ANALYZE;' # what autovacuum would do within a minute of such a load, done now
  } | psql -q -v ON_ERROR_STOP=1 "$KUNTALAISTILI_DATABASE_URL" >/dev/null
else
  seed=$(python3 "$here/reservations_seed.py" --reservations "$RESERVATIONS" --book-days "$BOOK_DAYS" \
    --sqlite "$work/kl.db" "${files[@]}") || die "reservations_seed.py failed"
fi
seed_s=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN { printf "%.1f", (a - b) / 1e9 }')
seed=${seed#SEED }
sfield() { printf '%s' "$seed" | sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p"; }
db_size=$(if [ "$DB" = postgres ]; then
  psql -Atq "$KUNTALAISTILI_DATABASE_URL" -c "SELECT pg_database_size(current_database()) / 1048576"
else du -cm "$work"/kl.db* | tail -1 | cut -f1; fi)

# --- A resident and a relying party that may ask for the reservations scope (no consent page)
redir="http://127.0.0.1:3009/bench/callback"
creds=$(cli clients add --name bench-reservations --redirect-uri "$redir" --grant-types authorization_code \
  --scopes "openid reservations" --skip-consent --json)
cid=$(printf '%s' "$creds" | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')
csec=$(printf '%s' "$creds" | sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p')
[ -n "$cid" ] && [ -n "$csec" ] || die "clients add printed no id and secret: $creds"
password="bench-reservations-$$-salasana"
printf '%s\n' "$password" | cli users add bench --password-stdin --given-name Penkki \
  --family-name Varaaja --email bench@example.org >/dev/null

start_server() {
  "$bin" serve >>"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do
    curl -sf -o /dev/null "$base/readyz" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "server exited before it was ready"; }
    sleep 0.05
  done
  cat "$work/serve.log" >&2; die "server not ready after 20 s"
}
start_server
rss_mb() { awk -v k="$1:" '$1 == k {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
idle_rss=$(rss_mb VmRSS)

# Password login (cookie jar), then the authorization code flow with PKCE S256 for each token.
jar="$work/jar"
page=$(curl -s -c "$jar" "$base/login")
csrf=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//')
[ -n "$csrf" ] || die "no CSRF token in GET /login"
st=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" --data-urlencode "csrf=$csrf" \
  -d username=bench --data-urlencode "password=$password" -d next=%2Faccount "$base/login")
[ "$st" = 303 ] || die "POST /login answered $st, not 303"
token() { # a fresh resident access token with the reservations scope
  local pkce verifier challenge out code t
  pkce=$(python3 -c 'import base64, hashlib, secrets
v = secrets.token_urlsafe(48)
print(v, base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode())')
  verifier=${pkce% *}; challenge=${pkce#* }
  out=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -b "$jar" -c "$jar" -G "$base/oauth2/authorize" \
    -d response_type=code --data-urlencode "client_id=$cid" --data-urlencode "redirect_uri=$redir" \
    --data-urlencode "scope=openid reservations" -d state=bench-state -d nonce=bench-nonce \
    --data-urlencode "code_challenge=$challenge" -d code_challenge_method=S256)
  [ "${out%% *}" = 303 ] || die "GET /oauth2/authorize answered ${out%% *} (not the 303 to the RP; a consent page?): ${out#* }"
  code=$(python3 -c 'import sys, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query); print(q.get("code", [""])[0])' "${out#* }")
  [ -n "$code" ] || die "no code in the redirect: ${out#* }"
  t=$(curl -s -u "$cid:$csec" -d grant_type=authorization_code --data-urlencode "code=$code" \
    --data-urlencode "redirect_uri=$redir" --data-urlencode "code_verifier=$verifier" "$base/oauth2/token")
  printf '%s' "$t" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' | grep . || die "no access token from /oauth2/token: $t"
}

# --- Checks by hand before the load
api="$base/services/reservations/api"
read -r w_from w_to <"$work/windows.txt"
body=$(curl -s -w '\n%{http_code}' "$api/resources/bench-a/availability?from=$w_from&to=$w_to")
[ "${body##*$'\n'}" = 200 ] || die "availability answered ${body##*$'\n'}: $(printf '%s' "${body%$'\n'*}" | head -c 300)"
taken=$(printf '%s' "$body" | grep -o '"status":"taken"' | wc -l)
[ "$taken" = 119 ] || die "availability of a fully booked week $w_from…$w_to: $taken slots taken, not 119"
tok=$(token)
read -r p_begins p_ends p_short <"$work/probe.txt"
book() { # BEGINS ENDS -> the status code
  curl -s -o "$work/book.out" -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d "{\"resource\":\"bench-b\",\"begins_at\":\"$1\",\"ends_at\":\"$2\"}" "$api/reservations"
}
st=$(book "$p_begins" "$p_ends"); [ "$st" = 201 ] || die "booking a free slot answered $st: $(head -c 300 "$work/book.out")"
st=$(book "$p_begins" "$p_ends"); [ "$st" = 409 ] || die "booking it again answered $st, not 409: $(head -c 300 "$work/book.out")"
st=$(book "$p_begins" "$p_short"); [ "$st" = 422 ] || die "booking 30 minutes answered $st, not 422: $(head -c 300 "$work/book.out")"

# --- Runs
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
pg_ticks() { # CPU clock ticks used so far by PostgreSQL's backends of our database (0 on SQLite)
  local t=0 p
  if [ "$DB" = postgres ]; then
    for p in $(pgrep -f "^postgres: (.+: )?[^ ]+ $pgdb " || true); do
      t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done
  fi
  echo "$t"
}
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; } # machine CPU ticks so far
settle() { # until the machine is idle (≤ 3 % busy over half a second), at most QUIET_WAIT s
  local a b
  for _ in $(seq $(( ${QUIET_WAIT:-120} * 2 ))); do
    a=$(busy); sleep 0.5; b=$(busy)
    [ $(( b - a )) -le $(( $(nproc) * 3 )) ] && return 0
  done
  echo "reservations.sh: the machine did not become idle within ${QUIET_WAIT:-120} s; measuring anyway" >&2
}
hz=$(getconf CLK_TCK)
# run VAR LUA CONNS DURATION ENV…: one measured wrk run; sets VAR (the SUMMARY fields), VAR_fail
# (FAIL samples), VAR_load (load average before), VAR_cpu / VAR_wrk / VAR_pg / VAR_other (CPU
# seconds of the server, wrk, PostgreSQL, everything else) and VAR_wall.
run() {
  local var=$1 lua=$2 conns=$3 dur=$4 t0 m0 pg0 cpu wrk_s pg_s; shift 4
  settle
  printf -v "${var}_load" '%s' "$(cut -d' ' -f1-3 /proc/loadavg)"
  t0=$(ticks); m0=$(busy); pg0=$(pg_ticks)
  # wrk's timeout is 10 s (not its default 2 s): slow answers count as latency, not as errors
  { TIMEFORMAT='%R %U %S'; time env "$@" wrk -t$THREADS -c"$conns" -d"$dur" --timeout 10s --latency \
      -s "$here/$lua" "$base" >"$work/$var.out"; } 2>"$work/$var.time"
  cpu=$(awk -v a="$(ticks)" -v b="$t0" -v hz="$hz" 'BEGIN { printf "%.1f", (a - b) / hz }')
  wrk_s=$(awk '{ printf "%.1f", $2 + $3 }' "$work/$var.time")
  pg_s=$(awk -v a="$(pg_ticks)" -v b="$pg0" -v hz="$hz" 'BEGIN { printf "%.1f", (a - b) / hz }')
  printf -v "$var" '%s' "$(sed -n 's/^SUMMARY //p' "$work/$var.out")"
  [ -n "${!var}" ] || die "wrk printed no SUMMARY: $(cat "$work/$var.out")"
  printf -v "${var}_fail" '%s' "$(grep -m6 '^FAIL' "$work/$var.out" || true)"
  printf -v "${var}_cpu" '%s' "$cpu"; printf -v "${var}_wrk" '%s' "$wrk_s"; printf -v "${var}_pg" '%s' "$pg_s"
  printf -v "${var}_wall" '%s' "$(awk '{ printf "%.1f", $1 }' "$work/$var.time")"
  printf -v "${var}_other" '%s' "$(awk -v m="$(busy)" -v m0="$m0" -v hz="$hz" -v s="$cpu" -v w="$wrk_s" -v p="$pg_s" \
    'BEGIN { o = (m - m0) / hz - s - w - p; printf "%.1f", (o < 0 ? 0 : o) }')"
}
field() { printf '%s' "$2" | sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p"; } # field NAME SUMMARY
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; }

# Availability: WARM of unmeasured load (caches), then DUR measured.
[ "$WARM" = 0 ] || [ "$WARM" = 0s ] || env WINDOWS="$work/windows.txt" wrk -t$THREADS -c"$CONNS" -d"$WARM" \
  --timeout 10s -s "$here/reservations_availability.lua" "$base" >/dev/null
run avail reservations_availability.lua "$CONNS" "$DUR" WINDOWS="$work/windows.txt" RESOURCE=bench-a
avail_rss=$(rss_mb VmRSS)
# Booking: a fresh token (live for oidc.access_token_seconds, 900 s by default), BOOK_DUR measured.
tok=$(token)
run book reservations_book.lua "$BOOK_CONNS" "$BOOK_DUR" TOKEN="$tok" SLOTS="$work/slots.txt" \
  RESOURCE=bench-b HOURS="$HOURS"
book_rss=$(rss_mb VmRSS); threads_n=$(awk '$1 == "Threads:" {print $2}' "/proc/$pid/status")
# Each booking posts a notice and sends a message after its answer (HTTP calls to this server):
# wait, at most 60 s, until the server is idle (≤ 1 CPU tick in half a second) so that they are
# all done before it stops; how long that took is the backlog the load left behind.
t0=$(date +%s%N); c0=$(ticks)
for _ in $(seq 120); do a=$(ticks); sleep 0.5; [ $(( $(ticks) - a )) -le 1 ] && break; done
drain_s=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN { s = (a - b) / 1e9 - 0.5; printf "%.1f", (s < 0 ? 0 : s) }')
drain_cpu=$(awk -v a="$(ticks)" -v b="$c0" -v hz="$hz" 'BEGIN { printf "%.1f", (a - b) / hz }')
peak_rss=$(rss_mb VmHWM)
log_lines=$(wc -l <"$work/serve.log")
stop # graceful: answers in flight finish, and the database is at rest for the checks

# --- No double booking: overlapping active reservations of bench-b, straight from the database
active="('created', 'requires_handling', 'waiting_for_payment', 'confirmed')"
check_sql="SELECT
  (SELECT COUNT(*) FROM res_reservations a JOIN res_reservations b
     ON b.resource_id = a.resource_id AND a.id < b.id
    AND a.blocked_from < b.blocked_until AND b.blocked_from < a.blocked_until
   WHERE a.resource_id = 'bench-b' AND a.state IN $active AND b.state IN $active),
  (SELECT COUNT(*) FROM res_reservations WHERE resource_id = 'bench-b' AND state IN $active),
  (SELECT COUNT(*) FROM res_reservations WHERE resource_id = 'bench-a' AND state IN $active),
  (SELECT COUNT(*) FROM notices)"
if [ "$DB" = postgres ]; then
  counts=$(psql -Atq -F ' ' "$KUNTALAISTILI_DATABASE_URL" -c "$check_sql") || die "psql: the overlap check failed"
else
  counts=$(python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); print(*db.execute(sys.argv[2]).fetchone())' "$work/kl.db" "$check_sql") \
    || die "sqlite3: the overlap check failed"
fi
read -r overlaps active_b active_a notices <<<"$counts"
# Server log at warn: lines by level and target (up to the messages' first "error=" field), while
# running and while stopping.
log_summary() {
  grep -E '^[^ ]+ +(WARN|ERROR) ' | sed -E 's/^[^ ]+ +//; s/ (error|status)=.*//' | cut -c1-160 | sort | uniq -c \
    | sort -rn | head -8 | sed 's/^ *//' || true
}
log_run=$(head -n "$log_lines" "$work/serve.log" | log_summary)
log_stop=$(tail -n +"$(( log_lines + 1 ))" "$work/serve.log" | log_summary)
log_count() { printf '%s' "$1" | awk '{ n += $1 } END { print n + 0 }'; }

# --- Report
created=$(num created "$book"); conflict=$(num conflict "$book"); rule=$(num rule "$book"); other=$(num other "$book")
# bench-b must hold the probe booked before the load and every reservation answered 201; it may
# hold up to BOOK_CONNS more, booked by attempts in flight when wrk stopped (answers it never read).
want_b=$(( created + 1 )); extra_b=$(( active_b - want_b ))
bad=""
[ "$(num non200 "$avail")" = 0 ] || bad="$bad availability: $(num non200 "$avail") non-200 answers;"
[ "$(num sockerr "$avail")" = 0 ] || bad="$bad availability: $(num sockerr "$avail") socket errors;"
[ "$(num wrong "$avail")" = 0 ] || bad="$bad availability: $(num wrong "$avail") of $(num checked "$avail") answers looked into were wrong;"
[ "$other" = 0 ] || bad="$bad booking: $other answers other than 201/409/422;"
[ "$(num sockerr "$book")" = 0 ] || bad="$bad booking: $(num sockerr "$book") socket errors;"
[ "$overlaps" = 0 ] || bad="$bad **$overlaps overlapping active reservations on bench-b**;"
[ "$extra_b" -ge 0 ] && [ "$extra_b" -le "$BOOK_CONNS" ] \
  || bad="$bad bench-b holds $active_b active reservations, but $want_b were answered 201 (with the probe);"
[ "$active_a" = "$(sfield reservations)" ] || bad="$bad bench-a holds $active_a active reservations, not the $(sfield reservations) seeded;"
valid="valid: every availability answer a 200 (every ${CHECK_EVERY:-20}th looked into: 119 taken, none free), every booking answer 201/409/422, no overlap"
[ -z "$bad" ] || valid="**NOT VALID**:${bad%;}"
fails=$(printf '%s\n%s\n' "$avail_fail" "$book_fail" | sed '/^$/d')
[ -z "$fails" ] || fails=$(printf '\n\nSample failures:\n\n```\n%s\n```' "$fails")
log_block=""
[ -z "$log_run" ] || log_block=$(printf '\n\nServer log while running (count, level, message):\n\n```\n%s\n```' "$log_run")
[ -z "$log_stop" ] || log_block=$(printf '%s\n\nServer log while stopping:\n\n```\n%s\n```' "$log_block" "$log_stop")
target() { # SUMMARY -> met / not met for ≥ 3 000/s and p99 < 20 ms
  awk -v r="$(field rps "$1")" -v p="$(field p99_ms "$1")" 'BEGIN {
    printf "%s/s (%s), p99 %s ms (%s)", r, (r >= 3000 ? "met" : "**not met**"), p, (p < 20 ? "met" : "**not met**") }'
}
cpu_cell() { # VAR -> "server / wrk [/ PostgreSQL] / other of N s"
  local pg=""; [ "$DB" = postgres ] && pg=" / $(eval echo "\$${1}_pg")"
  printf '%s / %s%s / %s of %s' "$(eval echo "\$${1}_cpu")" "$(eval echo "\$${1}_wrk")" "$pg" "$(eval echo "\$${1}_other")" \
    "$(awk -v w="$(eval echo "\$${1}_wall")" -v n="$(nproc)" 'BEGIN { printf "%.0f", w * n }')"
}
lat() { printf '%s / %s / %s / %s ms' "$(field mean_ms "$1")" "$(field p50_ms "$1")" "$(field p99_ms "$1")" "$(field max_ms "$1")"; }
cat <<MD
### Reservations: availability and booking ($db_label) — $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo)
\`ops/bench/reservations.sh\`, $build at $rev, log level warn; wrk -t$THREADS --latency on the same cores as the server$( [ "$DB" = postgres ] && echo " and PostgreSQL"); $(date -u +%H:%M) UTC.
Seed (reservations_seed.py, straight into the database): facility bench-a with $(sfield reservations) confirmed one-hour reservations, every slot 06–23 Europe/Helsinki of $(sfield days) days from $(sfield first) (17 a day), and empty bench-b; database $db_size MB; seeding took $seed_s s.
Availability: \`GET /services/reservations/api/resources/bench-a/availability?from=D&to=D+7\` (public), D random among the $(sfield windows) fully booked 7-day windows, after $WARM unmeasured. Booking: \`POST /services/reservations/api/reservations\` on bench-b with one resident's bearer token (scope reservations), random $( [ "$HOURS" = 1 ] && echo "one-hour bookings" || echo "bookings of 1–$HOURS hours") starting at one of $(sfield pool_slots) slots ($BOOK_DAYS days).

| run | requests/s | latency mean / p50 / p99 / max | answers | load average before | CPU s: server / wrk$( [ "$DB" = postgres ] && echo " / PostgreSQL") / other, of |
|---|---|---|---|---|---|
| availability, week view, -c$CONNS, $DUR | **$(field rps "$avail")** | $(lat "$avail") | $(num reqs "$avail") (non-200 $(num non200 "$avail"), socket errors $(num sockerr "$avail")) | $avail_load | $(cpu_cell avail) |
| booking, -c$BOOK_CONNS, $BOOK_DUR | **$(field rps "$book")** | $(lat "$book") | 201: $created, 409: $conflict, 422: $rule, other: $other (socket errors $(num sockerr "$book")) | $book_load | $(cpu_cell book) |

Target (≥ 3 000 availability queries/s, p99 < 20 ms on 2 cores): $(target "$avail").
No double booking: **$overlaps** overlapping active reservations on bench-b (self-join on the blocked times, checked with the server stopped); bench-b holds $active_b active reservations: $created answered 201 under load, 1 booked before it$( [ "$extra_b" = 0 ] && echo "" || echo ", $extra_b by attempts in flight when wrk stopped (answers it did not read; at most $BOOK_CONNS allowed)")$( [ "$extra_b" -ge 0 ] && [ "$extra_b" -le "$BOOK_CONNS" ] && echo " (consistent)" || echo " (**inconsistent**)").
Run $valid.$( [ "$created" -ge "$(sfield pool_slots)" ] && echo " The booking pool was full (all $(sfield pool_slots) slots booked) before the run ended: the rest of it measured refused attempts (raise BOOK_DAYS for more bookings).")${fails}
After the booking load the server kept working $drain_s s ($drain_cpu CPU s) on the notices and messages of the bookings; notices posted: $notices for $active_b reservations on bench-b.
RSS: idle after start $idle_rss MB, after the availability run $avail_rss MB, after the booking run $book_rss MB (VmRSS), peak $peak_rss MB (VmHWM); $threads_n threads after the booking run. Server log (level warn): $(log_count "$log_run") lines while running, $(log_count "$log_stop") while stopping.${log_block}

Raw: availability \`$avail\`; booking \`$book\`; seed \`$seed\`.
MD
