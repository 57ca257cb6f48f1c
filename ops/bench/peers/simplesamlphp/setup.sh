#!/usr/bin/env bash
# The comparison IdP of ops/bench/saml.sh: SimpleSAMLphp 1.19 from Debian 12 (package
# `simplesamlphp`, 1.19.x; any other series is refused) as a SAML 2.0 IdP, served by a private
# Apache instance (prefork + mod_php) on http://127.0.0.1:$PORT/simplesaml/. Everything it writes
# is under $STATE: the system's /etc/simplesamlphp and Apache sites are read, never changed.
#
#   STATE      (/var/tmp/kuntalaistili-peer-ssp) configuration, key, logs, PHP sessions; must be
#              traversable by www-data
#   PORT       (3002)
#   SP_ENTITY  (http://127.0.0.1:3003/sp), SP_ACS (…/acs), SP_SLO (…/slo): the one SP it serves
#   SSP_WORKERS (40) Apache processes at most, SSP_START (8) started at once
#
# Users (exampleauth:UserPass): student / studentpass, employee / employeepass. The SP's
# AuthnRequests need no signature; NameIDs are transient; the Response and the Assertion are
# both signed with RSA-SHA256 and a 2048-bit RSA key (SimpleSAMLphp's default
# 'saml20.sign.response' = true, written out below). Needs root (apt-get, Apache as www-data).
# Idempotent: a second run rewrites the configuration and keeps the key.
set -euo pipefail
STATE="${STATE:-/var/tmp/kuntalaistili-peer-ssp}"
PORT="${PORT:-3002}"
SP_ENTITY="${SP_ENTITY:-http://127.0.0.1:3003/sp}"
SP_ACS="${SP_ACS:-http://127.0.0.1:3003/acs}"
SP_SLO="${SP_SLO:-http://127.0.0.1:3003/slo}"

packages=(simplesamlphp apache2 libapache2-mod-php php-xml php-mbstring php-curl xmlsec1 openssl curl wrk)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
version=$(dpkg-query -W -f '${Version}' simplesamlphp)
case "$version" in
  1.19.*) ;;
  *) echo "setup.sh: SimpleSAMLphp $version installed; the benchmark compares with 1.19 (Debian 12)" >&2; exit 1 ;;
esac
php_module=$(ls /usr/lib/apache2/modules/libphp8*.so 2>/dev/null | head -1)
[ -n "$php_module" ] || { echo "setup.sh: no mod_php (libphp8*.so) in /usr/lib/apache2/modules" >&2; exit 1; }

mkdir -p "$STATE"/{config,metadata,cert,log,run,tmp,data,www}
chown www-data "$STATE"/{log,tmp,data}
if [ ! -f "$STATE/cert/idp.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kuntalaistili-bench-ssp" \
    -keyout "$STATE/cert/idp.pem" -out "$STATE/cert/idp.crt" 2>/dev/null
fi
chgrp www-data "$STATE/cert/idp.pem"
chmod 640 "$STATE/cert/idp.pem"

# The packaged config.php gives the defaults; ours overrides paths, URL, modules and logging.
cat >"$STATE/config/config.php" <<PHP
<?php
require '/etc/simplesamlphp/config.php';
\$config = array_merge(\$config, [
    'baseurlpath' => 'http://127.0.0.1:$PORT/simplesaml/',
    'trusted.url.domains' => ['127.0.0.1:$PORT', '127.0.0.1'],
    'certdir' => '$STATE/cert/',
    'metadatadir' => '$STATE/metadata/',
    'loggingdir' => '$STATE/log/',
    'datadir' => '$STATE/data/',
    'tempdir' => '$STATE/tmp',
    'secretsalt' => 'kuntalaistili-bench-ssp-not-a-secret',
    'auth.adminpassword' => 'admin',
    'admin.checkforupdates' => false,
    'enable.saml20-idp' => true,
    'module.enable' => ['core' => true, 'saml' => true, 'admin' => true, 'exampleauth' => true],
    'store.type' => 'phpsession',
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'logging.handler' => 'file',
    'logging.level' => SimpleSAML\Logger::WARNING,
    'statistics.out' => [],
]);
PHP
cat >"$STATE/config/authsources.php" <<'PHP'
<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'bench-users' => [
        'exampleauth:UserPass',
        'student:studentpass' => [
            'uid' => ['student'], 'mail' => ['student@example.org'],
            'eduPersonAffiliation' => ['member', 'student'],
        ],
        'employee:employeepass' => [
            'uid' => ['employee'], 'mail' => ['employee@example.org'],
            'eduPersonAffiliation' => ['member', 'employee'],
        ],
    ],
];
PHP
cat >"$STATE/metadata/saml20-idp-hosted.php" <<'PHP'
<?php
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'auth' => 'bench-users',
    'privatekey' => 'idp.pem',
    'certificate' => 'idp.crt',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'authproc' => [100 => ['class' => 'core:AttributeMap', 'name2oid']],
];
PHP
cat >"$STATE/metadata/saml20-sp-remote.php" <<PHP
<?php
\$metadata['$SP_ENTITY'] = [
    'AssertionConsumerService' => '$SP_ACS',
    'SingleLogoutService' => '$SP_SLO',
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
    'validate.authnrequest' => false,
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
];
PHP

ln -sfn /usr/share/simplesamlphp/www "$STATE/www/simplesaml"
modules=/usr/lib/apache2/modules
cat >"$STATE/httpd.conf" <<CONF
# Private Apache for the SimpleSAMLphp bench peer (ops/bench/peers/simplesamlphp/setup.sh).
ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
User www-data
Group www-data
PidFile $STATE/run/httpd.pid
DefaultRuntimeDir $STATE/run
Mutex file:$STATE/run default
ErrorLog $STATE/log/apache-error.log
LogLevel warn
LoadModule mpm_prefork_module $modules/mod_mpm_prefork.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule alias_module $modules/mod_alias.so
LoadModule dir_module $modules/mod_dir.so
LoadModule mime_module $modules/mod_mime.so
LoadModule env_module $modules/mod_env.so
LoadModule php_module $php_module
TypesConfig /etc/mime.types
StartServers ${SSP_START:-8}
MinSpareServers ${SSP_START:-8}
MaxSpareServers ${SSP_WORKERS:-40}
MaxRequestWorkers ${SSP_WORKERS:-40}
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
SetEnv SIMPLESAMLPHP_CONFIG_DIR $STATE/config
DocumentRoot $STATE/www
DirectoryIndex index.php
<FilesMatch "\\.php\$">
  SetHandler application/x-httpd-php
</FilesMatch>
<Directory $STATE/www/>
  Options FollowSymLinks
  Require all granted
</Directory>
<Directory /usr/share/simplesamlphp/www/>
  AcceptPathInfo On
  Require all granted
</Directory>
CONF
apache2 -t -f "$STATE/httpd.conf" 2>&1 | grep -v '^Syntax OK$' || true
echo "SimpleSAMLphp $version set up in $STATE; IdP metadata at http://127.0.0.1:$PORT/simplesaml/saml2/idp/metadata.php once run.sh start"
