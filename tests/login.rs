//! Password login: success, wrong password, unknown user, throttling, CSRF.

use std::time::{Duration, Instant};

use kuntalaistili_schema::audit;
use kuntalaistili_tests::{dual, new_client, Backend, TestApp};

dual!(
    login_succeeds_and_creates_server_side_session,
    wrong_password_is_refused_and_audited,
    unknown_user_gets_same_answer_at_similar_cost,
    account_throttling_blocks_even_the_right_password,
    ip_throttling_blocks_many_accounts_from_one_address,
    login_without_valid_csrf_token_is_refused,
    disabled_account_cannot_log_in_and_looks_like_a_wrong_password,
    successful_login_resets_the_account_counter,
);

async fn login_succeeds_and_creates_server_side_session(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("maija", "oikea-salasana").await;
    let resp = app.login(&app.client, "Maija", "oikea-salasana").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/account");
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("kl_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    let token = cookie
        .trim_start_matches("kl_session=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(token.len() >= 43, "256-bit token");

    let page = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Käyttäjä-maija"),
        "account shows the resident's name"
    );

    // Stored: one session for the user, keyed by the token's hash, never the token.
    let uid = user.id.clone();
    let (sessions, events) = app
        .with_conn(move |c| {
            let s = kuntalaistili_schema::sessions::list_for_user(
                c,
                &uid,
                kuntalaistili_schema::now_utc(),
            )
            .unwrap();
            let e = audit::recent(c, Some("login.success"), Some(&uid), 10).unwrap();
            (s, e)
        })
        .await;
    assert_eq!(sessions.len(), 1);
    assert_ne!(sessions[0].token_hash, token);
    assert_eq!(
        sessions[0].token_hash,
        kuntalaistili_idp::crypto::sha256_hex(&token)
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].ip.as_deref(), Some("127.0.0.1"));
}

async fn wrong_password_is_refused_and_audited(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("matti", "oikea-salasana").await;
    let resp = app.login(&app.client, "matti", "väärä-salasana").await;
    assert_eq!(resp.status(), 401);
    assert!(resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().contains("kl_session=")));
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Käyttäjätunnus tai salasana on väärin."),
        "{html}"
    );
    assert!(html.contains("role=\"alert\""));
    assert_eq!(
        app.client
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    let uid = user.id.clone();
    let failures = app
        .with_conn(move |c| audit::recent(c, Some("login.failure"), Some(&uid), 10).unwrap())
        .await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].outcome, "failure");
    assert!(
        !failures[0].details.contains("väärä"),
        "the password is never logged"
    );
}

async fn unknown_user_gets_same_answer_at_similar_cost(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("liisa", "oikea-salasana").await;
    let mut known = Duration::MAX;
    let mut unknown = Duration::MAX;
    let (mut body_known, mut body_unknown) = (String::new(), String::new());
    for _ in 0..3 {
        let c = new_client();
        let t = Instant::now();
        let r = app.login(&c, "liisa", "väärä-salasana").await;
        known = known.min(t.elapsed());
        assert_eq!(r.status(), 401);
        body_known = r.text().await.unwrap();
        let c = new_client();
        let t = Instant::now();
        let r = app.login(&c, "eiolemassa", "väärä-salasana").await;
        unknown = unknown.min(t.elapsed());
        assert_eq!(r.status(), 401);
        body_unknown = r.text().await.unwrap();
    }
    let strip = |s: &str, user: &str| {
        let s = s.replace(user, "USER");
        match kuntalaistili_tests::csrf_from(&s) {
            Some(t) => s.replace(&t, "TOKEN"),
            None => s,
        }
    };
    assert_eq!(
        strip(&body_known, "liisa"),
        strip(&body_unknown, "eiolemassa")
    );
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.4..2.5).contains(&ratio),
        "known {known:?} vs unknown {unknown:?}: the unknown account must cost a hash too"
    );
}

