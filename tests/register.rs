//! The resident's rights over their data: a complete export from `/account`, and erasure — the
//! account closes at once (sessions, tokens and rights end), the personal data is overwritten
//! after the retention period, and the audit log stays intact.

use crate::oidc::{add_rp, code_for, exchange, token, PASSWORD};
use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

dual!(residents_export_their_data_and_close_their_account);

async fn residents_export_their_data_and_close_their_account(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    let person = tokio::task::spawn_blocking(move || {
        kuntalaistili_idp::customers::add(
            &mut st.db.conn().unwrap(),
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "poistuja".into(),
                password: Some(PASSWORD.into()),
                given_name: Some("Paula".into()),
                email: Some("paula@example.fi".into()),
                national_id: Some("131052-308T".into()),
                ..Default::default()
            },
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap()
    })
    .await
    .unwrap();
    let (code, _) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "grant",
            "--user",
            "poistuja",
            "--permission",
            "library:lend",
        ])
    });
    assert_eq!(code, 0);
    let browser = app.browser();
    assert_eq!(
        app.login(&browser, "poistuja", PASSWORD).await.status(),
        303
    );
    let rp = add_rp(&app, |_| {}).await;
    let (c, verifier) = code_for(&app, &browser, &rp).await;
    let (s, tokens) = exchange(&app, &rp, &c, &verifier).await;
    assert_eq!(s, 200);
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // The export: everything, as a download.
    let account = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("Lataa omat tiedot") && account.contains("Sulje tilini"));
    let r = browser
        .get(app.url("/account/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["person"]["national_id"], "131052-308T");
    assert_eq!(doc["person"]["email"], "paula@example.fi");
    assert_eq!(doc["access_rights"][0]["permission"], "library:lend");
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(doc["authorizations"][0]["client_id"], rp.id.as_str());
    let kinds: Vec<&str> = doc["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"login.success") && kinds.contains(&"authz.granted"),
        "{kinds:?}"
    );
    let visitor = app.browser();
    let r = visitor
        .get(app.url("/account/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "visitors are sent to log in");

    // Erasure needs the password (and the form's CSRF token).
    let csrf = kuntalaistili_tests::csrf_from(&account).unwrap();
    let r = app
        .post_form(
            &browser,
            "/account/erase",
            &[("csrf", &csrf), ("password", "väärä")],
        )
        .await;
    assert_eq!(r.headers()["location"], "/account?erase_failed=1#erase-h");
    let refused = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("user.erasure_requested"), None, 5).unwrap()
        })
        .await;
    assert_eq!(
        (refused.len(), refused[0].outcome.as_str()),
        (1, "failure"),
        "a wrong password is audited"
    );
    let r = app
        .post_form(
            &browser,
            "/account/erase",
            &[("csrf", "x"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let still = browser
        .get(app.url("/account?erase_failed=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "nothing closed yet");
    assert!(still
        .text()
        .await
        .unwrap()
        .contains("Salasana ei ollut oikea"));

    let r = app
        .post_form(
            &browser,
            "/account/erase",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Tilisi on suljettu"));
    // Closed at once: no session, no login, no refresh, no rights.
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.login(&app.browser(), "poistuja", PASSWORD)
            .await
            .status(),
        401
    );
    let (s, v) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!((s, &v["error"]), (400, &json!("invalid_grant")));
    let checker = app.client_token("authz:check").await;
    let v: Value = app
        .client
        .post(app.url("/api/v1/authz/check"))
        .bearer_auth(&checker)
        .json(&json!({ "sub": person.id, "service": "library", "permission": "lend" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["allowed"], false);

    // The data waits for the retention period, then is overwritten; the audit log stays whole.
    let id = person.id.clone();
    let (early, late, after) = app
        .with_conn(move |c| {
            let now = kuntalaistili_schema::now_utc();
            let early = kuntalaistili_idp::customers::gdpr::erase_due(c, 30, now).unwrap();
            let late = kuntalaistili_idp::customers::gdpr::erase_due(
                c,
                30,
                now + chrono::Duration::days(31),
            )
            .unwrap();
            (
                early,
                late,
                kuntalaistili_schema::users::find_by_id(c, &id)
                    .unwrap()
                    .unwrap(),
            )
        })
        .await;
    assert_eq!((early, late), (0, 1));
    assert_eq!(after.username, format!("erased-{}", person.id));
    assert!(after.email.is_none() && after.given_name.is_none());
    assert!(after.national_id_enc.is_none() && after.national_id_index.is_none());
    assert!(after.password_hash.is_none() && after.erased_at.is_some());
    let (rights, report, erased) = app
        .with_conn({
            let id = person.id.clone();
            move |c| {
                (
                    kuntalaistili_schema::authz::entitlements(c, &id)
                        .unwrap()
                        .len(),
                    kuntalaistili_schema::audit::verify(c).unwrap(),
                    kuntalaistili_schema::audit::recent(c, Some("user.erased"), Some(&id), 5)
                        .unwrap()
                        .len(),
                )
            }
        })
        .await;
    assert_eq!(rights, 0);
    assert!(report.first_broken.is_none());
    assert_eq!(erased, 1);
}
