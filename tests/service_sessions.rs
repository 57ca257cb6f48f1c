//! The built-in services' sessions follow the person's account and the IdP's limits (issue 22,
//! items 6–8): disabling an account (admin page or REST) and a password set by an administrator
//! end the services' sessions too (back-channel logout), and a service session keeps the IdP's
//! idle limit and asks the IdP again (silently) when the IdP session may have ended.

use diesel::prelude::*;
use kuntalaistili_schema::schema::{sessions, svc_sessions};
use kuntalaistili_tests::{csrf_from, dual, follow, Backend, TestApp};

dual!(
    disabling_or_resetting_a_password_ends_the_services_sessions,
    service_sessions_keep_the_idps_idle_limit,
);

const PW: &str = "palvelu-istunto-salasana";

/// A browser as people have: keeps cookies, asks for HTML, follows no redirects by itself.
fn html_browser() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static("text/html,application/xhtml+xml"),
    );
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(h)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A resident logged in at the IdP and at the notice board (a service session exists).
async fn in_the_noticeboard(app: &TestApp, name: &str) -> (reqwest::Client, String) {
    let user = app.add_user(name, PW).await;
    let b = html_browser();
    assert_eq!(app.login(&b, name, PW).await.status(), 303);
    let (s, url, _) = follow(app, &b, "/services/noticeboard/").await;
    assert_eq!(s, 200, "{url}");
    assert!(url.ends_with("/services/noticeboard/"), "{url}");
    assert_eq!(service_sessions_of(app, &user.id).await, 1);
    (b, user.id)
}

async fn service_sessions_of(app: &TestApp, sub: &str) -> i64 {
    let sub = sub.to_owned();
    app.with_conn(move |c| {
        svc_sessions::table
            .filter(svc_sessions::sub.eq(sub))
            .count()
            .get_result::<i64>(c)
            .unwrap()
    })
    .await
}

