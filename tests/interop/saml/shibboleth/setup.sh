#!/usr/bin/env bash
# Shibboleth SP 3.x (Debian's libapache2-mod-shib + shibboleth-sp-utils) in front of our IdP:
# a private shibd and a private apache2 (mod_shib) on 127.0.0.1.
#
#   setup.sh IDP_BASE STATE_DIR PORT     set up and (re)start shibd + apache on 127.0.0.1:PORT
#   setup.sh stop STATE_DIR              stop both (same as stop.sh STATE_DIR)
#
# Writes the whole SP configuration into STATE_DIR (never touches /etc/shibboleth or the system
# apache2 site): shibboleth2.xml with its own UNIX socket, loggers, attribute map, key pair;
# fetches IDP_BASE/saml/metadata as the IdP's metadata; starts `shibd -F -c … -p …` in the
# background and `apache2 -f STATE_DIR/httpd.conf`; prints one JSON line:
#   {"sp_metadata": ..., "entity_id": ..., "sp_base": ..., "state_dir": ...}
#
# The SP signs every message it sends (signing="true") and offers two session initiators: /Shibboleth.sso/Login (HTTP-Redirect)
# and /Shibboleth.sso/LoginPost (HTTP-POST), protecting /secure/ and /secure-post/ with them.
# /Shibboleth.sso/Session shows the session with its attribute values as JSON.
# STATE_DIR must be traversable by www-data (apache's children run as www-data).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

if [ "${1:-}" = stop ]; then
  exec "$HERE/stop.sh" "${2:?usage: setup.sh stop STATE_DIR}"
