//! One reservation, one payment (issue 22, item 5): a second "pay" continues the open payment;
//! when two payments were opened anyway (two tabs racing) and both are paid, the first holds the
//! reservation and the second is refunded at once — and the sweep finds any that slipped by. Also:
//! a staff form whose return path carries CR/LF is refused before it acts (item 10), and the
//! reservations and appointments services keep a calendar feed each.

use kuntalaistili_tests::{csrf_from, dual, follow, Backend};
use serde_json::json;

use super::*;

dual!(a_reservation_is_paid_once, calendar_feeds_are_per_service);

/// The reservation's orders as (id, state), oldest first.
async fn orders(app: &TestApp, reservation: &str) -> Vec<(String, String)> {
    let id = reservation.to_owned();
    let mut v: Vec<(String, String)> = app
        .with_conn(move |c| {
            kuntalaistili_schema::payments::of_reservation(c, &id)
                .unwrap()
                .into_iter()
                .map(|o| (o.id, o.state))
                .collect()
        })
        .await;
    v.reverse();
    v
}

async fn set_order_state(app: &TestApp, order: &str, state: &'static str) {
    let id = order.to_owned();
    app.with_conn(move |c| {
        use diesel::prelude::*;
        use kuntalaistili_schema::schema::pay_orders::dsl as o;
        diesel::update(o::pay_orders.filter(o::id.eq(id)))
            .set(o::state.eq(state))
            .execute(c)
            .unwrap()
    })
    .await;
}

async fn a_reservation_is_paid_once(b: Backend) {
    let app = app(b).await;
    resource(&app, "sali", |r| {
        r.price_kind = "fixed".into();
        r.price_cents = 1500;
    })
    .await;
    let rp = front_end(&app).await;
    let (browser, token, sub) = resident(&app, &rp, "kahdesti", "openid reservations").await;
    let day = in_days(5);
    let (s, v) = post_json(
        &app,
        &format!("{API}/reservations"),
        &token,
        &json!({ "resource": "sali", "begins_at": at(day, 600), "ends_at": at(day, 660) }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();

    // Pressing "pay" twice continues the same payment.
    let first = press_pay(&app, &browser, &id).await;
    assert_eq!(press_pay(&app, &browser, &id).await, first);
    assert_eq!(orders(&app, &id).await.len(), 1);

    // Two tabs that both started before either reached the bank: two payments open.
    let o1 = orders(&app, &id).await[0].0.clone();
    set_order_state(&app, &o1, "created").await;
    let second = press_pay(&app, &browser, &id).await;
    set_order_state(&app, &o1, "pending").await;
    assert_ne!(second, first);
    assert_eq!(orders(&app, &id).await.len(), 2);

    // Both are paid: the first confirms, the second is refunded at once.
    pay_at_bank(&app, &browser, &first).await;
    pay_at_bank(&app, &browser, &second).await;
    let states: Vec<String> = orders(&app, &id).await.into_iter().map(|o| o.1).collect();
    assert_eq!(states, ["paid", "refunded"]);
    let r = app
        .with_conn({
            let id = id.clone();
            move |c| {
                kuntalaistili_schema::reservations::find(c, &id)
                    .unwrap()
                    .unwrap()
            }
        })
        .await;
    assert_eq!(r.state, "confirmed");
    eventually("the refund audited", || async {
        audit_events(&app, "ext.payment.refunded").await.len() == 1
    })
    .await;

    // The sweep finds a second payment that was recorded but not yet refunded, never the first.
    let o2 = orders(&app, &id).await[1].0.clone();
    set_order_state(&app, &o2, "paid").await;
    let due: Vec<String> = app
        .with_conn(|c| {
            kuntalaistili_schema::payments::duplicates_due(c)
                .unwrap()
                .into_iter()
                .map(|o| o.id)
                .collect()
        })
        .await;
    assert_eq!(due, std::slice::from_ref(&o2));
    set_order_state(&app, &o2, "refunded").await;

    // A return path with CR/LF is refused before anything is done (it gave a 500 after acting).
    let poster = app.client_token("notices:write").await;
    let r = app
        .client
        .post(app.url("/services/noticeboard/api/notices"))
        .bearer_auth(&poster)
        .json(&json!({
            "sub": sub, "idempotency_key": "k-1", "service": "Kirjasto",
            "title": "Laina erääntyy", "body": "Palauta kirja.",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let nid = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, board) = follow(&app, &browser, "/services/noticeboard/").await;
    assert_eq!(s, 200);
    let board_csrf = csrf_from(&board).unwrap();
    let read = |back: &'static str| {
        let (app, browser, csrf, nid) = (&app, &browser, board_csrf.clone(), nid.clone());
        async move {
            app.post_form(
                browser,
                &format!("/services/noticeboard/notices/{nid}/read"),
                &[("csrf", &csrf), ("back", back)],
            )
            .await
            .status()
        }
    };
    assert_eq!(read("/services/noticeboard/\r\nSet-Cookie: x=y").await, 400);
    assert_eq!(read("https://evil.example/").await, 400);
    let read_at = |nid: String| {
        let app = &app;
        async move {
            app.with_conn(move |c| {
                use diesel::prelude::*;
                use kuntalaistili_schema::schema::notices::dsl as n;
                n::notices
                    .filter(n::id.eq(nid))
                    .select(n::read_at)
                    .first::<Option<chrono::NaiveDateTime>>(c)
                    .unwrap()
            })
            .await
        }
    };
    assert_eq!(read_at(nid.clone()).await, None, "nothing was marked read");
    assert_eq!(read("/services/noticeboard/?page=1").await, 303);
    assert!(read_at(nid).await.is_some());
}

async fn calendar_feeds_are_per_service(b: Backend) {
    let app = app(b).await;
    app.add_user("kalenteri", PASSWORD).await;
    let browser = app.browser();
    assert_eq!(
        app.login(&browser, "kalenteri", PASSWORD).await.status(),
        303
    );
    let mut feeds = Vec::new();
    for base in ["/services/reservations", "/services/appointments"] {
        let (s, _, mine) = follow(&app, &browser, &format!("{base}/mine")).await;
        assert_eq!(s, 200, "{base}");
        let csrf = csrf_from(&mine).unwrap();
        let r = app
            .post_form(&browser, &format!("{base}/feed"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status(), 200, "{base}");
        let page = r.text().await.unwrap().replace("&#x2F;", "/");
        let start = page.find("<code>").unwrap() + 6;
        let url = page[start..page[start..].find("</code>").unwrap() + start].to_owned();
        assert!(url.starts_with(&app.url(&format!("{base}/feed/"))), "{url}");
        feeds.push(url);
    }
    // Making the appointments feed did not replace the reservations feed: both answer.
    for url in &feeds {
        let r = app.client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert!(r.text().await.unwrap().starts_with("BEGIN:VCALENDAR"));
    }
    // And neither opens the other service's calendar.
    let crossed = feeds[0].replace("/services/reservations/", "/services/appointments/");
    assert_eq!(app.client.get(&crossed).send().await.unwrap().status(), 404);
}
