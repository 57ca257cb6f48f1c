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

dual!(resident_books_pays_and_cancels_in_chromium);

/// Facility reservation in Chromium with the test bank: book → pay → confirmed → notice on the
/// front page → cancel → refunded; a second window's calendar updates live; WCAG 2.1 AA pages.
async fn resident_books_pays_and_cancels_in_chromium(b: Backend) {
    use chrono::{Datelike, Duration};
    let app = TestApp::start(b).await;
    app.add_user("kuorolainen", "kuoron-salasana-pitka").await;
    let now = kuntalaistili_schema::now_utc();
    app.with_conn(move |c| {
        use kuntalaistili_schema::reservations::*;
        insert_unit(
            c,
            &Unit {
                id: "u-kuoro".into(),
                name: "Musiikkitalo".into(),
                municipality_code: "091".into(),
                street_address: "Mannerheimintie 13".into(),
                postal_code: "00100".into(),
                city: "Helsinki".into(),
                contact: "info@example.fi".into(),
                latitude: None,
                longitude: None,
                created_at: now,
            },
        )
        .unwrap();
        insert_resource(
            c,
            &Resource {
                id: "harjoitussali".into(),
                unit_id: "u-kuoro".into(),
                kind: "facility".into(),
                name_fi: "Harjoitussali".into(),
                name_sv: "Övningssal".into(),
                name_en: "Rehearsal hall".into(),
                description: "Akustinen sali".into(),
                resource_type: "hall".into(),
                purposes: "music".into(),
                capacity: 40,
                equipment: "Flyygeli".into(),
                image_url: None,
                terms: String::new(),
                auth_level: "weak".into(),
                lipas_id: None,
                slot_minutes: 60,
                min_minutes: 60,
                max_minutes: 180,
                buffer_before: 0,
                buffer_after: 0,
                advance_min_minutes: 0,
                advance_max_days: 60,
                max_per_resident: 5,
                cancel_hours: 24,
                manual_approval: false,
                price_kind: "hourly".into(),
                price_cents: 2000,
                reduced_price_cents: None,
                vat_basis_points: 2550,
                active: true,
                created_at: now,
            },
        )
        .unwrap();
        for weekday in 1..=7 {
            insert_hours(
                c,
                &Hours {
                    id: format!("hs-{weekday}"),
                    resource_id: "harjoitussali".into(),
                    valid_from: now.date() - Duration::days(1),
                    valid_until: None,
                    weekday,
                    opens_min: 8 * 60,
                    closes_min: 20 * 60,
                },
            )
            .unwrap();
        }
    })
    .await;
    // Next week's Wednesday 10.00 local (the API says which instant that is).
    let day = (now + Duration::days(7)).date();
    let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let wednesday = monday + Duration::days(2);
    let v: serde_json::Value = app
        .client
        .get(app.url(&format!(
            "/services/reservations/api/resources/harjoitussali/availability?from={wednesday}&to={}",
            wednesday + Duration::days(1)
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // 08, 09, 10 local: the third slot of the day.
    let begins = v["days"][0]["slots"][2]["begins_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/screenshots");
    let seen = kuntalaistili_tests::run_node(
        "browser/reservations.mjs",
        vec![
            app.base.clone(),
            "kuorolainen".into(),
            "kuoron-salasana-pitka".into(),
            "harjoitussali".into(),
            monday.to_string(),
            begins,
            "Harjoitussali".into(),
            shots.into(),
        ],
    )
    .await;
    assert_eq!(seen["violations"], serde_json::json!([]), "{seen}");
    assert_eq!(
        seen["states"],
        serde_json::json!(["waiting_for_payment", "confirmed", "cancelled"])
    );
    assert_eq!(seen["liveUpdate"], true, "the open calendar updated live");
    assert_eq!(seen["notice"], true);
    // Paid 40,00 € and refunded in whole at the test bank.
    let (order, bank) = app
        .with_conn(|c| {
            let sub = kuntalaistili_schema::users::find_by_username(c, "kuorolainen")
                .unwrap()
                .unwrap()
                .id;
            let r = kuntalaistili_schema::reservations::of_resident(c, &sub, "facility").unwrap();
            let o = kuntalaistili_schema::payments::of_reservation(c, &r[0].0.id).unwrap();
            let bank = kuntalaistili_schema::payments::testbank_find(
                c,
                o[0].transaction_id.as_deref().unwrap(),
            )
            .unwrap()
            .unwrap();
            ((o[0].state.clone(), o[0].amount_cents), bank.status)
        })
        .await;
    assert_eq!(order, ("refunded".to_owned(), 4000));
    assert_eq!(bank, "refunded");
}
