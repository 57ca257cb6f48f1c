#!/usr/bin/env bash
# SAML Web SSO throughput: Kuntalaistili vs SimpleSAMLphp 1.19 as IdP (the peer set up by
# ops/bench/peers/simplesamlphp), same machine, same run, each server under load alone in turn:
#   - IdP-initiated SSO: GET with a live session cookie (ours /saml/sso/init?sp=…, SimpleSAMLphp
#     SSOService.php?spentityid=…) → 200 HTML form with a signed SAMLResponse;
#   - SP-initiated SSO, HTTP-Redirect binding: GET …?SAMLRequest=… with a live session cookie, every
#     AuthnRequest with its own ID (our IdP refuses a replayed ID) and a fresh IssueInstant, prepared
#     by ops/bench/saml_requests.py right before the run and sent once each by ops/bench/saml_sso.lua.
# SESSIONS (32) live SSO sessions on each IdP (password logins before the load), cookies rotating
# over the requests; one SP (entity http://127.0.0.1:3003/sp, ACS …/acs, unsigned requests, NameID
# transient) on both; assertion signed with RSA-SHA256 and a 2048-bit RSA key on both, not encrypted
# (SimpleSAMLphp signs the Response too, see SIGN_RESPONSE; what each answer carries is checked on
# one answer of each kind before the load, ops/bench/saml_check.py, and printed). Every answer under
# load must be a 200 with a SAMLResponse: anything else is counted and makes the run invalid.
# wrk -t2 -c$CONNS -d$DUR after a 2 s warm-up on each server. Raw RSA-2048 signing rate of the same
# machine: `openssl speed -seconds $RSA_SECONDS -multi $(nproc) rsa2048` before and after the loads
# (servers idle), averaged. RSS after the load of both (SimpleSAMLphp: all its Apache processes).
# Prints only a Markdown block (for ops/bench/RESULTS.md).
#   DUR=10s CONNS=32 SESSIONS=32 ./ops/bench/saml.sh
#   (PORT=18095 BIN=path/to/kuntalaistili (no cargo build) REQUESTS=… RSA_SECONDS=5 STATE=…
#    SIGN_RESPONSE=1: ours signs the Response too, two signatures an answer. The peer signs both,
#    the Response and the Assertion (SimpleSAMLphp's default, written out in its set-up as
#    'saml20.sign.response' and 'saml20.sign.assertion'); the table's first lines say what each signed.)
# Needs root for the peer (apt-get, a private Apache instance running as www-data). DUR at most
# 150 s: the prepared AuthnRequests must still be within the IdPs' clock-skew window at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${DUR:-10s}"; CONNS="${CONNS:-32}"; SESSIONS="${SESSIONS:-32}"; PORT="${PORT:-18095}"
RSA_SECONDS="${RSA_SECONDS:-5}"; SIGN_RESPONSE="${SIGN_RESPONSE:-0}"; THREADS=2
here="$PWD/ops/bench"
peer="$here/peers/simplesamlphp"
die() { echo "saml.sh: $*" >&2; exit 1; }
[ -x "$peer/run.sh" ] || die "no peer set-up at $peer/run.sh"
export STATE="${STATE:-/var/tmp/kuntalaistili-peer-ssp}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
for c in openssl python3 curl; do command -v "$c" >/dev/null || die "$c is needed"; done
dur_s=$(printf '%s' "$DUR" | awk '/^[0-9]+s?$/ {print $0 + 0; exit} /^[0-9]+m$/ {print 60 * $0; exit} {print -1}')
[ "$dur_s" -gt 0 ] && [ "$dur_s" -le 150 ] || die "DUR must be 1s…150s (or 1m, 2m), not $DUR"
# Prepared SP-initiated requests per server: more than any 2-core machine can answer in DUR.
REQUESTS="${REQUESTS:-$(( dur_s * 8000 > 20000 ? dur_s * 8000 : 20000 ))}"
ssp="http://127.0.0.1:3002"; ssp_sso=/simplesaml/saml2/idp/SSOService.php
! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" || die "port $PORT is already in use (set PORT=)"
work=$(mktemp -d)
pid= ssp_started=0
stop() { # stop a process we started, by its id, and reap it
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$pid"
  [ "$ssp_started" = 1 ] && "$peer/run.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT; trap "exit 130" INT TERM
if [ -n "${BIN:-}" ]; then
  bin=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN"); build="given binary $BIN"
else
  cargo build --release -q 2>"$work/build.log" || { cat "$work/build.log" >&2; die "cargo build --release failed"; }
  bin="$PWD/target/release/kuntalaistili"; build="release build"
fi
[ -x "$bin" ] || die "no binary at $bin"

summary() { grep -E '^SUMMARY' | sed 's/^SUMMARY //'; }
fails() { grep -E '^FAIL' || true; }
ticks() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done; echo "$t"; }
# bench VAR "PIDS" ENV… : one measured wrk run with saml_sso.lua (ENV: COOKIE_FILE, SSO_PATH or
# URLS); sets VAR (the SUMMARY fields), VAR_cpu (server CPU seconds) and VAR_fail (FAIL samples).
# PIDS is a command printing the server's process ids (Apache forks workers during the run).
bench() {
  local var=$1 pids=$2 base=$3 t0 out; shift 3
  t0=$(ticks $($pids))
  out=$(env "$@" wrk -t"$THREADS" -c"$CONNS" -d"$DUR" --timeout 10s -s "$here/saml_sso.lua" "$base")
  printf -v "$var" '%s' "$(printf '%s\n' "$out" | summary)"
  printf -v "${var}_cpu" '%s' "$(awk -v a="$(ticks $($pids))" -v b="$t0" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (a - b) / hz }')"
  printf -v "${var}_fail" '%s' "$(printf '%s\n' "$out" | fails)"
  [ -n "${!var}" ] || die "wrk printed no SUMMARY: $out"
}
warm() { # BASE ENV…: 2 s of load, not measured
  local base=$1; shift
  env "$@" wrk -t"$THREADS" -c"$CONNS" -d2s --timeout 10s -s "$here/saml_sso.lua" "$base" >/dev/null
}
# gen PREFIX BASE PATH [COUNT]: the prepared SP-initiated requests in PREFIX.0 … (one file per wrk
# thread), made right before the run (fresh IssueInstant)
gen() {
  python3 "$here/saml_requests.py" --count "${4:-$REQUESTS}" --files "$THREADS" --out "$1" \
    --path "$3" --destination "$2$3" --issuer "$SP_ENTITY" --acs "$SP_ACS" 2>/dev/null \
    || die "saml_requests.py failed"
}
# check URL COOKIE [--in-response-to]: one answer with curl; prints saml_check.py's description
check() {
  local body st
  body=$(curl -s -w '\n%{http_code}' -H "Cookie: $2" "$1")
  st=${body##*$'\n'}
  [ "$st" = 200 ] || die "check: $1 answered $st: $(printf '%s' "${body%$'\n'*}" | head -c 400)"
  printf '%s' "${body%$'\n'*}" | python3 "$here/saml_check.py" ${3:-} || die "check: $1 did not answer with a usable SAMLResponse"
}
rsa_rate() { # raw RSA-2048 signatures per second, all cores
  openssl speed -seconds "$RSA_SECONDS" -multi "$(nproc)" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}'
}
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
SP_ENTITY="http://127.0.0.1:3003/sp"; SP_ACS="http://127.0.0.1:3003/acs"

