//! The login flow in a real browser (Debian's Chromium driven by playwright-core), with axe-core
//! WCAG 2.1 AA checks of the login, error, account and logout pages in fi, sv and en.

use kuntalaistili_tests::{dual, Backend, TestApp};

dual!(resident_logs_in_and_out_in_chromium_on_accessible_pages);

async fn resident_logs_in_and_out_in_chromium_on_accessible_pages(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("selain", "selaimen-salasana").await;
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/screenshots");
    let seen = kuntalaistili_tests::run_node(
        "browser/login.mjs",
        vec![
            app.base.clone(),
            "selain".into(),
            "selaimen-salasana".into(),
            shots.into(),
        ],
    )
    .await;
    assert_eq!(seen["pages"].as_array().unwrap().len(), 12);
    assert_eq!(seen["violations"], serde_json::json!([]));
    // The browser's logins are in the audit log: three successes and three failures.
    let (ok, failed) = app
        .with_conn(|c| {
            use kuntalaistili_schema::audit::recent;
            (
                recent(c, Some("login.success"), None, 50).unwrap().len(),
                recent(c, Some("login.failure"), None, 50).unwrap().len(),
            )
        })
        .await;
    assert_eq!((ok, failed), (3, 3));
}

dual!(resident_allows_a_service_in_chromium_on_accessible_consent_pages);

/// Signing in to a relying party in Chromium: login and consent pages (WCAG 2.1 AA by axe-core)
/// in three languages, the code delivered to the RP, and form_post working under the real CSP.
async fn resident_allows_a_service_in_chromium_on_accessible_consent_pages(b: Backend) {
    use kuntalaistili_federation::clients::{self, NewClient};
    let app = TestApp::start(b).await;
    app.add_user("valtuutus", "valtuutus-salasana").await;
    let client_id = app
        .with_conn(|c| {
            clients::add(
                c,
                NewClient {
                    name: "Kaupunginkirjasto".into(),
                    redirect_uris: vec!["https://rp.example.fi/cb".into()],
                    scopes: "openid profile email".into(),
                    ..NewClient::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap()
            .0
            .client_id
        })
        .await;
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Frp.example.fi%2Fcb\
         &scope=openid%20profile%20email&state=s-1&nonce=n-1\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let seen = kuntalaistili_tests::run_node(
        "browser/consent.mjs",
        vec![
            app.base.clone(),
            "valtuutus".into(),
            "valtuutus-salasana".into(),
            query,
        ],
    )
    .await;
    assert_eq!(seen["pages"].as_array().unwrap().len(), 3);
    assert_eq!(seen["violations"], serde_json::json!([]));
    assert_eq!(seen["codes"], 4);
    assert_eq!(seen["form_post"]["method"], "POST");
    // Five authorizations: three languages, query mode and form_post under the real CSP.
    let authorized = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("oidc.authorized"), None, 50)
                .unwrap()
                .len()
        })
        .await;
    assert_eq!(authorized, 5);
}

dual!(resident_uses_the_portal_in_chromium_with_one_login);

/// Issue 6's browser walk: front page, one login, a notice from the API, the directory filtered
/// by sub-region, the notice board without a second password, logout everywhere; axe-core on the
/// pages passed.
async fn resident_uses_the_portal_in_chromium_with_one_login(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("portaali", "portaalin-salasana").await;
    let token = app.client_token("notices:write").await;
    let r = app
        .client
        .post(app.url("/services/noticeboard/api/notices"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "sub": user.id, "idempotency_key": "rv-1", "service": "Rakennusvalvonta",
            "title": "Rakennuslupa myönnetty", "status": "decided",
            "link": "https://lupapiste.example.fi/asia/1",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (code, _) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "grant",
            "--user",
            "portaali",
            "--permission",
            "directory:edit",
        ])
    });
    assert_eq!(code, 0);
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/screenshots/portal");
    let seen = kuntalaistili_tests::run_node(
        "browser/portal.mjs",
        vec![
            app.base.clone(),
            "portaali".into(),
            "portaalin-salasana".into(),
            "Rakennuslupa myönnetty".into(),
            shots.into(),
        ],
    )
    .await;
    assert_eq!(seen["violations"], serde_json::json!([]));
    assert_eq!(seen["pages"].as_array().unwrap().len(), 7);
    assert_eq!(seen["passwordsTyped"], 1);
    let logins = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("login.success"), None, 10)
                .unwrap()
                .len()
        })
        .await;
    assert_eq!(logins, 1);
}

dual!(administrators_work_in_chromium_on_accessible_admin_pages);

/// The admin pages in a real browser: reached through the login, a right granted with the form,
/// axe-core WCAG 2.1 AA on every page.
async fn administrators_work_in_chromium_on_accessible_admin_pages(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    tokio::task::spawn_blocking(move || {
        kuntalaistili_idp::customers::add(
            &mut st.db.conn().unwrap(),
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "selainadmin".into(),
                password: Some("selainadmin-salasana".into()),
                role: "admin".into(),
                ..Default::default()
            },
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap()
    })
    .await
    .unwrap();
    let person = app.add_user("asiakas", "asiakkaan-salasana").await;
    // A SAML service, so that its page shows an SP with its settings form.
    crate::saml::TestSp::new("selain").register(&app, &["--attributes", "givenName,mail"]);
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/screenshots/admin");
    let seen = kuntalaistili_tests::run_node(
        "browser/admin.mjs",
        vec![
            app.base.clone(),
            "selainadmin".into(),
            "selainadmin-salasana".into(),
            person.id.clone(),
            shots.into(),
        ],
    )
    .await;
    assert_eq!(seen["violations"], serde_json::json!([]));
    assert_eq!(seen["pages"].as_array().unwrap().len(), 9);
    assert_eq!(seen["granted"], true);
    let held = app
        .with_conn(move |c| kuntalaistili_schema::authz::entitlements(c, &person.id).unwrap())
        .await;
    assert_eq!(held[0].permission, "directory:edit");
}
