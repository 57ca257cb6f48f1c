#!/usr/bin/env bash
# mod_auth_openidc 2.4 (Debian's libapache2-mod-auth-openidc) as two OpenID Connect relying
# parties of our IdP in one private apache2 on 127.0.0.1: RP "a" on PORT_A, RP "b" on PORT_B.
#
#   setup.sh IDP_BASE STATE_DIR PORT_A CLIENT_ID_A SECRET_A PORT_B CLIENT_ID_B SECRET_B
#   setup.sh stop STATE_DIR              stop it (same as stop.sh STATE_DIR)
#
# Each RP protects /protected/ (a CGI that prints what the module passed on: REMOTE_USER, the
# claims, the serialized ID token) with its redirect URI at /protected/redirect_uri, PKCE S256,
# a server-side session (shm cache) under its own cookie name, and /loggedout.html as the page
# after logout. Register each client with redirect URI http://127.0.0.1:PORT/protected/redirect_uri,
# post-logout URI http://127.0.0.1:PORT/loggedout.html and back-channel logout URI
# http://127.0.0.1:PORT/protected/redirect_uri?logout=backchannel.
# Never touches the system apache2 site; everything lives in STATE_DIR, which must be traversable
# by www-data. Prints one JSON line: {"rp_a": "http://127.0.0.1:PORT_A", "rp_b": ..., "state_dir": ...}
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

if [ "${1:-}" = stop ]; then
  exec "$HERE/stop.sh" "${2:?usage: setup.sh stop STATE_DIR}"
fi
if [ $# -ne 8 ]; then
  echo "usage: setup.sh IDP_BASE STATE_DIR PORT_A ID_A SECRET_A PORT_B ID_B SECRET_B | setup.sh stop STATE_DIR" >&2
  exit 2
fi
IDP_BASE="${1%/}"; STATE="$2"
mkdir -p "$STATE"; STATE="$(cd "$STATE" && pwd)"
log() { echo "[openidc-rp] $*" >&2; }

PKGS="libapache2-mod-auth-openidc apache2 curl openssl"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "installing:$missing"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi
M=/usr/lib/apache2/modules

mkdir -p "$STATE"/{run,log,www/protected,cgi}
chown www-data "$STATE/log" "$STATE/run"
chmod 755 "$STATE"
cat > "$STATE/cgi/whoami" <<'PY'
#!/usr/bin/python3
# Prints what mod_auth_openidc handed to the application, as JSON.
import json, os
env = {k: v for k, v in os.environ.items() if k.startswith("OIDC_") or k == "REMOTE_USER"}
print("Content-Type: application/json\n")
print(json.dumps(env))
PY
chmod 755 "$STATE/cgi/whoami"
echo loggedout > "$STATE/www/loggedout.html"
echo ok > "$STATE/www/index.html"

vhost() { # PORT CLIENT_ID SECRET NAME
  local port="$1" id="$2" secret="$3" name="$4"
  local base="http://127.0.0.1:$port"
  cat <<CONF
Listen 127.0.0.1:$port
<VirtualHost 127.0.0.1:$port>
  ServerName 127.0.0.1:$port
  UseCanonicalName On
  DocumentRoot $STATE/www
  OIDCProviderMetadataURL $IDP_BASE/.well-known/openid-configuration
  OIDCClientID $id
  OIDCClientSecret $secret
  OIDCRedirectURI $base/protected/redirect_uri
  OIDCCryptoPassphrase $(openssl rand -hex 24)
  OIDCScope "openid profile email"
  OIDCPKCEMethod S256
  OIDCSessionType server-cache
  OIDCCookie kl_rp_$name
  OIDCStateCookiePrefix kl_rp_${name}_state_
  OIDCDefaultLoggedOutURL $base/loggedout.html
  OIDCPassIDTokenAs claims payload serialized
  OIDCPassClaimsAs environment
  OIDCRemoteUserClaim sub
  OIDCInfoHook iat id_token userinfo session
  ScriptAlias /protected/whoami $STATE/cgi/whoami
  <Location /protected>
    AuthType openid-connect
    Require valid-user
  </Location>
</VirtualHost>
CONF
}

cat > "$STATE/httpd.conf" <<CONF
ServerRoot /etc/apache2
ServerName 127.0.0.1
PidFile $STATE/run/httpd.pid
DefaultRuntimeDir $STATE/run
Mutex file:$STATE/run default
User www-data
Group www-data
ErrorLog $STATE/log/apache-error.log
LogLevel ${OIDC_LOG_LEVEL:-warn}
LoadModule mpm_prefork_module $M/mod_mpm_prefork.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule authz_user_module $M/mod_authz_user.so
LoadModule authn_core_module $M/mod_authn_core.so
LoadModule dir_module $M/mod_dir.so
LoadModule mime_module $M/mod_mime.so
LoadModule alias_module $M/mod_alias.so
LoadModule cgi_module $M/mod_cgi.so
LoadModule auth_openidc_module $M/mod_auth_openidc.so
TypesConfig /etc/mime.types
StartServers 2
MinSpareServers 2
MaxSpareServers 5
MaxRequestWorkers 10
LogFormat "%h %p %t \"%r\" %>s %b %D" timed
CustomLog $STATE/log/access.log timed
DocumentRoot $STATE/www
DirectoryIndex index.html
<Directory $STATE/>
  Require all granted
</Directory>
OIDCCacheType shm
$(vhost "$3" "$4" "$5" a)
$(vhost "$6" "$7" "$8" b)
CONF
apache2 -t -f "$STATE/httpd.conf" 2>&1 | grep -v '^Syntax OK$' >&2 || true
"$HERE/stop.sh" "$STATE" 2>/dev/null || true
apache2 -f "$STATE/httpd.conf" -k start
for port in "$3" "$6"; do
  ok=""
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/loggedout.html" 2>/dev/null && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { log "apache did not come up on $port"; tail -n 20 "$STATE/log/apache-error.log" >&2 || true; exit 1; }
done
printf '{"rp_a": "http://127.0.0.1:%s", "rp_b": "http://127.0.0.1:%s", "state_dir": "%s"}\n' "$3" "$6" "$STATE"
