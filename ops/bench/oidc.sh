#!/usr/bin/env bash
# Token endpoint and JWKS throughput: Kuntalaistili vs node oidc-provider (the peer from
# ../shared/peers/oidc-provider), same machine, same run, 10 s wrk runs each (-t2 -c32).
# client_credentials with ES256 JWT access tokens on both sides. Discovery and the
# authorization-code round are not measured yet: those endpoints do not exist here yet.
#   DUR=10s CONNS=32 ./ops/bench/oidc.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${DUR:-10s}"; CONNS="${CONNS:-32}"; PORT="${PORT:-18081}"
peers="${PEERS:-$(cd ../shared/peers 2>/dev/null && pwd)}"
[ -d "$peers/oidc-provider" ] || { echo "peer set-up scripts not found (set PEERS=…/shared/peers)" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
bin="$PWD/target/release/kuntalaistili"
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; [ -n "${ppid_:-}" ] && kill "$ppid_" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The peer runs from a copy (shared/ may be read-only); its npm install is cached between runs.
peer_dir="${PEER_DIR:-/var/tmp/kuntalaistili-peer-oidc-provider}"
mkdir -p "$peer_dir"
cp -r "$peers/oidc-provider" "$peers/bench" "$peer_dir/"
(cd "$peer_dir/oidc-provider" && [ -d node_modules/oidc-provider ] || ./setup.sh >/dev/null)

summary() { grep -E '^SUMMARY' | sed 's/^SUMMARY //'; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
lua="$peer_dir/bench"
export PEERS_BENCH_DIR="$lua"

# --- Kuntalaistili
export KUNTALAISTILI_LISTEN="127.0.0.1:$PORT" KUNTALAISTILI_DATA_DIR="$work" KUNTALAISTILI_LOG_LEVEL=warn
export KUNTALAISTILI_DATABASE_URL="sqlite://$work/kl.db"
creds=$("$bin" clients add --name bench --grant-types client_credentials --scopes "api:read" --json)
cid=$(printf '%s' "$creds" | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
csec=$(printf '%s' "$creds" | sed 's/.*"client_secret":"\([^"]*\)".*/\1/')
"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.02; done
export AUTH_B64="$(printf '%s:%s' "$cid" "$csec" | base64 -w0)" BODY="grant_type=client_credentials&scope=api:read"
wrk -t1 -c4 -d2s -s "$lua/post_form.lua" "http://127.0.0.1:$PORT/oauth2/token" >/dev/null
ours_token=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$lua/post_form_summary.lua" "http://127.0.0.1:$PORT/oauth2/token" | summary)
ours_jwks=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$lua/get_summary.lua" "http://127.0.0.1:$PORT/oauth2/jwks" | summary)
ours_rss=$(peak_rss_mb "$pid")
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

# --- oidc-provider (ES256 JWT access tokens)
(cd "$peer_dir/oidc-provider" && NODE_ENV=production FORMAT=jwt ALG=ES256 exec node server.mjs >"$work/peer.log" 2>&1) &
ppid_=$!
for _ in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:3001/jwks && break; sleep 0.1; done
peer_node=$(pgrep -f "node server.mjs" | head -1)
export AUTH_B64="$(printf 'bench-client:bench-secret' | base64 -w0)"
wrk -t1 -c4 -d2s -s "$lua/post_form.lua" "http://127.0.0.1:3001/token" >/dev/null
peer_token=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$lua/post_form_summary.lua" "http://127.0.0.1:3001/token" | summary)
peer_jwks=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$lua/get_summary.lua" "http://127.0.0.1:3001/jwks" | summary)
peer_rss=$(peak_rss_mb "$peer_node")
peer_version=$(node -p "require('$peer_dir/oidc-provider/node_modules/oidc-provider/package.json').version")

rps() { printf '%s' "$1" | sed 's/.*rps=\([0-9.]*\).*/\1/'; }
p99() { printf '%s' "$1" | sed 's/.*p99_ms=\([0-9.]*\).*/\1/'; }
ratio() { awk -v a="$(rps "$1")" -v b="$(rps "$2")" 'BEGIN { printf "%.1f", a / b }'; }
cat <<MD
### client_credentials and JWKS vs oidc-provider $peer_version — $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo)
wrk -t2 -c$CONNS -d$DUR, ES256 JWT access tokens on both, SQLite, release build, log level warn.

| endpoint | Kuntalaistili req/s | p99 | oidc-provider req/s | p99 | ratio |
|---|---|---|---|---|---|
| token (client_credentials) | $(rps "$ours_token") | $(p99 "$ours_token") ms | $(rps "$peer_token") | $(p99 "$peer_token") ms | **$(ratio "$ours_token" "$peer_token")×** |
| JWKS | $(rps "$ours_jwks") | $(p99 "$ours_jwks") ms | $(rps "$peer_jwks") | $(p99 "$peer_jwks") ms | $(ratio "$ours_jwks" "$peer_jwks")× |
| peak RSS | $ours_rss MB | | $peer_rss MB | | |

Raw: ours token \`$ours_token\`; peer token \`$peer_token\`.
MD
