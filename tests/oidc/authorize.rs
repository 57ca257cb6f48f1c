//! Authorization: the code flow, redirect-URI rules, errors back to the client, login and
//! consent (form_post and PAR in `par`).

use kuntalaistili_tests::{dual, Backend, TestApp};

use super::*;

dual!(
    code_flow_with_pkce_issues_verifiable_tokens_and_userinfo,
    authorize_never_redirects_to_unregistered_uris,
    authorize_errors_go_back_to_the_client_with_state_and_iss,
    login_and_consent_round_trip,
);

async fn code_flow_with_pkce_issues_verifiable_tokens_and_userinfo(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "maija").await;
    let (verifier, challenge) = pkce();
    let r = authorize(&app, &browser, &auth_query(&rp, &challenge, &[])).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let p = redirect_params(&r);
    assert_eq!(param(&p, "state"), Some("tila-123"));
    assert_eq!(param(&p, "iss"), Some(app.base.as_str()), "RFC 9207 iss");
    let code = param(&p, "code").unwrap().to_owned();

    let (status, body) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert!(body["refresh_token"].as_str().unwrap().len() >= 40);
    let at = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().unwrap();

    // The ID token: RS256 by default, verifiable with the published keys, all claims right.
    assert_eq!(header_of(id_token)["alg"], "RS256");
    let keys = jwks(&app).await;
    let claims = kuntalaistili_metadata::keys::verify_jwt(&keys, id_token).unwrap();
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(claims["azp"], rp.id.as_str());
    assert_eq!(claims["nonce"], "nonssi-456");
    assert_eq!(claims["acr"], "password");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert!(claims["sid"].is_string());
    let expected_at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(at.as_bytes())[..16]);
    assert_eq!(claims["at_hash"], expected_at_hash.as_str());
    let user_id = claims["sub"].as_str().unwrap().to_owned();

    // The access token is an RFC 9068 JWT (ES256) bound to the grant.
    let at_header = header_of(at);
    assert_eq!(
        (at_header["alg"].as_str(), at_header["typ"].as_str()),
        (Some("ES256"), Some("at+jwt"))
    );
    let at_claims = kuntalaistili_metadata::keys::verify_jwt(&keys, at).unwrap();
    assert_eq!(at_claims["client_id"], rp.id.as_str());
    assert_eq!(at_claims["sub"], user_id.as_str());

    let (s, info) = userinfo(&app, at).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "maija@example.fi");
    assert_eq!(info["given_name"], "Testi");
    assert_eq!(info["preferred_username"], "maija");
    assert!(info.get("national_id").is_none());
    // POST works too; a token in the query does not (RFC 9700 §4.3.2).
    let r = app
        .client
        .post(app.url("/oauth2/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url(&format!("/oauth2/userinfo?access_token={at}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The ID token is not an access token.
    assert_eq!(userinfo(&app, id_token).await.0, 401);

    assert_eq!(audit_count(&app, "oidc.authorized").await, 1);
    assert_eq!(audit_count(&app, "oidc.token_issued").await, 1);

    // Authorization by POST (OIDC Core 3.1.2.1) works the same; pages that carry codes or
    // states leak nothing through Referer (RFC 9700 §4.2).
    let (_, challenge) = pkce();
    let r = browser
        .post(app.url("/oauth2/authorize"))
        .form(&auth_query(&rp, &challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(param(&redirect_params(&r), "code").is_some());
    let r = browser.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // What was stored: the code as a hash, used once.
    let (stored, used) = app
        .with_conn(move |c| {
            use diesel::prelude::*;
            use kuntalaistili_schema::schema::oidc_codes::dsl::*;
            let rows: Vec<(String, Option<chrono::NaiveDateTime>)> =
                oidc_codes.select((code_hash, used_at)).load(c).unwrap();
            (rows[0].0.clone(), rows[0].1.is_some())
        })
        .await;
    assert_eq!(stored, kuntalaistili_metadata::crypto::sha256_hex(&code));
    assert!(used);
}

async fn authorize_never_redirects_to_unregistered_uris(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "ville").await;
    let (_, challenge) = pkce();
    let variants = [
        "https://rp.example.fi/cb/",
        "https://RP.example.fi/cb",
        "https://rp.example.fi/cb?x=1",
        "https://rp.example.fi/cb/../evil",
        "https://rp.example.fi/%2e%2e/cb",
        "https://user@rp.example.fi/cb",
        "https://rp.example.fi:8443/cb",
        "http://rp.example.fi/cb",
        "https://evil.example/cb",
        "",
    ];
    for v in variants {
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("redirect_uri", v)]),
        )
        .await;
        assert_eq!(r.status(), 400, "{v:?}");
        assert!(
            r.headers().get("location").is_none(),
            "{v:?} must not redirect"
        );
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        // Even with other errors in the request (A17).
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("redirect_uri", v), ("scope", "bogus")]),
        )
        .await;
        assert!(r.headers().get("location").is_none());
    }
    // Unknown and missing clients: an error page.
    for c in ["no-such-client", ""] {
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("client_id", c)]),
        )
        .await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("<html"));
    }
    // Repeated parameters are malformed: an error page.
    let mut q = auth_query(&rp, &challenge, &[]);
    q.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    let r = authorize(&app, &browser, &q).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

