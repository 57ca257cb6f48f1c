#!/usr/bin/env bash
# Installs the comparison OP of ops/bench/oidc.sh into this folder: node oidc-provider at exactly
# the version in package.json / package-lock.json (npm ci), plus wrk. Idempotent; a second run
# with node_modules in place does nothing. Needs Node.js ≥ 18 (Debian 12: apt-get install nodejs npm).
#   Run the peer: node server.mjs (client_credentials) or node code.mjs (authorization code).
set -euo pipefail
cd "$(dirname "$0")"
apt_install() { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
command -v wrk >/dev/null || apt_install wrk
want=$(node -p 'require("./package.json").dependencies["oidc-provider"]')
have=$(node -p 'try { require("./node_modules/oidc-provider/package.json").version } catch { "" }')
if [ "$have" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "oidc-provider $(node -p 'require("./node_modules/oidc-provider/package.json").version') on Node.js $(node -v)"
