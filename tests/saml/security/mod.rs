//! The SAML attack catalogue (tests/interop/SECURITY_CASES.md §A–C, mapped in
//! tests/interop/SECURITY.md): every hostile or broken message is refused with an error page
//! (400, never a redirect, never a SAMLResponse, never a 500) and an audit event naming the reason.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_metadata::saml::metadata::saml_time;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_tests::{dual, Backend, TestApp};

use super::{enc, events, TestSp, PASSWORD};

mod logout;

dual!(hostile_authn_requests_are_refused_and_audited);

/// Asserts a refusal: 400 error page, no redirect, no SAML answer, and the newest
/// `saml.request_refused` event has `reason`.
async fn refused(app: &TestApp, resp: reqwest::Response, reason: &str, case: &str) {
    let status = resp.status();
    assert!(
        resp.headers().get("location").is_none(),
        "{case}: redirected"
    );
    let body = resp.text().await.unwrap();
    assert_eq!(status, 400, "{case}: {body}");
    assert!(!body.contains("SAMLResponse"), "{case}");
    let ev = events(app, "saml.request_refused").await;
    let (outcome, details) = ev
        .last()
        .unwrap_or_else(|| panic!("{case}: no audit event"));
    assert_eq!(outcome, "failure");
    assert_eq!(details["reason"], reason, "{case}: {details}");
}

async fn get(browser: &reqwest::Client, url: &str) -> reqwest::Response {
    browser.get(url).send().await.unwrap()
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    saml: &str,
) -> reqwest::Response {
    browser
        .post(app.url(path))
        .form(&[("SAMLRequest", saml), ("RelayState", "r")])
        .send()
        .await
        .unwrap()
}

