//! Single Logout with an earlier NameID of the session (issue 22): an SP that got a transient
//! NameID at login and another one later in the same session logs out with the first; the session
//! ends. A LogoutRequest that ends nothing is never answered `Success`.

use kuntalaistili_metadata::saml::metadata::saml_time;
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml::{self, Element, NS_SAML};
use kuntalaistili_tests::{dual, Backend, TestApp};

use super::{posted_response, status_of, TestSp, PASSWORD};

dual!(logout_with_an_earlier_transient_name_id_ends_the_session);

const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

/// One SP-initiated SSO round asking for a transient NameID: (NameID, SessionIndex).
async fn transient_sso(app: &TestApp, browser: &reqwest::Client, sp: &TestSp) -> (String, String) {
    let mut r = sp.req(app);
    r.format = Some(TRANSIENT.into());
    let page = browser
        .get(sp.unsigned_redirect_url(app, &sp.authn_request(&r, false)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let resp: Element = posted_response(&page.text().await.unwrap()).1;
    let a = resp.child(NS_SAML, "Assertion").unwrap();
    let nid = a
        .child(NS_SAML, "Subject")
        .unwrap()
        .child(NS_SAML, "NameID")
        .unwrap()
        .text
        .clone();
    let six = a
        .child(NS_SAML, "AuthnStatement")
        .unwrap()
        .attr("SessionIndex")
        .unwrap()
        .to_owned();
    (nid, six)
}

/// Sends a signed LogoutRequest from `sp`; the IdP's LogoutResponse status (top, second).
async fn log_out(
    app: &TestApp,
    browser: &reqwest::Client,
    sp: &TestSp,
    id: &str,
    nid: &str,
    six: &str,
) -> (String, Option<String>) {
    let lr = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer><saml:NameID Format="{TRANSIENT}">{nid}</saml:NameID><samlp:SessionIndex>{six}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        saml_time(kuntalaistili_schema::now_utc()),
        app.url("/saml/slo"),
        sp.entity_id,
    );
    let q = sign::signed_redirect_query("SAMLRequest", &lr, Some("st"), &sp.signer).unwrap();
    let r = browser
        .get(format!("{}?{q}", app.url("/saml/slo")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, sp.slo);
    let m = sign::read_redirect(query, "SAMLResponse").unwrap();
    let resp = xml::parse(&m.xml, xml::MESSAGE).unwrap();
    assert_eq!(resp.attr("InResponseTo"), Some(id));
    status_of(&resp)
}

async fn logout_with_an_earlier_transient_name_id_ends_the_session(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("maija", PASSWORD).await;
    let sp = TestSp::new("transient");
    sp.register(&app, &[]);
    let browser = app.browser();
    app.login(&browser, "maija", PASSWORD).await;
    let (nid1, six1) = transient_sso(&app, &browser, &sp).await;
    let (nid2, six2) = transient_sso(&app, &browser, &sp).await;
    assert_ne!(nid1, nid2, "transient NameIDs differ per assertion");
    assert_eq!(six1, six2, "one session");

    // A NameID the SP was never given ends nothing, and the answer says so.
    let (top, second) = log_out(&app, &browser, &sp, "_lr-x", "_unknown", &six1).await;
    assert_eq!(top, "urn:oasis:names:tc:SAML:2.0:status:Requester");
    assert_eq!(
        second.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal")
    );
    let account = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200, "the session is still there");

    // The first NameID with the session's index ends the session.
    let (top, second) = log_out(&app, &browser, &sp, "_lr-1", &nid1, &six1).await;
    assert_eq!(
        (top.as_str(), second),
        ("urn:oasis:names:tc:SAML:2.0:status:Success", None)
    );
    let account = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303, "the session is gone");
}
