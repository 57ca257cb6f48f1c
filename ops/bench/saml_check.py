#!/usr/bin/env python3
"""Checks one SSO answer for ops/bench/saml.sh and describes what was measured.

Reads the HTML of an HTTP-POST binding form on standard input; exits 1 unless it carries a
SAMLResponse with a success status (and, with --in-response-to, one answering that request).
Prints one line: what is signed, with which algorithm and key size, whether the assertion is
encrypted, how many attributes, and the size of the SAMLResponse, e.g.
  assertion signed (rsa-sha256, RSA 2048-bit), not encrypted, NameID transient, 5 attributes, 6 012 bytes
Only the standard library and the openssl command line (for the key size).
  curl -s … | saml_check.py [--in-response-to]
"""
import argparse
import base64
import html
import re
import subprocess
import sys


def key_bits(cert_b64: str) -> str:
    pem = "-----BEGIN CERTIFICATE-----\n" + re.sub(r"\s+", "", cert_b64) + "\n-----END CERTIFICATE-----\n"
    try:
        out = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem.encode(),
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return "key ?"
    m = re.search(r"Public-Key: \((\d+) bit\)", out)
    kind = "RSA" if "rsaEncryption" in out else ("EC" if "id-ecPublicKey" in out else "?")
    return f"{kind} {m.group(1)}-bit" if m else "key ?"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in-response-to", action="store_true",
                    help="the response must answer an AuthnRequest (SP-initiated)")
    a = ap.parse_args()
    page = sys.stdin.read()
    m = re.search(r'name="SAMLResponse"\s+value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"\s+name="SAMLResponse"', page)
    if not m:
        print("no SAMLResponse in the answer: " + re.sub(r"\s+", " ", page)[:300])
        return 1
    b64 = html.unescape(m.group(1))
    xml = base64.b64decode(b64).decode("utf-8", "replace")
    status = re.search(r'StatusCode\s+Value="([^"]+)"', xml)
    if not status or not status.group(1).endswith(":status:Success"):
        print("not a success: " + (status.group(1) if status else "no StatusCode") + " " + xml[:300])
        return 1
    if a.in_response_to and not re.search(r'<[\w:]*Response\b[^>]*\bInResponseTo="', xml):
        print("the Response answers no request (no InResponseTo)")
        return 1
    encrypted = re.search(r"<[\w:]*EncryptedAssertion\b", xml) is not None
    # Which elements carry an enveloped signature: a Signature whose Reference URI names an ID.
    signed = []
    for ref in re.findall(r'<[\w:]*Reference\b[^>]*\bURI="#([^"]+)"', xml):
        el = re.search(r'<[\w:]*(Response|Assertion)\b[^>]*\bID="' + re.escape(ref) + '"', xml)
        signed.append(el.group(1).lower() if el else "?")
    algs = sorted({a.rsplit("#", 1)[-1] for a in re.findall(r'SignatureMethod\s+Algorithm="([^"]+)"', xml)})
    certs = re.findall(r"<[\w:]*X509Certificate>([^<]+)<", xml)
    bits = key_bits(certs[0]) if certs else "no certificate in KeyInfo"
    nameid = re.search(r'<[\w:]*NameID\b[^>]*\bFormat="[^"]*:([^":]+)"', xml)
    attrs = len(re.findall(r"<[\w:]*Attribute\b", xml))
    what = " and ".join(signed) if signed else "nothing"
    print(f"{what} signed ({', '.join(algs) or '-'}, {bits}), "
          f"{'assertion encrypted' if encrypted else 'not encrypted'}, "
          f"NameID {nameid.group(1) if nameid else '?'}, {attrs} attributes, "
          f"{len(b64)} bytes of SAMLResponse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
