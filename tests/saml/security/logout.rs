//! Hostile or broken logout messages: refused with an error page and audited, as the
//! authentication requests in the parent module.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kuntalaistili_metadata::saml::metadata::saml_time;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_tests::{dual, Backend, TestApp};

use super::super::{enc, events, TestSp, PASSWORD};
use super::{get, refused};

dual!(hostile_logout_messages_are_refused_and_audited);

fn logout_request(sp: &TestSp, app: &TestApp, id: &str, not_on_or_after: &str) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" NotOnOrAfter="{not_on_or_after}"><saml:Issuer>{sp}</saml:Issuer><saml:NameID>someone</saml:NameID><samlp:SessionIndex>x</samlp:SessionIndex></samlp:LogoutRequest>"#,
        now = saml_time(kuntalaistili_schema::now_utc()),
        dest = app.url("/saml/slo"),
        sp = sp.entity_id,
    )
}

async fn hostile_logout_messages_are_refused_and_audited(b: Backend) {
    let app = TestApp::start(b).await;
    let sp = TestSp::new("slo");
    sp.register(&app, &[]);
    let browser = app.browser();
    let later = saml_time(kuntalaistili_schema::now_utc() + chrono::Duration::minutes(5));
    let slo = app.url("/saml/slo");

    // A signed LogoutRequest for nobody is answered (Success, nothing to end) at the SP's SLO.
    let x = logout_request(&sp, &app, "_l1", &later);
    let q = sign::signed_redirect_query("SAMLRequest", &x, Some("rs"), &sp.signer).unwrap();
    let ok = get(&browser, &format!("{slo}?{q}")).await;
    assert_eq!(ok.status(), 303);
    assert!(ok.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&sp.slo));

    // Tampered: the request changed after signing (another NameID).
    let x = logout_request(&sp, &app, "_l2", &later);
    let q = sign::signed_redirect_query("SAMLRequest", &x, None, &sp.signer).unwrap();
    let evil = sign::deflate(&x.replace("someone", "victim"));
    let start = q.find("SAMLRequest=").unwrap() + 12;
    let end = q[start..].find('&').unwrap() + start;
    let tampered = format!("{}{}{}", &q[..start], enc(&evil), &q[end..]);
    refused(
        &app,
        get(&browser, &format!("{slo}?{tampered}")).await,
        "signature",
        "tampered",
    )
    .await;

    // Unsigned, although the SP has a signing key in its metadata.
    let x = logout_request(&sp, &app, "_l3", &later);
    refused(
        &app,
        get(
            &browser,
            &format!("{slo}?SAMLRequest={}", enc(&sign::deflate(&x))),
        )
        .await,
        "unsigned",
        "unsigned",
    )
    .await;

    // Expired (NotOnOrAfter in the past), replayed, unknown issuer, wrong Destination.
    let past = saml_time(kuntalaistili_schema::now_utc() - chrono::Duration::hours(1));
    let x = logout_request(&sp, &app, "_l4", &past);
    let q = sign::signed_redirect_query("SAMLRequest", &x, None, &sp.signer).unwrap();
    refused(
        &app,
        get(&browser, &format!("{slo}?{q}")).await,
        "expired",
        "expired",
    )
    .await;
    let x = logout_request(&sp, &app, "_l1", &later);
    let q = sign::signed_redirect_query("SAMLRequest", &x, Some("rs"), &sp.signer).unwrap();
    refused(
        &app,
        get(&browser, &format!("{slo}?{q}")).await,
        "replay",
        "replay",
    )
    .await;
    let stranger = TestSp::new("stranger");
    let x = logout_request(&stranger, &app, "_l5", &later);
    let q = sign::signed_redirect_query("SAMLRequest", &x, None, &stranger.signer).unwrap();
    refused(
        &app,
        get(&browser, &format!("{slo}?{q}")).await,
        "unknown_sp",
        "unknown issuer",
    )
    .await;
    let x = logout_request(&sp, &app, "_l6", &later).replace(&slo, "https://elsewhere.example/slo");
    let q = sign::signed_redirect_query("SAMLRequest", &x, None, &sp.signer).unwrap();
    refused(
        &app,
        get(&browser, &format!("{slo}?{q}")).await,
        "destination",
        "destination",
    )
    .await;

    // L01/L02: a victim's session survives an unsigned request from an SP without a signing key
    // (it only logs out the browser that brings it), and a signed request from another SP.
    app.add_user("victim", PASSWORD).await;
    let keyless = TestSp::new("keyless");
    let file = app.db.dir().join("keyless.xml");
    let md = keyless.metadata(None);
    let start = md.find("<md:KeyDescriptor>").unwrap();
    let end = md.find("</md:KeyDescriptor>").unwrap() + "</md:KeyDescriptor>".len();
    std::fs::write(&file, format!("{}{}", &md[..start], &md[end..])).unwrap();
    let (code, v) = app.cli_json(&["sp", "add", "--metadata", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{v}");
    let victim = app.browser();
    app.login(&victim, "victim", PASSWORD).await;
    let r = keyless.req(&app);
    let page = victim
        .get(keyless.unsigned_redirect_url(&app, &keyless.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    let (_, resp, _) = super::super::posted_response(&page.text().await.unwrap());
    let victim_nid = resp
        .child(kuntalaistili_metadata::saml::xml::NS_SAML, "Assertion")
        .unwrap()
        .child(kuntalaistili_metadata::saml::xml::NS_SAML, "Subject")
        .unwrap()
        .child(kuntalaistili_metadata::saml::xml::NS_SAML, "NameID")
        .unwrap()
        .text
        .clone();
    let attacker = app.browser();
    let x = logout_request(&keyless, &app, "_k1", &later)
        .replace(">someone<", &format!(">{victim_nid}<"))
        .replace("<samlp:SessionIndex>x</samlp:SessionIndex>", "");
    let resp = get(
        &attacker,
        &format!("{slo}?SAMLRequest={}", enc(&sign::deflate(&x))),
    )
    .await;
    assert_eq!(resp.status(), 303);
    let x =
        logout_request(&sp, &app, "_k2", &later).replace(">someone<", &format!(">{victim_nid}<"));
    let q = sign::signed_redirect_query("SAMLRequest", &x, None, &sp.signer).unwrap();
    assert_eq!(get(&attacker, &format!("{slo}?{q}")).await.status(), 303);
    let still = victim.get(app.url("/account")).send().await.unwrap();
    assert_eq!(still.status(), 200, "the victim is still logged in");
    let ended: Vec<_> = events(&app, "saml.logout_request")
        .await
        .into_iter()
        .map(|(_, d)| d["sessions_ended"].clone())
        .collect();
    assert!(ended.iter().all(|n| n == 0), "{ended:?}");
    // The victim's own browser can bring the unsigned request (the binding authenticates it).
    let x = logout_request(&keyless, &app, "_k3", &later)
        .replace(">someone<", &format!(">{victim_nid}<"))
        .replace("<samlp:SessionIndex>x</samlp:SessionIndex>", "");
    let resp = get(
        &victim,
        &format!("{slo}?SAMLRequest={}", enc(&sign::deflate(&x))),
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        victim
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );

    // A LogoutResponse that answers no logout round of ours.
    let resp = browser
        .post(&slo)
        .form(&[
            ("SAMLResponse", STANDARD.encode("<x/>").as_str()),
            ("RelayState", "nothing"),
        ])
        .send()
        .await
        .unwrap();
    refused(&app, resp, "unknown_round", "stray LogoutResponse").await;
    // XXE in a LogoutRequest.
    let xxe = format!(
        r#"<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>{}"#,
        logout_request(&sp, &app, "_l7", &later)
    );
    let resp = browser
        .post(&slo)
        .form(&[("SAMLRequest", STANDARD.encode(xxe))])
        .send()
        .await
        .unwrap();
    refused(&app, resp, "doctype", "XXE logout").await;
}
