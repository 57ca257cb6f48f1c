//! Booking a facility: concurrency, the API contract and the rules (daylight saving, pages, live
//! updates and calendar feeds in `calendar`).

use futures_util::future::join_all;
use kuntalaistili_tests::{dual, Backend};
use serde_json::{json, Value};

use super::*;

dual!(
    two_hundred_residents_race_for_one_slot,
    api_contract_and_rules
);

async fn two_hundred_residents_race_for_one_slot(b: Backend) {
    let app = app(b).await;
    resource(&app, "kisa", |_| {}).await;
    let rp = front_end(&app).await;
    // 200 residents, each with their own access token (made 20 at a time).
    let mut tokens = Vec::new();
    for chunk in 0..10 {
        let made = join_all((0..20).map(|i| {
            let (app, rp) = (&app, &rp);
            async move {
                resident(
                    app,
                    rp,
                    &format!("kisaaja{}", chunk * 20 + i),
                    "openid reservations",
                )
                .await
                .1
            }
        }))
        .await;
        tokens.extend(made);
    }
    let day = in_days(3);
    let body =
        json!({ "resource": "kisa", "begins_at": at(day, 10 * 60), "ends_at": at(day, 11 * 60) });
    let answers = join_all(tokens.iter().map(|t| {
        let (app, body) = (&app, &body);
        async move {
            let r = app
                .client
                .post(app.url(&format!("{API}/reservations")))
                .bearer_auth(t)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
            (status, ctype, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let created: Vec<_> = answers.iter().filter(|(s, ..)| *s == 201).collect();
    let taken: Vec<_> = answers.iter().filter(|(s, ..)| *s == 409).collect();
    assert_eq!(created.len(), 1, "exactly one booking wins: {answers:?}");
    assert_eq!(
        taken.len(),
        199,
        "the others hear the slot is taken: {answers:?}"
    );
    assert_eq!(created[0].2["state"], "confirmed");
    for (_, ctype, v) in &taken {
        assert_eq!(ctype, "application/problem+json");
        assert!(
            v["detail"].as_str().unwrap().contains("already taken"),
            "{v}"
        );
    }
    // The database holds one active reservation of that time.
    let active = app
        .with_conn(|c| {
            let from = chrono::Utc::now().naive_utc();
            kuntalaistili_schema::reservations::busy_between(
                c,
                "kisa",
                from,
                from + chrono::Duration::days(10),
            )
            .unwrap()
        })
        .await;
    assert_eq!(active.len(), 1);
    // The slot shows as taken.
    let (s, v) = get_json(
        &app,
        &format!(
            "{API}/resources/kisa/availability?from={day}&to={}",
            day.succ_opt().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let slot = v["days"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["begins_at"] == at(day, 10 * 60).as_str())
        .unwrap()
        .clone();
    assert_eq!(slot["status"], "taken");
}

async fn api_contract_and_rules(b: Backend) {
    let app = app(b).await;
    resource(&app, "sali", |r| r.capacity = 30).await;
    resource(&app, "pieni", |r| {
        r.capacity = 4;
        r.max_per_resident = 1;
        r.cancel_hours = 72;
        r.advance_min_minutes = 24 * 60;
        r.advance_max_days = 14;
    })
    .await;
    resource(&app, "puskuri", |r| r.buffer_after = 30).await;
    resource(&app, "vahva", |r| r.auth_level = "strong".into()).await;
    resource(&app, "suljettu", |r| r.active = false).await;
    let rp = front_end(&app).await;
    let (_, token, _) = resident(&app, &rp, "varaaja", "openid reservations").await;
    let (_, other, _) = resident(&app, &rp, "toinen", "openid reservations").await;
    let (_, notices_only, _) = resident(&app, &rp, "kolmas", "openid notices").await;

    // Search: public, filters by capacity, type, municipality, free of charge.
    let (s, v) = get_json(&app, &format!("{API}/resources?capacity=10"), None).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"sali") && !ids.contains(&"pieni") && !ids.contains(&"suljettu"),
        "{ids:?}"
    );
    let (_, v) = get_json(&app, &format!("{API}/resources?municipality=049"), None).await;
    assert_eq!(v["resources"].as_array().unwrap().len(), 0);
    let (_, v) = get_json(
        &app,
        &format!("{API}/resources?free=1&type=hall&municipality=091"),
        None,
    )
    .await;
    assert_eq!(v["resources"].as_array().unwrap().len(), 4);
    assert_eq!(
        get_json(&app, &format!("{API}/resources?capacity=lots"), None)
            .await
            .0,
        400
    );
    let (s, v) = get_json(&app, &format!("{API}/resources/sali"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["opening_hours"].as_array().unwrap().len(), 7);
    assert_eq!(v["unit"]["municipality"], "091");
    assert_eq!(
        get_json(&app, &format!("{API}/resources/eiole"), None)
            .await
            .0,
        404
    );
    // Availability: default a week, bad ranges refused.
    let (s, v) = get_json(&app, &format!("{API}/resources/sali/availability"), None).await;
    assert_eq!(s, 200);
    assert!(v["days"].as_array().unwrap().len() >= 7);
    assert_eq!(
        get_json(
            &app,
            &format!("{API}/resources/sali/availability?from=huomenna"),
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        get_json(
            &app,
            &format!("{API}/resources/sali/availability?from=2027-01-01&to=2027-06-01"),
            None
        )
        .await
        .0,
        400
    );

    let day = in_days(5);
    let book = |resource: &str, from: i32, to: i32| json!({ "resource": resource, "begins_at": at(day, from), "ends_at": at(day, to) });
    let path = format!("{API}/reservations");
    // Tokens: none → 401, another scope → 403.
    let r = app
        .client
        .post(app.url(&path))
        .json(&book("sali", 600, 660))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        post_json(&app, &path, &notices_only, &book("sali", 600, 660))
            .await
            .0,
        403
    );
    assert_eq!(
        post_json(&app, &path, "roskaa", &book("sali", 600, 660))
            .await
            .0,
        401
    );
    // Booked: 201 with the state and where it lives.
    let r = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .json(&book("sali", 600, 720))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["state"].as_str(), v["price_cents"].as_i64()),
        (Some("confirmed"), Some(0))
    );
    assert_eq!(loc, format!("{path}/{}", v["id"].as_str().unwrap()));
    let id = v["id"].as_str().unwrap().to_owned();
    // The same time, or part of it, for anyone: 409.
    let (s, v) = post_json(&app, &path, &other, &book("sali", 660, 720)).await;
    assert_eq!(s, 409, "{v}");
    // Rules, each with its code.
    let rule = |v: &Value| v["code"].as_str().unwrap_or("").to_owned();
    let (s, v) = post_json(&app, &path, &other, &book("sali", 630, 690)).await;
    assert_eq!((s, rule(&v)), (422, "off_grid".into()), "{v}");
    let (s, v) = post_json(&app, &path, &other, &book("sali", 19 * 60, 21 * 60)).await;
    assert_eq!((s, rule(&v)), (422, "closed".into()), "{v}");
    let (s, v) = post_json(&app, &path, &other, &book("sali", 8 * 60, 12 * 60)).await;
    assert_eq!((s, rule(&v)), (422, "too_long".into()), "{v}");
    let (s, v) = post_json(&app, &path, &other, &book("sali", 720, 660)).await;
    assert_eq!((s, rule(&v)), (422, "bad_times".into()), "{v}");
    let tomorrow = in_days(0);
    let (s, v) = post_json(
        &app,
        &path,
        &other,
        &json!({ "resource": "pieni", "begins_at": at(tomorrow, 19 * 60), "ends_at": at(tomorrow, 20 * 60) }),
    )
    .await;
    assert!(
        s == 422 && (rule(&v) == "too_soon" || rule(&v) == "in_past"),
        "{s} {v}"
    );
    let far = in_days(30);
    let (s, v) = post_json(
        &app,
        &path,
        &other,
        &json!({ "resource": "pieni", "begins_at": at(far, 600), "ends_at": at(far, 660) }),
    )
    .await;
    assert_eq!((s, rule(&v)), (422, "too_far".into()), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("14 days"), "{v}");
    // One upcoming reservation per resident on "pieni".
    let (s, v) = post_json(&app, &path, &other, &book("pieni", 600, 660)).await;
    assert_eq!(s, 201, "{v}");
    let small = v["id"].as_str().unwrap().to_owned();
    let (s, v) = post_json(&app, &path, &other, &book("pieni", 720, 780)).await;
    assert_eq!((s, rule(&v)), (422, "limit".into()), "{v}");
    // Cancelling "pieni" closes 72 hours before; "sali" (24 h) can still be cancelled.
    let soon = in_days(2);
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "pieni", "begins_at": at(soon, 600), "ends_at": at(soon, 660) }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = delete(
        &app,
        &format!("{path}/{}", v["id"].as_str().unwrap()),
        &token,
    )
    .await;
    assert_eq!((s, rule(&v)), (422, "cancel_deadline".into()), "{v}");
    assert_eq!(
        delete(&app, &format!("{path}/{small}"), &other).await.0,
        200
    );
    // Someone else's reservation is not there for you.
    assert_eq!(
        get_json(&app, &format!("{path}/{id}"), Some(&other))
            .await
            .0,
        404
    );
    assert_eq!(delete(&app, &format!("{path}/{id}"), &other).await.0, 404);
    let (s, v) = get_json(&app, &format!("{path}/{id}"), Some(&token)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("confirmed")));
    let (s, v) = delete(&app, &format!("{path}/{id}"), &token).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("cancelled")));
    assert_eq!(delete(&app, &format!("{path}/{id}"), &token).await.0, 409);
    // The cancelled time is free again.
    assert_eq!(
        post_json(&app, &path, &other, &book("sali", 660, 720))
            .await
            .0,
        201
    );
    // Buffers: 30 minutes after a reservation keep the next hour from starting at once.
    assert_eq!(
        post_json(&app, &path, &token, &book("puskuri", 600, 660))
            .await
            .0,
        201
    );
    let (s, v) = post_json(&app, &path, &other, &book("puskuri", 660, 720)).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        post_json(&app, &path, &other, &book("puskuri", 720, 780))
            .await
            .0,
        201
    );
    // Strong identification required; a resource out of use; bad input.
    let (s, v) = post_json(&app, &path, &token, &book("vahva", 600, 660)).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = post_json(&app, &path, &token, &book("suljettu", 600, 660)).await;
    assert_eq!((s, rule(&v)), (422, "not_bookable".into()), "{v}");
    assert_eq!(
        post_json(&app, &path, &token, &book("eiole", 600, 660))
            .await
            .0,
        404
    );
    assert_eq!(
        post_json(&app, &path, &token, &json!({"resource": "sali"}))
            .await
            .0,
        400
    );
    assert_eq!(
        post_json(
            &app,
            &path,
            &token,
            &json!({"resource": "sali", "begins_at": "huomenna", "ends_at": "x"})
        )
        .await
        .0,
        400
    );
    let r = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Dates far outside any booking: clear 400s, never a panic.
    for q in [
        "from=9999-12-31",
        "from=+262143-12-31",
        "from=2027-01-01&to=9999-01-01",
        "from=1900-01-01",
    ] {
        let (s, v) = get_json(
            &app,
            &format!("{API}/resources/sali/availability?{q}"),
            None,
        )
        .await;
        assert_eq!(s, 400, "{q}: {v}");
    }
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({"resource": "sali", "begins_at": "9999-12-31T22:00:00Z", "ends_at": "9999-12-31T23:00:00Z"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let r = app
        .client
        .get(app.url("/services/reservations/resources/sali?week=262143-12-31"))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 200 || r.status() == 303, "{}", r.status());
    // The resident's own list.
    let (s, v) = get_json(&app, &path, Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(v["reservations"].as_array().unwrap().len(), 3);
    // Every state change reached the resident's notice board.
    let sub = app
        .with_conn(|c| {
            kuntalaistili_schema::users::find_by_username(c, "varaaja")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    eventually("notices of the bookings", || {
        let (app, sub) = (&app, sub.clone());
        async move {
            let t = notice_titles(app, &sub).await;
            t.iter()
                .any(|x| x.starts_with("Varaus vahvistettu: Sali sali"))
                && t.iter().any(|x| x.starts_with("Varaus peruttu: Sali sali"))
        }
    })
    .await;
}
