#!/usr/bin/env python3
"""Log in to the SimpleSAMLphp bench peer N times and keep each session's cookies (stdlib only).

Each login is an SP-initiated SSO over the HTTP-Redirect binding, as a browser would do it:
  1. GET SSOService.php?SAMLRequest=…   -> redirect to the username/password page
  2. GET that page                        -> the form with its AuthState
  3. POST the credentials                 -> (after any redirects) a page with a SAMLResponse
  4. the same SSO request again           -> a SAMLResponse at once, from the live session
Writes one Cookie header value a line to --cookies (for ops/bench/saml.sh and wrk) and the SSO
request path to --path-out; prints the timing of the first and the last login.
"""
import argparse
import base64
import datetime
import html
import http.cookiejar
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

BASE = "http://127.0.0.1:3002/simplesaml"
SSO_PATH = "/simplesaml/saml2/idp/SSOService.php"


def redirect_query(sp_entity, acs):
    """A fresh unsigned AuthnRequest, raw-deflated and base64'd for the HTTP-Redirect binding."""
    instant = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    request = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
        ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"'
        f' ID="_{secrets.token_hex(16)}" Version="2.0" IssueInstant="{instant}"'
        f' Destination="{BASE}/saml2/idp/SSOService.php" AssertionConsumerServiceURL="{acs}"'
        ' ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{sp_entity}</saml:Issuer>"
        '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient" AllowCreate="true"/>'
        "</samlp:AuthnRequest>"
    )
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = deflate.compress(request.encode()) + deflate.flush()
    return "?" + urllib.parse.urlencode({"SAMLRequest": base64.b64encode(data).decode(), "RelayState": "bench"})


class KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand, so that each step is timed and checked."""

    def redirect_request(self, *args, **kwargs):
        return None


def one_login(query, user, password):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), KeepRedirects)
    steps = {}

    def fetch(step, url, data=None):
        started = time.perf_counter()
        try:
            with opener.open(url, data=data) as r:
                status, headers, body = r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read().decode()
        steps[step] = steps.get(step, 0.0) + time.perf_counter() - started
        return status, headers, body

    sso = "http://127.0.0.1:3002" + SSO_PATH + query
    status, headers, _ = fetch("sso", sso)
    if status not in (302, 303):
        raise SystemExit(f"SSO request answered {status}, not a redirect to the login page")
    form_url = headers["Location"]
    status, _, page = fetch("form", form_url)
    found = re.search(r'name="AuthState" value="([^"]+)"', page)
    if status != 200 or not found:
        raise SystemExit(f"login page answered {status} without an AuthState")
    fields = {"username": user, "password": password, "AuthState": html.unescape(found.group(1))}
    status, headers, page = fetch("credentials", form_url.split("?")[0], urllib.parse.urlencode(fields).encode())
    while status in (302, 303):
        status, headers, page = fetch("credentials", headers["Location"])
    if status != 200 or "SAMLResponse" not in page:
        raise SystemExit(f"login answered {status} without a SAMLResponse: {page[:300]}")
    status, _, again = fetch("sso_with_session", sso)
    if status != 200 or "SAMLResponse" not in again:
        raise SystemExit(f"SSO with the new session answered {status} without a SAMLResponse")
    response = base64.b64decode(html.unescape(re.search(r'name="SAMLResponse" value="([^"]+)"', page).group(1)))
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return steps, cookie, response.decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--sp", default="http://127.0.0.1:3003/sp")
    ap.add_argument("--acs", default="http://127.0.0.1:3003/acs")
    ap.add_argument("--user", default="student")
    ap.add_argument("--password", default="studentpass")
    ap.add_argument("--cookies", required=True, help="file: one Cookie header value a line")
    ap.add_argument("--path-out", required=True, help="file: the SSO request path")
    args = ap.parse_args()
    query = redirect_query(args.sp, args.acs)
    cookies = []
    for n in range(args.sessions):
        started = time.perf_counter()
        steps, cookie, response = one_login(query, args.user, args.password)
        cookies.append(cookie)
        if n in (0, args.sessions - 1):
            took = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in steps.items())
            print(f"login {n + 1}: {(time.perf_counter() - started) * 1000:.1f} ms ({took})")
        if n == 0:
            print(f"first SAMLResponse: {len(response)} bytes, {len(re.findall(r'<ds:Signature[ >]', response))} signature(s)")
    with open(args.cookies, "w") as f:
        f.write("\n".join(cookies) + "\n")
    with open(args.path_out, "w") as f:
        f.write(SSO_PATH + query + "\n")
    print(f"{len(cookies)} sessions written to {args.cookies}")


if __name__ == "__main__":
    main()
