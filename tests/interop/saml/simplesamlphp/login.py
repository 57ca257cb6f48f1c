#!/usr/bin/python3
"""Play the browser between the SimpleSAMLphp SP (setup.sh) and our IdP.

    login.py IDP_BASE SP_BASE USER PASSWORD [--ssp-log FILE] [--expect-encrypted]

1. GET SP_BASE/sp/whoami.php (calls $as->requireAuth()) and follow everything: SSP's signed
   HTTP-Redirect AuthnRequest to IDP_BASE/saml/sso, our login form (filled with USER/PASSWORD),
   the auto-submit SAMLResponse form (POSTed to SSP's ACS), SSP's redirect back to whoami.php,
   which prints the attributes and NameID SSP accepted as JSON.
2. GET SP_BASE/sp/logout.php ($as->logout()) and follow the chain through IDP_BASE/saml/slo back to
   SSP's SLO endpoint and on to sp/loggedout.php, which reports SSP's saml:sp:LogoutStatus.
3. GET IDP_BASE/account (no redirects): must be 303 to /login, i.e. our IdP session is gone;
   GET SP_BASE/sp/status.php: SSP must no longer be authenticated.

Prints one JSON line with what it saw (every hop's method/URL/status, a summary of each SAML
message: type, binding, signatures, encryption algorithms, status) and exits 0 only if all checks
passed. --ssp-log adds the tail of SSP's log when something fails.
"""

import argparse
import base64
import html
import html.parser
import json
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

import requests

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}
MAX_HOPS = 25


