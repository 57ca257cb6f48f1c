//! A facility's calendar: both daylight-saving changes of Europe/Helsinki, the residents' pages,
//! live updates and calendar feeds.

use kuntalaistili_tests::{csrf_from, dual, follow, Backend};
use serde_json::{json, Value};

use super::*;

dual!(
    both_daylight_saving_changes,
    pages_live_updates_and_calendar_feeds
);

async fn both_daylight_saving_changes(b: Backend) {
    let app = app(b).await;
    resource(&app, "yo", |r| r.max_minutes = 240).await;
    // Sunday nights 00–06 local besides the day hours.
    app.with_conn(|c| {
        kuntalaistili_schema::reservations::insert_hours(
            c,
            &kuntalaistili_schema::reservations::Hours {
                id: "yo-night".into(),
                resource_id: "yo".into(),
                valid_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                valid_until: None,
                weekday: 7,
                opens_min: 0,
                closes_min: 6 * 60,
            },
        )
        .unwrap()
    })
    .await;
    let rp = front_end(&app).await;
    let (_, token, _) = resident(&app, &rp, "yokyoeilija", "openid reservations").await;
    let night = |v: &Value| -> Vec<String> {
        v["days"][0]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["begins_at"].as_str().unwrap().to_owned())
            .take_while(|s| !s.ends_with("T06:00:00Z") && !s.ends_with("T05:00:00Z"))
            .collect()
    };
    // Spring forward, Sunday 28 March 2027: 03:00 does not exist, the night has five hours.
    let (s, v) = get_json(
        &app,
        &format!("{API}/resources/yo/availability?from=2027-03-28&to=2027-03-29"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        night(&v),
        vec![
            "2027-03-27T22:00:00Z",
            "2027-03-27T23:00:00Z",
            "2027-03-28T00:00:00Z",
            "2027-03-28T01:00:00Z",
            "2027-03-28T02:00:00Z"
        ],
        "{v}"
    );
    // Autumn back, Sunday 31 October 2027: 03:00–04:00 comes twice, the night has seven hours.
    let (_, v) = get_json(
        &app,
        &format!("{API}/resources/yo/availability?from=2027-10-31&to=2027-11-01"),
        None,
    )
    .await;
    let slots = night(&v);
    assert_eq!(slots.len(), 7, "{v}");
    assert_eq!(slots[0], "2027-10-30T21:00:00Z");
    assert_eq!(slots[6], "2027-10-31T03:00:00Z");
    let path = format!("{API}/reservations");
    // 02:00 EET → 04:00 EEST is one real hour: booked as such.
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "yo", "begins_at": "2027-03-28T02:00:00+02:00", "ends_at": "2027-03-28T04:00:00+03:00" }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["begins_at"].as_str(), v["ends_at"].as_str()),
        (Some("2027-03-28T00:00:00Z"), Some("2027-03-28T01:00:00Z"))
    );
    // 02:00 EEST → 03:00 EET is two real hours.
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "yo", "begins_at": "2027-10-31T02:00:00+03:00", "ends_at": "2027-10-31T03:00:00+02:00" }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["begins_at"].as_str(), v["ends_at"].as_str()),
        (Some("2027-10-30T23:00:00Z"), Some("2027-10-31T01:00:00Z"))
    );
    // The second 03:00 (EET) follows on the grid; 05:00–07:00 runs past the night's closing.
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "yo", "begins_at": "2027-10-31T03:00:00+02:00", "ends_at": "2027-10-31T04:00:00+02:00" }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "yo", "begins_at": "2027-10-31T05:00:00+02:00", "ends_at": "2027-10-31T07:00:00+02:00" }),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (422, Some("closed")), "{v}");
}

