#!/usr/bin/env bash
# Installs what Kuntalaistili needs on a fresh Debian-based rust-svc machine (idempotent).
# Rust toolchain and cargo-nextest are expected to be present; everything else comes from apt.
set -euo pipefail

need=()
# chromium + fonts: the browser tests; wrk: ops/bench; libxmlsec1-dev, libxml2-dev, libclang-dev:
# samael's xmlsec bindings (SAML signatures); xmlsec1 + python3-pysaml2, and simplesamlphp with a
# private apache2 + mod_php: the two SAML interop SPs; mod_shib + shibd and mod_auth_openidc: the
# Apache interop tests (tests/interop_apache).
for pkg in build-essential pkg-config libssl-dev libsqlite3-dev libpq-dev postgresql-client \
           libxml2-dev libxmlsec1-dev libclang-dev xmlsec1 python3-pysaml2 \
           simplesamlphp apache2 libapache2-mod-php php-xml php-mbstring php-curl \
           libapache2-mod-shib shibboleth-sp-utils libapache2-mod-auth-openidc \
           chromium fonts-dejavu-core wrk python3-venv; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# Browser-test drivers (playwright-core, axe-core) from npm, pinned by package-lock.json.
browser_dir="$(dirname "$0")/../tests/interop/browser"
if [ ! -d "$browser_dir/node_modules/playwright-core" ] || [ ! -d "$browser_dir/node_modules/axe-core" ]; then
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The OIDC interop relying party (panva's openid-client), pinned by package-lock.json.
oidc_dir="$(dirname "$0")/../tests/interop/oidc"
if [ ! -d "$oidc_dir/node_modules/openid-client" ]; then
  (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The SCIM interop client and compliance checker (python-scim's scim2-client and scim2-tester),
# pinned by requirements.txt, in their own venv.
scim_dir="$(dirname "$0")/../tests/interop/scim"
if [ ! -x "$scim_dir/.venv/bin/python" ] || ! "$scim_dir/.venv/bin/python" -c "import scim2_client, scim2_tester" 2>/dev/null; then
  python3 -m venv "$scim_dir/.venv"
  "$scim_dir/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$scim_dir/requirements.txt"
fi
