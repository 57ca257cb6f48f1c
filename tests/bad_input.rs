//! Bad input on the login form and elsewhere: always a clear 4xx page, never a 500.

use kuntalaistili_tests::{dual, Backend, TestApp};

dual!(
    login_form_bad_input_gets_clear_4xx_pages,
    unknown_paths_and_methods_get_pages
);

async fn post_raw(app: &TestApp, content_type: &str, body: Vec<u8>) -> (u16, String, String) {
    let r = app
        .client
        .post(app.url("/login"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

async fn login_form_bad_input_gets_clear_4xx_pages(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("kalle", "oikea-salasana").await;
    let csrf = app.csrf_token(&app.client, "/login").await;
    let form = "application/x-www-form-urlencoded";

    // Overlong username and password.
    let long = "a".repeat(300);
    let (s, ct, html) = post_raw(
        &app,
        form,
        format!("csrf={csrf}&username={long}&password=x").into_bytes(),
    )
    .await;
    assert_eq!((s, ct.starts_with("text/html")), (400, true));
    assert!(html.contains("Jokin kenttä oli liian pitkä."));
    let (s, _, _) = post_raw(
        &app,
        form,
        format!("csrf={csrf}&username=kalle&password={}", "p".repeat(2000)).into_bytes(),
    )
    .await;
    assert_eq!(s, 400);

    // Invalid UTF-8, raw and percent-encoded.
    let mut raw = format!("csrf={csrf}&username=").into_bytes();
    raw.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    raw.extend_from_slice(b"&password=x");
    let (s, ct, _) = post_raw(&app, form, raw).await;
    assert_eq!((s, ct.starts_with("text/html")), (400, true));
    let (s, _, _) = post_raw(
        &app,
        form,
        format!("csrf={csrf}&username=%ff%fe&password=x").into_bytes(),
    )
    .await;
    assert_eq!(s, 400);

    // Missing fields.
    let (s, _, html) = post_raw(&app, form, format!("csrf={csrf}").into_bytes()).await;
    assert_eq!(s, 400);
    assert!(html.contains("Anna sekä käyttäjätunnus että salasana."));
    let (s, _, _) = post_raw(&app, form, Vec::new()).await;
    assert_eq!(s, 403, "no CSRF token at all");

    // Wrong content type and an oversized body.
    let (s, ct, html) = post_raw(
        &app,
        "application/json",
        br#"{"username":"kalle"}"#.to_vec(),
    )
    .await;
    assert_eq!((s, ct.starts_with("text/html")), (415, true));
    assert!(html.contains("role=\"alert\""));
    let (s, ct, _) = post_raw(&app, form, vec![b'a'; 64 * 1024]).await;
    assert_eq!((s, ct.starts_with("text/html")), (413, true));

    // Malformed encoding does not break the parser either.
    let (s, _, _) = post_raw(&app, form, b"%%%&&&===".to_vec()).await;
    assert!((400..500).contains(&s), "{s}");

    // After all that, the right password still works (nothing was counted against the account
    // except well-formed wrong attempts).
    assert_eq!(
        app.login(&app.client, "kalle", "oikea-salasana")
            .await
            .status(),
        303
    );
}

async fn unknown_paths_and_methods_get_pages(b: Backend) {
    let app = TestApp::start(b).await;
    let r = app
        .client
        .get(app.url("/no/such/page?lang=sv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Sidan hittades inte."));
    let r = app.client.delete(app.url("/login")).send().await.unwrap();
    assert!((400..500).contains(&r.status().as_u16()));
    let r = app
        .client
        .get(app.url("/login?next=%ZZ"))
        .send()
        .await
        .unwrap();
    assert!((200..500).contains(&r.status().as_u16()));
    let r = app
        .post_form(&app.client, "/account/sessions/x/end", &[("csrf", "x")])
        .await;
    assert_eq!(r.status(), 403);
}