async fn hostile_authn_requests_are_refused_and_audited(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("maija", PASSWORD).await;
    let strict = TestSp::new("strict");
    strict.register(&app, &["--require-signed-requests"]);
    let lax = TestSp::new("lax");
    lax.register(&app, &[]);
    let browser = app.browser();

    // A good signed request passes (to the login page): the baseline for everything below.
    let r = strict.req(&app);
    let ok = get(
        &browser,
        &strict.redirect_url(&app, &strict.authn_request(&r, false), Some("s"), None),
    )
    .await;
    assert_eq!(ok.status(), 303);
    assert!(ok.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));

    // S-unsigned: an unsigned request where signing is required.
    let x = strict.authn_request(&strict.req(&app), false);
    refused(
        &app,
        get(&browser, &strict.unsigned_redirect_url(&app, &x)).await,
        "unsigned",
        "unsigned",
    )
    .await;

    // S11: signed by a key that is not in the SP's metadata.
    let other = TestSp::new("other").signer;
    let x = strict.authn_request(&strict.req(&app), false);
    refused(
        &app,
        get(&browser, &strict.redirect_url(&app, &x, None, Some(&other))).await,
        "signature",
        "wrong key",
    )
    .await;

    // Redirect signature over other octets: RelayState changed after signing.
    let x = strict.authn_request(&strict.req(&app), false);
    let url = strict
        .redirect_url(&app, &x, Some("good"), None)
        .replace("RelayState=good", "RelayState=evil");
    refused(
        &app,
        get(&browser, &url).await,
        "signature",
        "relay state tampered",
    )
    .await;

    // S10: SHA-1 is not accepted.
    let x = strict.authn_request(&strict.req(&app), false);
    let url = format!(
        "{}?SAMLRequest={}&SigAlg={}&Signature=AAAA",
        app.url("/saml/sso"),
        enc(&sign::deflate(&x)),
        enc("http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    );
    refused(&app, get(&browser, &url).await, "algorithm", "sha1").await;

    // POST binding, enveloped signature: good, then tampered.
    let r = strict.req(&app);
    let good = strict.signed_post(&r);
    let resp = post(&app, &browser, "/saml/sso", &good).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let r = strict.req(&app);
    let signed = String::from_utf8(STANDARD.decode(strict.signed_post(&r)).unwrap()).unwrap();
    let tampered = signed.replace(&strict.acs, &format!("{}2", strict.acs));
    refused(
        &app,
        post(&app, &browser, "/saml/sso", &STANDARD.encode(&tampered)).await,
        "signature",
        "tampered POST",
    )
    .await;

    // S07: the signed request wrapped inside an unsigned one naming another ACS.
    let r = strict.req(&app);
    let inner = String::from_utf8(STANDARD.decode(strict.signed_post(&r)).unwrap()).unwrap();
    let mut evil = strict.req(&app);
    evil.acs = Some("https://evil.example/acs".into());
    evil.extra = format!("<samlp:Extensions>{inner}</samlp:Extensions>");
    let wrapped = strict.authn_request(&evil, false);
    refused(
        &app,
        post(&app, &browser, "/saml/sso", &STANDARD.encode(&wrapped)).await,
        "unsigned",
        "XSW wrapper",
    )
    .await;
    // …the inner request's signature copied up to the evil root, pointing at the inner request.
    let sig =
        &inner[inner.find("<ds:Signature").unwrap()..inner.find("</ds:Signature>").unwrap() + 15];
    let unsigned_inner = inner.replace(sig, "");
    let mut evil = strict.req(&app);
    evil.acs = Some("https://evil.example/acs".into());
    evil.extra = format!("{sig}<samlp:Extensions>{unsigned_inner}</samlp:Extensions>");
    let moved = strict.authn_request(&evil, false);
    refused(
        &app,
        post(&app, &browser, "/saml/sso", &STANDARD.encode(&moved)).await,
        "signature_wrapping",
        "XSW moved",
    )
    .await;
    // …and an evil root that takes over the signed ID with the signature beside it (S05).
    let mut evil = r.clone();
    evil.acs = Some(format!("{}2", strict.acs));
    evil.extra = sig.to_owned();
    let same_id = strict.authn_request(&evil, false);
    refused(
        &app,
        post(&app, &browser, "/saml/sso", &STANDARD.encode(&same_id)).await,
        "signature",
        "XSW same ID",
    )
    .await;

    // S16/S17: DOCTYPE with an external entity, and billion laughs.
    let x = lax.authn_request(&lax.req(&app), false);
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>{}"#,
        x.replace("</saml:Issuer>", "&e;</saml:Issuer>")
    );
    refused(
        &app,
        post(&app, &browser, "/saml/sso", &STANDARD.encode(&xxe)).await,
        "doctype",
        "XXE",
    )
    .await;
    let laughs = format!(
        r#"<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>{}"#,
        x.replace("</saml:Issuer>", "&c;</saml:Issuer>")
    );
    refused(
        &app,
        get(&browser, &lax.unsigned_redirect_url(&app, &laughs)).await,
        "doctype",
        "billion laughs",
    )
    .await;
    // An entity reference without a DOCTYPE.
    let undeclared = x.replace("</saml:Issuer>", "&e;</saml:Issuer>");
    refused(
        &app,
        get(&browser, &lax.unsigned_redirect_url(&app, &undeclared)).await,
        "entity",
        "entity",
    )
    .await;

    // S19: a DEFLATE bomb (2 MB of spaces in a few kB).
    let bomb = format!(
        "{}?SAMLRequest={}",
        app.url("/saml/sso"),
        enc(&sign::deflate(&format!(
            "{x}{}",
            " ".repeat(2 * 1024 * 1024)
        )))
    );
    refused(
        &app,
        get(&browser, &bomb).await,
        "inflate_bomb",
        "deflate bomb",
    )
    .await;

    // S20: not base64, not deflated, garbage.
    for (case, q, reason) in [
        ("bad base64", "SAMLRequest=%%%%".to_owned(), "encoding"),
        (
            "raw XML",
            format!("SAMLRequest={}", enc(&STANDARD.encode(&x))),
            "inflate",
        ),
        ("no message", "RelayState=x".to_owned(), "encoding"),
        (
            "encoded name",
            format!("%53AMLRequest={}", enc(&sign::deflate(&x))),
            "encoding",
        ),
        (
            "repeated",
            format!("SAMLRequest={0}&SAMLRequest={0}", enc(&sign::deflate(&x))),
            "repeated_parameter",
        ),
    ] {
        refused(
            &app,
            get(&browser, &format!("{}?{q}", app.url("/saml/sso"))).await,
            reason,
            case,
        )
        .await;
    }

    // S18: oversized POST body (413 before parsing) and deep nesting.
    let big = "A".repeat(300 * 1024);
    let resp = post(&app, &browser, "/saml/sso", &big).await;
    assert_eq!(resp.status(), 413);
    let mut deep = lax.req(&app);
    deep.extra = format!(
        "<samlp:Extensions>{}{}</samlp:Extensions>",
        "<x>".repeat(100),
        "</x>".repeat(100)
    );
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&deep, false)),
        )
        .await,
        "too_deep",
        "deep nesting",
    )
    .await;

    // S15: two elements with one ID; two Issuers.
    let mut dup = lax.req(&app);
    dup.extra = format!(
        r#"<samlp:Extensions><x ID="{}"/></samlp:Extensions>"#,
        dup.id
    );
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&dup, false)),
        )
        .await,
        "duplicate_id",
        "duplicate ID",
    )
    .await;
    let mut two = lax.req(&app);
    two.extra = "<saml:Issuer>https://other.sp.test/metadata</saml:Issuer>".into();
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&two, false)),
        )
        .await,
        "issuer",
        "two issuers",
    )
    .await;

    // ACS URL not in the metadata; another response binding.
    let mut r = lax.req(&app);
    r.acs = Some("https://evil.example/acs".into());
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&r, false)),
        )
        .await,
        "acs",
        "foreign ACS",
    )
    .await;
    let x = lax
        .authn_request(&lax.req(&app), false)
        .replace("bindings:HTTP-POST", "bindings:HTTP-Artifact");
    refused(
        &app,
        get(&browser, &lax.unsigned_redirect_url(&app, &x)).await,
        "binding",
        "artifact binding",
    )
    .await;

    // Unknown SP, and S13: a comment inside the Issuer does not cut the name short.
    let mut r = lax.req(&app);
    r.issuer = Some("https://nobody.sp.test/metadata".into());
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&r, false)),
        )
        .await,
        "unknown_sp",
        "unknown SP",
    )
    .await;
    let mut r = lax.req(&app);
    r.issuer = Some(format!("{}<!---->.evil", lax.entity_id));
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&r, false)),
        )
        .await,
        "unknown_sp",
        "comment in Issuer",
    )
    .await;

    // Replayed request ID.
    let r = lax.req(&app);
    let x = lax.authn_request(&r, false);
    assert_eq!(
        get(&browser, &lax.unsigned_redirect_url(&app, &x))
            .await
            .status(),
        303
    );
    refused(
        &app,
        get(&browser, &lax.unsigned_redirect_url(&app, &x)).await,
        "replay",
        "replay",
    )
    .await;

    // IssueInstant an hour in the past and in the future.
    for offset in [-3600, 3600] {
        let mut r = lax.req(&app);
        r.issue_instant =
            saml_time(kuntalaistili_schema::now_utc() + chrono::Duration::seconds(offset));
        refused(
            &app,
            get(
                &browser,
                &lax.unsigned_redirect_url(&app, &lax.authn_request(&r, false)),
            )
            .await,
            "issue_instant",
            "stale",
        )
        .await;
    }

    // Destination of another endpoint; and a signed request without any Destination.
    let mut r = lax.req(&app);
    r.destination = Some("https://other-idp.example/sso".into());
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&r, false)),
        )
        .await,
        "destination",
        "destination",
    )
    .await;
    let mut r = strict.req(&app);
    r.destination = None;
    refused(
        &app,
        get(
            &browser,
            &strict.redirect_url(&app, &strict.authn_request(&r, false), None, None),
        )
        .await,
        "destination",
        "signed without destination",
    )
    .await;

    // P11: another version; an ID that is not an XML name.
    let x = lax
        .authn_request(&lax.req(&app), false)
        .replace(r#"Version="2.0""#, r#"Version="1.1""#);
    refused(
        &app,
        get(&browser, &lax.unsigned_redirect_url(&app, &x)).await,
        "version",
        "version",
    )
    .await;
    let mut r = lax.req(&app);
    r.id = "1abc".into();
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&r, false)),
        )
        .await,
        "id",
        "digit ID",
    )
    .await;
    // P05: ACS index and URL together.
    let x = lax.authn_request(&lax.req(&app), false).replace(
        " ProtocolBinding",
        r#" AssertionConsumerServiceIndex="0" ProtocolBinding"#,
    );
    refused(
        &app,
        get(&browser, &lax.unsigned_redirect_url(&app, &x)).await,
        "acs",
        "index and URL",
    )
    .await;
    // P03: a SAMLRequest in the query and in the form.
    let r = lax.req(&app);
    let resp = browser
        .post(format!("{}?SAMLRequest=x", app.url("/saml/sso")))
        .form(&[("SAMLRequest", STANDARD.encode(lax.authn_request(&r, false)))])
        .send()
        .await
        .unwrap();
    refused(&app, resp, "ambiguous", "query and form").await;
    // P12: an oversized RelayState.
    let x = lax.authn_request(&lax.req(&app), false);
    let url = format!(
        "{}&RelayState={}",
        lax.unsigned_redirect_url(&app, &x),
        "r".repeat(2000)
    );
    refused(
        &app,
        get(&browser, &url).await,
        "relay_state",
        "long RelayState",
    )
    .await;
    // P07: the Issuer of one SP with the signature of another.
    let x = strict.authn_request(&strict.req(&app), false);
    refused(
        &app,
        get(
            &browser,
            &strict.redirect_url(&app, &x, None, Some(&lax.signer)),
        )
        .await,
        "signature",
        "other SP's key",
    )
    .await;

    // Expired SP metadata: refused at registration, and no longer trusted once it expires.
    let expired = TestSp::new("expired");
    let file = app.db.dir().join("expired.xml");
    std::fs::write(&file, expired.metadata(Some("2020-01-01T00:00:00Z"))).unwrap();
    let (code, v) = app.cli_json(&["sp", "add", "--metadata", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    let lax_id = lax.entity_id.clone();
    app.with_conn(move |c| {
        let mut sp = kuntalaistili_schema::saml::find_sp(c, &lax_id)
            .unwrap()
            .unwrap();
        sp.valid_until = Some(kuntalaistili_schema::now_utc() - chrono::Duration::minutes(1));
        kuntalaistili_schema::saml::update_sp(c, &sp).unwrap();
    })
    .await;
    app.state.saml.forget_sp(&lax.entity_id);
    refused(
        &app,
        get(
            &browser,
            &lax.unsigned_redirect_url(&app, &lax.authn_request(&lax.req(&app), false)),
        )
        .await,
        "sp_not_trusted",
        "expired metadata",
    )
    .await;

    // Nothing above logged anyone in or issued anything.
    assert!(events(&app, "saml.assertion_issued").await.is_empty());
}
