//! The portal and the notice board as OIDC relying parties of the IdP: silent SSO, the visitor
//! and resident front pages, the notice API contract, the resident's notice board, and logout
//! from a service ending every session (RP-initiated plus back-channel logout).

use kuntalaistili_tests::{dual, follow, Alone, Backend, TestApp};
use serde_json::{json, Value};

dual!(
    visitors_see_the_directory_and_residents_their_notices_with_one_login,
    notice_api_follows_its_contract,
    residents_read_archive_and_filter_notices,
    logging_out_of_a_service_ends_every_session,
    editors_manage_the_directory_and_nobody_else_can,
    notices_by_national_id_need_the_posters_right,
);

const PASSWORD: &str = "portaali-salasana";

/// Logs in at the IdP page the flow arrived at and follows on.
async fn login_here(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    user: &str,
) -> (u16, String, String) {
    let csrf = kuntalaistili_tests::csrf_from(page).unwrap();
    let next = kuntalaistili_tests::field_from(page, "next").unwrap();
    let r = app
        .post_form(
            client,
            "/login",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(r.status(), 303, "login failed");
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    follow(app, client, &loc).await
}

async fn post_notice(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/services/noticeboard/api/notices"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn notice(sub: &str, key: &str, service: &str, title: &str) -> Value {
    json!({
        "sub": sub, "idempotency_key": key, "service": service, "title": title,
        "body": "Hakemuksesi on vastaanotettu.", "link": "https://lupapiste.example.fi/asia/1",
        "status": "received",
    })
}

async fn visitors_see_the_directory_and_residents_their_notices_with_one_login(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("asukas", PASSWORD).await;
    let token = app.client_token("notices:write").await;
    assert_eq!(
        post_notice(
            &app,
            &token,
            &notice(
                &user.id,
                "k1",
                "Rakennusvalvonta",
                "Lupahakemus vastaanotettu"
            )
        )
        .await
        .0,
        201
    );
    let browser = app.browser();
    // A visitor: silent SSO finds no IdP session; the visitor front page with the directory.
    let (s, url, page) = follow(&app, &browser, "/").await;
    assert_eq!((s, url.as_str()), (200, app.url("/").as_str()));
    assert!(page.contains("Kuntasi sähköiset palvelut"));
    assert!(page.contains("/services/directory/?seutukunta="));
    assert!(page.contains("href=\"&#x2F;auth&#x2F;login\""), "{page}");
    // Log in once through the portal's login link.
    let (s, url, login_page) = follow(&app, &browser, "/auth/login").await;
    assert_eq!(s, 200);
    assert!(url.contains("/login?next="), "{url}");
    let (s, url, front) = login_here(&app, &browser, &login_page, "asukas").await;
    assert_eq!((s, url.as_str()), (200, app.url("/").as_str()));
    assert!(front.contains("Lupahakemus vastaanotettu"), "{front}");
    assert!(
        front.contains("Käyttäjä-asukas"),
        "the resident's name in the header"
    );
    assert!(
        front.contains("class=\"badge\">1"),
        "unread count in the header"
    );
    // A second service: no password again (silent SSO at the IdP).
    let (s, url, board) = follow(&app, &browser, "/services/noticeboard/").await;
    assert_eq!(
        (s, url.as_str()),
        (200, app.url("/services/noticeboard/").as_str())
    );
    assert!(board.contains("Lupahakemus vastaanotettu"));
    let logins = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("login.success"), None, 10)
                .unwrap()
                .len()
        })
        .await;
    assert_eq!(logins, 1, "one password login for both services");
    // Language switch works on service pages.
    let (_, _, sv) = follow(&app, &browser, "/?lang=sv").await;
    assert!(sv.contains("lang=\"sv\"") && sv.contains("Nya meddelanden"));
}

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