async fn account_throttling_blocks_even_the_right_password(b: Backend) {
    let app = TestApp::start_with(b, |c| c.throttle.account_max_failures = 3).await;
    app.add_user("pekka", "oikea-salasana").await;
    for i in 0..3 {
        let r = app.login(&new_client(), "pekka", "väärin").await;
        assert_eq!(r.status(), if i < 2 { 401 } else { 429 }, "attempt {i}");
    }
    let r = app.login(&new_client(), "pekka", "oikea-salasana").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Liian monta epäonnistunutta kirjautumisyritystä"),
        "{html}"
    );
    // An account name that does not exist is throttled the same way: no enumeration.
    for _ in 0..3 {
        app.login(&new_client(), "eiole", "väärin").await;
    }
    assert_eq!(
        app.login(&new_client(), "eiole", "väärin").await.status(),
        429
    );
    let n = app
        .with_conn(|c| {
            audit::recent(c, Some("login.throttled"), None, 10)
                .unwrap()
                .len()
        })
        .await;
    assert_eq!(n, 2);
}

async fn ip_throttling_blocks_many_accounts_from_one_address(b: Backend) {
    let app = TestApp::start_with(b, |c| c.throttle.ip_max_failures = 4).await;
    app.add_user("anna", "oikea-salasana").await;
    for i in 0..4 {
        let r = app
            .login(&new_client(), &format!("arvaus{i}"), "väärin")
            .await;
        assert_eq!(r.status(), if i < 3 { 401 } else { 429 }, "attempt {i}");
    }
    assert_eq!(
        app.login(&new_client(), "anna", "oikea-salasana")
            .await
            .status(),
        429
    );
}

async fn login_without_valid_csrf_token_is_refused(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("ville", "oikea-salasana").await;
    // Missing token.
    app.csrf_token(&app.client, "/login").await;
    let r = app
        .post_form(
            &app.client,
            "/login",
            &[("username", "ville"), ("password", "oikea-salasana")],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Lomake ehti vanhentua"));
    // A token from another browser.
    let other = new_client();
    let foreign = app.csrf_token(&other, "/login").await;
    let r = app
        .post_form(
            &app.client,
            "/login",
            &[
                ("csrf", foreign.as_str()),
                ("username", "ville"),
                ("password", "oikea-salasana"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    // No cookie at all.
    let r = app
        .post_form(
            &new_client(),
            "/login",
            &[
                ("csrf", foreign.as_str()),
                ("username", "ville"),
                ("password", "oikea-salasana"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.client
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
}

async fn disabled_account_cannot_log_in_and_looks_like_a_wrong_password(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("poistettu", "oikea-salasana").await;
    assert_eq!(
        app.login(&new_client(), "poistettu", "oikea-salasana")
            .await
            .status(),
        303
    );
    let ended = app
        .with_conn(|c| {
            kuntalaistili_idp::customers::disable(
                c,
                "poistettu",
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap()
            .sessions_ended
        })
        .await;
    assert_eq!(ended, 1, "disabling ends the live session");
    let r = app
        .login(&new_client(), "poistettu", "oikea-salasana")
        .await;
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Käyttäjätunnus tai salasana on väärin."));
}

async fn successful_login_resets_the_account_counter(b: Backend) {
    let app = TestApp::start_with(b, |c| c.throttle.account_max_failures = 3).await;
    app.add_user("nollaus", "oikea-salasana").await;
    for _ in 0..2 {
        assert_eq!(
            app.login(&new_client(), "nollaus", "väärin").await.status(),
            401
        );
    }
    assert_eq!(
        app.login(&new_client(), "nollaus", "oikea-salasana")
            .await
            .status(),
        303
    );
    for _ in 0..2 {
        assert_eq!(
            app.login(&new_client(), "nollaus", "väärin").await.status(),
            401,
            "counter was reset"
        );
    }
    assert_eq!(
        app.login(&new_client(), "nollaus", "väärin").await.status(),
        429
    );
}