class Forms(html.parser.HTMLParser):
    """Collects <form>s with their action/method and <input name value> fields."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "method": (a.get("method") or "get").lower(), "fields": {}})
        elif tag in ("input", "textarea", "button") and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def parse_html(body):
    p = Forms()
    p.feed(body)
    return p


def summarize_saml(b64, binding, query=None):
    """Decode a SAMLRequest/SAMLResponse and describe it (never fails)."""
    out = {"binding": binding}
    try:
        raw = base64.b64decode(b64)
        xml = zlib.decompress(raw, -15) if binding == "redirect" else raw
        root = ET.fromstring(xml)
    except Exception as e:  # noqa: BLE001 - report, don't crash
        out["decode_error"] = repr(e)
        return out
    out["type"] = root.tag.split("}")[-1]
    for k in ("Destination", "InResponseTo", "ID"):
        if root.get(k) is not None:
            out[k.lower()] = root.get(k)
    iss = root.find("saml:Issuer", NS)
    out["issuer"] = iss.text if iss is not None else None
    out["xml_signature"] = root.find("ds:Signature", NS) is not None
    if query is not None:
        out["sig_alg"] = query.get("SigAlg", [None])[0]
        out["redirect_signature"] = "Signature" in query
    st = root.find("samlp:Status/samlp:StatusCode", NS)
    if st is not None:
        out["status"] = st.get("Value")
        sub = st.find("samlp:StatusCode", NS)
        if sub is not None:
            out["sub_status"] = sub.get("Value")
        msg = root.find("samlp:Status/samlp:StatusMessage", NS)
        if msg is not None:
            out["status_message"] = msg.text
    nip = root.find("samlp:NameIDPolicy", NS)
    if nip is not None:
        out["name_id_policy"] = nip.get("Format")
    if out["type"] == "AuthnRequest":
        out["acs_url"] = root.get("AssertionConsumerServiceURL")
        out["protocol_binding"] = root.get("ProtocolBinding")
    a = root.find("saml:Assertion", NS)
    if a is not None:
        out["assertion"] = "plain"
        out["assertion_signed"] = a.find("ds:Signature", NS) is not None
        sm = a.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS)
        if sm is not None:
            out["assertion_sig_alg"] = sm.get("Algorithm")
    ea = root.find("saml:EncryptedAssertion", NS)
    if ea is not None:
        out["assertion"] = "encrypted"
        dm = ea.find("xenc:EncryptedData/xenc:EncryptionMethod", NS)
        km = ea.find(".//xenc:EncryptedKey/xenc:EncryptionMethod", NS)
        out["data_enc_alg"] = dm.get("Algorithm") if dm is not None else None
        out["key_transport_alg"] = km.get("Algorithm") if km is not None else None
        if km is not None:
            dg = km.find("ds:DigestMethod", NS)
            out["key_transport_digest"] = dg.get("Algorithm") if dg is not None else None
    sm = root.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS)
    if sm is not None:
        out["sig_alg_xml"] = sm.get("Algorithm")
    return out


class Browser:
    def __init__(self, user, password, idp_base):
        self.s = requests.Session()
        self.s.headers["User-Agent"] = "kuntalaistili-ssp-interop/1"
        self.user, self.password = user, password
        self.idp_base = idp_base
        self.hops = []
        self.saml = []

    def _record(self, method, url, r):
        u = urllib.parse.urlsplit(url)
        self.hops.append({"method": method, "url": f"{u.scheme}://{u.netloc}{u.path}", "status": r.status_code})
        q = urllib.parse.parse_qs(u.query)
        for k in ("SAMLRequest", "SAMLResponse"):
            if k in q:
                self.saml.append({"to": f"{u.netloc}{u.path}", **summarize_saml(q[k][0], "redirect", q)})

    def browse(self, url, method="GET", data=None):
        """Follow redirects, our login form and SAML auto-submit forms until some other page."""
        for _ in range(MAX_HOPS):
            if method == "GET":
                r = self.s.get(url, allow_redirects=False, timeout=30)
            else:
                r = self.s.post(url, data=data, allow_redirects=False, timeout=30)
            self._record(method, url, r)
            if r.status_code in (301, 302, 303, 307):
                nxt = urllib.parse.urljoin(url, r.headers["Location"])
                if r.status_code == 307 and method == "POST":
                    url = nxt
                    continue
                url, method, data = nxt, "GET", None
                continue
            if r.status_code != 200 or "html" not in r.headers.get("Content-Type", ""):
                return r, url
            page = parse_html(r.text)
            form = next((f for f in page.forms if "SAMLResponse" in f["fields"] or "SAMLRequest" in f["fields"]), None)
            if form is not None:
                action = urllib.parse.urljoin(url, html.unescape(form["action"]))
                for k in ("SAMLRequest", "SAMLResponse"):
                    if k in form["fields"]:
                        u = urllib.parse.urlsplit(action)
                        self.saml.append({"to": f"{u.netloc}{u.path}", **summarize_saml(form["fields"][k], "post")})
                url, method, data = action, "POST", form["fields"]
                continue
            login = next((f for f in page.forms if "username" in f["fields"] and "password" in f["fields"]), None)
            if login is not None:
                if getattr(self, "_logged_in_once", False):
                    return r, url  # a second login form means the first attempt failed
                self._logged_in_once = True
                fields = dict(login["fields"])
                fields.update(username=self.user, password=self.password)
                url = urllib.parse.urljoin(url, html.unescape(login["action"]) or url)
                method, data = "POST", fields
                continue
            return r, url
        raise RuntimeError(f"more than {MAX_HOPS} hops")


def page_error(r):
    """Short description of an unexpected page (SSP error pages carry the exception text)."""
    ct = r.headers.get("Content-Type", "")
    if "html" in ct:
        return " | ".join(parse_html(r.text).text)[:1500]
    return r.text[:1500]


def tail(path, n=25):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readlines()[-n:]
    except OSError as e:
        return [repr(e)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("idp_base")
    ap.add_argument("sp_base")
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("--ssp-log", help="SSP log file, tail included on failure")
    ap.add_argument("--expect-encrypted", action="store_true", help="fail unless the assertion arrived encrypted")
    a = ap.parse_args()
    idp, sp = a.idp_base.rstrip("/"), a.sp_base.rstrip("/")
    b = Browser(a.user, a.password, idp)
    res = {"ok": False, "checks": {}}
    checks = res["checks"]

    # --- 1. SP-initiated login -------------------------------------------------------------
    t0 = time.perf_counter()
    r, url = b.browse(f"{sp}/sp/whoami.php")
    res["login_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    res["login_final"] = {"url": url, "status": r.status_code}
    who = None
    if r.status_code == 200 and "json" in r.headers.get("Content-Type", ""):
        who = r.json()
        res["attributes"] = who.get("attributes")
        res["attributes_friendly"] = who.get("attributes_friendly")
        res["name_id"] = who.get("name_id")
        res["sp_session"] = {k: who.get(k) for k in ("idp", "session_index", "authn_context", "authn_instant", "expire")}
    else:
        res["login_error"] = page_error(r)
    checks["login"] = bool(who and who.get("authenticated") and who.get("attributes") and who.get("name_id"))
    resp = next((m for m in b.saml if m.get("type") == "Response"), None)
    if a.expect_encrypted:
        checks["assertion_encrypted"] = bool(resp and resp.get("assertion") == "encrypted")
    login_hops = len(b.hops)

    # --- 2. SP-initiated logout --------------------------------------------------------------
    if checks["login"]:
        t0 = time.perf_counter()
        r, url = b.browse(f"{sp}/sp/logout.php")
        res["logout_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        res["logout_final"] = {"url": url, "status": r.status_code}
        lo = None
        if r.status_code == 200 and "json" in r.headers.get("Content-Type", ""):
            lo = r.json()
            res["logout_status"] = lo.get("logout_status")
        else:
            res["logout_error"] = page_error(r)
        checks["logout_completed"] = bool(lo and lo.get("completed"))

        # --- 3. both sessions gone ---------------------------------------------------------
        r = b.s.get(f"{idp}/account", allow_redirects=False, timeout=30)
        loc = r.headers.get("Location", "")
        res["idp_account_after_logout"] = {"status": r.status_code, "location": loc}
        checks["idp_session_gone"] = r.status_code == 303 and urllib.parse.urlsplit(loc).path.endswith("/login")
        r = b.s.get(f"{sp}/sp/status.php", allow_redirects=False, timeout=30)
        checks["sp_session_gone"] = r.status_code == 200 and r.json().get("authenticated") is False

    res["hops_login"] = b.hops[:login_hops]
    res["hops_logout"] = b.hops[login_hops:]
    res["saml_messages"] = b.saml
    res["ok"] = all(checks.values()) and len(checks) >= 4
    if not res["ok"] and a.ssp_log:
        res["ssp_log_tail"] = [line.rstrip("\n") for line in tail(a.ssp_log)]
    print(json.dumps(res, ensure_ascii=False))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