async fn logging_out_of_a_service_ends_every_session(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("ulos", PASSWORD).await;
    let browser = app.browser();
    assert_eq!(app.login(&browser, "ulos", PASSWORD).await.status(), 303);
    let (_, _, front) = follow(&app, &browser, "/").await;
    let (s, _, board) = follow(&app, &browser, "/services/noticeboard/").await;
    assert_eq!(s, 200);
    assert!(board.contains("Ilmoitukset"));
    // Log out from the portal's header button (CSRF-protected).
    let csrf = kuntalaistili_tests::csrf_from(&front).unwrap();
    assert_eq!(
        app.post_form(&browser, "/auth/logout", &[("csrf", "x")])
            .await
            .status(),
        403
    );
    let r = app
        .post_form(&browser, "/auth/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 303);
    let to_idp = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_idp.starts_with(&app.url("/oauth2/logout?id_token_hint=")),
        "{to_idp}"
    );
    // The IdP ends the session at once (the hint names it) and sends the resident back.
    let r = browser.get(&to_idp).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], app.url("/").as_str());
    assert_eq!(
        browser
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    // The notice board heard about it over the back channel.
    let mut ended = false;
    for _ in 0..50 {
        let n = app
            .with_conn(|c| {
                use diesel::prelude::*;
                kuntalaistili_schema::schema::svc_sessions::table
                    .count()
                    .get_result::<i64>(c)
                    .unwrap()
            })
            .await;
        if n == 0 {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ended, "back-channel logout ended the notice board session");
    let (s, url, _) = follow(&app, &browser, "/services/noticeboard/").await;
    assert_eq!(s, 200);
    assert!(url.contains("/login?next="), "asked to log in again: {url}");
}

dual!(a_service_runs_alone_against_the_idp);

/// `serve --only noticeboard --issuer URL`: the notice board on its own port and database, a
/// relying party of the IdP over HTTP only; a resident logged in at the IdP gets in silently.
async fn a_service_runs_alone_against_the_idp(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("erillinen", PASSWORD).await;
    // Its own port and database (SQLite, whatever the IdP runs on).
    let alone = Alone::start(&app, "noticeboard", "/services/noticeboard", |nb| {
        kuntalaistili_federation::clients::NewClient {
            name: "Ilmoitustaulu (erillinen)".into(),
            redirect_uris: vec![format!("{nb}/auth/callback")],
            post_logout_redirect_uris: vec![format!("{nb}/")],
            backchannel_logout_uri: Some(format!("{nb}/auth/backchannel-logout")),
            skip_consent: true,
            scopes: "openid profile".into(),
            ..Default::default()
        }
    })
    .await;
    let base = alone.base.clone();
    let nb = format!("{base}/services/noticeboard");

    let browser = app.browser();
    assert_eq!(
        app.login(&browser, "erillinen", PASSWORD).await.status(),
        303
    );
    let (s, url, page) = follow(&app, &browser, &format!("{nb}/")).await;
    assert_eq!(
        (s, url.as_str()),
        (200, format!("{nb}/").as_str()),
        "{page}"
    );
    assert!(page.contains("Ilmoitukset") && page.contains("Käyttäjä-erillinen"));
    // Nothing of the IdP runs there.
    let r = browser.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    alone.stop();
}

dual!(a_service_login_cannot_be_finished_in_another_browser);

/// Login CSRF (SECURITY W03): an attacker who starts a service login with their own account and
/// sends the victim the callback link does not log the victim in as the attacker.
async fn a_service_login_cannot_be_finished_in_another_browser(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("hyokkaaja", PASSWORD).await;
    let attacker = app.browser();
    assert_eq!(
        app.login(&attacker, "hyokkaaja", PASSWORD).await.status(),
        303
    );
    // The attacker's browser runs the flow up to the callback and stops there.
    let mut url = app.url("/services/noticeboard/auth/login?return_to=/services/noticeboard/");
    let callback = loop {
        let r = attacker.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        let next = url::Url::parse(&url)
            .unwrap()
            .join(&loc)
            .unwrap()
            .to_string();
        if next.contains("/services/noticeboard/auth/callback") {
            break next;
        }
        url = next;
    };
    let victim = app.browser();
    let r = victim.get(&callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        400,
        "the callback is refused in another browser"
    );
    assert!(r
        .headers()
        .get("set-cookie")
        .is_none_or(|c| !c.to_str().unwrap().starts_with("kl_svc_noticeboard=")));
    // The attacker's own browser can still finish (the code was not used).
    let r = attacker.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/services/noticeboard/");
}

async fn ext_events(
    app: &TestApp,
    kind: &'static str,
) -> Vec<kuntalaistili_schema::audit::AuditEvent> {
    app.with_conn(move |c| kuntalaistili_schema::audit::recent(c, Some(kind), None, 50).unwrap())
        .await
}

async fn find_services(app: &TestApp, q: &str) -> Vec<Value> {
    let v: Value = app
        .client
        .get(app.url(&format!("/services/directory/api/services?q={q}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["services"].as_array().unwrap().clone()
}

async fn editors_manage_the_directory_and_nobody_else_can(b: Backend) {
    let app = TestApp::start(b).await;
    let editor = app.add_user("toimittaja", PASSWORD).await;
    app.add_user("asukas", PASSWORD).await;
    const MANAGE: &str = "/services/directory/manage/";

    // Logged in but without the right: refused.
    let browser = app.browser();
    let (s, _, login) = follow(&app, &browser, MANAGE).await;
    assert_eq!(s, 200);
    let (s, _, page) = login_here(&app, &browser, &login, "toimittaja").await;
    assert_eq!(s, 403, "{page}");
    let (_, _, dir) = follow(&app, &browser, "/services/directory/").await;
    assert!(!dir.contains("manage"), "no edit link for non-editors");
    assert_eq!(
        ext_events(&app, "authz.denied").await.len(),
        1,
        "the refused edit page is audited; showing the directory (a probe) is not"
    );

    // The right granted by the operator takes effect at the next request.
    let (code, grant) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "grant",
            "--user",
            "toimittaja",
            "--permission",
            "directory:edit",
        ])
    });
    assert_eq!(code, 0, "{grant}");
    let (_, _, dir) = follow(&app, &browser, "/services/directory/").await;
    assert!(dir.contains("Hallinnoi palveluhakemistoa"), "{dir}");
    let (s, _, page) = follow(&app, &browser, MANAGE).await;
    assert_eq!(s, 200, "{page}");
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let (s, _, form) = follow(&app, &browser, "/services/directory/manage/new").await;
    assert_eq!(s, 200);
    assert!(form.contains("name=\"name_sv\""));

    let mut fields = vec![
        ("csrf", csrf.clone()),
        ("mode", "new".into()),
        ("id", "kirjastokortti".into()),
        ("name_fi", "Kirjastokortti".into()),
        ("name_sv", "Bibliotekskort".into()),
        ("name_en", "Library card".into()),
        ("description_fi", "Hae kirjastokorttia verkossa.".into()),
        ("description_sv", "Ansök om bibliotekskort på nätet.".into()),
        ("description_en", "Apply for a library card online.".into()),
        ("provider", "Helmet-kirjastot".into()),
        ("channel_url", "https://kirjasto.example.fi/kortti".into()),
        ("auth_level", "password".into()),
        ("keywords", "kirjasto, laina".into()),
        ("target_groups", "asukkaat".into()),
        ("municipalities", "091, 049".into()),
    ];
    let post = |path: &'static str, f: Vec<(&'static str, String)>| {
        let (app, browser) = (&app, browser.clone());
        async move {
            let r = browser.post(app.url(path)).form(&f).send().await.unwrap();
            let status = r.status().as_u16();
            let loc = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (status, loc, r.text().await.unwrap())
        }
    };
    // Invalid input: the form again with the reason, nothing stored, nothing audited.
    let mut bad = fields.clone();
    bad[4].1 = String::new();
    let (s, _, body) = post("/services/directory/manage/save", bad).await;
    assert_eq!(s, 400);
    assert!(
        body.contains("fi, sv and en") && body.contains("Helmet-kirjastot"),
        "{body}"
    );
    assert!(find_services(&app, "Kirjastokortti").await.is_empty());
    // A stale or foreign CSRF token changes nothing.
    let mut forged = fields.clone();
    forged[0].1 = "väärä".into();
    let (s, _, _) = post("/services/directory/manage/save", forged).await;
    assert_eq!(s, 403);
    assert!(find_services(&app, "Kirjastokortti").await.is_empty());
    assert!(ext_events(&app, "ext.directory.service_saved")
        .await
        .is_empty());

    let (s, loc, _) = post("/services/directory/manage/save", fields.clone()).await;
    assert_eq!(
        (s, loc.as_deref()),
        (303, Some("/services/directory/manage/?done=saved"))
    );
    let found = find_services(&app, "Kirjastokortti").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["municipalities"], json!(["091", "049"]));
    assert_eq!(found[0]["name"]["sv"], "Bibliotekskort");
    // The same id again as a new service: refused, not overwritten.
    let (s, _, _) = post("/services/directory/manage/save", fields.clone()).await;
    assert_eq!(s, 409);
    // Edit.
    fields[1].1 = "edit".into();
    fields[3].1 = "Kirjastokortti verkossa".into();
    let (s, _, _) = post("/services/directory/manage/save", fields.clone()).await;
    assert_eq!(s, 303);
    assert_eq!(
        find_services(&app, "verkossa").await[0]["name"]["fi"],
        "Kirjastokortti verkossa"
    );
    let (s, _, form) = follow(
        &app,
        &browser,
        "/services/directory/manage/edit/kirjastokortti",
    )
    .await;
    assert_eq!(s, 200);
    assert!(form.contains("Kirjastokortti verkossa") && form.contains("091, 049"));

    // Export, and import of a catalogue (all or nothing).
    let r = browser
        .get(app.url("/services/directory/manage/export.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut cat: Value = r.json().await.unwrap();
    let mut copy = cat["services"][0].clone();
    copy["id"] = json!("kirjastokortti-2");
    copy["name"]["fi"] = json!("Toinen kortti");
    cat["services"].as_array_mut().unwrap().push(copy.clone());
    let (s, loc, _) = post(
        "/services/directory/manage/import",
        vec![("csrf", csrf.clone()), ("catalogue", cat.to_string())],
    )
    .await;
    assert_eq!(
        (s, loc.as_deref()),
        (303, Some("/services/directory/manage/?done=imported&n=2"))
    );
    assert_eq!(find_services(&app, "Toinen").await.len(), 1);
    copy["id"] = json!("kolmas");
    copy["municipalities"] = json!(["999"]);
    let (s, _, body) = post(
        "/services/directory/manage/import",
        vec![
            ("csrf", csrf.clone()),
            ("catalogue", json!({ "services": [copy] }).to_string()),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        body.contains("Mitään ei tuotu") && body.contains("999"),
        "{body}"
    );
    let (s, _, _) = post(
        "/services/directory/manage/import",
        vec![("csrf", csrf.clone()), ("catalogue", "{not json".into())],
    )
    .await;
    assert_eq!(s, 400);

    // Remove.
    let (s, loc, _) = post(
        "/services/directory/manage/delete/kirjastokortti-2",
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(
        (s, loc.as_deref()),
        (303, Some("/services/directory/manage/?done=deleted"))
    );
    assert!(find_services(&app, "Toinen").await.is_empty());

    // Every change is in the IdP's audit log, by the editor.
    let saved = ext_events(&app, "ext.directory.service_saved").await;
    assert_eq!(saved.len(), 2);
    assert!(saved
        .iter()
        .all(|e| e.subject.as_deref() == Some(editor.id.as_str())));
    assert_eq!(ext_events(&app, "ext.directory.imported").await.len(), 1);
    assert_eq!(
        ext_events(&app, "ext.directory.service_removed")
            .await
            .len(),
        1
    );

    // Revoked: the next request is refused.
    let (code, _) = tokio::task::block_in_place(|| {
        app.cli_json(&["authz", "revoke", grant["id"].as_str().unwrap()])
    });
    assert_eq!(code, 0);
    let (s, _, _) = follow(&app, &browser, MANAGE).await;
    assert_eq!(s, 403);
    let (s, _, _) = post(
        "/services/directory/manage/delete/kirjastokortti",
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(find_services(&app, "verkossa").await.len(), 1);
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
