//! Signature algorithms: the metadata says which ones the IdP accepts (SAML V2.0 Metadata Profile
//! for Algorithm Support, so an SP such as Shibboleth signs with one of them), SHA-1 stays refused,
//! and a POST-binding refusal names its real cause — the signature or digest algorithm, the key,
//! or a reference that does not cover the root — in the audit event, as the Redirect binding does.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_metadata::saml::algorithms::{self, NS_ALG};
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml;
use kuntalaistili_tests::{dual, Backend, TestApp};

use super::{events, TestSp, PASSWORD};

dual!(
    metadata_lists_the_accepted_algorithms_and_no_sha1,
    post_binding_refusal_names_the_algorithm
);

async fn metadata_lists_the_accepted_algorithms_and_no_sha1(b: Backend) {
    let app = TestApp::start(b).await;
    let md = app
        .client
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let root = xml::parse(&md, xml::METADATA).unwrap();
    let ext = root
        .child(xml::NS_MD, "Extensions")
        .expect("md:Extensions in the EntityDescriptor");
    let listed = |name: &'static str| -> Vec<String> {
        ext.children_named(NS_ALG, name)
            .map(|e| e.attr("Algorithm").unwrap().to_owned())
            .collect()
    };
    let (signing, digests) = (listed("SigningMethod"), listed("DigestMethod"));
    assert_eq!(
        signing,
        [
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
        ]
    );
    assert_eq!(
        digests,
        [
            "http://www.w3.org/2001/04/xmlenc#sha256",
            "http://www.w3.org/2001/04/xmldsig-more#sha384",
            "http://www.w3.org/2001/04/xmlenc#sha512"
        ]
    );
    assert!(signing
        .iter()
        .chain(&digests)
        .all(|a| !a.contains("sha1") && !a.contains("sha224")));
    // Still a metadata document that the IdP's own signature covers whole.
    assert!(root.child(xml::NS_DS, "Signature").is_some());
}

/// A POST-binding AuthnRequest signed with xmlsec through a template naming `method` and
/// `digest`, by `sp`'s key.
fn signed_with(sp: &TestSp, app: &TestApp, method: &str, digest: &str) -> String {
    let r = sp.req(app);
    let template = sp
        .authn_request(&r, true)
        .replace(algorithms::RSA_SHA256, method)
        .replace(algorithms::SHA256, digest);
    STANDARD.encode(sign::sign_enveloped(&template, &sp.signer).unwrap())
}

async fn post_binding_refusal_names_the_algorithm(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("maija", PASSWORD).await;
    let sp = TestSp::new("shibish");
    sp.register(&app, &["--require-signed-requests"]);
    let browser = app.browser();
    let post = |saml: String| {
        browser
            .post(app.url("/saml/sso"))
            .form(&[("SAMLRequest", saml.as_str()), ("RelayState", "r")])
            .send()
    };
    let rsa_sha1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    let sha1 = "http://www.w3.org/2000/09/xmldsig#sha1";
    let cases = [
        // What Shibboleth SP sends when the IdP's metadata names no algorithms.
        (
            "rsa-sha1 + sha256",
            signed_with(&sp, &app, rsa_sha1, algorithms::SHA256),
            "algorithm",
            Some(rsa_sha1),
        ),
        (
            "rsa-sha256 + sha1",
            signed_with(&sp, &app, algorithms::RSA_SHA256, sha1),
            "digest_algorithm",
            Some(sha1),
        ),
        (
            "rsa-sha1 + sha1",
            signed_with(&sp, &app, rsa_sha1, sha1),
            "algorithm",
            Some(rsa_sha1),
        ),
        (
            "another key",
            {
                let other = TestSp::new("shibish");
                let r = sp.req(&app);
                let signed =
                    sign::sign_enveloped(&sp.authn_request(&r, true), &other.signer).unwrap();
                STANDARD.encode(signed)
            },
            "signature",
            None,
        ),
    ];
    for (case, saml, reason, named) in cases {
        let resp = post(saml).await.unwrap();
        let status = resp.status();
        assert!(resp.headers().get("location").is_none(), "{case}");
        let body = resp.text().await.unwrap();
        assert_eq!(status, 400, "{case}: {body}");
        assert!(!body.contains("SAMLResponse"), "{case}");
        let ev = events(&app, "saml.request_refused").await;
        let (outcome, details) = ev.last().unwrap();
        assert_eq!(outcome, "failure", "{case}");
        assert_eq!(details["reason"], reason, "{case}: {details}");
        assert_eq!(details["message"], "AuthnRequest");
        let detail = details["detail"].as_str().unwrap();
        match named {
            Some(alg) => assert!(detail.contains(alg), "{case}: {detail}"),
            None => assert!(detail.contains("registered keys"), "{case}: {detail}"),
        }
    }
    // The same request signed with what the metadata lists goes through to the login page.
    let ok = post(signed_with(
        &sp,
        &app,
        algorithms::RSA_SHA512,
        algorithms::SHA512,
    ))
    .await
    .unwrap();
    assert_eq!(ok.status(), 303, "{}", ok.text().await.unwrap());
}
