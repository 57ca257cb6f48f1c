//! The portal and the notice board as OIDC relying parties of the IdP: silent SSO, the visitor
//! and resident front pages, the notice API contract, the resident's notice board, and logout
//! from a service ending every session (RP-initiated plus back-channel logout). The notice board
//! in `notices`, editing the service directory in `directory`.

use kuntalaistili_tests::{dual, follow, Alone, Backend, TestApp};
use serde_json::{json, Value};

mod directory;
mod notices;

dual!(
    visitors_see_the_directory_and_residents_their_notices_with_one_login,
    logging_out_of_a_service_ends_every_session,
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
