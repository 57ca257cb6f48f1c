//! The SAML 2.0 IdP: interop with a real SP (pysaml2), flows, the SP registry, and the attack
//! catalogue. `TestSp` is a service provider written here for driving requests byte by byte; the
//! interop test uses one not written here.

mod algorithms;
mod flows;
mod interop;
mod registry;
mod security;
mod slo_names;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_metadata::saml::keys::{self, SamlSigner};
use kuntalaistili_metadata::saml::metadata::saml_time;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml::{self, Element};
use kuntalaistili_tests::{field_from, TestApp};

pub const PASSWORD: &str = "correct horse battery";

/// An SP for tests: its own key, metadata, and AuthnRequests built as asked.
pub struct TestSp {
    pub entity_id: String,
    pub acs: String,
    pub slo: String,
    pub signer: SamlSigner,
}

/// What goes into an AuthnRequest.
#[derive(Clone)]
pub struct Req {
    pub id: String,
    pub issuer: Option<String>,
    pub issue_instant: String,
    pub destination: Option<String>,
    pub acs: Option<String>,
    pub force: bool,
    pub passive: bool,
    pub format: Option<String>,
    /// Extra XML right after the Issuer (and the signature).
    pub extra: String,
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let lines: Vec<&str> = b
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl TestSp {
    pub fn new(name: &str) -> TestSp {
        TestSp {
            entity_id: format!("https://{name}.sp.test/metadata"),
            acs: format!("https://{name}.sp.test/acs"),
            slo: format!("https://{name}.sp.test/slo"),
            signer: keys::generate("sp.test", kuntalaistili_schema::now_utc())
                .unwrap()
                .0,
        }
    }

    pub fn cert_b64(&self) -> String {
        STANDARD.encode(&self.signer.cert_der)
    }

    /// The SP's metadata (`validUntil` when given).
    pub fn metadata(&self, valid_until: Option<&str>) -> String {
        let until = valid_until
            .map(|u| format!(r#" validUntil="{u}""#))
            .unwrap_or_default();
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{e}"{until}>
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{slo}"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}2" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#,
            e = self.entity_id,
            c = self.cert_b64(),
            slo = self.slo,
            acs = self.acs,
        )
    }

    /// Registers the SP with `kuntalaistili sp add` and extra options.
    pub fn register(&self, app: &TestApp, extra: &[&str]) {
        let file = app
            .db
            .dir()
            .join(format!("{}.xml", self.entity_id.replace(['/', ':'], "_")));
        std::fs::write(&file, self.metadata(None)).unwrap();
        let mut args = vec!["sp", "add", "--metadata", file.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let (code, v) = app.cli_json(&args);
        assert_eq!(
            (code, v["entity_id"].as_str()),
            (0, Some(self.entity_id.as_str())),
            "{v}"
        );
    }

    pub fn req(&self, app: &TestApp) -> Req {
        Req {
            id: format!("_{}", uuid::Uuid::new_v4().simple()),
            issuer: Some(self.entity_id.clone()),
            issue_instant: saml_time(kuntalaistili_schema::now_utc()),
            destination: Some(app.url("/saml/sso")),
            acs: Some(self.acs.clone()),
            force: false,
            passive: false,
            format: None,
            extra: String::new(),
        }
    }

    /// The AuthnRequest XML, with a signature template when `template`.
    pub fn authn_request(&self, r: &Req, template: bool) -> String {
        let attr = |name: &str, v: &Option<String>| {
            v.as_ref()
                .map(|v| format!(r#" {name}="{v}""#))
                .unwrap_or_default()
        };
        let sig = if template {
            sign::template(&r.id, &self.cert_b64())
        } else {
            String::new()
        };
        let issuer = r
            .issuer
            .as_ref()
            .map(|i| format!("<saml:Issuer>{i}</saml:Issuer>"))
            .unwrap_or_default();
        let policy = r
            .format
            .as_ref()
            .map(|f| format!(r#"<samlp:NameIDPolicy Format="{f}" AllowCreate="true"/>"#))
            .unwrap_or_default();
        format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{ii}"{dest}{acs} ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" ForceAuthn="{f}" IsPassive="{p}">{issuer}{sig}{extra}{policy}</samlp:AuthnRequest>"#,
            id = r.id,
            ii = r.issue_instant,
            dest = attr("Destination", &r.destination),
            acs = attr("AssertionConsumerServiceURL", &r.acs),
            f = r.force,
            p = r.passive,
            extra = r.extra,
        )
    }

    /// `/saml/sso?…` for the Redirect binding, signed with `key` (this SP's own when `None`).
    pub fn redirect_url(
        &self,
        app: &TestApp,
        xml: &str,
        relay: Option<&str>,
        key: Option<&SamlSigner>,
    ) -> String {
        let q = sign::signed_redirect_query("SAMLRequest", xml, relay, key.unwrap_or(&self.signer))
            .unwrap();
        format!("{}?{q}", app.url("/saml/sso"))
    }

    /// `/saml/sso?…` unsigned.
    pub fn unsigned_redirect_url(&self, app: &TestApp, xml: &str) -> String {
        format!(
            "{}?SAMLRequest={}",
            app.url("/saml/sso"),
            enc(&sign::deflate(xml))
        )
    }

    /// The POST-binding form value of an enveloped-signed request.
    pub fn signed_post(&self, r: &Req) -> String {
        let signed = sign::sign_enveloped(&self.authn_request(r, true), &self.signer).unwrap();
        STANDARD.encode(signed)
    }
}

/// The SAML Response carried by an auto-POST page, parsed, and the form's action.
pub fn posted_response(page: &str) -> (String, Element, String) {
    let action = {
        let at = page.find("action=\"").unwrap() + 8;
        field_unescape(&page[at..at + page[at..].find('"').unwrap()])
    };
    let b64 = field_from(page, "SAMLResponse").expect("a SAMLResponse in the page");
    let xml = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
    (action, xml::parse(&xml, xml::MESSAGE).unwrap(), xml)
}

fn field_unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&#x3D;", "=")
        .replace("&#x3F;", "?")
        .replace("&amp;", "&")
}

/// The top-level and second-level status codes of a Response.
pub fn status_of(resp: &Element) -> (String, Option<String>) {
    let code = resp
        .child(xml::NS_SAMLP, "Status")
        .unwrap()
        .child(xml::NS_SAMLP, "StatusCode")
        .unwrap();
    (
        code.attr("Value").unwrap().to_owned(),
        code.child(xml::NS_SAMLP, "StatusCode")
            .and_then(|c| c.attr("Value"))
            .map(str::to_owned),
    )
}

/// Released attributes by friendly name.
pub fn attributes(resp: &Element) -> Vec<(String, Vec<String>)> {
    let Some(a) = resp.child(xml::NS_SAML, "Assertion") else {
        return Vec::new();
    };
    a.child(xml::NS_SAML, "AttributeStatement")
        .map(|s| {
            s.children_named(xml::NS_SAML, "Attribute")
                .map(|at| {
                    (
                        at.attr("FriendlyName").unwrap_or_default().to_owned(),
                        at.children_named(xml::NS_SAML, "AttributeValue")
                            .map(|v| v.text.clone())
                            .collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Follows the login page for `browser` (which was sent to `/login?next=…`) and returns the
/// page the IdP answers after login.
pub async fn log_in_via(
    app: &TestApp,
    browser: &reqwest::Client,
    login_location: &str,
    user: &str,
) -> String {
    let page = browser
        .get(app.url(login_location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = field_from(&page, "csrf").unwrap();
    let next = field_from(&page, "next").unwrap();
    let r = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", PASSWORD),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login");
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/saml/sso/resume"), "{to}");
    browser
        .get(app.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The audit events of `kind`, newest last, as (outcome, details).
pub async fn events(app: &TestApp, kind: &'static str) -> Vec<(String, serde_json::Value)> {
    app.with_conn(move |c| {
        kuntalaistili_schema::audit::browse(
            c,
            &kuntalaistili_schema::audit::Browse {
                event_type: Some(kind.to_owned()),
                subject: None,
                actor: None,
                before_seq: None,
            },
            1000,
        )
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.outcome, serde_json::from_str(&e.details).unwrap()))
        .collect()
    })
    .await
}
