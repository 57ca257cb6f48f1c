#!/usr/bin/python3
"""Play the browser between the Shibboleth SP (setup.sh) and our IdP, once per binding.

    login.py IDP_BASE SP_BASE USER PASSWORD

For each of "redirect" (/secure/, session initiator /Shibboleth.sso/Login) and "post"
(/secure-post/, /Shibboleth.sso/LoginPost):
1. GET the protected page and follow everything: Shibboleth's signed AuthnRequest to
   IDP_BASE/saml/sso (HTTP-Redirect or an auto-submitted HTTP-POST form), our login form, the
   SAMLResponse form to Shibboleth's ACS, and back to the page (200 with its text).
2. GET SP_BASE/Shibboleth.sso/Session (JSON, attribute values shown): what reached the SP.
3. GET SP_BASE/Shibboleth.sso/Logout?return=SP_BASE/loggedout.html and follow the SP-initiated
   SLO through IDP_BASE/saml/slo back to Shibboleth's SLO endpoint and on to loggedout.html.
4. GET IDP_BASE/account (no redirects): 303 to /login, the IdP session is gone; the SP's
   Session handler shows no session.

Prints one JSON line {"ok": ..., "runs": {"redirect": {...}, "post": {...}}} and exits 0 only when
every check of both runs passed. Uses the SimpleSAMLphp driver's browser (../simplesamlphp).
"""

import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "simplesamlphp"))
from login import Browser, page_error  # noqa: E402  (the same browser as the SSP interop test)

PAGES = {"redirect": ("/secure/", "secret"), "post": ("/secure-post/", "secret-post")}


def session(b, sp):
    r = b.s.get(f"{sp}/Shibboleth.sso/Session", allow_redirects=False, timeout=30)
    try:
        return r.json()
    except ValueError:
        return {"status": r.status_code, "body": r.text[:500]}


def run(idp, sp, user, password, binding):
    b = Browser(user, password, idp)
    path, text = PAGES[binding]
    out = {"checks": {}}
    c = out["checks"]

    r, url = b.browse(f"{sp}{path}")
    out["login_final"] = {"url": url, "status": r.status_code}
    c["login"] = r.status_code == 200 and r.text.strip() == text
    if not c["login"]:
        out["login_error"] = page_error(r)
    req = next((m for m in b.saml if m.get("type") == "AuthnRequest"), {})
    resp = next((m for m in b.saml if m.get("type") == "Response"), {})
    out["authn_request"], out["response"] = req, resp
    c["request_binding"] = req.get("binding") == binding
    if binding == "redirect":
        c["request_signed"] = bool(req.get("redirect_signature"))
        out["request_sig_alg"] = req.get("sig_alg")
    else:
        c["request_signed"] = bool(req.get("xml_signature"))
        out["request_sig_alg"] = req.get("sig_alg_xml")
    c["assertion_encrypted"] = resp.get("assertion") == "encrypted"

    s = session(b, sp)
    out["session"] = s
    attrs = {}
    for a in s.get("attributes", []) if isinstance(s, dict) else []:
        attrs.setdefault(a.get("name"), []).extend(a.get("values", []))
    out["attributes"] = attrs
    c["attributes"] = bool(attrs.get("mail")) and bool(attrs.get("persistent-id"))

    login_hops = len(b.hops)
    ret = f"{sp}/loggedout.html"
    r, url = b.browse(f"{sp}/Shibboleth.sso/Logout?return={urllib.parse.quote(ret, safe='')}")
    out["logout_final"] = {"url": url, "status": r.status_code}
    lreq = next((m for m in b.saml if m.get("type") == "LogoutRequest"), {})
    lresp = next((m for m in b.saml if m.get("type") == "LogoutResponse"), {})
    out["logout_request"], out["logout_response"] = lreq, lresp
    c["logout_request_signed"] = bool(lreq.get("redirect_signature") or lreq.get("xml_signature"))
    c["logout_success"] = lresp.get("status") == "urn:oasis:names:tc:SAML:2.0:status:Success"
    c["logout_returned"] = url == ret and r.status_code == 200
    if not c["logout_returned"]:
        out["logout_error"] = page_error(r)
    r = b.s.get(f"{idp}/account", allow_redirects=False, timeout=30)
    loc = r.headers.get("Location", "")
    c["idp_session_gone"] = r.status_code == 303 and urllib.parse.urlsplit(loc).path.endswith("/login")
    after = session(b, sp)
    out["session_after_logout"] = after
    c["sp_session_gone"] = not (isinstance(after, dict) and after.get("attributes"))
    out["hops_login"], out["hops_logout"] = b.hops[:login_hops], b.hops[login_hops:]
    out["ok"] = all(c.values())
    return out


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    idp, sp, user, password = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4]
    runs = {b: run(idp, sp, user, password, b) for b in ("redirect", "post")}
    res = {"ok": all(r["ok"] for r in runs.values()), "runs": runs}
    print(json.dumps(res, ensure_ascii=False))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
