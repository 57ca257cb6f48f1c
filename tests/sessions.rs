//! SSO sessions: cookie flags, logout, ending sessions from the account page.

use kuntalaistili_schema::{audit, sessions};
use kuntalaistili_tests::{csrf_from, dual, new_client, Backend, TestApp};

dual!(
    https_deployment_uses_host_prefixed_secure_cookies,
    logout_ends_the_session_on_the_server,
    logout_requires_csrf_token,
    log_out_everywhere_ends_every_session,
    ending_another_session_keeps_this_one,
    housekeeping_removes_only_expired_rows,
    idle_timeout_ends_the_session,
);

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn https_deployment_uses_host_prefixed_secure_cookies(b: Backend) {
    // Behind a TLS-terminating proxy the public URL is https: cookies must be __Host- and Secure.
    let app = TestApp::start_with(b, |c| {
        c.public_url = Some("https://kirjautuminen.example.fi".into())
    })
    .await;
    app.add_user("sanna", "oikea-salasana").await;
    let page = app.client.get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = set_cookies(&page)
        .into_iter()
        .find(|c| c.starts_with("__Host-kl_csrf="))
        .expect("csrf cookie");
    assert!(
        csrf_cookie.contains("Secure")
            && csrf_cookie.contains("Path=/")
            && !csrf_cookie.contains("Domain")
    );
    assert!(page.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let token = csrf_from(&page.text().await.unwrap()).unwrap();
    let cookie_value = csrf_cookie.split(';').next().unwrap().to_owned();
    // reqwest does not send Secure cookies over http, so pass the cookie by hand.
    let r = new_client()
        .post(app.url("/login"))
        .header("cookie", cookie_value)
        .form(&[
            ("csrf", token.as_str()),
            ("username", "sanna"),
            ("password", "oikea-salasana"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("__Host-kl_session="))
        .expect("session cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(flag), "{flag} missing in {session}");
    }
    assert!(!session.contains("Domain="));
}

async fn logout_ends_the_session_on_the_server(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("olli", "oikea-salasana").await;
    let r = app.login(&app.client, "olli", "oikea-salasana").await;
    let stolen = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("kl_session="))
        .unwrap();
    let stolen = stolen.split(';').next().unwrap().to_owned();

    let page = app.client.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let token = csrf_from(&page.text().await.unwrap()).unwrap();
    let r = app
        .post_form(&app.client, "/logout", &[("csrf", token.as_str())])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?logged_out=1");
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("kl_session=;") || c.starts_with("kl_session=\"\"")));

    // The old cookie, replayed by someone who copied it, no longer opens the account.
    let r = new_client()
        .get(app.url("/account"))
        .header("cookie", stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let uid = user.id.clone();
    let (live, logouts) = app
        .with_conn(move |c| {
            (
                sessions::list_for_user(c, &uid, kuntalaistili_schema::now_utc())
                    .unwrap()
                    .len(),
                audit::recent(c, Some("logout"), Some(&uid), 5)
                    .unwrap()
                    .len(),
            )
        })
        .await;
    assert_eq!(live, 0);
    assert_eq!(logouts, 1);
    let html = app
        .client
        .get(app.url("/login?logged_out=1&lang=en"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("You have logged out."));
}

async fn logout_requires_csrf_token(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("tiina", "oikea-salasana").await;
    app.login(&app.client, "tiina", "oikea-salasana").await;
    let r = app
        .post_form(&app.client, "/logout", &[("csrf", "forged")])
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        app.client
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn log_out_everywhere_ends_every_session(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("eero", "oikea-salasana").await;
    let laptop = new_client();
    let phone = new_client();
    assert_eq!(
        app.login(&laptop, "eero", "oikea-salasana").await.status(),
        303
    );
    assert_eq!(
        app.login(&phone, "eero", "oikea-salasana").await.status(),
        303
    );
    let html = laptop
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("/end\"").count(), 2, "both sessions listed");
    let token = csrf_from(&html).unwrap();
    let r = app
        .post_form(
            &laptop,
            "/account/sessions/end-all",
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        phone
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        laptop
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    let uid = user.id.clone();
    let ev = app
        .with_conn(move |c| audit::recent(c, Some("session.ended_all"), Some(&uid), 5).unwrap())
        .await;
    assert_eq!(ev.len(), 1);
    assert!(ev[0].details.contains("\"count\":2"));
}

async fn ending_another_session_keeps_this_one(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("aino", "oikea-salasana").await;
    let phone = new_client();
    app.login(&app.client, "aino", "oikea-salasana").await;
    app.login(&phone, "aino", "oikea-salasana").await;
    let uid = user.id.clone();
    let all = app
        .with_conn(move |c| {
            sessions::list_for_user(c, &uid, kuntalaistili_schema::now_utc()).unwrap()
        })
        .await;
    assert_eq!(all.len(), 2);
    // The phone's session is the newest (listed first).
    let phone_session = all[0].id.clone();
    let html = app
        .client
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_from(&html).unwrap();
    let r = app
        .post_form(
            &app.client,
            &format!("/account/sessions/{phone_session}/end"),
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account?ended=1");
    assert_eq!(
        phone
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        app.client
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Someone else's or an unknown session id is not found.
    let r = app
        .post_form(
            &app.client,
            "/account/sessions/not-a-session/end",
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), 404);
}

async fn housekeeping_removes_only_expired_rows(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("kaisa", "oikea-salasana").await;
    assert_eq!(
        app.login(&app.client, "kaisa", "oikea-salasana")
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login(&new_client(), "kaisa", "väärin").await.status(),
        401
    );
    let (now_sessions, now_counters, later_sessions, later_counters) = app
        .with_conn(|c| {
            use chrono::Duration;
            let now = kuntalaistili_schema::now_utc();
            let window = Duration::minutes(15);
            let a = sessions::delete_expired(c, now).unwrap();
            let b = kuntalaistili_schema::throttle::delete_stale(c, now, window).unwrap();
            // Thirteen hours on, past the absolute session lifetime and the counting window.
            let later = now + Duration::hours(13);
            let c2 = sessions::delete_expired(c, later).unwrap();
            let d = kuntalaistili_schema::throttle::delete_stale(c, later, window).unwrap();
            (a, b, c2, d)
        })
        .await;
    assert_eq!(
        (now_sessions, now_counters),
        (0, 0),
        "nothing live is removed"
    );
    assert_eq!(later_sessions, 1);
    assert_eq!(later_counters, 2, "the account and the address counter");
}

async fn idle_timeout_ends_the_session(b: Backend) {
    // With a zero idle timeout a session is over as soon as it starts.
    let app = TestApp::start_with(b, |c| c.session.idle_timeout_minutes = 0).await;
    app.add_user("hetki", "oikea-salasana").await;
    assert_eq!(
        app.login(&app.client, "hetki", "oikea-salasana")
            .await
            .status(),
        303
    );
    let r = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/account");
}