async fn pages_live_updates_and_calendar_feeds(b: Backend) {
    let app = app(b).await;
    resource(&app, "kirjasto", |r| {
        r.name_fi = "Kirjaston ryhmätila".into()
    })
    .await;
    let rp = front_end(&app).await;
    let (browser, token, _) = resident(&app, &rp, "sivukayttaja", "openid reservations").await;
    // Search and the week calendar, for visitors too.
    let visitor = app.browser();
    let (s, _, page) = follow(&app, &visitor, "/services/reservations/?capacity=5&free=1").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("Kirjaston ryhmätila") && page.contains("Löytyi 1."),
        "{page}"
    );
    let day = in_days(4);
    let week = format!("/services/reservations/resources/kirjasto?week={day}");
    let (s, _, page) = follow(&app, &visitor, &week).await;
    assert_eq!(s, 200);
    assert!(page.contains("Kirjaudu varataksesi"), "{page}");
    // The resident (logged in at the IdP) gets in without a click and books on the page.
    let (s, _, page) = follow(&app, &browser, &week).await;
    assert_eq!(s, 200);
    let csrf = csrf_from(&page).unwrap();
    // Live: an open calendar hears of the change.
    let events = app
        .client
        .get(app.url("/services/reservations/api/resources/kirjasto/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut events = events;
    let first = events.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("connected"));
    let r = app
        .post_form(
            &browser,
            "/services/reservations/resources/kirjasto/book",
            &[
                ("csrf", &csrf),
                ("begins_at", &at(day, 14 * 60)),
                ("slots", "2"),
                ("purpose", "Lukupiiri"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/services/reservations/mine?done="));
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), events.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&got).contains("event: changed"),
        "{got:?}"
    );
    let (_, _, mine) = follow(&app, &browser, "/services/reservations/mine").await;
    let mine = mine.replace("&#x2F;", "/");
    assert!(
        mine.contains("Kirjaston ryhmätila") && mine.contains("Vahvistettu"),
        "{mine}"
    );
    // The same time again on the page: a clear answer, not a 500.
    let r = app
        .post_form(
            &browser,
            "/services/reservations/resources/kirjasto/book",
            &[
                ("csrf", &csrf),
                ("begins_at", &at(day, 15 * 60)),
                ("slots", "1"),
            ],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Aika ehdittiin juuri varata"));
    // Without the form token: refused.
    let r = app
        .post_form(
            &browser,
            "/services/reservations/resources/kirjasto/book",
            &[("csrf", "x"), ("begins_at", &at(day, 17 * 60))],
        )
        .await;
    assert_eq!(r.status(), 403);
    // The facility's feed shows the busy time without personal data.
    let ics = app
        .client
        .get(app.url("/services/reservations/api/resources/kirjasto/calendar.ics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ics.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let ics = ics.text().await.unwrap();
    assert!(
        ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.contains("BEGIN:VEVENT"),
        "{ics}"
    );
    assert!(
        ics.contains(&format!(
            "DTSTART:{}",
            at(day, 14 * 60).replace(['-', ':'], "")
        )),
        "{ics}"
    );
    assert!(!ics.contains("Lukupiiri") && !ics.contains("sivukayttaja"));
    // The resident's own feed: a secret address made on the page.
    let r = app
        .post_form(&browser, "/services/reservations/feed", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap().replace("&#x2F;", "/");
    let start = page.find("<code>").unwrap() + 6;
    let url = &page[start..page[start..].find("</code>").unwrap() + start];
    assert!(url.ends_with(".ics"), "{url}");
    let own = app
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(own.contains("SUMMARY:Kirjaston ryhmätila"), "{own}");
    assert_eq!(
        app.client
            .get(app.url("/services/reservations/feed/arvaus.ics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Cancel on the page; the API agrees.
    let id = mine
        .split("/services/reservations/mine/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let r = app
        .post_form(
            &browser,
            &format!("/services/reservations/mine/{id}/cancel"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, v) = get_json(&app, &format!("{API}/reservations/{id}"), Some(&token)).await;
    assert_eq!(v["state"], "cancelled");
}
