//! The administration pages over real HTTP with CSRF-protected forms: only administrators get in;
//! an administrator finds a person, grants and revokes a right (the check API follows), registers
//! a relying party whose secret is shown once and works, rotates it (the old one stops at once),
//! manages roles and browses the audit log, where every change appears under their name.

use kuntalaistili_tests::{csrf_from, dual, Backend, TestApp};
use serde_json::{json, Value};

dual!(administrators_manage_people_rights_and_services);

const PW: &str = "hallinta-salasana-1";

fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let at = html.find(start)? + start.len();
    let rest = &html[at..];
    Some(&rest[..rest.find(end)?])
}

async fn administrators_manage_people_rights_and_services(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    let admin = tokio::task::spawn_blocking(move || {
        kuntalaistili_idp::customers::add(
            &mut st.db.conn().unwrap(),
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "paakayttaja".into(),
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
    let resident = app.add_user("tavallinen", PW).await;

    // Visitors are sent to log in; residents are refused everywhere, forms included.
    let visitor = app.browser();
    let r = visitor.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let rb = app.browser();
    assert_eq!(app.login(&rb, "tavallinen", PW).await.status(), 303);
    let account = rb
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resident_csrf = csrf_from(&account).unwrap();
    for path in [
        "/admin/users",
        "/admin/clients",
        "/admin/roles",
        "/admin/audit",
        "/admin/statistics",
    ] {
        let r = rb.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = app
        .post_form(
            &rb,
            &format!("/admin/users/{}/grant", resident.id),
            &[
                ("csrf", &resident_csrf),
                ("kind", "permission"),
                ("grant", "directory:edit"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);

    // The administrator finds the resident and grants a right.
    let ab = app.browser();
    assert_eq!(app.login(&ab, "paakayttaja", PW).await.status(), 303);
    let list = ab
        .get(app.url("/admin/users?q=tavalli"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&format!("/admin/users/{}", resident.id)),
        "{list}"
    );
    assert!(!list.contains("paakayttaja\""), "search narrows the list");
    let page = ab
        .get(app.url(&format!("/admin/users/{}", resident.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&page).unwrap();
    let r = app
        .post_form(
            &ab,
            &format!("/admin/users/{}/grant", resident.id),
            &[
                ("csrf", "väärä"),
                ("kind", "permission"),
                ("grant", "directory:edit"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403, "CSRF");
    let r = app
        .post_form(
            &ab,
            &format!("/admin/users/{}/grant", resident.id),
            &[
                ("csrf", &csrf),
                ("kind", "permission"),
                ("grant", "directory:edit"),
                ("valid_until", "2099-01-01"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .post_form(
            &ab,
            &format!("/admin/users/{}/grant", resident.id),
            &[
                ("csrf", &csrf),
                ("kind", "permission"),
                ("grant", "ei oikeus"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let checker = app.client_token("authz:check").await;
    let allowed = || async {
        let v: Value = app
            .client
            .post(app.url("/api/v1/authz/check"))
            .bearer_auth(&checker)
            .json(&json!({ "sub": resident.id, "service": "directory", "permission": "edit" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["allowed"].as_bool().unwrap()
    };
    assert!(allowed().await);
    let page = ab
        .get(app.url(&format!("/admin/users/{}?done=granted", resident.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Oikeus myönnettiin.") && page.contains("directory:edit"));
    let grant_id = between(&page, "/admin/grants/", "/revoke")
        .or_else(|| between(&page, "&#x2F;admin&#x2F;grants&#x2F;", "&#x2F;revoke"))
        .unwrap_or_else(|| panic!("no revoke form in {page}"))
        .to_owned();
    let r = app
        .post_form(
            &ab,
            &format!("/admin/grants/{grant_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(!allowed().await);

    // A relying party: registered, its secret shown once and working; rotated, the old one stops.
    let r = app
        .post_form(
            &ab,
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "Asianhallinta"),
                ("scopes", "authz:check"),
                ("client_credentials", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let shown = r.text().await.unwrap();
    let client_id = between(&shown, "<dt>client_id</dt><dd><code>", "</code>")
        .unwrap()
        .to_owned();
    let secret = between(&shown, "<dt>client_secret</dt><dd><code>", "</code>")
        .unwrap()
        .to_owned();
    let token = |secret: String| {
        let (app, id) = (&app, client_id.clone());
        async move {
            app.client
                .post(app.url("/oauth2/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(token(secret.clone()).await, 200);
    let r = app
        .post_form(
            &ab,
            &format!("/admin/clients/{client_id}/rotate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let rotated = between(
        &r.text().await.unwrap(),
        "<dt>client_secret</dt><dd><code>",
        "</code>",
    )
    .unwrap()
    .to_owned();
    assert_eq!(token(secret).await, 401, "the old secret stops at once");
    assert_eq!(token(rotated.clone()).await, 200);
    let clients_page = ab
        .get(app.url("/admin/clients"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(clients_page.contains("Asianhallinta") && !clients_page.contains("client_secret"));
    // Edited: renamed and taken out of use (no tokens), then back in use.
    let edit = format!("/admin/clients/{client_id}/edit");
    let r = app
        .post_form(
            &ab,
            &edit,
            &[
                ("csrf", &csrf),
                ("name", "Asianhallinta 2"),
                ("scopes", "authz:check"),
                ("disabled", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        token(rotated.clone()).await,
        401,
        "a client out of use gets no tokens"
    );
    let r = app
        .post_form(
            &ab,
            &edit,
            &[
                ("csrf", &csrf),
                ("name", "Asianhallinta 2"),
                ("scopes", "authz:check"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(token(rotated.clone()).await, 200);
    let r = app
        .post_form(
            &ab,
            &edit,
            &[
                ("csrf", &csrf),
                ("name", "X"),
                ("scopes", "authz:check"),
                ("redirect_uris", "http://rp.example.fi/cb"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400, "an http redirect URI is refused");
    let clients_page = ab
        .get(app.url("/admin/clients"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(clients_page.contains("Asianhallinta 2"));
    let kinds: Vec<String> = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::browse(
                c,
                &kuntalaistili_schema::audit::Browse {
                    event_type: Some("client.".into()),
                    subject: None,
                    actor: None,
                    before_seq: None,
                },
                100,
            )
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
        })
        .await;
    assert!(
        kinds.contains(&"client.disabled".to_owned())
            && kinds.contains(&"client.enabled".to_owned()),
        "{kinds:?}"
    );
    let r = app
        .post_form(
            &ab,
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "Rikki"),
                ("redirect_uris", "http://rp.example.fi/cb"),
                ("code_flow", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400, "http redirect URI refused");

    // Roles.
    let r = app
        .post_form(
            &ab,
            "/admin/roles",
            &[
                ("csrf", &csrf),
                ("name", "kirjastovirkailija"),
                ("description", "Lainaus"),
                ("permissions", "library:lend, library:return"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let roles = ab
        .get(app.url("/admin/roles"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(roles.contains("library:lend, library:return"));
    let r = app
        .post_form(
            &ab,
            "/admin/roles",
            &[
                ("csrf", &csrf),
                ("name", "Huono Nimi"),
                ("permissions", "a:b"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);

    // Groups: created, a member added by username and removed, the group removed.
    let r = app
        .post_form(
            &ab,
            "/admin/groups",
            &[
                ("csrf", &csrf),
                ("name", "kirjasto"),
                ("description", "Kirjaston väki"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .post_form(
            &ab,
            "/admin/groups/kirjasto/add",
            &[("csrf", &csrf), ("username", "tavallinen")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.with_conn(|c| kuntalaistili_schema::authz::groups(c).unwrap())
            .await[0]
            .1,
        vec![resident.id.clone()]
    );
    let roles_page = ab
        .get(app.url("/admin/roles"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(roles_page.contains("Kirjaston väki") && roles_page.contains("tavallinen"));
    let r = app
        .post_form(
            &ab,
            "/admin/groups/kirjasto/add",
            &[("csrf", &csrf), ("username", "ei-ketaan")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post_form(
            &ab,
            "/admin/groups/kirjasto/drop",
            &[("csrf", &csrf), ("username", &resident.id)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(app
        .with_conn(|c| kuntalaistili_schema::authz::groups(c).unwrap())
        .await[0]
        .1
        .is_empty());
    let r = app
        .post_form(&ab, "/admin/groups/kirjasto/remove", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 303);
    assert!(app
        .with_conn(|c| kuntalaistili_schema::authz::groups(c).unwrap())
        .await
        .is_empty());

    // The audit log shows every change, by the administrator.
    let log = ab
        .get(app.url(&format!("/admin/audit?actor={}", admin.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for kind in [
        "authz.granted",
        "authz.revoked",
        "client.created",
        "client.secret_rotated",
        "authz.role_saved",
    ] {
        assert!(log.contains(kind), "{kind} missing from the log page");
    }
    let verified = ab
        .get(app.url("/admin/audit?verify=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(verified.contains("Loki on eheä"), "{verified}");
    let r = ab
        .get(app.url("/admin/audit?before=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a bad query is a clear error");
}