rsa_before=$(rsa_rate)
[ -n "$rsa_before" ] || die "openssl speed printed no rsa 2048 line"

# --- Kuntalaistili
unset RUST_LOG
base="http://127.0.0.1:$PORT"
export KUNTALAISTILI_LISTEN="127.0.0.1:$PORT" KUNTALAISTILI_PUBLIC_URL="$base" KUNTALAISTILI_DATA_DIR="$work"
export KUNTALAISTILI_DATABASE_URL="sqlite://$work/kl.db"
# warn, except refused SAML messages (info, one line each, with the reason code)
export KUNTALAISTILI_LOG_LEVEL="warn,kuntalaistili_idp::saml=info"
cli() { "$bin" "$@" 2>>"$work/cli.log" || { cat "$work/cli.log" >&2; die "kuntalaistili $1 $2 failed"; }; }
cli migrate >/dev/null
printf '%s\n' 'bench-password-1' | cli users add bench --password-stdin --given-name Penkki \
  --family-name Testaaja --email bench@example.org >/dev/null
cat >"$work/sp.xml" <<XML
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="$SP_ENTITY">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="$SP_ACS" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
XML
sp_flags=(--name-id-format transient)
[ "$SIGN_RESPONSE" = 1 ] && sp_flags+=(--sign-response)
cli sp add --metadata "$work/sp.xml" "${sp_flags[@]}" --json >/dev/null
"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 400); do
  curl -sf -o /dev/null "$base/readyz" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "server exited before it was ready"; }
  sleep 0.05
