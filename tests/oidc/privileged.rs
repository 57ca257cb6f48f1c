//! Privileged scopes in person-bound flows (issue 22, item 4): a client allowed `admin`, `scim` or
//! a service scope does not make a resident who logs in through it an administrator. The code is
//! refused (`access_denied`, audited), an administrator's token works only while the person holds
//! the role, and a demoted administrator's refresh token stops.

use kuntalaistili_schema::users;
use kuntalaistili_tests::{dual, Backend, TestApp};

use serde_json::Value;

use super::*;

dual!(privileged_scopes_need_the_persons_role);

const WIDE: &str = "openid profile offline_access admin scim messages:send audit:write";

fn ask(rp: &Rp, challenge: &str, scope: &str) -> Vec<(String, String)> {
    auth_query(rp, challenge, &[("scope", scope)])
}

async fn get(app: &TestApp, at: &str, path: &str) -> u16 {
    app.client
        .get(app.url(path))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn privileged_scopes_need_the_persons_role(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |n| n.scopes = WIDE.into()).await;

    // A resident asks for the register: refused at the redirect, no code, audited.
    let resident = logged_in(&app, "ville").await;
    for scope in [
        "openid admin",
        "openid profile scim",
        "openid messages:send",
        "openid audit:write",
    ] {
        let (_, challenge) = pkce();
        let r = authorize(&app, &resident, &ask(&rp, &challenge, scope)).await;
        let p = redirect_params(&r);
        assert_eq!(param(&p, "error"), Some("access_denied"), "{scope}: {p:?}");
        assert_eq!(param(&p, "code"), None);
        assert_eq!(param(&p, "state"), Some("tila-123"));
    }
    let refused = app
        .with_conn(|c| kuntalaistili_schema::audit::recent(c, Some("oidc.denied"), None, 50))
        .await
        .unwrap();
    assert!(
        refused
            .iter()
            .any(|e| e.details.contains("privileged_scope") && e.details.contains("\"admin\"")),
        "{refused:?}"
    );
    // What the resident may hold still works through the same client.
    let (verifier, challenge) = pkce();
    let r = authorize(&app, &resident, &ask(&rp, &challenge, "openid profile")).await;
    let p = redirect_params(&r);
    let (s, t) = exchange(&app, &rp, param(&p, "code").unwrap(), &verifier).await;
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&app, &at, "/api/v1/users").await, 403);
    assert_eq!(get(&app, &at, "/scim/v2/Users").await, 403);

    // An administrator gets the register through the same client...
    let admin_browser = logged_in(&app, "anna").await;
    let anna = app
        .with_conn(|c| users::find_by_username(c, "anna").unwrap().unwrap())
        .await;
    let mut promoted = anna.clone();
    promoted.role = "admin".into();
    app.with_conn(move |c| users::replace(c, &promoted).unwrap())
        .await;
    let (_, challenge) = pkce();
    let r = authorize(
        &app,
        &admin_browser,
        &ask(&rp, &challenge, "openid messages:send"),
    )
    .await;
    // ...but never a scope meant for services themselves.
    assert_eq!(param(&redirect_params(&r), "error"), Some("access_denied"));
    let (verifier, challenge) = pkce();
    let r = authorize(
        &app,
        &admin_browser,
        &ask(&rp, &challenge, "openid offline_access admin scim"),
    )
    .await;
    let p = redirect_params(&r);
    let (s, t) = exchange(&app, &rp, param(&p, "code").unwrap(), &verifier).await;
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().unwrap().to_owned();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&app, &at, "/api/v1/users").await, 200);
    assert_eq!(get(&app, &at, "/scim/v2/Users").await, 200);

    // Demoted: the live access token stops opening the register, the refresh token stops.
    let mut demoted = anna;
    demoted.role = "resident".into();
    app.with_conn(move |c| users::replace(c, &demoted).unwrap())
        .await;
    assert_eq!(get(&app, &at, "/api/v1/users").await, 403);
    assert_eq!(get(&app, &at, "/scim/v2/Users").await, 403);
    assert_eq!(get(&app, &at, "/api/v1/clients").await, 403);
    // Introspection tells a resource server only what the person may hold now.
    let r = app
        .client
        .post(app.url("/oauth2/introspect"))
        .header("authorization", rp.basic())
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["scope"], "openid offline_access", "{v}");
    let (s, e) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
}
