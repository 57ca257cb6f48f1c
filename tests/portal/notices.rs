//! The notice board: the notice API contract, the resident's notice board (read, archive,
//! filter), and notices addressed by national id (only with the poster's right).

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

use super::*;

dual!(
    notice_api_follows_its_contract,
    residents_read_archive_and_filter_notices,
    notices_by_national_id_need_the_posters_right,
);

async fn notice_api_follows_its_contract(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("api", PASSWORD).await;
    let token = app.client_token("notices:write").await;
    let n = notice(
        &user.id,
        "hakemus-77",
        "Varhaiskasvatus",
        "Hakemus käsittelyssä",
    );
    let (s, first) = post_notice(&app, &token, &n).await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["status"], "received");
    // The same key again: the same notice, not a second one.
    let (s, again) = post_notice(&app, &token, &n).await;
    assert_eq!((s, &again["id"]), (200, &first["id"]));
    let count = app
        .with_conn(|c| {
            use diesel::prelude::*;
            kuntalaistili_schema::schema::notices::table
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(count, 1);
    // A resident the IdP does not know: 404 problem JSON (the notice board asks the IdP).
    let (s, p) = post_notice(
        &app,
        &token,
        &notice("00000000-0000-0000-0000-00000000dead", "k-x", "S", "T"),
    )
    .await;
    assert_eq!((s, p["status"].as_i64()), (404, Some(404)));
    // A revoked token stops at once (the notice board introspects at the IdP).
    let (rid, rsecret, revoked) = app.client_with_token("notices:write").await;
    assert_eq!(
        post_notice(&app, &revoked, &notice(&user.id, "rv-1", "S", "T"))
            .await
            .0,
        201
    );
    let r = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&rid, Some(&rsecret))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        post_notice(&app, &revoked, &notice(&user.id, "rv-2", "S", "T"))
            .await
            .0,
        401
    );
    // The IdP's resident look-up the notice board uses: its own scope only.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/residents/{}", user.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let reader = app.client_token("residents:read").await;
    let r = app
        .client
        .get(app.url(&format!("/api/v1/residents/{}", user.id)))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["sub"], user.id.as_str());
    // Wrong scope, no token, a forged token.
    let wrong = app.client_token("api:read").await;
    let (s, p) = post_notice(&app, &wrong, &n).await;
    assert_eq!((s, p["status"].as_i64()), (403, Some(403)));
    let r = app
        .client
        .post(app.url("/services/noticeboard/api/notices"))
        .json(&n)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(post_notice(&app, &forged, &n).await.0, 401);
    // Malformed and oversized bodies: 400 problem JSON.
    for bad in [
        json!({ "sub": user.id }),
        json!({ "sub": user.id, "idempotency_key": "x", "service": "S", "title": "T", "status": "done" }),
        json!({ "sub": user.id, "idempotency_key": "x", "service": "S", "title": "T", "link": "http://insecure.example/" }),
        json!({ "sub": user.id, "idempotency_key": "x", "service": "S", "title": "T", "extra": 1 }),
        json!({ "sub": user.id, "idempotency_key": "x", "service": "S", "title": "" }),
        json!({ "sub": user.id, "idempotency_key": "x", "service": "S", "title": "T", "body": "x".repeat(5000) }),
    ] {
        let (s, p) = post_notice(&app, &token, &bad).await;
        assert_eq!((s, p["status"].as_i64()), (400, Some(400)), "{bad}");
    }
    let r = app
        .client
        .post(app.url("/services/noticeboard/api/notices"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"sub\": \"{}\"", "x".repeat(40_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = app
        .client
        .post(app.url("/services/noticeboard/api/notices"))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Reading needs a resident's token with the notices scope, not a client's.
    let r = app
        .client
        .get(app.url("/services/noticeboard/api/notices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn residents_read_archive_and_filter_notices(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("lukija", PASSWORD).await;
    let token = app.client_token("notices:write").await;
    for (k, svc, title) in [
        ("a", "Rakennusvalvonta", "Lupa myönnetty"),
        ("b", "Varhaiskasvatus", "Paikka tarjolla"),
        ("c", "Varhaiskasvatus", "Laskutus muuttuu"),
    ] {
        assert_eq!(
            post_notice(&app, &token, &notice(&user.id, k, svc, title))
                .await
                .0,
            201
        );
    }
    let browser = app.browser();
    assert_eq!(app.login(&browser, "lukija", PASSWORD).await.status(), 303);
    let (s, _, page) = follow(&app, &browser, "/services/noticeboard/").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("Sinulla on 3 lukematonta ilmoitusta."),
        "{page}"
    );
    let (_, _, filtered) = follow(
        &app,
        &browser,
        "/services/noticeboard/?service=Varhaiskasvatus",
    )
    .await;
    assert!(filtered.contains("Paikka tarjolla") && !filtered.contains("Lupa myönnetty"));
    // Mark one read, archive another (with the session's CSRF token).
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let ids: Vec<String> = app
        .with_conn(|c| {
            use diesel::prelude::*;
            use kuntalaistili_schema::schema::notices::dsl::*;
            notices.order(title.asc()).select(id).load(c).unwrap()
        })
        .await; // Laskutus, Lupa, Paikka
    let act = |id: &str, action: &str| format!("/services/noticeboard/notices/{id}/{action}");
    let r = app
        .post_form(&browser, &act(&ids[1], "read"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .post_form(&browser, &act(&ids[0], "archive"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 303);
    // Without the token, or someone else's notice: refused.
    let r = app
        .post_form(&browser, &act(&ids[2], "read"), &[("csrf", "wrong")])
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post_form(
            &browser,
            &act("00000000-0000-0000-0000-000000000000", "read"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 404);
    let (_, _, page) = follow(&app, &browser, "/services/noticeboard/").await;
    assert!(
        page.contains("Sinulla on 1 lukematonta ilmoitusta."),
        "{page}"
    );
    assert!(
        !page.contains("Laskutus muuttuu"),
        "archived notices leave the list"
    );
    let (_, _, archived) = follow(&app, &browser, "/services/noticeboard/?archived=1").await;
    assert!(archived.contains("Laskutus muuttuu"));
    // Another resident sees none of them.
    app.add_user("toinen", PASSWORD).await;
    let other = app.browser();
    app.login(&other, "toinen", PASSWORD).await;
    let (_, _, theirs) = follow(&app, &other, "/services/noticeboard/").await;
    assert!(theirs.contains("Ei ilmoituksia.") && !theirs.contains("Paikka tarjolla"));
    // JSON for the resident's own session.
    let v: Value = browser
        .get(app.url("/services/noticeboard/api/notices"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["unread"], 1);
    assert_eq!(v["notices"].as_array().unwrap().len(), 2);
}

async fn notices_by_national_id_need_the_posters_right(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    let person = tokio::task::spawn_blocking(move || {
        kuntalaistili_idp::customers::add(
            &mut st.db.conn().unwrap(),
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "hetullinen".into(),
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
    // A case-management system allowed national ids, and one that is not.
    let allowed_id = app
        .with_conn(|c| {
            let (cl, secret) = kuntalaistili_federation::clients::add(
                c,
                kuntalaistili_federation::clients::NewClient {
                    name: "Asianhallinta".into(),
                    grant_types: vec!["client_credentials".into()],
                    scopes: "notices:write".into(),
                    allow_national_id: true,
                    ..Default::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap();
            (cl.client_id, secret.unwrap())
        })
        .await;
    let r: Value = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&allowed_id.0, Some(&allowed_id.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let allowed = r["access_token"].as_str().unwrap().to_owned();
    let other = app.client_token("notices:write").await;
    let by_id = |key: &str, id: &str| {
        json!({ "national_id": id, "idempotency_key": key, "service": "Sosiaalitoimi",
                "title": "Päätös tehty", "status": "decided" })
    };

    let (s, n) = post_notice(&app, &allowed, &by_id("h1", "131052-308T")).await;
    assert_eq!(s, 201, "{n}");
    let (s, again) = post_notice(&app, &allowed, &by_id("h1", "131052-308T")).await;
    assert_eq!((s, &again["id"]), (200, &n["id"]), "idempotent");
    let (s, v) = post_notice(&app, &allowed, &by_id("h2", "010101-123N")).await;
    assert_eq!((s, v["status"].as_u64()), (404, Some(404)), "nobody has it");
    let (s, _) = post_notice(&app, &allowed, &by_id("h3", "131052-308X")).await;
    assert_eq!(s, 400, "bad check character");
    let mut both = by_id("h4", "131052-308T");
    both["sub"] = json!(person.id);
    assert_eq!(post_notice(&app, &allowed, &both).await.0, 400);
    // A poster without the right learns nothing, even about existing people.
    let (s, v) = post_notice(&app, &other, &by_id("h5", "131052-308T")).await;
    assert_eq!(s, 403, "{v}");
    let stored = app
        .with_conn({
            let sub = person.id.clone();
            move |c| {
                kuntalaistili_schema::notices::list(
                    c,
                    &sub,
                    &kuntalaistili_schema::notices::Filter {
                        limit: 50,
                        ..Default::default()
                    },
                )
                .unwrap()
                .len()
            }
        })
        .await;
    assert_eq!(stored, 1);
    // Every look-up is in the audit log, under the poster's name, without the number itself.
    let events = ext_events(&app, "resident.national_id_lookup").await;
    assert_eq!(
        events.len(),
        4,
        "h1 twice, h2, h5 (h3 is refused before the look-up)"
    );
    let refused: Vec<_> = events.iter().filter(|e| e.outcome == "failure").collect();
    assert_eq!(refused.len(), 1);
    assert_ne!(refused[0].actor.as_deref(), Some(allowed_id.0.as_str()));
    assert!(events
        .iter()
        .filter(|e| e.outcome == "success")
        .all(|e| e.actor.as_deref() == Some(allowed_id.0.as_str())));
    assert!(events
        .iter()
        .all(|e| !e.details.to_string().contains("308T")));

    // A resident's token of an allowed client does not open the look-up (residents' tokens are
    // seen by every service they use).
    let rp = crate::oidc::add_rp(&app, |c| c.allow_national_id = true).await;
    let b = crate::oidc::logged_in(&app, "kayttaja-rp").await;
    let (code, verifier) = crate::oidc::code_for(&app, &b, &rp).await;
    let (_, t) = crate::oidc::exchange(&app, &rp, &code, &verifier).await;
    let via = app.client_token("residents:read").await;
    let r = app
        .client
        .post(app.url("/api/v1/residents/lookup"))
        .bearer_auth(&via)
        .json(&json!({ "national_id": "131052-308T", "requester_token": t["access_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