/// A client, the parameters to change, the error expected.
type Case<'a> = (&'a Rp, Vec<(&'a str, &'a str)>, &'a str);

async fn authorize_errors_go_back_to_the_client_with_state_and_iss(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let public = add_rp(&app, |n| n.public = true).await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let long_state = "s".repeat(128);
    let cases: Vec<Case<'_>> = vec![
        (&rp, vec![("response_type", "")], "invalid_request"),
        (
            &rp,
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            &rp,
            vec![("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (
            &rp,
            vec![("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (&rp, vec![("code_challenge_method", "")], "invalid_request"),
        (
            &rp,
            vec![("code_challenge", "too-short")],
            "invalid_request",
        ),
        (
            &public,
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (&rp, vec![("scope", "profile email")], "invalid_scope"),
        (&rp, vec![("scope", "openid admin")], "invalid_scope"),
        (&rp, vec![("prompt", "none")], "login_required"),
        (&rp, vec![("prompt", "none login")], "invalid_request"),
        (&rp, vec![("max_age", "-1")], "invalid_request"),
        (
            &rp,
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (&rp, vec![("response_mode", "fragment")], "invalid_request"),
    ];
    for (client, extra, expected) in cases {
        let mut extra = extra.clone();
        if expected == "login_required" {
            extra.push(("state", &long_state));
        }
        let r = authorize(&app, &browser, &auth_query(client, &challenge, &extra)).await;
        let p = redirect_params(&r);
        assert_eq!(param(&p, "error"), Some(expected), "{extra:?}");
        assert_eq!(param(&p, "iss"), Some(app.base.as_str()));
        let want_state = if expected == "login_required" {
            long_state.as_str()
        } else {
            "tila-123"
        };
        assert_eq!(
            param(&p, "state"),
            Some(want_state),
            "state echoed unchanged"
        );
        assert!(param(&p, "code").is_none());
    }
    // A request too large to travel through the login page is refused (use PAR), and nothing
    // is stored for it.
    let big = "s".repeat(1900);
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("state", &big)]),
    )
    .await;
    let p = redirect_params(&r);
    assert_eq!(param(&p, "error"), Some("invalid_request"));
    assert_eq!(stored_auth_requests(&app).await, 0);
    // An oversized parameter: a 400 answer with a JSON-shaped error, never a 500.
    let huge = "x".repeat(5000);
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("nonce", &huge)]),
    )
    .await;
    let p = redirect_params(&r);
    assert_eq!(param(&p, "error"), Some("invalid_request"));
}

