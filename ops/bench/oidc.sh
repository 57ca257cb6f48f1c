#!/usr/bin/env bash
# OIDC throughput: Kuntalaistili vs node oidc-provider (the peer in ops/bench/peers/oidc-provider),
# same machine, same run, one wrk run of DUR each (-t2 -c$CONNS), each server alone in turn:
#   - token: client_credentials, HTTP Basic client auth, ES256 JWT access tokens on both sides;
#   - discovery: GET /.well-known/openid-configuration;
#   - JWKS;
#   - authorization-code round for an already logged-in session: authorize (303 with code=, PKCE
#     S256, state, nonce, scope openid) then token (authorization_code, HTTP Basic, code_verifier,
#     200 with access and ID token), driven by ops/bench/code_round.lua; 2 requests per round.
#     The peer runs ops/bench/peers/oidc-provider/code.mjs for this (a code-flow client and a
#     scripted login); one login per server with curl, then one round with curl as a check.
# Peak RSS (VmHWM) of both. Prints only a Markdown block (for ops/bench/RESULTS.md); any failed
# request is counted in it.
# Warm-up before the measured runs: 2 s of client_credentials, and CODE_WARMUP (5 s) of code rounds
# on each server (the Node.js peer reaches its steady code-round rate only after some seconds).
#   DUR=10s CONNS=32 ./ops/bench/oidc.sh   (PORT=18081 PEER_PORT=3001 PEER_ADAPTER=map|lru CODE_WARMUP=5s)
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${DUR:-10s}"; CONNS="${CONNS:-32}"; PORT="${PORT:-18081}"; PEER_PORT="${PEER_PORT:-3001}"
PEER_ADAPTER="${PEER_ADAPTER:-map}"; CODE_WARMUP="${CODE_WARMUP:-5s}"
here="$PWD/ops/bench"
# The peer: ops/bench/peers/oidc-provider (pinned oidc-provider, installed there by its setup.sh).
peer_dir="${PEER_DIR:-$here/peers/oidc-provider}"
[ -x "$peer_dir/setup.sh" ] || { echo "oidc.sh: no peer set-up at $peer_dir/setup.sh" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v openssl >/dev/null || { echo "openssl is needed (PKCE challenge)" >&2; exit 1; }
die() { echo "oidc.sh: $*" >&2; exit 1; }
for p in "$PORT" "$PEER_PORT"; do
  ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" || die "port $p is already in use (set PORT= / PEER_PORT=)"
done
work=$(mktemp -d)
pid= ppid_= ppid2=
stop() { # stop a process we started, by its id, and reap it
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true
}
cleanup() { stop "$pid"; stop "$ppid_"; stop "$ppid2"; rm -rf "$work"; }
trap cleanup EXIT; trap "exit 130" INT TERM
cargo build --release -q 2>"$work/build.log" || { cat "$work/build.log" >&2; die "cargo build --release failed"; }
bin="$PWD/target/release/kuntalaistili"

# npm ci of the pinned version into the peer's node_modules (once; later runs find it there).
"$peer_dir/setup.sh" >"$work/peer-setup.log" 2>&1 || { cat "$work/peer-setup.log" >&2; die "peer set-up failed"; }

summary() { grep -E '^SUMMARY' | sed 's/^SUMMARY //'; }
fails() { grep -E '^FAIL' || true; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# wait_ready URL PID LOG: until URL answers 200, while the process lives (at most ~20 s)
wait_ready() {
  for _ in $(seq 400); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "server exited before it was ready ($1)"; }
    sleep 0.05
  done
  cat "$3" >&2; die "not ready after 20 s: $1"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # CPU clock ticks used so far by PID
# bench VAR PID SCRIPT URL: one wrk run; sets VAR (the SUMMARY fields), VAR_cpu (server CPU seconds
# during the run) and VAR_fail (FAIL sample lines of code_round.lua)
bench() {
  local t0 out; t0=$(ticks "$2")
  out=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$3" "$4")
  printf -v "$1" '%s' "$(printf '%s\n' "$out" | summary)"
  printf -v "$1_cpu" '%s' "$(awk -v a="$(ticks "$2")" -v b="$t0" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (a - b) / hz }')"
  printf -v "$1_fail" '%s' "$(printf '%s\n' "$out" | fails)"
}

# PKCE: one fixed verifier/challenge pair for every round on both sides.
VERIFIER="bench-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
CB="http://127.0.0.1:9/cb"; CB_ENC="http%3A%2F%2F127.0.0.1%3A9%2Fcb"
export VERIFIER REDIRECT_URI="$CB_ENC" # for code_round.lua (form-encoded)
authorize_query() { # CLIENT_ID
  printf 'response_type=code&client_id=%s&redirect_uri=%s&scope=openid&state=bench-state&nonce=bench-nonce&code_challenge=%s&code_challenge_method=S256' \
    "$1" "$CB_ENC" "$CHALLENGE"
}
jar_cookies() { # JAR NAME-REGEX -> "a=1; b=2" (curl marks HttpOnly cookies with a #HttpOnly_ prefix)
  sed 's/^#HttpOnly_//' "$1" | awk -v re="$2" '!/^#/ && NF >= 7 && $6 ~ re {printf "%s%s=%s", sep, $6, $7; sep="; "}'
}
jwt_alg() { # JWT -> alg of its header
  local h; h=$(printf '%s' "${1%%.*}" | tr '_-' '/+')
  while [ $(( ${#h} % 4 )) -ne 0 ]; do h="$h="; done
  printf '%s' "$h" | base64 -d | sed -n 's/.*"alg" *: *"\([^"]*\)".*/\1/p'
}
# one_round BASE AUTHORIZE_PATH TOKEN_PATH COOKIE CLIENT:SECRET -> ID token alg; dies with details
one_round() {
  local loc code body
  loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H "Cookie: $4" "$1$2")
  case "$loc" in "303 $CB?"*code=*) ;; *) die "check round: authorize at $1 answered: $loc";; esac
  code=$(printf '%s' "$loc" | sed 's/.*[?&]code=\([^&]*\).*/\1/')
  body=$(curl -s -w '\n%{http_code}' -u "$5" --data-urlencode grant_type=authorization_code \
    --data-urlencode "code=$code" --data-urlencode "redirect_uri=$CB" \
    --data-urlencode "code_verifier=$VERIFIER" "$1$3")
  [ "${body##*$'\n'}" = 200 ] || die "check round: token at $1 answered: $body"
  jwt_alg "$(printf '%s' "$body" | sed -n 's/.*"id_token" *: *"\([^"]*\)".*/\1/p')"
}

# --- Kuntalaistili
export KUNTALAISTILI_LISTEN="127.0.0.1:$PORT" KUNTALAISTILI_DATA_DIR="$work" KUNTALAISTILI_LOG_LEVEL=warn
export KUNTALAISTILI_DATABASE_URL="sqlite://$work/kl.db"
base="http://127.0.0.1:$PORT"
cli() { "$bin" "$@" 2>>"$work/cli.log" || { cat "$work/cli.log" >&2; die "kuntalaistili $1 $2 failed"; }; }
creds=$(cli clients add --name bench --grant-types client_credentials --scopes "api:read" --json)
cid=$(printf '%s' "$creds" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
csec=$(printf '%s' "$creds" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')
creds=$(cli clients add --name bench-code --redirect-uri "$CB" --grant-types authorization_code \
  --scopes openid --skip-consent --json)
code_cid=$(printf '%s' "$creds" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
code_csec=$(printf '%s' "$creds" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')
printf '%s\n' 'bench-password-1' | cli users add bench --password-stdin >/dev/null
"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
wait_ready "$base/readyz" "$pid" "$work/serve.log"
export AUTH_B64="$(printf '%s:%s' "$cid" "$csec" | base64 -w0)" BODY="grant_type=client_credentials&scope=api:read"
wrk -t1 -c4 -d2s -s "$here/form_post.lua" "$base/oauth2/token" >/dev/null
bench ours_token "$pid" "$here/form_post.lua" "$base/oauth2/token"
bench ours_disc "$pid" "$here/get.lua" "$base/.well-known/openid-configuration"
bench ours_jwks "$pid" "$here/get.lua" "$base/oauth2/jwks"
ours_rss=$(peak_rss_mb "$pid")
# One password login with curl: the session cookie (and the CSRF cookie) for every authorize request.
page=$(curl -s -c "$work/jar" "$base/login")
csrf=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//')
[ -n "$csrf" ] || die "no CSRF token in GET /login"
st=$(curl -s -o /dev/null -w '%{http_code}' -b "$work/jar" -c "$work/jar" --data-urlencode "csrf=$csrf" \
  -d username=bench -d password=bench-password-1 -d next=%2Faccount "$base/login")
[ "$st" = 303 ] && grep -q kl_session "$work/jar" || die "login: POST /login answered $st without a kl_session cookie"
ours_cookie=$(jar_cookies "$work/jar" '^kl_(session|csrf)$')
ours_idt_alg=$(one_round "$base" "/oauth2/authorize?$(authorize_query "$code_cid")" /oauth2/token "$ours_cookie" "$code_cid:$code_csec")
export AUTH_PATH="/oauth2/authorize?$(authorize_query "$code_cid")" TOKEN_PATH=/oauth2/token COOKIE="$ours_cookie"
export AUTH_B64="$(printf '%s:%s' "$code_cid" "$code_csec" | base64 -w0)"
wrk -t2 -c"$CONNS" -d"$CODE_WARMUP" -s "$here/code_round.lua" "$base" >/dev/null
bench ours_code "$pid" "$here/code_round.lua" "$base"
ours_rss_all=$(peak_rss_mb "$pid")
stop "$pid"; pid=

# --- oidc-provider: client_credentials (ES256 JWT access tokens), discovery, JWKS (server.mjs)
peer="http://127.0.0.1:$PEER_PORT"
(cd "$peer_dir" && PORT="$PEER_PORT" NODE_ENV=production FORMAT=jwt ALG=ES256 exec node server.mjs >"$work/peer.log" 2>&1) &
ppid_=$!
wait_ready "$peer/jwks" "$ppid_" "$work/peer.log"
export AUTH_B64="$(printf 'bench-client:bench-secret' | base64 -w0)"
wrk -t1 -c4 -d2s -s "$here/form_post.lua" "$peer/token" >/dev/null
bench peer_token "$ppid_" "$here/form_post.lua" "$peer/token"
bench peer_disc "$ppid_" "$here/get.lua" "$peer/.well-known/openid-configuration"
bench peer_jwks "$ppid_" "$here/get.lua" "$peer/jwks"
peer_rss=$(peak_rss_mb "$ppid_")
peer_version=$(node -p "require('$peer_dir/node_modules/oidc-provider/package.json').version")
stop "$ppid_"; ppid_=

# --- oidc-provider: the authorization-code round (peers/oidc-provider/code.mjs)
(cd "$peer_dir" && PORT="$PEER_PORT" PEER_ADAPTER="$PEER_ADAPTER" NODE_ENV=production \
  exec node code.mjs >"$work/peer-code.log" 2>&1) &
ppid2=$!
wait_ready "$peer/jwks" "$ppid2" "$work/peer-code.log"
# One scripted login: follow the redirects by hand (authorize → interaction → authorize → callback).
url="$peer/auth?$(authorize_query bench-code)"
for _ in 1 2 3 4 5 6; do
  loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -b "$work/pjar" -c "$work/pjar" "$url")
  url=${loc#* }
  case "$url" in "$peer"/*) ;; *) break ;; esac
done
case "$loc" in "303 $CB?"*code=*) ;; *) die "peer login did not end at the callback with a code: $loc";; esac
peer_cookie=$(jar_cookies "$work/pjar" '^_session')
peer_idt_alg=$(one_round "$peer" "/auth?$(authorize_query bench-code)" /token "$peer_cookie" bench-code:bench-code-secret)
export AUTH_PATH="/auth?$(authorize_query bench-code)" TOKEN_PATH=/token COOKIE="$peer_cookie"
export AUTH_B64="$(printf 'bench-code:bench-code-secret' | base64 -w0)"
wrk -t2 -c"$CONNS" -d"$CODE_WARMUP" -s "$here/code_round.lua" "$peer" >/dev/null
bench peer_code "$ppid2" "$here/code_round.lua" "$peer"
peer_rss_code=$(peak_rss_mb "$ppid2")
peer_errors=$(cat "$work/peer.log" "$work/peer-code.log" | grep -c 'server_error' || true)
ours_errors=$(grep -ci 'error' "$work/serve.log" || true)
stop "$ppid2"; ppid2=

field() { printf '%s' "$2" | sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p"; } # field NAME SUMMARY
rps() { field rps "$1"; }
p99() { field p99_ms "$1"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "–" }'; }
ratio() { div "$(rps "$1")" "$(rps "$2")"; }
per_round() { awk -v c="$1" -v r="$(field rounds "$2")" 'BEGIN { if (r > 0) printf "%.2f", 1000 * c / r; else print "–" }'; }
failures() { # NAME SUMMARY -> "NAME: …" when anything failed
  local bad="" k v
  for k in non2xx3xx sockerr bad_authorize bad_token; do
    v=$(field "$k" "$2"); [ -n "$v" ] && [ "$v" != 0 ] && bad="$bad $k=$v"
  done
  [ -z "$bad" ] || printf '%s:%s; ' "$1" "$bad"
}
all_failures="$(failures "ours token" "$ours_token")$(failures "ours discovery" "$ours_disc")$(failures "ours JWKS" "$ours_jwks")$(failures "ours code round" "$ours_code")$(failures "peer token" "$peer_token")$(failures "peer discovery" "$peer_disc")$(failures "peer JWKS" "$peer_jwks")$(failures "peer code round" "$peer_code")"
fail_samples=$(printf '%s\n' "$ours_code_fail" | sed '/^$/d; s/^/ours /'; printf '%s\n' "$peer_code_fail" | sed '/^$/d; s/^/peer /')
[ -z "$fail_samples" ] || fail_samples=$(printf '\n\n```\n%s\n```' "$fail_samples")
cat <<MD
### OIDC endpoints vs oidc-provider $peer_version — $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo)
wrk -t2 -c$CONNS -d$DUR after warm-ups (token 2 s, code round $CODE_WARMUP), each server alone in turn, wrk on the same cores; Kuntalaistili release build on SQLite, log level warn; oidc-provider on Node.js $(node -v), NODE_ENV=production.
client_credentials: HTTP Basic, ES256 JWT access tokens on both. Code round: a logged-in session, authorize (303 with code, PKCE S256, state, nonce, scope openid) then token (HTTP Basic, code_verifier; 200 with access and ID token) — 2 requests a round; req/s and p99 count both kinds of request.
ID tokens: ours $ours_idt_alg (the client's default), oidc-provider $peer_idt_alg (its default id_token_signed_response_alg) — read from the header of the ID token of a check round before the load.
Code-round access tokens: ours ES256 JWT (SQLite: code, grant, audit row); oidc-provider opaque, in memory ($PEER_ADAPTER adapter of ops/bench/peers/oidc-provider/code.mjs).

| endpoint | Kuntalaistili req/s | p99 | oidc-provider req/s | p99 | ratio |
|---|---|---|---|---|---|
| token (client_credentials) | $(rps "$ours_token") | $(p99 "$ours_token") ms | $(rps "$peer_token") | $(p99 "$peer_token") ms | **$(ratio "$ours_token" "$peer_token")×** |
| discovery | $(rps "$ours_disc") | $(p99 "$ours_disc") ms | $(rps "$peer_disc") | $(p99 "$peer_disc") ms | $(ratio "$ours_disc" "$peer_disc")× |
| JWKS | $(rps "$ours_jwks") | $(p99 "$ours_jwks") ms | $(rps "$peer_jwks") | $(p99 "$peer_jwks") ms | $(ratio "$ours_jwks" "$peer_jwks")× |
| code round: authorize → token | $(rps "$ours_code") ($(field rounds_per_s "$ours_code") rounds/s) | $(p99 "$ours_code") ms | $(rps "$peer_code") ($(field rounds_per_s "$peer_code") rounds/s) | $(p99 "$peer_code") ms | **$(div "$(field rounds_per_s "$ours_code")" "$(field rounds_per_s "$peer_code")")×** |
| peak RSS (VmHWM): token, discovery, JWKS | $ours_rss MB | | $peer_rss MB | | $(div "$ours_rss" "$peer_rss")× |
| peak RSS (VmHWM): after the code round (peer: its code-flow process) | $ours_rss_all MB | | $peer_rss_code MB | | $(div "$ours_rss_all" "$peer_rss_code")× |

Failed requests: ${all_failures:-none}${fail_samples}

Server CPU seconds during each run (both servers can use all $(nproc) cores; Node.js runs JavaScript on one): ours token $ours_token_cpu, discovery $ours_disc_cpu, JWKS $ours_jwks_cpu, code round $ours_code_cpu ($(per_round "$ours_code_cpu" "$ours_code") ms a round); oidc-provider token $peer_token_cpu, discovery $peer_disc_cpu, JWKS $peer_jwks_cpu, code round $peer_code_cpu ($(per_round "$peer_code_cpu" "$peer_code") ms a round).

Server logs: ours $ours_errors lines with "error" (log level warn); oidc-provider $peer_errors server_error events.

Raw: ours token \`$ours_token\`; peer token \`$peer_token\`; ours code \`$ours_code\`; peer code \`$peer_code\`.
MD
