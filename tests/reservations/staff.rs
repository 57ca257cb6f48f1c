//! Staff: handling requests (approve, deny with a message), blocks, recurring series with a
//! skipped week, the unit calendar (one occurrence cancelled alone) and the report — only for
//! people with the access right, asked at the moment of use.

use kuntalaistili_tests::{csrf_from, dual, follow, Alone, Backend};
use serde_json::json;

use super::*;

dual!(staff_handle_block_and_run_series);

async fn staff_handle_block_and_run_series(b: Backend) {
    let app = app(b).await;
    resource(&app, "juhla", |r| {
        r.name_fi = "Juhlasali".into();
        r.manual_approval = true;
    })
    .await;
    resource(&app, "halli", |r| r.name_fi = "Palloiluhalli".into()).await;
    let rp = front_end(&app).await;
    let (_, token, sub) = resident(&app, &rp, "juhlija", "openid reservations").await;
    let (staff, _, _) = resident(&app, &rp, "vahtimestari", "openid reservations").await;
    let day = in_days(9);
    let path = format!("{API}/reservations");
    let (s, v) = post_json(&app, &path, &token, &json!({ "resource": "juhla", "begins_at": at(day, 600), "ends_at": at(day, 720), "purpose": "Syntymäpäivät" })).await;
    assert_eq!(
        (s, v["state"].as_str()),
        (201, Some("requires_handling")),
        "{v}"
    );
    let first = v["id"].as_str().unwrap().to_owned();
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "juhla", "begins_at": at(day, 14 * 60), "ends_at": at(day, 15 * 60) }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let second = v["id"].as_str().unwrap().to_owned();
    eventually("the request notice", || {
        let (app, sub) = (&app, sub.clone());
        async move {
            notice_titles(app, &sub)
                .await
                .iter()
                .any(|t| t == "Varauspyyntö vastaanotettu: Juhlasali")
        }
    })
    .await;
    // Without the access right: 403.
    let (s, _, page) = follow(&app, &staff, "/services/reservations/manage/").await;
    assert_eq!(s, 403, "{page}");
    assert!(page.contains("Sinulla ei ole oikeutta hallita varauksia."));
    let (code, out) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "grant",
            "--user",
            "vahtimestari",
            "--permission",
            "reservations:manage",
        ])
    });
    assert_eq!(code, 0, "{out}");
    // A unit-scoped right (`reservations:manage.u-toinen`) covers that unit only.
    app.with_conn(|c| {
        kuntalaistili_schema::reservations::insert_unit(
            c,
            &kuntalaistili_schema::reservations::Unit {
                id: "u-toinen".into(),
                name: "Toinen talo".into(),
                municipality_code: "091".into(),
                street_address: "Toinen katu 2".into(),
                postal_code: "00200".into(),
                city: "Helsinki".into(),
                contact: String::new(),
                latitude: None,
                longitude: None,
                created_at: kuntalaistili_schema::now_utc(),
            },
        )
        .unwrap()
    })
    .await;
    resource(&app, "toisen-sali", |r| r.unit_id = "u-toinen".into()).await;
    let (unit_staff, _, _) = resident(&app, &rp, "talonmies", "openid reservations").await;
    let (code, out) = tokio::task::block_in_place(|| {
        app.cli_json(&[
            "authz",
            "grant",
            "--user",
            "talonmies",
            "--permission",
            "reservations:manage.u-toinen",
        ])
    });
    assert_eq!(code, 0, "{out}");
    let (s, _, page) = follow(&app, &unit_staff, "/services/reservations/manage/").await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("Toinen talo")
            && !page.contains("Testitalo")
            && !page.contains("Syntymäpäivät"),
        "{page}"
    );
    let unit_csrf = csrf_from(&page).unwrap();
    let r = app
        .post_form(
            &unit_staff,
            &format!("/services/reservations/manage/reservations/{first}/approve"),
            &[("csrf", &unit_csrf)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let (s, _, _) = follow(
        &app,
        &unit_staff,
        "/services/reservations/manage/units/u-testi",
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, _) = follow(
        &app,
        &unit_staff,
        "/services/reservations/manage/units/u-toinen",
    )
    .await;
    assert_eq!(s, 200);
    let r = app
        .post_form(
            &unit_staff,
            "/services/reservations/manage/block",
            &[
                ("csrf", &unit_csrf),
                ("resource", "juhla"),
                ("date", &day.to_string()),
                ("start", "16:00"),
                ("end", "17:00"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let (s, _, page) = follow(&app, &staff, "/services/reservations/manage/").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Syntymäpäivät"), "{page}");
    let csrf = csrf_from(&page).unwrap();
    let handle = |id: &str, action: &str| {
        format!("/services/reservations/manage/reservations/{id}/{action}")
    };
    let r = app
        .post_form(
            &staff,
            &handle(&first, "approve"),
            &[("csrf", &csrf), ("message", "Tervetuloa!")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .post_form(
            &staff,
            &handle(&second, "deny"),
            &[("csrf", &csrf), ("message", "Sali on remontissa.")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, v) = get_json(&app, &format!("{path}/{first}"), Some(&token)).await;
    assert_eq!(
        (v["state"].as_str(), v["message"].as_str()),
        (Some("confirmed"), Some("Tervetuloa!"))
    );
    // The approved time cannot be moved by the resident alone.
    let r = app
        .client
        .patch(app.url(&format!("{path}/{first}")))
        .bearer_auth(&token)
        .json(&json!({ "begins_at": at(day, 16 * 60) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "no_reschedule"
    );
    let (_, v) = get_json(&app, &format!("{path}/{second}"), Some(&token)).await;
    assert_eq!(
        (v["state"].as_str(), v["message"].as_str()),
        (Some("denied"), Some("Sali on remontissa."))
    );
    // Handled already: a clear refusal.
    let r = app
        .post_form(&staff, &handle(&second, "approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        app.post_form(&staff, &handle(&first, "cancel"), &[("csrf", "x")])
            .await
            .status(),
        403
    );
    eventually("the denial notice and message", || {
        let (app, sub) = (&app, sub.clone());
        async move {
            let sub2 = sub.clone();
            let mails = app
                .with_conn(move |c| kuntalaistili_schema::outbox::for_recipient(c, &sub2).unwrap())
                .await;
            notice_titles(app, &sub)
                .await
                .iter()
                .any(|t| t == "Varausta ei hyväksytty: Juhlasali")
                && mails.iter().any(|m| {
                    m.channel == "email" && m.body.contains("Perustelu: Sali on remontissa.")
                })
        }
    })
    .await;
    let audited = audit_events(&app, "ext.reservation.handled").await;
    eventually("handling audited", || async {
        audit_events(&app, "ext.reservation.handled").await.len() >= 2
    })
    .await;
    drop(audited);
    // A block closes a time for residents.
    let r = app
        .post_form(
            &staff,
            "/services/reservations/manage/block",
            &[
                ("csrf", &csrf),
                ("resource", "halli"),
                ("date", &day.to_string()),
                ("start", "08:00"),
                ("end", "10:00"),
                ("reason", "Huolto"),
                ("kind", "block"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Aika on suljettu."));
    let (s, _) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "halli", "begins_at": at(day, 540), "ends_at": at(day, 600) }),
    )
    .await;
    assert_eq!(s, 409);
    // A weekly shift for three weeks; the resident holds the second week's time already.
    use chrono::Datelike;
    let monday = in_days(14)
        - chrono::Duration::days(i64::from(in_days(14).weekday().num_days_from_monday()));
    let taken = monday + chrono::Duration::days(7);
    assert_eq!(post_json(&app, &path, &token, &json!({ "resource": "halli", "begins_at": at(taken, 17 * 60), "ends_at": at(taken, 18 * 60) })).await.0, 201);
    let last = monday + chrono::Duration::days(14);
    let r = app
        .post_form(
            &staff,
            "/services/reservations/manage/series",
            &[
                ("csrf", &csrf),
                ("resource", "halli"),
                ("holder", "FC Kallio juniorit"),
                ("weekday", "1"),
                ("start", "17:00"),
                ("minutes", "90"),
                ("first_day", &monday.to_string()),
                ("last_day", &last.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Vakiovuoroja luotiin 2."), "{page}");
    assert!(
        page.contains(&taken.format("%-d.%-m.%Y").to_string()),
        "{page}"
    );
    // The unit calendar shows the shift; one occurrence is cancelled alone.
    let (s, _, cal) = follow(
        &app,
        &staff,
        &format!("/services/reservations/manage/units/u-testi?week={monday}"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        cal.contains("FC Kallio juniorit") && cal.contains("Vakiovuoro"),
        "{cal}"
    );
    let cal = cal.replace("&#x2F;", "/");
    let occurrence = cal
        .split("/services/reservations/manage/reservations/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let r = app
        .post_form(
            &staff,
            &handle(&occurrence, "cancel"),
            &[("csrf", &csrf), ("message", "Ottelu")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (s, v) = post_json(&app, &path, &token, &json!({ "resource": "halli", "begins_at": at(monday, 17 * 60), "ends_at": at(monday, 18 * 60) })).await;
    assert_eq!(s, 201, "the cancelled occurrence's time is free: {v}");
    let third = monday + chrono::Duration::days(14);
    let (s, _) = post_json(&app, &path, &token, &json!({ "resource": "halli", "begins_at": at(third, 17 * 60), "ends_at": at(third, 18 * 60) })).await;
    assert_eq!(s, 409, "the other occurrences stand");
    // The report counts by resource and state.
    let (s, _, report) = follow(
        &app,
        &staff,
        &format!(
            "/services/reservations/manage/report?from={}&to={}",
            in_days(0),
            in_days(40)
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        report.contains("Juhlasali") && report.contains("Palloiluhalli"),
        "{report}"
    );
}

dual!(operators_import_units_and_resources);

/// `kuntalaistili bookings import FILE`: the example document of ops/config becomes bookable
/// resources with their hours, exceptions and appointment types; importing again updates; a bad
/// document changes nothing and says why.
async fn operators_import_units_and_resources(b: Backend) {
    let app = app(b).await;
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ops/config/bookings.example.json"
    );
    let (code, v) = tokio::task::block_in_place(|| app.cli_json(&["bookings", "import", example]));
    assert_eq!(
        (code, &v["units"], &v["resources"]),
        (0, &json!(1), &json!(2)),
        "{v}"
    );
    let (s, v) = get_json(&app, &format!("{API}/resources/kallio-sali"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["opening_hours"].as_array().unwrap().len(), 7);
    assert_eq!(v["price"]["vat_percent"], 25.5);
    assert_eq!(v["lipas_id"], 72438);
    let (s, v) = get_json(
        &app,
        "/services/appointments/api/resources/kallio-neuvonta",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["appointment_types"].as_array().unwrap().len(), 2);
    // Independence Day is closed, Christmas Eve open until noon.
    let (_, v) = get_json(
        &app,
        &format!("{API}/resources/kallio-sali/availability?from=2026-12-06&to=2026-12-07"),
        None,
    )
    .await;
    assert_eq!(v["days"][0]["slots"].as_array().unwrap().len(), 0, "{v}");
    let (_, v) = get_json(
        &app,
        &format!("{API}/resources/kallio-sali/availability?from=2026-12-24&to=2026-12-25"),
        None,
    )
    .await;
    assert_eq!(v["days"][0]["slots"].as_array().unwrap().len(), 4, "{v}");
    // Again, with a change: updated, not duplicated.
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("\"capacity\": 40", "\"capacity\": 45");
    let changed = app.db.dir().join("bookings.json");
    std::fs::write(&changed, text).unwrap();
    let (code, _) = tokio::task::block_in_place(|| {
        app.cli_json(&["bookings", "import", changed.to_str().unwrap()])
    });
    assert_eq!(code, 0);
    let (_, v) = get_json(&app, &format!("{API}/resources/kallio-sali"), None).await;
    assert_eq!(
        (
            v["capacity"].as_i64(),
            v["opening_hours"].as_array().unwrap().len()
        ),
        (Some(45), 7)
    );
    // A bad document: refused as a whole with the reason.
    let bad = app.db.dir().join("bad.json");
    std::fs::write(&bad, r#"{"units": [{"id": "x", "name": "X", "municipality": "091", "street_address": "", "postal_code": "", "city": "",
        "resources": [{"id": "x-1", "name": {"fi": "X"}, "type": "hall", "slot_minutes": 60, "min_minutes": 30}]}]}"#).unwrap();
    let (code, v) = tokio::task::block_in_place(|| {
        app.cli_json(&["bookings", "import", bad.to_str().unwrap()])
    });
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap().contains("resource x-1"), "{v}");
    assert_eq!(
        get_json(&app, "/services/reservations/api/resources?unit=x", None)
            .await
            .1["resources"],
        json!([])
    );
    let (code, v) = tokio::task::block_in_place(|| app.cli_json(&["bookings", "list"]));
    assert_eq!(code, 0);
    assert_eq!(v["resources"].as_array().unwrap().len(), 2);
}

dual!(reservations_run_alone_against_the_idp);

/// `serve --only reservations --issuer URL`: facility reservation on its own port and database,
/// a relying party of the IdP over HTTP only; a resident logged in at the IdP books there, and
/// the notice reaches the IdP server's notice board.
async fn reservations_run_alone_against_the_idp(b: Backend) {
    let app = app(b).await;
    let user = app.add_user("erillinen", PASSWORD).await;
    let alone = Alone::start(&app, "reservations", "/services/reservations", |base| {
        kuntalaistili_federation::clients::NewClient {
            name: "Tilavaraus (erillinen)".into(),
            redirect_uris: vec![format!("{base}/auth/callback")],
            post_logout_redirect_uris: vec![format!("{base}/")],
            backchannel_logout_uri: Some(format!("{base}/auth/backchannel-logout")),
            grant_types: vec!["authorization_code".into(), "client_credentials".into()],
            skip_consent: true,
            scopes: "openid profile email authz:check audit:write notices:write messages:send"
                .into(),
            ..Default::default()
        }
    })
    .await;
    let base = format!("{}/services/reservations", alone.base);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ops/config/bookings.example.json"
    );
    // The operator imports the resources into the service's own database.
    let (code, _) = tokio::task::block_in_place(|| alone.cli(&["bookings", "import", example]));
    assert_eq!(code, 0);
    let browser = app.browser();
    assert_eq!(
        app.login(&browser, "erillinen", PASSWORD).await.status(),
        303
    );
    let day = in_days(4);
    let (s, _, page) = follow(
        &app,
        &browser,
        &format!("{base}/resources/kallio-sali?week={day}"),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    let csrf = csrf_from(&page).expect("logged in silently");
    let r = browser
        .post(format!("{base}/resources/kallio-sali/book"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("begins_at", at(day, 10 * 60).as_str()),
            ("slots", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, _, mine) = follow(&app, &browser, &format!("{base}/mine")).await;
    assert!(
        mine.contains("Liikuntasali") && mine.contains("Odottaa maksua"),
        "{mine}"
    );
    // The IdP's server knows nothing of the reservation, but its notice board got the notice.
    assert_eq!(
        get_json(&app, &format!("{API}/resources/kallio-sali"), None)
            .await
            .0,
        404
    );
    eventually("the notice at the IdP's notice board", || {
        let (app, sub) = (&app, user.id.clone());
        async move {
            notice_titles(app, &sub)
                .await
                .iter()
                .any(|t| t == "Maksa varauksesi: Liikuntasali")
        }
    })
    .await;
    alone.stop();
}

dual!(queued_notices_survive_and_are_delivered);

/// The booking outbox is durable: a notice queued (say, just before a restart) and not yet sent
/// is delivered by the worker from the database; one the notice board refuses for good is dropped
/// with an error, not retried for ever.
async fn queued_notices_survive_and_are_delivered(b: Backend) {
    let app = app(b).await;
    let user = app.add_user("jonossa", PASSWORD).await;
    let now = kuntalaistili_schema::now_utc();
    let sub = user.id.clone();
    app.with_conn(move |c| {
        let row = |id: &str, body: serde_json::Value| kuntalaistili_schema::reservations::Outgoing {
            id: id.into(),
            service: "reservations".into(),
            channel: "notice".into(),
            body: body.to_string(),
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        };
        kuntalaistili_schema::reservations::outbox_add(
            c,
            &[
                row("o1", json!({ "sub": sub, "idempotency_key": "k1", "service": "Tilavaraus", "title": "Jonosta perille", "status": "info" })),
                row("o2", json!({ "sub": "ei-ketaan", "idempotency_key": "k2", "service": "Tilavaraus", "title": "Ei vastaanottajaa", "status": "info" })),
            ],
        )
        .unwrap()
    })
    .await;
    eventually("the queued notice delivered", || {
        let (app, sub) = (&app, user.id.clone());
        async move {
            notice_titles(app, &sub)
                .await
                .iter()
                .any(|t| t == "Jonosta perille")
        }
    })
    .await;
    eventually("the outbox emptied", || async {
        app.with_conn(|c| {
            kuntalaistili_schema::reservations::outbox_due(
                c,
                "reservations",
                kuntalaistili_schema::now_utc() + chrono::Duration::days(1),
                10,
            )
            .unwrap()
            .len()
        })
        .await
            == 0
    })
    .await;
    // Delivered once, by the service that queued it (the appointment service's worker reads
    // only its own rows).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let delivered = notice_titles(&app, &user.id)
        .await
        .into_iter()
        .filter(|t| t == "Jonosta perille")
        .count();
    assert_eq!(delivered, 1);
}