/// Waits (bounded) until the person has no service session left.
async fn services_forget(app: &TestApp, sub: &str) -> bool {
    for _ in 0..50 {
        if service_sessions_of(app, sub).await == 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// The notice board now asks the browser to log in.
async fn asked_to_log_in(app: &TestApp, b: &reqwest::Client) {
    let (s, url, _) = follow(app, b, "/services/noticeboard/").await;
    assert_eq!(s, 200);
    assert!(url.contains("/login?next="), "asked to log in again: {url}");
}

async fn disabling_or_resetting_a_password_ends_the_services_sessions(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    tokio::task::spawn_blocking(move || {
        kuntalaistili_idp::customers::add(
            &mut st.db.conn().unwrap(),
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "yllapito".into(),
                password: Some(PW.into()),
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
    let admin = app.browser();
    assert_eq!(app.login(&admin, "yllapito", PW).await.status(), 303);
    let admin_csrf = |id: String| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let page = admin
                .get(app.url(&format!("/admin/users/{id}")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            csrf_from(&page).unwrap()
        }
    };

    // Disabled on the admin page.
    let (b1, id1) = in_the_noticeboard(&app, "eka").await;
    let csrf = admin_csrf(id1.clone()).await;
    let r = app
        .post_form(
            &admin,
            &format!("/admin/users/{id1}/disable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        services_forget(&app, &id1).await,
        "the notice board was told"
    );
    asked_to_log_in(&app, &b1).await;

    // Disabled through the REST API.
    let (b2, id2) = in_the_noticeboard(&app, "toka").await;
    let token = app.client_token("admin").await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/users/{id2}/disable")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        services_forget(&app, &id2).await,
        "the notice board was told"
    );
    asked_to_log_in(&app, &b2).await;

    // Disabled by an operator with the CLI: the services are told as well.
    let (b4, id4) = in_the_noticeboard(&app, "neljas").await;
    let (code, out) = app.cli(&["users", "disable", "neljas"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        services_forget(&app, &id4).await,
        "the notice board was told"
    );
    asked_to_log_in(&app, &b4).await;

    // A password set by an administrator ends the IdP session and the services' sessions.
    let (b3, id3) = in_the_noticeboard(&app, "kolmas").await;
    let csrf = admin_csrf(id3.clone()).await;
    let r = app
        .post_form(
            &admin,
            &format!("/admin/users/{id3}/password"),
            &[("csrf", &csrf), ("password", "uusi-pitka-salasana-2026")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        services_forget(&app, &id3).await,
        "the notice board was told"
    );
    let r = b3.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303, "the IdP session ended");
    asked_to_log_in(&app, &b3).await;
    let id = id3.clone();
    let audit = app
        .with_conn(move |c| {
            kuntalaistili_schema::audit::recent(c, Some("user.password_set"), Some(&id), 5).unwrap()
        })
        .await;
    assert!(
        audit[0].details.contains("\"sessions_ended\":1"),
        "{audit:?}"
    );
}

async fn backdate(app: &TestApp, sub: &str, seen: i64, checked: i64) {
    let sub = sub.to_owned();
    app.with_conn(move |c| {
        let now = kuntalaistili_schema::now_utc();
        diesel::update(svc_sessions::table.filter(svc_sessions::sub.eq(sub)))
            .set((
                svc_sessions::last_seen_at.eq(Some(now - chrono::Duration::seconds(seen))),
                svc_sessions::idp_checked_at.eq(Some(now - chrono::Duration::seconds(checked))),
            ))
            .execute(c)
            .unwrap();
    })
    .await;
}

async fn service_sessions_keep_the_idps_idle_limit(b: Backend) {
    let app = TestApp::start_with(b, |c| c.session.idle_timeout_minutes = 1).await;

    // Idle for 150 s (the IdP's limit is a minute): the service session has ended too.
    let (b1, id1) = in_the_noticeboard(&app, "joutilas").await;
    backdate(&app, &id1, 150, 150).await;
    let uid = id1.clone();
    app.with_conn(move |c| {
        let now = kuntalaistili_schema::now_utc();
        diesel::update(sessions::table.filter(sessions::user_id.eq(uid)))
            .set((
                sessions::last_seen_at.eq(now - chrono::Duration::seconds(150)),
                sessions::expires_at.eq(now - chrono::Duration::seconds(90)),
            ))
            .execute(c)
            .unwrap()
    })
    .await;
    asked_to_log_in(&app, &b1).await;
    assert_eq!(service_sessions_of(&app, &id1).await, 0);

    // Busy in the service while the IdP session is still alive: a page load goes round the IdP
    // silently, the resident stays in and the IdP's confirmation is recorded.
    let (b2, id2) = in_the_noticeboard(&app, "ahkera").await;
    backdate(&app, &id2, 5, 45).await;
    let r = b2
        .get(app.url("/services/noticeboard/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.contains("/auth/login?silent=1&recheck=1"), "{loc}");
    let (s, url, page) = follow(&app, &b2, &loc).await;
    assert_eq!(s, 200);
    assert!(url.ends_with("/services/noticeboard/"), "{url}");
    assert!(!page.contains("name=\"password\""));
    let sub = id2.clone();
    let checked = app
        .with_conn(move |c| {
            svc_sessions::table
                .filter(svc_sessions::sub.eq(sub))
                .select(svc_sessions::idp_checked_at)
                .load::<Option<chrono::NaiveDateTime>>(c)
                .unwrap()
        })
        .await;
    assert_eq!(checked.len(), 1, "the old session gave way to the new one");
    let age = kuntalaistili_schema::now_utc() - checked[0].unwrap();
    assert!(age < chrono::Duration::seconds(10), "{age}");

    // A script's request (no page load) is not served once the IdP's confirmation is older than
    // the idle limit: the IdP session may be gone.
    let (b4, id4) = in_the_noticeboard(&app, "skripti").await;
    backdate(&app, &id4, 5, 90).await;
    let r = b4
        .get(app.url("/services/noticeboard/api/notices"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The IdP session ended without the service hearing of it: the next page load finds out.
    let (b3, id3) = in_the_noticeboard(&app, "unohtunut").await;
    let uid = id3.clone();
    app.with_conn(move |c| {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(uid)))
            .execute(c)
            .unwrap()
    })
    .await;
    backdate(&app, &id3, 5, 45).await;
    asked_to_log_in(&app, &b3).await;
    assert_eq!(service_sessions_of(&app, &id3).await, 0);
}
