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
# (VmRSS after the warm run, VmHWM), and the seeding time. About 4 minutes with the build done.
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
[ -z "$(git status --porcelain -- . 2>/dev/null | grep -v '^?? ops/bench/' || true)" ] || rev="$rev + uncommitted changes"

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

"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 400); do
  curl -sf -o /dev/null "$base/readyz" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "server exited before it was ready"; }
  sleep 0.05
done
curl -sf -o /dev/null "$base/readyz" || { cat "$work/serve.log" >&2; die "server not ready after 20 s"; }
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
settle() { # until the server is idle (its queued checks done), at most 60 s
  local a b
  for _ in $(seq 120); do
    a=$(ticks "$pid"); sleep 0.5; b=$(ticks "$pid")
    [ $(( b - a )) -le 2 ] && return 0
  done
}
# run VAR DURATION MODE [ENV=VALUE…]: one wrk run; sets VAR (the SUMMARY fields) and VAR_cpu
# (server CPU seconds during it); a WRONG sample line of authz.lua goes to VAR_wrong.
run() {
  local var=$1 dur=$2 mode=$3 t0 out; shift 3
  settle
  t0=$(ticks "$pid"); perf_pid=
  if [ "${PERF:-0}" = 1 ] && [ "$mode" = random ] && [ "$var" != allowed ]; then
    (sleep 3; perf record -q -F 499 -g -p "$pid" -o "$work/$var.perf" -- sleep 8 >/dev/null 2>&1) &
    perf_pid=$!
  fi
  out=$(env TOKEN="$(token)" REQUESTS="$work/requests.tsv" THREADS=$THREADS MODE="$mode" \
        ALLOW_SHARE="$ALLOW_SHARE" "$@" wrk -t$THREADS -c"$CONNS" -d"$dur" --latency -s "$here/authz.lua" "$base")
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  printf -v "$var" '%s' "$(printf '%s\n' "$out" | sed -n 's/^SUMMARY //p')"
  printf -v "${var}_cpu" '%s' "$(awk -v a="$(ticks "$pid")" -v b="$t0" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (a - b) / hz }')"
  printf -v "${var}_wrong" '%s' "$(printf '%s\n' "$out" | grep -m3 '^WRONG' || true)"
}
field() { printf '%s' "$2" | sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p"; } # field NAME SUMMARY
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; } # an integer field, 0 when missing

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
run cold "$DUR" random
cold_rss=$(rss_mb "$pid" VmRSS)
run fill "$FILL" walk
walked=$(num walked "$fill")
[ "$walked" -le "$USERS" ] || walked=$USERS
if [ "$walked" -ge "$USERS" ]; then warm_people=0; warm_label="all $USERS people"
else warm_people=$walked; warm_label="the first $walked people (all the fill reached in $FILL)"; fi
run warm "$DUR" random PEOPLE="$warm_people"
warm_rss=$(rss_mb "$pid" VmRSS)
run allowed "$DIAG_DUR" random PEOPLE="$warm_people" ALLOW_SHARE=1
run tokenonly "$DIAG_DUR" token PEOPLE="$warm_people"
run healthz "$DIAG_DUR" healthz
peak_rss=$(rss_mb "$pid" VmHWM)
errors=$(grep -ci 'error' "$work/serve.log" || true)

per_req() { # CPU_SECONDS SUMMARY -> µs of server CPU per request
  awk -v c="$1" -v n="$(field reqs "$2")" 'BEGIN { if (n > 0) printf "%.0f", 1e6 * c / n; else print "–" }'; }
row() { # LABEL SUMMARY CPU [token|healthz]: a 400 is the expected answer of token runs
  local errs allowed
  errs=$(( $(num sockerr "$2") + ( $([ "${4:-}" = token ] && echo 0 || num non2xx3xx "$2") ) ))
  allowed=$(case "${4:-}" in token|healthz) echo "–";; *) field allowed_pct "$2";; esac)
  printf '| %s | %s | %s / %s / %s ms | %s | %s | %s/%s | %s s (%s µs/req) |\n' "$1" "$(field rps "$2")" \
    "$(field p50_ms "$2")" "$(field p90_ms "$2")" "$(field p99_ms "$2")" "$(field max_ms "$2")" \
    "$allowed" "$errs" "$(field wrong "$2")" "$3" "$(per_req "$3" "$2")"
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

| run | requests/s | latency p50 / p90 / p99 | max ms | allowed % | errors / wrong answers | server CPU |
|---|---|---|---|---|---|---|
$(row "cold: $DUR, all people, index empty ($(field new "$cold") people first asked)" "$cold" "$cold_cpu")
$(row "fill: $FILL walk in file order (reached $walked people)" "$fill" "$fill_cpu")
$(row "**warm**: $DUR, $warm_label" "$warm" "$warm_cpu")
$(row "warm, every check allowed (no audit writes), $DIAG_DUR" "$allowed" "$allowed_cpu")
$(row "token only (400 after the bearer check), $DIAG_DUR" "$tokenonly" "$tokenonly_cpu" token)
$(row "GET /healthz, $DIAG_DUR" "$healthz" "$healthz_cpu" healthz)

Target (≥ 10 000 checks/s, p99 < 10 ms on 2 cores): cold $(target "$cold"); warm $(target "$warm").
RSS: idle after start $idle_rss MB, after the cold run $cold_rss MB, **after the warm run $warm_rss MB** (VmRSS), peak $peak_rss MB (VmHWM). Server log: $errors lines with "error".
Load average before the first run: $loadavg. Server CPU: seconds the server used during the run, of $(nproc) × the run's length (wrk has the rest).$wrongs

$(if [ "${PERF:-0}" = 1 ]; then for v in cold warm; do
  printf '\nperf, %s run, top symbols by own time (%% of server samples):\n\n```\n' "$v"
  perf report -i "$work/$v.perf" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | grep -v '^#' | head -15
  printf '```\n'; done; fi)
Raw: cold \`$cold\`; fill \`$fill\`; warm \`$warm\`; warm-allowed \`$allowed\`; token \`$tokenonly\`; healthz \`$healthz\`; seed \`$seed\`.
MD
