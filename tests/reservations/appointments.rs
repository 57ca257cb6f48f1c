//! Appointment booking on the same engine: types set the length, rescheduling keeps the rules
//! and refuses a taken time, cancelling, reminders through messaging, and the scopes of the two
//! APIs kept apart.

use kuntalaistili_tests::{csrf_from, dual, follow, Backend};
use serde_json::json;

use super::*;

const APPT: &str = "/services/appointments/api";

dual!(book_move_cancel_and_remind);

async fn book_move_cancel_and_remind(b: Backend) {
    let app = app(b).await;
    resource(&app, "neuvonta", |r| {
        r.kind = "appointment".into();
        r.name_fi = "Asukasneuvonta".into();
        r.slot_minutes = 15;
        r.min_minutes = 15;
        r.max_minutes = 60;
        r.cancel_hours = 2;
    })
    .await;
    appt_type(&app, "neuvonta", "lyhyt", 15).await;
    appt_type(&app, "neuvonta", "pitka", 45).await;
    let rp = front_end(&app).await;
    let (browser, token, sub) = resident(&app, &rp, "asioija", "openid appointments").await;
    let (_, other, _) = resident(&app, &rp, "toinenkin", "openid appointments").await;
    let (_, facility_only, _) = resident(&app, &rp, "tilavaraaja", "openid reservations").await;
    // Appointment resources are not facilities, and the scopes do not cross.
    assert_eq!(
        get_json(&app, &format!("{API}/resources/neuvonta"), None)
            .await
            .0,
        404
    );
    let (s, v) = get_json(&app, &format!("{APPT}/resources/neuvonta"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["appointment_types"].as_array().unwrap().len(), 2);
    let day = in_days(3);
    let path = format!("{APPT}/appointments");
    let body = |minutes: i32, t: &str| json!({ "resource": "neuvonta", "begins_at": at(day, minutes), "type": t });
    assert_eq!(
        post_json(&app, &path, &facility_only, &body(600, "pitka"))
            .await
            .0,
        403
    );
    assert_eq!(
        post_json(
            &app,
            &path,
            &token,
            &json!({ "resource": "neuvonta", "begins_at": at(day, 600) })
        )
        .await
        .0,
        400
    );
    // The type gives the length: 10.00–10.45.
    let (s, v) = post_json(&app, &path, &token, &body(600, "pitka")).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["ends_at"].as_str().unwrap(), at(day, 645));
    let id = v["id"].as_str().unwrap().to_owned();
    // 10.30 overlaps; 10.45 is free.
    assert_eq!(
        post_json(&app, &path, &other, &body(630, "lyhyt")).await.0,
        409
    );
    let (s, v) = post_json(&app, &path, &other, &body(645, "lyhyt")).await;
    assert_eq!(s, 201, "{v}");
    // Rescheduling onto someone's time: 409; to a free time: moved, length kept.
    let patch = |to: i32| {
        let (app, id, token) = (&app, id.clone(), token.clone());
        async move {
            let r = app
                .client
                .patch(app.url(&format!("{APPT}/appointments/{id}")))
                .bearer_auth(&token)
                .json(&json!({ "begins_at": at(day, to) }))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (s, v) = patch(630).await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = patch(13 * 60).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["begins_at"].as_str().unwrap(),
            v["ends_at"].as_str().unwrap()
        ),
        (at(day, 780).as_str(), at(day, 825).as_str())
    );
    let (s, v) = patch(14 * 60 + 30).await;
    assert_eq!((s, v["code"].as_str()), (422, Some("closed")), "{v}");
    // The old time is free again.
    assert_eq!(
        post_json(&app, &path, &other, &body(600, "lyhyt")).await.0,
        201
    );
    eventually("the rescheduling notice", || {
        let (app, sub) = (&app, sub.clone());
        async move {
            notice_titles(app, &sub)
                .await
                .iter()
                .any(|t| t.starts_with("Aika siirretty:"))
        }
    })
    .await;
    // On the pages: "move to another time" opens the calendar in moving mode; a slot moves it.
    let (s, _, page) = follow(
        &app,
        &browser,
        &format!("/services/appointments/resources/neuvonta?week={day}&move={id}"),
    )
    .await;
    assert_eq!(s, 200);
    let page = page.replace("&#x2F;", "/");
    assert!(
        page.contains(&format!("/services/appointments/mine/{id}/move")),
        "{page}"
    );
    assert!(page.contains("Valitse uusi aika."));
    let csrf = csrf_from(&page).unwrap();
    let r = app
        .post_form(
            &browser,
            &format!("/services/appointments/mine/{id}/move"),
            &[("csrf", &csrf), ("begins_at", &at(day, 11 * 60))],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, v) = get_json(&app, &format!("{path}/{id}"), Some(&token)).await;
    assert_eq!(
        (
            v["begins_at"].as_str().unwrap(),
            v["ends_at"].as_str().unwrap()
        ),
        (at(day, 660).as_str(), at(day, 705).as_str())
    );
    // Cancel.
    let (s, v) = delete(&app, &format!("{path}/{id}"), &token).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("cancelled")));
    // An appointment in the coming day gets one reminder (a desk open round the clock, so the
    // test runs the same at any hour).
    resource(&app, "paivystys", |r| {
        r.kind = "appointment".into();
        r.name_fi = "Päivystys".into();
        r.slot_minutes = 15;
        r.min_minutes = 15;
        r.max_minutes = 60;
    })
    .await;
    app.with_conn(|c| {
        for weekday in 1..=7 {
            kuntalaistili_schema::reservations::insert_hours(
                c,
                &kuntalaistili_schema::reservations::Hours {
                    id: format!("paivystys-24-{weekday}"),
                    resource_id: "paivystys".into(),
                    valid_from: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                    valid_until: None,
                    weekday,
                    opens_min: 0,
                    closes_min: 24 * 60,
                },
            )
            .unwrap();
        }
    })
    .await;
    appt_type(&app, "paivystys", "kaynti", 15).await;
    let soon = chrono::Utc::now().timestamp() + 3 * 3600;
    let soon = chrono::DateTime::from_timestamp(soon - soon % 900 + 900, 0).unwrap();
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "paivystys", "begins_at": soon.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "type": "kaynti" }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let rid = v["id"].as_str().unwrap().to_owned();
    // Further away than a day: not yet.
    let later = soon + chrono::Duration::days(2);
    let (s, v) = post_json(
        &app,
        &path,
        &token,
        &json!({ "resource": "paivystys", "begins_at": later.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "type": "kaynti" }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let later_id = v["id"].as_str().unwrap().to_owned();
    eventually("the reminder", || {
        let (app, sub, rid) = (&app, sub.clone(), rid.clone());
        async move {
            let reminded = app
                .with_conn(move |c| {
                    kuntalaistili_schema::reservations::find(c, &rid)
                        .unwrap()
                        .unwrap()
                        .reminded_at
                        .is_some()
                })
                .await;
            reminded
                && notice_titles(app, &sub)
                    .await
                    .iter()
                    .any(|t| t.starts_with("Muistutus: aika"))
        }
    })
    .await;
    let not_yet = app
        .with_conn(move |c| {
            kuntalaistili_schema::reservations::find(c, &later_id)
                .unwrap()
                .unwrap()
                .reminded_at
        })
        .await;
    assert!(not_yet.is_none());
    let reminders = notice_titles(&app, &sub)
        .await
        .into_iter()
        .filter(|t| t.starts_with("Muistutus: aika"))
        .count();
    assert_eq!(reminders, 1);
}
