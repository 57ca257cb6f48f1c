"""A SAML service provider built on pysaml2 (Debian's python3-pysaml2), driven against our IdP.

    sp.py metadata DIR ENTITY_ID SP_BASE          writes DIR/sp.xml (the SP's metadata)
    sp.py login DIR ENTITY_ID SP_BASE IDP USER PASSWORD BINDING
        logs in through the IdP (SP-initiated; BINDING = redirect or post), lets pysaml2 check
        the response (signature, InResponseTo, audience, recipient, decryption), then logs out
        SP-initiated over HTTP-Redirect and checks that the IdP session is gone.

DIR holds the SP's key.pem and cert.pem. The SP never listens: its ACS and SLO addresses are
only where the IdP sends the browser, and this script plays the browser (requests) too.
Prints one JSON line with what it saw.
"""

import base64
import html
import json
import re
import sys
import urllib.parse

import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT


def config(d, entity_id, sp_base, idp_metadata=None):
    c = {
        "entityid": entity_id,
        "key_file": f"{d}/key.pem",
        "cert_file": f"{d}/cert.pem",
        "encryption_keypairs": [{"key_file": f"{d}/key.pem", "cert_file": f"{d}/cert.pem"}],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(f"{sp_base}/acs", BINDING_HTTP_POST)],
                    "single_logout_service": [(f"{sp_base}/slo", BINDING_HTTP_REDIRECT)],
                },
                "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
                "authn_requests_signed": True,
                "logout_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "allow_unsolicited": False,
                "name_id_format": NAMEID_FORMAT_PERSISTENT,
            }
        },
        "allow_unknown_attributes": True,
    }
    if idp_metadata:
        c["metadata"] = {"local": [idp_metadata]}
    cfg = SPConfig()
    cfg.load(c)
    return cfg


def form_fields(page):
    action = re.search(r'<form[^>]* action="([^"]+)"', page)
    fields = dict(
        (m.group(1), html.unescape(m.group(2)))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    )
    return (html.unescape(action.group(1)) if action else None), fields


def login_form(session, page, base, user, password):
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    if not found:
        raise SystemExit(f"no login form in the IdP's answer:\n{page[:3000]}")
    csrf = found.group(1)
    nxt = html.unescape(re.search(r'name="next" value="([^"]*)"', page).group(1))
    return session.post(
        f"{base}/login",
        data={"username": user, "password": password, "csrf": csrf, "next": nxt},
        allow_redirects=True,
    )


def main():
    cmd, d, entity_id, sp_base = sys.argv[1:5]
    if cmd == "metadata":
        xml = create_metadata_string(None, config=config(d, entity_id, sp_base), valid=24)
        with open(f"{d}/sp.xml", "wb") as f:
            f.write(xml if isinstance(xml, bytes) else xml.encode())
        print(json.dumps({"written": f"{d}/sp.xml"}))
        return

    idp, user, password, binding = sys.argv[5:9]
    md = requests.get(f"{idp}/saml/metadata", timeout=10)
    md.raise_for_status()
    with open(f"{d}/idp.xml", "w") as f:
        f.write(md.text)
    client = Saml2Client(config(d, entity_id, sp_base, f"{d}/idp.xml"))
    idp_entity = f"{idp}/saml/metadata"
    browser = requests.Session()
    out = {}

    if binding == "redirect":
        req_id, info = client.prepare_for_authenticate(
            entityid=idp_entity, relay_state="/after-login", binding=BINDING_HTTP_REDIRECT
        )
        location = dict(info["headers"])["Location"]
        page = browser.get(location, allow_redirects=True, timeout=10)
    else:
        req_id, info = client.prepare_for_authenticate(
            entityid=idp_entity, relay_state="/after-login", binding=BINDING_HTTP_POST
        )
        action, fields = form_fields(info["data"])
        page = browser.post(action, data=fields, allow_redirects=True, timeout=10)
    out["login_page"] = page.status_code
    page = login_form(browser, page.text, idp, user, password)
    action, fields = form_fields(page.text)
    out["acs"] = action
    out["relay_state"] = fields.get("RelayState")
    resp = client.parse_authn_request_response(
        fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={req_id: "/after-login"}
    )
    out["in_response_to"] = resp.in_response_to == req_id
    out["encrypted"] = b"EncryptedAssertion" in base64.b64decode(fields["SAMLResponse"])
    out["assertion_signed"] = resp.assertion.signature is not None
    out["name_id"] = resp.name_id.text
    out["name_id_format"] = resp.name_id.format
    out["attributes"] = resp.get_identity()
    out["session_index"] = resp.assertion.authn_statement[0].session_index

    # A second request for the same person: SSO without a login page.
    req2, info2 = client.prepare_for_authenticate(entityid=idp_entity, binding=BINDING_HTTP_REDIRECT)
    page2 = browser.get(dict(info2["headers"])["Location"], allow_redirects=True, timeout=10)
    _, f2 = form_fields(page2.text)
    resp2 = client.parse_authn_request_response(
        f2["SAMLResponse"], BINDING_HTTP_POST, outstanding={req2: "/"}
    )
    out["sso_same_name_id"] = resp2.name_id.text == out["name_id"]

    # SP-initiated logout over HTTP-Redirect, signed.
    result = client.global_logout(resp.name_id, reason="", expire=None, sign=True)
    binding_used, http = result[idp_entity]
    location = dict(http["headers"])["Location"]
    back = browser.get(location, allow_redirects=False, timeout=10)
    out["logout_status"] = back.status_code
    target = back.headers.get("Location", "")
    out["logout_to_slo"] = target.startswith(f"{sp_base}/slo")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(target).query)
    lr = client.parse_logout_request_response(query["SAMLResponse"][0], BINDING_HTTP_REDIRECT)
    out["logout_success"] = lr.status_ok()
    account = browser.get(f"{idp}/account", allow_redirects=False, timeout=10)
    out["account_after_logout"] = account.status_code
    print(json.dumps(out))


main()
