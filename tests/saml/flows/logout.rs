//! Single Logout as an SP sees it: logout propagated to every SP of the session.

use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml::{self, Element};
use kuntalaistili_tests::{dual, Backend, TestApp};

use super::super::{TestSp, PASSWORD};
use super::*;

dual!(logout_reaches_every_sp_of_the_session);

/// The LogoutRequest the IdP sent the browser to `sp` with (verified with the IdP's keys).
fn told(location: &str, sp: &TestSp, certs: &[Vec<u8>]) -> (Element, String) {
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, sp.slo);
    let m = sign::read_redirect(query, "SAMLRequest").unwrap();
    m.verify(certs).unwrap();
    let root = xml::parse(&m.xml, xml::MESSAGE).unwrap();
    assert!(root.is(NS_SAMLP, "LogoutRequest"));
    (root, m.relay_state.unwrap())
}

/// The SP's signed LogoutResponse to the IdP (HTTP-Redirect).
fn answer(app: &TestApp, sp: &TestSp, in_response_to: &str, relay: &str, status: &str) -> String {
    let x = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{in_response_to}"><saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status></samlp:LogoutResponse>"#,
        uuid::Uuid::new_v4().simple(),
        saml_time(kuntalaistili_schema::now_utc()),
        app.url("/saml/slo"),
        sp.entity_id
    );
    let q = sign::signed_redirect_query("SAMLResponse", &x, Some(relay), &sp.signer).unwrap();
    format!("{}?{q}", app.url("/saml/slo"))
}

async fn logout_reaches_every_sp_of_the_session(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("maija", PASSWORD).await;
    let (a, bsp) = (TestSp::new("first"), TestSp::new("second"));
    a.register(&app, &[]);
    bsp.register(&app, &[]);
    let certs = idp_certs(&app).await;

    // 1. The resident logs out at the IdP: both SPs are told in turn, then the logged-out page.
    let browser = app.browser();
    app.login(&browser, "maija", PASSWORD).await;
    let ra = sso(&app, &browser, &a).await;
    sso(&app, &browser, &bsp).await;
    let csrf = app.csrf_token(&browser, "/logout").await;
    let out = browser
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let mut location = out.headers()["location"].to_str().unwrap().to_owned();
    let mut told_sps = Vec::new();
    for _ in 0..2 {
        let sp = if location.starts_with(&a.slo) {
            &a
        } else {
            &bsp
        };
        let (req, relay) = told(&location, sp, &certs);
        if sp.entity_id == a.entity_id {
            assert_eq!(req.child(NS_SAML, "NameID").unwrap().text, name_id(&ra));
        }
        told_sps.push(sp.entity_id.clone());
        let next = browser
            .get(answer(&app, sp, req.attr("ID").unwrap(), &relay, SUCCESS))
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), 303);
        location = next.headers()["location"].to_str().unwrap().to_owned();
    }
    told_sps.sort();
    let mut expected = vec![a.entity_id.clone(), bsp.entity_id.clone()];
    expected.sort();
    assert_eq!(told_sps, expected);
    assert_eq!(location, "/login?logged_out=1");
    let account = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303, "the session is gone");

    // 2. SP-initiated at A; B does not confirm: A gets PartialLogout.
    let browser = app.browser();
    app.login(&browser, "maija", PASSWORD).await;
    let ra = sso(&app, &browser, &a).await;
    sso(&app, &browser, &bsp).await;
    let six = ra
        .child(NS_SAML, "Assertion")
        .unwrap()
        .child(NS_SAML, "AuthnStatement")
        .unwrap()
        .attr("SessionIndex")
        .unwrap()
        .to_owned();
    let lr = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr1" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer><saml:NameID>{}</saml:NameID><samlp:SessionIndex>{six}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        saml_time(kuntalaistili_schema::now_utc()),
        app.url("/saml/slo"),
        a.entity_id,
        name_id(&ra)
    );
    let q = sign::signed_redirect_query("SAMLRequest", &lr, Some("a-state"), &a.signer).unwrap();
    let step = browser
        .get(format!("{}?{q}", app.url("/saml/slo")))
        .send()
        .await
        .unwrap();
    assert_eq!(step.status(), 303);
    let location = step.headers()["location"].to_str().unwrap().to_owned();
    let (req, relay) = told(&location, &bsp, &certs);
    let fin = browser
        .get(answer(
            &app,
            &bsp,
            req.attr("ID").unwrap(),
            &relay,
            "urn:oasis:names:tc:SAML:2.0:status:Responder",
        ))
        .send()
        .await
        .unwrap();
    let location = fin.headers()["location"].to_str().unwrap().to_owned();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, a.slo);
    let m = sign::read_redirect(query, "SAMLResponse").unwrap();
    m.verify(&certs).unwrap();
    assert_eq!(m.relay_state.as_deref(), Some("a-state"));
    let resp = xml::parse(&m.xml, xml::MESSAGE).unwrap();
    assert_eq!(resp.attr("InResponseTo"), Some("_lr1"));
    assert_eq!(
        status_of(&resp),
        (
            SUCCESS.to_owned(),
            Some("urn:oasis:names:tc:SAML:2.0:status:PartialLogout".to_owned())
        )
    );
    let account = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303, "the session is gone");
    let propagated = events(&app, "saml.logout_propagated").await;
    assert_eq!(propagated.iter().filter(|(o, _)| o == "success").count(), 2);
    assert_eq!(propagated.iter().filter(|(o, _)| o == "failure").count(), 1);
}
