//! The login flow in a real browser (Debian's Chromium driven by playwright-core), with axe-core
//! WCAG 2.1 AA checks of the login, error, account and logout pages in fi, sv and en.

use kuntalaistili_tests::{dual, Backend, TestApp};

dual!(resident_logs_in_and_out_in_chromium_on_accessible_pages);

async fn resident_logs_in_and_out_in_chromium_on_accessible_pages(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("selain", "selaimen-salasana").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/login.mjs");
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/screenshots");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args([script, &base, "selain", "selaimen-salasana", shots])
            .output()
            .expect("node is needed for the browser tests (ops/setup.sh installs the rest)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/consent.mjs");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args([script, &base, "valtuutus", "valtuutus-salasana", &query])
            .output()
            .expect("node is needed for the browser tests (ops/setup.sh installs the rest)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["pages"].as_array().unwrap().len(), 3);
    assert_eq!(seen["violations"], serde_json::json!([]));
    assert_eq!(seen["codes"], 3);
    assert_eq!(seen["form_post"]["method"], "POST");
    // Four authorizations, consent remembered once per language round.
    let authorized = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("oidc.authorized"), None, 50)
                .unwrap()
                .len()
        })
        .await;
    assert_eq!(authorized, 4);
}

dual!(resident_uses_the_portal_in_chromium_with_one_login);

/// Issue 6's browser walk: front page, one login, a notice from the API, the directory filtered
/// by sub-region, the notice board without a second password, logout everywhere; axe-core on the
/// pages passed.
async fn resident_uses_the_portal_in_chromium_with_one_login(b: Backend) {
    use kuntalaistili_federation::clients::{self, NewClient};
    let app = TestApp::start(b).await;
    let user = app.add_user("portaali", "portaalin-salasana").await;
    let (id, secret) = app
        .with_conn(|c| {
            let (cl, s) = clients::add(
                c,
                NewClient {
                    name: "Lupapiste".into(),
                    grant_types: vec!["client_credentials".into()],
                    scopes: "notices:write".into(),
                    ..NewClient::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap();
            (cl.client_id, s.unwrap())
        })
        .await;
    let token: serde_json::Value = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = app
        .client
        .post(app.url("/services/noticeboard/api/notices"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&serde_json::json!({
            "sub": user.id, "idempotency_key": "rv-1", "service": "Rakennusvalvonta",
            "title": "Rakennuslupa myönnetty", "status": "decided",
            "link": "https://lupapiste.example.fi/asia/1",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/portal.mjs");
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/screenshots/portal");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args([
                script,
                &base,
                "portaali",
                "portaalin-salasana",
                "Rakennuslupa myönnetty",
                shots,
            ])
            .output()
            .expect("node is needed for the browser tests (ops/setup.sh installs the rest)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["violations"], serde_json::json!([]));
    assert_eq!(seen["pages"].as_array().unwrap().len(), 5);
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
