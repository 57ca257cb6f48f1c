#!/usr/bin/env bash
# Access-rights checks: POST /api/v1/authz/check {sub, service, permission} with the bearer token
# of a client_credentials client (scope authz:check), against a register of USERS people and
# GRANTS grants seeded straight into the database by ops/bench/authz_seed.py (direct permission
# and role grants to people, 50 roles of 1-5 permissions, 100 groups with members and grants,
# some grants expired or not yet valid); authz_state.generation is bumped after the seed.
# wrk (ops/bench/authz.lua) asks about random people across the whole register, ALLOW_SHARE
# (0.9) of the checks about a permission the person holds, the rest about one they do not (those
# are audited); every answer is checked against the seed. Runs, wrk -t2 -c$CONNS, in this order:
#   cold     DUR, random people, the server's index empty (first run after start);
#   fill     up to FILL, every person in file order (puts them into the index);
#   warm     DUR, random people among those the fill reached (all, when it reached everyone);
#   warm-allowed  DIAG_DUR, as warm but every check about a held permission (no audit writes);
#   token    DIAG_DUR, the same bearer check with a permission naming another service: 400 after
#            the token is verified (the API's fixed cost, no access-rights work);
#   healthz  DIAG_DUR, GET /healthz (the HTTP floor).
# Reports requests/s, latency, allowed share, wrong answers, server CPU seconds per run, RSS
# (VmRSS after the warm run, VmHWM), and the seeding time. The machine may be shared: each run
# starts once it is idle (at most QUIET_WAIT=300 s of waiting), the CPU wrk, PostgreSQL and other
# processes took is reported, and a run during which other processes took more than a tenth of
# the machine is repeated (RETRIES=2; a cold run on a restarted server). About 6 minutes with the
# build done on an idle machine.
#   DUR=20s CONNS=32 DB=sqlite|postgres USERS=100000 GRANTS=1000000 ./ops/bench/authz.sh
#   (FILL=60s DIAG_DUR=10s ALLOW_SHARE=0.9 PORT=18083; PERF=1: perf record 8 s into the cold and the
#   warm run, the top symbols by own time appended; DB=postgres uses KUNTALAISTILI_TEST_PG's
#   server, default postgres://postgres@127.0.0.1:5432/test, and a database of its own)
# Prints a Markdown block for ops/bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${DUR:-20s}"; CONNS="${CONNS:-32}"; DB="${DB:-sqlite}"; PORT="${PORT:-18083}"
USERS="${USERS:-100000}"; GRANTS="${GRANTS:-1000000}"; FILL="${FILL:-60s}"; DIAG_DUR="${DIAG_DUR:-10s}"
ALLOW_SHARE="${ALLOW_SHARE:-0.9}"; THREADS=2
here="$PWD/ops/bench"
die() { echo "authz.sh: $*" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v python3 >/dev/null || die "python3 is needed (seeding)"
! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" || die "port $PORT is already in use (set PORT=)"
work=$(mktemp -d)
pid= pgdb=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$pgdb" ]; then
    psql -q "$KUNTALAISTILI_TEST_PG" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT; trap "exit 130" INT TERM
cargo build --release -q 2>"$work/build.log" || { cat "$work/build.log" >&2; die "cargo build --release failed"; }
bin="$PWD/target/release/kuntalaistili"
rev="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
[ -z "$(git status --porcelain -- . ':!ops/bench' 2>/dev/null)" ] || rev="$rev + uncommitted changes"

base="http://127.0.0.1:$PORT"
export KUNTALAISTILI_LISTEN="127.0.0.1:$PORT" KUNTALAISTILI_DATA_DIR="$work" KUNTALAISTILI_LOG_LEVEL=warn
if [ "$DB" = postgres ]; then
  command -v psql >/dev/null || die "psql is needed for DB=postgres"
  export KUNTALAISTILI_TEST_PG="${KUNTALAISTILI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
  pgdb="bench_authz_$$"
  psql -q "$KUNTALAISTILI_TEST_PG" -c "CREATE DATABASE $pgdb" >/dev/null
  export KUNTALAISTILI_DATABASE_URL="${KUNTALAISTILI_TEST_PG%/*}/$pgdb"
  db_label="PostgreSQL $(psql -Atq "$KUNTALAISTILI_DATABASE_URL" -c 'SHOW server_version' | cut -d' ' -f1) (local)"
else
  export KUNTALAISTILI_DATABASE_URL="sqlite://$work/kl.db"
  db_label="SQLite"
fi
cli() { "$bin" "$@" 2>>"$work/cli.log" || { cat "$work/cli.log" >&2; die "kuntalaistili $1 failed"; }; }
cli migrate >/dev/null

# --- Seed (timed: generation in Python + writing into the database).
t0=$(date +%s%N)
if [ "$DB" = postgres ]; then
  seed=$(python3 "$here/authz_seed.py" --users "$USERS" --grants "$GRANTS" --pg-dir "$work/pg" --requests "$work/requests.tsv")
  {
    echo 'BEGIN;'
    echo "\\copy users (id, username, role, disabled, preferred_language, message_channels, created_at, updated_at) FROM '$work/pg/users.tsv'"
    echo "\\copy authz_roles (name, description, created_at) FROM '$work/pg/authz_roles.tsv'"
    echo "\\copy authz_role_permissions (role, permission) FROM '$work/pg/authz_role_permissions.tsv'"
    echo "\\copy authz_groups (name, description, created_at) FROM '$work/pg/authz_groups.tsv'"
    echo "\\copy authz_group_members (group_name, user_id) FROM '$work/pg/authz_group_members.tsv'"
    echo "\\copy authz_grants (id, user_id, group_name, role, permission, valid_from, valid_until, granted_by, created_at) FROM '$work/pg/authz_grants.tsv'"
    echo 'UPDATE authz_state SET generation = generation + 1 WHERE id = 1;'
    echo 'COMMIT;'
    # What autovacuum would do within a minute of such a load, done now so that runs are alike.
    echo 'ANALYZE;'
  } | psql -q -v ON_ERROR_STOP=1 "$KUNTALAISTILI_DATABASE_URL" >/dev/null
else
  seed=$(python3 "$here/authz_seed.py" --users "$USERS" --grants "$GRANTS" --sqlite "$work/kl.db" --requests "$work/requests.tsv")
fi
seed_s=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN { printf "%.1f", (a - b) / 1e9 }')
seed=${seed#SEED }
seed_field() { printf '%s' "$seed" | sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p"; }
db_size=$(if [ "$DB" = postgres ]; then
  psql -Atq "$KUNTALAISTILI_DATABASE_URL" -c "SELECT pg_database_size(current_database()) / 1048576"
else du -m "$work/kl.db" | cut -f1; fi)

creds=$(cli clients add --name bench-authz --grant-types client_credentials --scopes "authz:check" --json)
cid=$(printf '%s' "$creds" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
csec=$(printf '%s' "$creds" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')

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
rss_mb() { awk -v k="$2:" '$1 == k {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
idle_rss=$(rss_mb "$pid" VmRSS)

token() { # a fresh access token (900 s) for each run
  local t; t=$(curl -sf -u "$cid:$csec" -d grant_type=client_credentials -d scope=authz:check "$base/oauth2/token" \
    | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$t" ] || die "no access token from /oauth2/token"
  printf '%s' "$t"
}
# Check by hand: the first person's first held permission is allowed, the one not held denied.
IFS=$'\t' read -r sub0 held0 deny0 <"$work/requests.tsv"
tok=$(token)
ask() { curl -s -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -d "{\"sub\":\"$sub0\",\"service\":\"${1%%:*}\",\"permission\":\"${1#*:}\"}" "$base/api/v1/authz/check"; }
a=$(ask "${held0%% *}"); case "$a" in *'"allowed":true'*) ;; *) die "check of a held permission answered: $a";; esac
a=$(ask "$deny0"); case "$a" in *'"allowed":false'*) ;; *) die "check of a permission not held answered: $a";; esac

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pg_ticks() { # CPU clock ticks used so far by PostgreSQL's backends of our database (0 on SQLite)
  local t=0 p
  if [ "$DB" = postgres ]; then
    for p in $(pgrep -f "^postgres: (.+: )?[^ ]+ $pgdb "); do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done
  fi
  echo "$t"
}
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; } # machine CPU ticks so far
settle() { # until the machine is idle (the server's queued checks done, nobody else busy): at most
  # QUIET_WAIT seconds (default 300); the CPU other processes took during each run is reported
  local a b
  for _ in $(seq $(( ${QUIET_WAIT:-300} * 2 ))); do
    a=$(busy); sleep 0.5; b=$(busy)
    [ $(( b - a )) -le $(( $(nproc) * 3 )) ] && return 0 # ≤ 3 % of the machine
  done
  echo "authz.sh: the machine did not become idle within ${QUIET_WAIT:-300} s; measuring anyway" >&2
}
# run VAR DURATION MODE [ENV=VALUE…]: one wrk run; sets VAR (the SUMMARY fields) and VAR_cpu
# (server CPU seconds during it); a WRONG sample line of authz.lua goes to VAR_wrong.
run() {
  local var=$1 dur=$2 mode=$3 t0 m0 pg0 pg_s wrk_s; shift 3
  settle
  t0=$(ticks "$pid"); m0=$(busy); pg0=$(pg_ticks); perf_pid=
  if [ "${PERF:-0}" = 1 ] && [ "$mode" = random ] && [ "$var" != allowed ]; then
    (sleep 3; perf record -q -F 499 -g -p "$pid" -o "$work/$var.perf" -- sleep 8 >/dev/null 2>&1) &
    perf_pid=$!
  fi
  # wrk's timeout is 10 s (not its default 2 s): slow answers count as latency, not as errors
  { TIMEFORMAT='%R %U %S'; time env TOKEN="$(token)" REQUESTS="$work/requests.tsv" THREADS=$THREADS MODE="$mode" \
      ALLOW_SHARE="$ALLOW_SHARE" "$@" wrk -t$THREADS -c"$CONNS" -d"$dur" --timeout 10s --latency \
      -s "$here/authz.lua" "$base" >"$work/wrk.out"; } 2>"$work/wrk.time"
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  local cpu; cpu=$(awk -v a="$(ticks "$pid")" -v b="$t0" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (a - b) / hz }')
  wrk_s=$(awk '{ printf "%.1f", $2 + $3 }' "$work/wrk.time")
  printf -v "${var}_wall" '%s' "$(awk '{ printf "%.1f", $1 }' "$work/wrk.time")"
  printf -v "$var" '%s' "$(sed -n 's/^SUMMARY //p' "$work/wrk.out")"
  printf -v "${var}_cpu" '%s' "$cpu"
  pg_s=$(awk -v a="$(pg_ticks)" -v b="$pg0" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (a - b) / hz }')
  printf -v "${var}_wrk" '%s' "$wrk_s"
  printf -v "${var}_pg" '%s' "$pg_s"
  printf -v "${var}_other" '%s' "$(awk -v m="$(busy)" -v m0="$m0" -v hz="$(getconf CLK_TCK)" -v s="$cpu" -v w="$wrk_s" -v p="$pg_s" \
    'BEGIN { o = (m - m0) / hz - s - w - p; printf "%.1f", (o < 0 ? 0 : o) }')"
  printf -v "${var}_wrong" '%s' "$(grep -m3 '^WRONG' "$work/wrk.out" || true)"
}
# measure VAR DURATION MODE [ENV=VALUE…]: run, repeated (up to RETRIES times, default 2) while
# other processes took more than a tenth of the machine during it; a repeated cold run gets a
# freshly started server (an empty index). VAR_tries counts the runs made.
measure() {
  local var=$1 n other cap; shift
  for n in $(seq 0 "${RETRIES:-2}"); do
    if [ "$n" -gt 0 ] && [ "$var" = cold ]; then
      kill "$pid"; wait "$pid" 2>/dev/null || true; start_server
    fi
    run "$var" "$@"
    other=$(eval echo "\$${var}_other")
    cap=$(awk -v w="$(eval echo "\$${var}_wall")" -v n="$(nproc)" 'BEGIN { printf "%.1f", 0.1 * w * n }')
    printf -v "${var}_tries" '%s' "$(( n + 1 ))"
    awk -v o="$other" -v c="$cap" 'BEGIN { exit !(o <= c) }' && break
    echo "authz.sh: $var: other processes took $other s during the run; measuring again" >&2
  done
}
field() { printf '%s' "$2" | sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p"; } # field NAME SUMMARY
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; } # an integer field, 0 when missing

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
measure cold "$DUR" random
cold_rss=$(rss_mb "$pid" VmRSS)
run fill "$FILL" walk
walked=$(num walked "$fill")
[ "$walked" -le "$USERS" ] || walked=$USERS
if [ "$walked" -ge "$USERS" ]; then warm_people=0; warm_label="all $USERS people"
else warm_people=$walked; warm_label="the first $walked people (all the fill reached in $FILL)"; fi
measure warm "$DUR" random PEOPLE="$warm_people"
warm_rss=$(rss_mb "$pid" VmRSS); warm_threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$pid/status")
measure allowed "$DIAG_DUR" random PEOPLE="$warm_people" ALLOW_SHARE=1
measure tokenonly "$DIAG_DUR" token PEOPLE="$warm_people"
measure healthz "$DIAG_DUR" healthz
peak_rss=$(rss_mb "$pid" VmHWM)
errors=$(grep -ci 'error' "$work/serve.log" || true)

per_req() { # CPU_SECONDS SUMMARY -> µs of server CPU per request
  awk -v c="$1" -v n="$(field reqs "$2")" 'BEGIN { if (n > 0) printf "%.0f", 1e6 * c / n; else print "–" }'; }
row() { # LABEL VAR [token|healthz]: a 400 is the expected answer of token runs
  local sum="${!2}" cpu errs allowed; cpu=$(eval echo "\$${2}_cpu")
  errs=$(( $(num sockerr "$sum") + ( $([ "${3:-}" = token ] && echo 0 || num non2xx3xx "$sum") ) ))
  allowed=$(case "${3:-}" in token|healthz) echo "–";; *) field allowed_pct "$sum";; esac)
  local pg=""; [ "$DB" = postgres ] && pg=" / $(eval echo "\$${2}_pg")"
  local tries; tries=$(eval echo "\${${2}_tries:-1}"); [ "$tries" = 1 ] && tries="" || tries=" ($tries runs, the last counted)"
  printf '| %s%s | %s | %s / %s / %s ms | %s | %s | %s/%s | %s s (%s µs/req) | %s%s / %s s of %s s |\n' "$1" "$tries" "$(field rps "$sum")" \
    "$(field p50_ms "$sum")" "$(field p90_ms "$sum")" "$(field p99_ms "$sum")" "$(field max_ms "$sum")" \
    "$allowed" "$errs" "$(field wrong "$sum")" "$cpu" "$(per_req "$cpu" "$sum")" \
    "$(eval echo "\$${2}_wrk")" "$pg" "$(eval echo "\$${2}_other")" \
    "$(awk -v w="$(eval echo "\$${2}_wall")" -v n="$(nproc)" 'BEGIN { printf "%.0f", w * n }')"
}
target() { # SUMMARY -> met / not met for ≥ 10 000/s and p99 < 10 ms
  awk -v r="$(field rps "$1")" -v p="$(field p99_ms "$1")" 'BEGIN {
    printf "%s/s (%s), p99 %s ms (%s)", r, (r >= 10000 ? "met" : "not met"), p, (p < 10 ? "met" : "not met") }'
}
wrongs=$(printf '%s\n' "$cold_wrong" "$fill_wrong" "$warm_wrong" "$allowed_wrong" "$tokenonly_wrong" | sed '/^$/d')
[ -z "$wrongs" ] || wrongs=$(printf '\n\nSample wrong answers:\n\n```\n%s\n```' "$wrongs")
cat <<MD
### Access-rights checks ($db_label) — $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo)
\`POST /api/v1/authz/check\`, bearer ES256 access token of a client_credentials client (authz:check); release build at $rev, log level warn; wrk -t$THREADS -c$CONNS on the same cores as the server$( [ "$DB" = postgres ] && echo " and PostgreSQL").
Seed (authz_seed.py): $(seed_field users) people, $(seed_field grants) grants ($(seed_field direct_perm) single permissions and $(seed_field direct_role) roles to people, $(seed_field group_grants) to groups; $(seed_field not_in_force) not in force now), $(seed_field roles) roles ($(seed_field role_perms) permissions), $(seed_field groups) groups ($(seed_field memberships) memberships); database $db_size MB. Seeding took **$seed_s s** (generation $(seed_field generate_s) s, writing $(seed_field write_s) s$( [ "$DB" = postgres ] && echo ", then psql \\copy and ANALYZE")).
Checks: random people, $(awk -v s="$ALLOW_SHARE" 'BEGIN { printf "%.0f", 100 * s }') % about a permission held, the rest about one not held (audited); every answer checked against the seed.

| run | requests/s | latency p50 / p90 / p99 | max ms | allowed % | errors / wrong answers | server CPU | CPU of wrk$( [ "$DB" = postgres ] && echo " / PostgreSQL") / other processes, of the machine's |
|---|---|---|---|---|---|---|---|
$(row "cold: $DUR, all people, index empty ($(field new "$cold") people first asked)" cold)
$(row "fill: $FILL walk in file order (reached $walked people)" fill)
$(row "**warm**: $DUR, $warm_label" warm)
$(row "warm, every check allowed (no audit writes), $DIAG_DUR" allowed)
$(row "token only (400 after the bearer check), $DIAG_DUR" tokenonly token)
$(row "GET /healthz, $DIAG_DUR" healthz healthz)

Target (≥ 10 000 checks/s, p99 < 10 ms on 2 cores): cold $(target "$cold"); warm $(target "$warm").
RSS: idle after start $idle_rss MB, after the cold run $cold_rss MB, **after the warm run $warm_rss MB** (VmRSS), peak $peak_rss MB (VmHWM); $warm_threads threads right after the warm run. Server log: $errors lines with "error".
Load average before the first run: $loadavg. CPU: seconds used from wrk's start to its end (its start includes reading the request file), of $(nproc) cores × that time; each run starts once the machine is idle, and CPU taken by other processes during a run makes its figures low.$wrongs

$(if [ "${PERF:-0}" = 1 ]; then for v in cold warm; do
  printf '\nperf, %s run, top symbols by own time (%% of server samples):\n\n```\n' "$v"
  perf report -i "$work/$v.perf" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | grep -v '^#' | head -15
  printf '```\n'; done; fi)
Raw: cold \`$cold\`; fill \`$fill\`; warm \`$warm\`; warm-allowed \`$allowed\`; token \`$tokenonly\`; healthz \`$healthz\`; seed \`$seed\`.
MD