async fn login_and_consent_round_trip(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |n| n.skip_consent = false).await;
    app.add_user("kaija", PASSWORD).await;
    let browser = app.browser();
    let (verifier, challenge) = pkce();
    let q = auth_query(
        &rp,
        &challenge,
        &[("login_hint", "kaija"), ("ui_locales", "sv en")],
    );
    let r = authorize(&app, &browser, &q).await;
    assert_eq!(r.status(), 303);
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        login.starts_with("/login?next=%2Foauth2%2Fauthorize%2Fresume%3Fr%3D"),
        "{login}"
    );
    assert!(login.contains("username=kaija") && login.contains("lang=sv"));
    // The login page: Swedish, username prefilled; log in with the `next` it carries.
    let page = browser
        .get(app.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("lang=\"sv\"") && page.contains("value=\"kaija\""));
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let next = kuntalaistili_tests::field_from(&page, "next").unwrap();
    let r = app
        .post_form(
            &browser,
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "kaija"),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let resume = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        resume.starts_with("/oauth2/authorize/resume?r="),
        "{resume}"
    );
    // Nothing was stored for the anonymous request: it travelled signed through the login page,
    // and a tampered copy is refused.
    assert_eq!(stored_auth_requests(&app).await, 0);
    let tampered = resume.replacen("&m=", "&m=x", 1);
    let r = browser.get(app.url(&tampered)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Consent is asked (the client is not first-party).
    let r = browser.get(app.url(&resume)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Kirjasto") && page.contains("name=\"decision\""),
        "{page}"
    );
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let id = kuntalaistili_tests::field_from(&page, "id").unwrap();
    // Another browser (session) cannot answer it (W02).
    let intruder = app.browser();
    app.add_user("intruder", PASSWORD).await;
    app.login(&intruder, "intruder", PASSWORD).await;
    let icsrf = app.csrf_token(&intruder, "/logout").await;
    let r = app
        .post_form(
            &intruder,
            "/consent",
            &[("csrf", &icsrf), ("id", &id), ("decision", "allow")],
        )
        .await;
    assert_eq!(r.status(), 403);
    // Without the CSRF token: refused.
    let r = app
        .post_form(&browser, "/consent", &[("id", &id), ("decision", "allow")])
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post_form(
            &browser,
            "/consent",
            &[("csrf", &csrf), ("id", &id), ("decision", "allow")],
        )
        .await;
    let p = redirect_params(&r);
    let code = param(&p, "code").unwrap().to_owned();
    assert_eq!(exchange(&app, &rp, &code, &verifier).await.0, 200);
    // Answered once only.
    let r = app
        .post_form(
            &browser,
            "/consent",
            &[("csrf", &csrf), ("id", &id), ("decision", "allow")],
        )
        .await;
    assert_eq!(r.status(), 400);

    // Remembered: the next request goes straight through; prompt=consent asks again; a denial
    // is access_denied; prompt=none without consent is consent_required.
    let (_, challenge) = pkce();
    let r = authorize(&app, &browser, &auth_query(&rp, &challenge, &[])).await;
    assert!(param(&redirect_params(&r), "code").is_some());
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("prompt", "consent")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    let id = kuntalaistili_tests::field_from(&page, "id").unwrap();
    let r = app
        .post_form(
            &browser,
            "/consent",
            &[("csrf", &csrf), ("id", &id), ("decision", "deny")],
        )
        .await;
    let p = redirect_params(&r);
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "state"), Some("tila-123"));
    let r = authorize(
        &app,
        &browser,
        &auth_query(
            &rp,
            &challenge,
            &[
                ("scope", "openid profile email offline_access"),
                ("prompt", "none"),
            ],
        ),
    )
    .await;
    assert!(
        param(&redirect_params(&r), "code").is_some(),
        "remembered consent covers it"
    );
    app.with_conn(|c| {
        use diesel::prelude::*;
        diesel::delete(kuntalaistili_schema::schema::oidc_consents::table)
            .execute(c)
            .unwrap();
    })
    .await;
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("prompt", "none")]),
    )
    .await;
    assert_eq!(
        param(&redirect_params(&r), "error"),
        Some("consent_required")
    );

    // prompt=login and max_age=0 send the resident to the login page again.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let r = authorize(&app, &browser, &auth_query(&rp, &challenge, &[extra])).await;
        assert_eq!(r.status(), 303);
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next="),
            "{extra:?}"
        );
    }
    // A login hint naming someone else also asks for login.
    let r = authorize(
        &app,
        &browser,
        &auth_query(&rp, &challenge, &[("login_hint", "joku-muu")]),
    )
    .await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));
    assert_eq!(audit_count(&app, "oidc.denied").await, 1);

    // The account page lists the service; withdrawing ends its tokens at once.
    // Allow again (the last answer was a denial), then use the service.
    {
        let r = authorize(
            &app,
            &browser,
            &auth_query(&rp, &challenge, &[("prompt", "consent")]),
        )
        .await;
        let page = r.text().await.unwrap();
        let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
        let id = kuntalaistili_tests::field_from(&page, "id").unwrap();
        let r = app
            .post_form(
                &browser,
                "/consent",
                &[("csrf", &csrf), ("id", &id), ("decision", "allow")],
            )
            .await;
        assert!(param(&redirect_params(&r), "code").is_some());
    }
    let (v2, c2) = pkce();
    let r = authorize(&app, &browser, &auth_query(&rp, &c2, &[])).await;
    let (_, t) = exchange(&app, &rp, param(&redirect_params(&r), "code").unwrap(), &v2).await;
    let account = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("Kirjasto"), "{account}");
    let action = format!("/account/consents/{}/withdraw", rp.id);
    assert!(account.contains(&action), "{account}");
    let csrf = kuntalaistili_tests::csrf_from(&account).unwrap();
    let r = app.post_form(&browser, &action, &[("csrf", &csrf)]).await;
    assert_eq!(r.headers()["location"], "/account?withdrawn=1");
    assert_eq!(
        userinfo(&app, t["access_token"].as_str().unwrap()).await.0,
        401
    );
    let r = authorize(&app, &browser, &auth_query(&rp, &c2, &[("prompt", "none")])).await;
    assert_eq!(
        param(&redirect_params(&r), "error"),
        Some("consent_required")
    );
    assert_eq!(audit_count(&app, "oidc.consent_withdrawn").await, 1);
    // Withdrawing what does not exist: 404.
    let r = app.post_form(&browser, &action, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 404);
}
