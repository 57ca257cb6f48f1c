//! The service directory from the portal: editors manage it, nobody else can.

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

use super::*;

dual!(editors_manage_the_directory_and_nobody_else_can);

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