done
curl -sf -o /dev/null "$base/readyz" || { cat "$work/serve.log" >&2; die "not ready after 20 s"; }
# SESSIONS password logins, 4 at a time: one kl_session cookie a line.
login() { # N: writes the Cookie header value to $work/ours-cookie.N
  local jar="$work/jar.$1" page csrf st
  page=$(curl -s -c "$jar" "$base/login")
  csrf=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//')
  [ -n "$csrf" ] || { echo "no CSRF token in GET /login" >"$work/ours-cookie.$1"; return; }
  st=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" --data-urlencode "csrf=$csrf" \
    -d username=bench -d password=bench-password-1 -d next=%2Faccount "$base/login")
  sed 's/^#HttpOnly_//' "$jar" | awk -v st="$st" '!/^#/ && NF >= 7 && $6 == "kl_session" {print $6 "=" $7; f = 1}
    END { if (!f) print "login answered " st " without a kl_session cookie" }' >"$work/ours-cookie.$1"
}
t0=$(date +%s%N)
jobs_=()
for i in $(seq "$SESSIONS"); do
  login "$i" & jobs_+=($!)
  [ $(( i % 4 )) -ne 0 ] || { wait "${jobs_[@]}"; jobs_=(); } # not a bare wait: the server is a child too
done
[ ${#jobs_[@]} = 0 ] || wait "${jobs_[@]}"
ours_login_s=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN { printf "%.1f", (a - b) / 1e9 }')
for i in $(seq "$SESSIONS"); do cat "$work/ours-cookie.$i" 2>/dev/null || echo "login $i failed"; done >"$work/ours-cookies"
! grep -qv '^kl_session=' "$work/ours-cookies" || die "login: $(grep -v '^kl_session=' "$work/ours-cookies" | head -1)"
[ "$(sort -u "$work/ours-cookies" | wc -l)" = "$SESSIONS" ] || die "login: fewer than $SESSIONS distinct sessions"
ours_init_path="/saml/sso/init?sp=$(urlenc "$SP_ENTITY")&RelayState=bench"
first=$(head -1 "$work/ours-cookies")
ours_init_desc=$(check "$base$ours_init_path" "$first")
gen "$work/ours-check" "$base" /saml/sso 1
ours_sp_desc=$(check "$base$(cat "$work/ours-check.0")" "$first" --in-response-to)
ours_pids() { echo "$pid"; }
warm "$base" COOKIE_FILE="$work/ours-cookies" SSO_PATH="$ours_init_path"
bench ours_init ours_pids "$base" COOKIE_FILE="$work/ours-cookies" SSO_PATH="$ours_init_path"
gen "$work/ours-urls" "$base" /saml/sso
bench ours_sp ours_pids "$base" COOKIE_FILE="$work/ours-cookies" URLS="$work/ours-urls"
ours_rss=$(ps -o rss= -p "$pid" | awk '{printf "%.0f", $1 / 1024}')
ours_hwm=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
ours_version=$("$bin" --version 2>/dev/null | head -1 || true)
stop "$pid"; pid=
ours_refused=$(grep -c 'SAML message refused' "$work/serve.log" || true)
ours_refused_codes=$(grep 'SAML message refused' "$work/serve.log" | grep -o 'code[=":]*[a-z_]*' \
  | sed 's/code[=":]*//' | sort | uniq -c | awk '{printf "%s%s×%s", sep, $2, $1; sep=", "}' || true)
ours_errors=$({ grep -v 'SAML message refused' "$work/serve.log" || true; } | grep -ci 'error' || true)

# --- SimpleSAMLphp (its own set-up; started here unless it already runs, then left running)
if ! curl -fs -o /dev/null "$ssp/simplesaml/saml2/idp/metadata.php"; then
  "$peer/run.sh" start >"$work/ssp-start.log" 2>&1 || { cat "$work/ssp-start.log" >&2; die "SimpleSAMLphp did not start"; }
  ssp_started=1
  for _ in $(seq 100); do curl -fs -o /dev/null "$ssp/simplesaml/saml2/idp/metadata.php" && break; sleep 0.1; done
fi
curl -fs -o /dev/null "$ssp/simplesaml/saml2/idp/metadata.php" || die "SimpleSAMLphp does not answer at $ssp"
httpd_pid=$(cat "$STATE/run/httpd.pid")
ssp_pids() { echo "$httpd_pid" $(ps --no-headers -o pid= --ppid "$httpd_pid"); }
t0=$(date +%s%N)
python3 "$peer/sso_login.py" --sessions "$SESSIONS" --sp "$SP_ENTITY" --acs "$SP_ACS" \
  --cookies "$work/ssp-cookies" --path-out "$work/ssp-login-path" >"$work/ssp-login.log" 2>&1 \
  || { cat "$work/ssp-login.log" >&2; die "SimpleSAMLphp logins failed"; }
ssp_login_s=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN { printf "%.1f", (a - b) / 1e9 }')
[ "$(grep -c . "$work/ssp-cookies")" = "$SESSIONS" ] || die "SimpleSAMLphp: fewer than $SESSIONS session cookies"
ssp_init_path="$ssp_sso?spentityid=$(urlenc "$SP_ENTITY")&RelayState=bench"
first=$(head -1 "$work/ssp-cookies")
ssp_init_desc=$(check "$ssp$ssp_init_path" "$first")
gen "$work/ssp-check" "$ssp" "$ssp_sso" 1
ssp_sp_desc=$(check "$ssp$(cat "$work/ssp-check.0")" "$first" --in-response-to)
warm "$ssp" COOKIE_FILE="$work/ssp-cookies" SSO_PATH="$ssp_init_path"
bench ssp_init ssp_pids "$ssp" COOKIE_FILE="$work/ssp-cookies" SSO_PATH="$ssp_init_path"
gen "$work/ssp-urls" "$ssp" "$ssp_sso"
bench ssp_sp ssp_pids "$ssp" COOKIE_FILE="$work/ssp-cookies" URLS="$work/ssp-urls"
ssp_rss=$(ps -o rss= -p "$(ssp_pids | tr ' ' ',')" | awk '{s += $1} END {printf "%.0f", s / 1024}')
ssp_pss=$(for p in $(ssp_pids); do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s += $1} END {printf "%.0f", s / 1024}')
ssp_procs=$(ssp_pids | wc -w)
ssp_version=$(dpkg-query -W -f '${Version}' simplesamlphp 2>/dev/null || echo '?')
php_version=$(php -r 'echo PHP_VERSION;' 2>/dev/null || echo '?')
ssp_errors=$(grep -ci 'error' "$STATE/log/apache-error.log" 2>/dev/null || true)

rsa_after=$(rsa_rate)
rsa=$(awk -v a="$rsa_before" -v b="${rsa_after:-$rsa_before}" 'BEGIN { printf "%.0f", (a + b) / 2 }')

field() { printf '%s' "$2" | sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p"; } # field NAME SUMMARY
rps() { field rps "$1"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "–" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "–" }'; }
meets() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "–" && v + 0 >= t) ? "met" : "**not met**" }'; }
failures() { # NAME SUMMARY -> "NAME: …; " when anything failed
  local bad="" k v
  for k in non200 no_saml_response exhausted sockerr; do
    v=$(field "$k" "$2"); [ -n "$v" ] && [ "$v" != 0 ] && bad="$bad $k=$v"
  done
  [ -z "$bad" ] || printf '%s:%s; ' "$1" "$bad"
}
ours_bad="$(failures "ours IdP-initiated" "$ours_init")$(failures "ours SP-initiated" "$ours_sp")"; ours_bad=${ours_bad%; }
ssp_bad="$(failures "SimpleSAMLphp IdP-initiated" "$ssp_init")$(failures "SimpleSAMLphp SP-initiated" "$ssp_sp")"; ssp_bad=${ssp_bad%; }
valid="valid: every answer of ours was a 200 with a SAMLResponse, no prepared request ran out"
[ -z "$ours_bad" ] || valid="**NOT VALID**: $ours_bad"
fail_samples=$(for v in ours_init ours_sp ssp_init ssp_sp; do n="${v}_fail"; printf '%s\n' "${!n}" | sed "/^\$/d; s/^/$v /"; done)
[ -z "$fail_samples" ] || fail_samples=$(printf '\n\n```\n%s\n```' "$fail_samples")
r_init=$(div "$(rps "$ours_init")" "$(rps "$ssp_init")"); r_sp=$(div "$(rps "$ours_sp")" "$(rps "$ssp_sp")")
q_init=$(pct "$(rps "$ours_init")" "$rsa"); q_sp=$(pct "$(rps "$ours_sp")" "$rsa")
row() { # LABEL OURS SSP RATIO PCT
  printf '| %s | %s | %s / %s ms | %s | %s / %s ms | **%s×** | **%s %%** |\n' "$1" "$(rps "$2")" \
    "$(field p50_ms "$2")" "$(field p99_ms "$2")" "$(rps "$3")" "$(field p50_ms "$3")" "$(field p99_ms "$3")" "$4" "$5"
}
cat <<MD
### SAML Web SSO vs SimpleSAMLphp $ssp_version — $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo)
wrk -t$THREADS -c$CONNS -d$DUR after a 2 s warm-up, each server under load alone in turn, wrk on the same cores; $SESSIONS live sessions on each IdP, their cookies rotating over the requests; every answer a 200 HTML form with a SAMLResponse for SP $SP_ENTITY.
Kuntalaistili ($build${ours_version:+, $ours_version}) on SQLite, log level warn; SimpleSAMLphp on PHP $php_version, Apache prefork + mod_php, PHP sessions (the peer's own set-up).
Signatures an answer: ours $([ "$SIGN_RESPONSE" = 1 ] && echo "2 (Response and assertion, SIGN_RESPONSE=1)" || echo "1 (the assertion; our default)"), SimpleSAMLphp as its answers below show (its peer set-up signs the Response and the assertion).
SP-initiated: HTTP-Redirect binding, unsigned AuthnRequests, each with its own ID and a fresh IssueInstant ($REQUESTS prepared per server, each sent once; ours keeps a replay cache, SimpleSAMLphp does not).
Raw RSA-2048: \`openssl speed -seconds $RSA_SECONDS -multi $(nproc) rsa2048\` sign/s, before / after the loads with the servers idle: $rsa_before / ${rsa_after:-–}, mean **$rsa**.
What was answered (one answer of each kind checked before the load):
- ours IdP-initiated: $ours_init_desc
- ours SP-initiated: $ours_sp_desc
- SimpleSAMLphp IdP-initiated: $ssp_init_desc
- SimpleSAMLphp SP-initiated: $ssp_sp_desc

| SSO | Kuntalaistili responses/s | p50 / p99 | SimpleSAMLphp responses/s | p50 / p99 | ours / SSP (target ≥ 10×) | ours / raw RSA sign/s (target ≥ 70 %) |
|---|---|---|---|---|---|---|
$(row "IdP-initiated" "$ours_init" "$ssp_init" "$r_init" "$q_init")
$(row "SP-initiated, HTTP-Redirect" "$ours_sp" "$ssp_sp" "$r_sp" "$q_sp")
| RSS after the load | $ours_rss MB (peak $ours_hwm MB) | | $ssp_rss MB in $ssp_procs Apache processes (PSS $ssp_pss MB) | | | |

Targets: ≥ 10× SimpleSAMLphp — IdP-initiated $(meets "$r_init" 10), SP-initiated $(meets "$r_sp" 10); ≥ 70 % of the raw signing rate — IdP-initiated $(meets "$q_init" 70), SP-initiated $(meets "$q_sp" 70).

Run $valid.${ssp_bad:+ SimpleSAMLphp failures: $ssp_bad.}${fail_samples}

Server CPU seconds during each run (of $(( $(nproc) * dur_s )) on $(nproc) cores, shared with wrk): ours IdP-initiated $ours_init_cpu, SP-initiated $ours_sp_cpu; SimpleSAMLphp (all Apache processes) IdP-initiated $ssp_init_cpu, SP-initiated $ssp_sp_cpu.
Logins before the load ($SESSIONS each): ours $ours_login_s s (4 at a time), SimpleSAMLphp $ssp_login_s s (sequential).
Server logs: ours ${ours_refused:-0} refused SAML messages${ours_refused_codes:+ ($ours_refused_codes)}, $ours_errors other lines with "error"; SimpleSAMLphp Apache error log $ssp_errors lines with "error" (the whole log, not only this run).

Raw: ours IdP-initiated \`$ours_init\`; ours SP-initiated \`$ours_sp\`; SSP IdP-initiated \`$ssp_init\`; SSP SP-initiated \`$ssp_sp\`.
MD