fi
if [ $# -ne 3 ]; then
  echo "usage: setup.sh IDP_BASE STATE_DIR PORT | setup.sh stop STATE_DIR" >&2; exit 2
fi
IDP_BASE="${1%/}"; STATE="$2"; PORT="$3"
mkdir -p "$STATE"; STATE="$(cd "$STATE" && pwd)"
SP_BASE="http://127.0.0.1:$PORT"
ENTITY_ID="$SP_BASE/shibboleth"
log() { echo "[shib-sp] $*" >&2; }

PKGS="libapache2-mod-shib shibboleth-sp-utils apache2 curl openssl"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "installing:$missing"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi
M=/usr/lib/apache2/modules

mkdir -p "$STATE"/{run,log,www/secure,www/secure-post,cache}
chown www-data "$STATE/log" "$STATE/run"
chmod 755 "$STATE" "$STATE/run"
if [ ! -s "$STATE/sp-key.pem" ] || [ ! -s "$STATE/sp-cert.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=shib-sp-interop" \
    -keyout "$STATE/sp-key.pem" -out "$STATE/sp-cert.pem" 2>/dev/null
fi
chmod 600 "$STATE/sp-key.pem"   # read by shibd (root) only
for f in security-policy.xml protocols.xml bindingTemplate.html postTemplate.html \
         localLogout.html globalLogout.html partialLogout.html sessionError.html \
         metadataError.html sslError.html attrChecker.html discoveryTemplate.html; do
  cp "/etc/shibboleth/$f" "$STATE/$f"
done

curl -fsS "$IDP_BASE/saml/metadata" -o "$STATE/idp.xml.new"
mv "$STATE/idp.xml.new" "$STATE/idp.xml"
IDP_ENTITY="$(grep -o 'entityID="[^"]*"' "$STATE/idp.xml" | head -n1 | sed 's/entityID="//; s/"$//')"

for who in shibd native; do
  cat > "$STATE/$who.logger" <<LOG
log4j.rootCategory=${SHIB_LOG_LEVEL:-INFO}, main
log4j.category.Shibboleth-TRANSACTION=INFO, tran
log4j.additivity.Shibboleth-TRANSACTION=false
log4j.appender.main=org.apache.log4j.FileAppender
log4j.appender.main.fileName=$STATE/log/$who.log
log4j.appender.main.layout=org.apache.log4j.PatternLayout
log4j.appender.main.layout.ConversionPattern=%d{%Y-%m-%d %H:%M:%S} %p %c %x: %m%n
log4j.appender.tran=org.apache.log4j.FileAppender
log4j.appender.tran.fileName=$STATE/log/$who-transaction.log
log4j.appender.tran.layout=org.apache.log4j.PatternLayout
log4j.appender.tran.layout.ConversionPattern=%d{%Y-%m-%d %H:%M:%S} %m%n
LOG
done

cat > "$STATE/attribute-map.xml" <<'XML'
<Attributes xmlns="urn:mace:shibboleth:2.0:attribute-map" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <Attribute name="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" id="persistent-id">
        <AttributeDecoder xsi:type="NameIDAttributeDecoder" formatter="$Name" defaultQualifiers="true"/>
    </Attribute>
    <Attribute name="urn:oid:0.9.2342.19200300.100.1.1" id="uid"/>
    <Attribute name="urn:oid:2.5.4.3" id="cn"/>
    <Attribute name="urn:oid:2.5.4.4" id="sn"/>
    <Attribute name="urn:oid:2.5.4.42" id="givenName"/>
    <Attribute name="urn:oid:0.9.2342.19200300.100.1.3" id="mail"/>
    <Attribute name="urn:oid:2.16.840.1.113730.3.1.241" id="displayName"/>
</Attributes>
XML

cat > "$STATE/shibboleth2.xml" <<XML
<SPConfig xmlns="urn:mace:shibboleth:3.0:native:sp:config"
    xmlns:conf="urn:mace:shibboleth:3.0:native:sp:config" clockSkew="180">
    <OutOfProcess logger="$STATE/shibd.logger" tranLogFormat="%u|%s|%IDP|%i|%ac|%t|%attr|%n|%b|%E|%S|%SS|%L|%UA|%a"/>
    <InProcess logger="$STATE/native.logger"/>
    <UnixListener address="$STATE/run/shibd.sock"/>
    <RequestMapper type="Native">
        <RequestMap>
            <Host name="127.0.0.1" port="$PORT" scheme="http">
                <Path name="secure" authType="shibboleth" requireSession="true"/>
                <Path name="secure-post" authType="shibboleth" requireSession="true" requireSessionWith="LoginPost"/>
            </Host>
        </RequestMap>
    </RequestMapper>
    <ApplicationDefaults entityID="$ENTITY_ID" REMOTE_USER="uid persistent-id"
        signing="true" encryption="false" requireSignedAssertions="true"
        NameIDFormat="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">
        <Sessions lifetime="28800" timeout="3600" relayState="ss:mem" checkAddress="false"
                  handlerSSL="false" cookieProps="http" redirectLimit="exact">
            <SessionInitiator type="Chaining" Location="/Login" isDefault="true" id="Login" entityID="$IDP_ENTITY">
                <SessionInitiator type="SAML2" template="$STATE/bindingTemplate.html"
                    outgoingBindings="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"/>
            </SessionInitiator>
            <SessionInitiator type="Chaining" Location="/LoginPost" id="LoginPost" entityID="$IDP_ENTITY">
                <SessionInitiator type="SAML2" template="$STATE/bindingTemplate.html"
                    outgoingBindings="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"/>
            </SessionInitiator>
            <md:AssertionConsumerService xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Location="/SAML2/POST" index="1"
                Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"/>
            <LogoutInitiator type="Chaining" Location="/Logout">
                <LogoutInitiator type="SAML2" template="$STATE/bindingTemplate.html"/>
                <LogoutInitiator type="Local"/>
            </LogoutInitiator>
            <md:SingleLogoutService xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Location="/SLO/Redirect" conf:template="$STATE/bindingTemplate.html"
                Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"/>
            <md:SingleLogoutService xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Location="/SLO/POST" conf:template="$STATE/bindingTemplate.html"
                Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"/>
            <Handler type="MetadataGenerator" Location="/Metadata" signing="false"/>
            <Handler type="Status" Location="/Status" acl="127.0.0.1 ::1"/>
            <Handler type="Session" Location="/Session" showAttributeValues="true" contentType="application/json"/>
        </Sessions>
        <Errors supportContact="root@localhost" styleSheet="/shibboleth-sp/main.css"
            session="$STATE/sessionError.html" metadata="$STATE/metadataError.html"
            access="$STATE/attrChecker.html" ssl="$STATE/sslError.html"
            localLogout="$STATE/localLogout.html" globalLogout="$STATE/globalLogout.html"
            partialLogout="$STATE/partialLogout.html"/>
        <MetadataProvider type="XML" validate="true" path="$STATE/idp.xml"/>
        <AttributeExtractor type="XML" validate="true" reloadChanges="false" path="$STATE/attribute-map.xml"/>
        <CredentialResolver type="File" key="$STATE/sp-key.pem" certificate="$STATE/sp-cert.pem"/>
    </ApplicationDefaults>
    <SecurityPolicyProvider type="XML" validate="true" path="$STATE/security-policy.xml"/>
    <ProtocolProvider type="XML" validate="true" reloadChanges="false" path="$STATE/protocols.xml"/>
</SPConfig>
XML

# --- shibd -----------------------------------------------------------------------------------
"$HERE/stop.sh" "$STATE" 2>/dev/null || true
# SHIBSP_LOGGING: the logging configuration used before shibboleth2.xml is read (else the system's).
export SHIBSP_LOGGING="$STATE/shibd.logger"
shibd -t -c "$STATE/shibboleth2.xml" >"$STATE/log/shibd-check.log" 2>&1 || {
  log "shibd -t failed:"; cat "$STATE/log/shibd-check.log" >&2; exit 1; }
nohup shibd -F -f -c "$STATE/shibboleth2.xml" -p "$STATE/run/shibd.pid" -w 30 \
  >"$STATE/log/shibd-console.log" 2>&1 </dev/null &
echo $! > "$STATE/run/shibd.pid"
for _ in $(seq 1 100); do [ -S "$STATE/run/shibd.sock" ] && break; sleep 0.1; done
[ -S "$STATE/run/shibd.sock" ] || { log "shibd did not open its socket"; tail -n 30 "$STATE/log/shibd-console.log" "$STATE/log/shibd.log" >&2 || true; exit 1; }
chmod 777 "$STATE/run/shibd.sock"

# --- apache ----------------------------------------------------------------------------------
echo ok > "$STATE/www/index.html"
echo secret > "$STATE/www/secure/index.html"
echo secret-post > "$STATE/www/secure-post/index.html"
echo loggedout > "$STATE/www/loggedout.html"
cat > "$STATE/httpd.conf" <<CONF
ServerRoot /etc/apache2
ServerName 127.0.0.1:$PORT
Listen 127.0.0.1:$PORT
PidFile $STATE/run/httpd.pid
DefaultRuntimeDir $STATE/run
Mutex file:$STATE/run default
User www-data
Group www-data
ErrorLog $STATE/log/apache-error.log
LogLevel warn
LoadModule mpm_event_module $M/mod_mpm_event.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule authn_core_module $M/mod_authn_core.so
LoadModule dir_module $M/mod_dir.so
LoadModule mime_module $M/mod_mime.so
LoadModule alias_module $M/mod_alias.so
LoadModule mod_shib $M/mod_shib.so
TypesConfig /etc/mime.types
ShibConfig $STATE/shibboleth2.xml
ShibCompatValidUser Off
UseCanonicalName On
StartServers 1
ServerLimit 2
ThreadsPerChild 10
MaxRequestWorkers 20
MinSpareThreads 5
MaxSpareThreads 20
LogFormat "%h %t \"%r\" %>s %b %D" timed
CustomLog $STATE/log/access.log timed
DocumentRoot $STATE/www
DirectoryIndex index.html
<Directory $STATE/www/>
  Require all granted
</Directory>
<Location /Shibboleth.sso>
  SetHandler shib
</Location>
<Location /secure>
  AuthType shibboleth
  ShibRequestSetting requireSession 1
  Require shib-session
</Location>
<Location /secure-post>
  AuthType shibboleth
  ShibRequestSetting requireSession 1
  ShibRequestSetting requireSessionWith LoginPost
  Require shib-session
</Location>
Alias /shibboleth-sp/main.css /usr/share/shibboleth/main.css
CONF
apache2 -t -f "$STATE/httpd.conf" 2>&1 | grep -v '^Syntax OK$' >&2 || true
rm -f "$STATE/run/httpd.pid"
SHIBSP_LOGGING="$STATE/native.logger" apache2 -f "$STATE/httpd.conf" -k start
ok=""
for _ in $(seq 1 100); do
  if curl -fsS -o "$STATE/sp.xml.new" "$SP_BASE/Shibboleth.sso/Metadata" 2>/dev/null \
     && grep -q "entityID=\"$ENTITY_ID\"" "$STATE/sp.xml.new"; then ok=1; break; fi
  sleep 0.2
done
if [ -z "$ok" ]; then
  log "SP did not come up on $SP_BASE; see $STATE/log/"
  tail -n 20 "$STATE/log/apache-error.log" "$STATE/log/native.log" "$STATE/log/shibd.log" >&2 || true
  exit 1
fi
mv "$STATE/sp.xml.new" "$STATE/sp.xml"
printf '{"sp_metadata": "%s", "entity_id": "%s", "sp_base": "%s", "idp_entity_id": "%s", "state_dir": "%s"}\n' \
  "$STATE/sp.xml" "$ENTITY_ID" "$SP_BASE" "$IDP_ENTITY" "$STATE"
