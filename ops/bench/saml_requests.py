#!/usr/bin/env python3
"""Pre-generates SP-initiated SSO request paths (HTTP-Redirect binding) for ops/bench/saml.sh.

wrk's Lua has no DEFLATE, and an IdP that keeps a replay cache refuses a reused AuthnRequest ID,
so every request of a run needs its own, prepared beforehand: one line per request,
    PATH?SAMLRequest=<urlencode(base64(raw DEFLATE(AuthnRequest)))>&RelayState=bench
split over --files files (PREFIX.0, PREFIX.1, …; one per wrk thread, so that no two threads send
the same ID). Every AuthnRequest has a fresh ID and an IssueInstant of now (generate right before
the run: IdPs accept an IssueInstant only within a few minutes of their clock).

  saml_requests.py --count 120000 --files 2 --out /tmp/x/urls --path /saml/sso \\
      --destination http://127.0.0.1:18095/saml/sso --issuer http://127.0.0.1:3003/sp \\
      --acs http://127.0.0.1:3003/acs
"""
import argparse
import base64
import datetime
import secrets
import sys
import urllib.parse
import zlib


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, required=True, help="requests in all")
    ap.add_argument("--files", type=int, default=2, help="output files (one per wrk thread)")
    ap.add_argument("--out", required=True, help="output prefix (PREFIX.0, PREFIX.1, …)")
    ap.add_argument("--path", required=True, help="the IdP's SSO path, e.g. /saml/sso")
    ap.add_argument("--destination", required=True, help="absolute URL of the SSO endpoint")
    ap.add_argument("--issuer", required=True, help="the SP's entity ID")
    ap.add_argument("--acs", required=True, help="the SP's AssertionConsumerService URL")
    ap.add_argument("--relay", default="bench", help="RelayState ('' for none)")
    a = ap.parse_args()

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = secrets.token_hex(6)  # IDs unique across runs too
    esc = lambda s: s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    head = ('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_b' + run)
    tail = ('" Version="2.0" IssueInstant="' + now + '" Destination="' + esc(a.destination)
            + '" AssertionConsumerServiceURL="' + esc(a.acs)
            + '" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
            + '<saml:Issuer>' + esc(a.issuer) + '</saml:Issuer>'
            + '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient" '
            + 'AllowCreate="true"/></samlp:AuthnRequest>')
    relay = "&RelayState=" + urllib.parse.quote(a.relay, safe="") if a.relay else ""
    prefix = a.path + "?SAMLRequest="
    outs = [open(f"{a.out}.{k}", "w", buffering=1 << 20) for k in range(a.files)]
    quote = urllib.parse.quote
    for i in range(a.count):
        xml = (head + format(i, "08x") + tail).encode()
        c = zlib.compressobj(6, zlib.DEFLATED, -15)  # raw DEFLATE (HTTP-Redirect binding)
        b64 = base64.b64encode(c.compress(xml) + c.flush()).decode()
        outs[i % a.files].write(prefix + quote(b64, safe="") + relay + "\n")
    for f in outs:
        f.close()
    print(f"{a.count} requests in {a.files} files {a.out}.*, IssueInstant {now}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
