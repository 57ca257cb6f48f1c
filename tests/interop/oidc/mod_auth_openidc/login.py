#!/usr/bin/python3
"""Play the browser between two mod_auth_openidc relying parties (setup.sh) and our IdP.

    login.py IDP_BASE RP_A RP_B USER PASSWORD

1. GET RP_A/protected/whoami: the code flow (PKCE) through IDP_BASE/oauth2/authorize and our login
   form back to the CGI, which prints what mod_auth_openidc passed on (REMOTE_USER, claims, the
   serialized ID token, whose header names the signing algorithm).
2. GET RP_B/protected/whoami in the same browser: single sign-on, no login form this time.
3. RP-initiated logout at RP_A: RP_A/protected/redirect_uri?logout=RP_A/loggedout.html, through
   IDP_BASE/oauth2/logout back to loggedout.html.
4. The IdP session is gone (IDP_BASE/account answers 303 to /login), RP_A's session is gone, and
   RP_B's session is gone too — ended by the IdP's back-channel logout token to
   RP_B/protected/redirect_uri?logout=backchannel: RP_B now sends the browser to the IdP again.

Prints one JSON line and exits 0 only when every check passed. Uses the SimpleSAMLphp driver's
browser (tests/interop/saml/simplesamlphp/login.py).
"""

import base64
import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "saml", "simplesamlphp"))
from login import Browser, page_error  # noqa: E402


def jwt_header(token):
    try:
        part = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, IndexError, AttributeError):
        return {}


def whoami(b, rp):
    before = len(b.hops)
    r, url = b.browse(f"{rp}/protected/whoami")
    out = {"final": {"url": url, "status": r.status_code}, "hops": b.hops[before:]}
    if r.status_code == 200 and "json" in r.headers.get("Content-Type", ""):
        env = r.json()
        out["remote_user"] = env.get("REMOTE_USER")
        out["email"] = env.get("OIDC_CLAIM_email")
        out["sub"] = env.get("OIDC_CLAIM_sub")
        out["given_name"] = env.get("OIDC_CLAIM_given_name")
        out["id_token_alg"] = jwt_header(env.get("OIDC_id_token", "")).get("alg")
        out["id_token_iss"] = json.loads(env.get("OIDC_id_token_payload") or "{}").get("iss")
    else:
        out["error"] = page_error(r)
    out["login_form_posted"] = any(h["method"] == "POST" and h["url"].endswith("/login") for h in out["hops"])
    return out


def bounced_to_idp(b, rp, idp):
    """The protected page without following redirects: where does the RP send the browser?"""
    r = b.s.get(f"{rp}/protected/whoami", allow_redirects=False, timeout=30)
    loc = r.headers.get("Location", "")
    return {"status": r.status_code, "to_authorize": loc.startswith(f"{idp}/oauth2/authorize")}


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    idp, a, bb = (x.rstrip("/") for x in sys.argv[1:4])
    user, password = sys.argv[4], sys.argv[5]
    b = Browser(user, password, idp)
    res = {"checks": {}}
    c = res["checks"]

    res["a"] = whoami(b, a)
    c["a_login"] = bool(res["a"].get("remote_user")) and res["a"]["login_form_posted"]
    res["b"] = whoami(b, bb)
    c["b_login"] = bool(res["b"].get("remote_user"))
    c["b_silent_sso"] = c["b_login"] and not res["b"]["login_form_posted"]
    c["same_user"] = c["b_login"] and res["a"].get("remote_user") == res["b"].get("remote_user")

    ret = f"{a}/loggedout.html"
    before = len(b.hops)
    r, url = b.browse(f"{a}/protected/redirect_uri?logout={urllib.parse.quote(ret, safe='')}")
    res["logout"] = {"final": {"url": url, "status": r.status_code}, "hops": b.hops[before:]}
    c["logout_via_idp"] = any(h["url"] == f"{idp}/oauth2/logout" for h in res["logout"]["hops"])
    c["logout_returned"] = url == ret and r.status_code == 200
    if not c["logout_returned"]:
        res["logout"]["error"] = page_error(r)

    r = b.s.get(f"{idp}/account", allow_redirects=False, timeout=30)
    loc = r.headers.get("Location", "")
    c["idp_session_gone"] = r.status_code == 303 and urllib.parse.urlsplit(loc).path.endswith("/login")
    res["a_after"] = bounced_to_idp(b, a, idp)
    res["b_after"] = bounced_to_idp(b, bb, idp)
    c["a_session_gone"] = res["a_after"]["to_authorize"]
    c["b_session_gone"] = res["b_after"]["to_authorize"]

    res["ok"] = all(c.values())
    print(json.dumps(res, ensure_ascii=False))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
