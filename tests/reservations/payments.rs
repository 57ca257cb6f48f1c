//! Paying with the built-in test bank: signed answers to the return address and the callback,
//! idempotent callbacks, bad signatures refused and audited, refunds, expiry of unpaid
//! reservations (the slot frees).

use kuntalaistili_tests::{csrf_from, dual, field_from, follow, Backend};
use serde_json::json;

use super::*;

dual!(pay_confirm_replay_and_refund, unpaid_reservations_expire);

/// The order of a reservation (state, transaction id).
async fn order_of(app: &TestApp, reservation: &str) -> Option<(String, Option<String>)> {
    let id = reservation.to_owned();
    app.with_conn(move |c| {
        kuntalaistili_schema::payments::of_reservation(c, &id)
            .unwrap()
            .first()
            .map(|o| (o.state.clone(), o.transaction_id.clone()))
    })
    .await
}

async fn state_of(app: &TestApp, id: &str) -> String {
    let id = id.to_owned();
    app.with_conn(move |c| {
        kuntalaistili_schema::reservations::find(c, &id)
            .unwrap()
            .unwrap()
            .state
    })
    .await
}

async fn pay_confirm_replay_and_refund(b: Backend) {
    let app = app(b).await;
    resource(&app, "kokous", |r| {
        r.name_fi = "Kokoushuone Lokki".into();
        r.price_kind = "hourly".into();
        r.price_cents = 1250;
        r.vat_basis_points = 2550;
    })
    .await;
    let rp = front_end(&app).await;
    let (browser, token, sub) = resident(&app, &rp, "maksaja", "openid reservations").await;
    let day = in_days(6);
    let (s, v) = post_json(
        &app,
        &format!("{API}/reservations"),
        &token,
        &json!({ "resource": "kokous", "begins_at": at(day, 600), "ends_at": at(day, 720) }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["price_cents"].as_i64()),
        (Some("waiting_for_payment"), Some(2500))
    );
    assert!(v["payment_due_at"].is_string());
    let id = v["id"].as_str().unwrap().to_owned();
    // The resident pays on their page: the test bank shows the payment, marked as a test.
    let (_, _, mine) = follow(&app, &browser, "/services/reservations/mine").await;
    assert!(
        mine.contains("Odottaa maksua")
            && mine.contains("25,00 €")
            && mine.contains("testipankissa"),
        "{mine}"
    );
    let csrf = csrf_from(&mine).unwrap();
    let r = post_pay(&app, &browser, &csrf, &id).await;
    assert_eq!(r.status(), 303);
    let bank_url = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(bank_url.starts_with(&app.url("/testbank/")), "{bank_url}");
    assert_eq!(order_of(&app, &id).await.unwrap().0, "pending");
    // The payer's address (from userinfo, kept with the service session) went to the provider.
    let email = app
        .with_conn(|c| {
            use diesel::prelude::*;
            use kuntalaistili_schema::schema::svc_sessions::dsl as s;
            s::svc_sessions
                .filter(s::service.eq("reservations"))
                .select(s::email)
                .first::<Option<String>>(c)
                .unwrap()
        })
        .await;
    assert_eq!(email.as_deref(), Some("maksaja@example.fi"));
    let page = browser
        .get(&bank_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("TESTIPANKKI") && page.contains("25,00 €"),
        "{page}"
    );
    let form_token = field_from(&page, "token").unwrap();
    let bank_path = bank_url.trim_start_matches(&app.base).to_owned();
    // A forged form (no token) does nothing.
    assert_eq!(
        app.post_form(&browser, &format!("{bank_path}/pay"), &[("token", "x")])
            .await
            .status(),
        403
    );
    let r = app
        .post_form(
            &browser,
            &format!("{bank_path}/pay"),
            &[("token", &form_token)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&app.url("/services/reservations/payments/return?")),
        "{back}"
    );
    assert!(
        back.contains("checkout-status=ok") && back.contains("signature="),
        "{back}"
    );
    // The bank told us server to server already: confirmed before the browser is back.
    assert_eq!(state_of(&app, &id).await, "confirmed");
    assert_eq!(order_of(&app, &id).await.unwrap().0, "paid");
    let r = browser.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/services/reservations/mine?done={id}").as_str()
    );
    // The same callback again (twice) changes nothing.
    let callback = back.replace("/payments/return?", "/payments/callback?");
    for _ in 0..2 {
        let r = app.client.get(&callback).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    eventually("the payment audit event", || async {
        !audit_events(&app, "ext.payment.paid").await.is_empty()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let paid = audit_events(&app, "ext.payment.paid").await;
    assert_eq!(paid.len(), 1, "one payment, one event: {paid:?}");
    assert_eq!(paid[0]["reservation"], id.as_str());
    // A tampered answer is refused and audited.
    let forged = callback.replace("checkout-amount=2500", "checkout-amount=1");
    assert_eq!(app.client.get(&forged).send().await.unwrap().status(), 400);
    let unsigned = callback.split("&signature=").next().unwrap().to_owned();
    assert_eq!(
        app.client.get(&unsigned).send().await.unwrap().status(),
        400
    );
    let r = browser
        .get(back.replace("checkout-amount=2500", "checkout-amount=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Maksu ei onnistunut"));
    eventually("refused answers audited", || async {
        audit_events(&app, "ext.payment.answer_refused").await.len() >= 3
    })
    .await;
    let refused = audit_events(&app, "ext.payment.answer_refused").await;
    assert!(
        refused
            .iter()
            .any(|e| e["reason"] == "the signature does not match"),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|e| e["reason"] == "no signature"),
        "{refused:?}"
    );
    assert_eq!(state_of(&app, &id).await, "confirmed");
    // The notice board tells it; the front page shows it.
    eventually("the confirmation notice", || {
        let (app, sub) = (&app, sub.clone());
        async move {
            notice_titles(app, &sub)
                .await
                .iter()
                .any(|t| t == "Varaus vahvistettu: Kokoushuone Lokki")
        }
    })
    .await;
    let (_, _, front) = follow(&app, &browser, "/").await;
    assert!(
        front.contains("Varaus vahvistettu: Kokoushuone Lokki"),
        "{front}"
    );
    // Cancelled in time: refunded in whole at the bank.
    let (s, v) = delete(&app, &format!("{API}/reservations/{id}"), &token).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("cancelled")));
    let (state, tx) = order_of(&app, &id).await.unwrap();
    assert_eq!(state, "refunded");
    let tx = tx.unwrap();
    let bank_state = app
        .with_conn(move |c| {
            kuntalaistili_schema::payments::testbank_find(c, &tx)
                .unwrap()
                .unwrap()
                .status
        })
        .await;
    assert_eq!(bank_state, "refunded");
    eventually("the refund notice", || {
        let (app, sub) = (&app, sub.clone());
        async move {
            notice_titles(app, &sub)
                .await
                .iter()
                .any(|t| t == "Maksu palautettu: Kokoushuone Lokki")
        }
    })
    .await;
    // A cancel whose refund never ran (the node stopped in between): the sweep refunds it.
    let day2 = in_days(7);
    let (s, v) = post_json(
        &app,
        &format!("{API}/reservations"),
        &token,
        &json!({ "resource": "kokous", "begins_at": at(day2, 600), "ends_at": at(day2, 660) }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let second = v["id"].as_str().unwrap().to_owned();
    let bank_url = press_pay(&app, &browser, &second).await;
    pay_at_bank(&app, &browser, &bank_url).await;
    assert_eq!(state_of(&app, &second).await, "confirmed");
    let sid = second.clone();
    app.with_conn(move |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(&format!(
            "UPDATE res_reservations SET state = 'cancelled' WHERE id = '{sid}'"
        ))
        .unwrap()
    })
    .await;
    eventually("the owed refund", || async {
        order_of(&app, &second).await.unwrap().0 == "refunded"
    })
    .await;
    // The message went out by email too, in the resident's language.
    let subjects = app
        .with_conn({
            let sub = sub.clone();
            move |c| {
                kuntalaistili_schema::outbox::for_recipient(c, &sub)
                    .unwrap()
                    .into_iter()
                    .filter(|m| m.channel == "email")
                    .map(|m| m.subject)
                    .collect::<Vec<_>>()
            }
        })
        .await;
    assert!(
        subjects
            .iter()
            .any(|s| s == "Maksa varauksesi: Kokoushuone Lokki"),
        "{subjects:?}"
    );
}

async fn unpaid_reservations_expire(b: Backend) {
    let app = app(b).await;
    resource(&app, "maksu", |r| {
        r.name_fi = "Maksullinen sali".into();
        r.price_kind = "fixed".into();
        r.price_cents = 4000;
    })
    .await;
    let rp = front_end(&app).await;
    let (browser, token, sub) = resident(&app, &rp, "hidas", "openid reservations").await;
    let (_, other, _) = resident(&app, &rp, "nopea", "openid reservations").await;
    let day = in_days(8);
    let body = json!({ "resource": "maksu", "begins_at": at(day, 600), "ends_at": at(day, 660) });
    let (s, v) = post_json(&app, &format!("{API}/reservations"), &token, &body).await;
    assert_eq!(
        (s, v["state"].as_str()),
        (201, Some("waiting_for_payment")),
        "{v}"
    );
    let id = v["id"].as_str().unwrap().to_owned();
    // The resident goes to the bank, then lingers there past the payment time.
    let (_, _, mine) = follow(&app, &browser, "/services/reservations/mine").await;
    let csrf = csrf_from(&mine).unwrap();
    let r = post_pay(&app, &browser, &csrf, &id).await;
    assert_eq!(r.status(), 303);
    let bank_url = r.headers()["location"].to_str().unwrap().to_owned();
    let rid = id.clone();
    app.with_conn(move |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(&format!(
            "UPDATE res_reservations SET expires_at = '2000-01-01 00:00:00' WHERE id = '{rid}'"
        ))
        .unwrap()
    })
    .await;
    eventually("expiry", || async {
        state_of(&app, &id).await == "cancelled"
    })
    .await;
    let (_, v) = get_json(&app, &format!("{API}/reservations/{id}"), Some(&token)).await;
    assert_eq!(v["message"], "payment_expired");
    assert_eq!(order_of(&app, &id).await.unwrap().0, "expired");
    // The slot is free for someone else; paying again is no longer offered.
    assert_eq!(
        post_json(&app, &format!("{API}/reservations"), &other, &body)
            .await
            .0,
        201
    );
    let (_, _, mine) = follow(&app, &browser, "/services/reservations/mine").await;
    assert!(!mine
        .replace("&#x2F;", "/")
        .contains(&format!("/mine/{id}/pay")));
    let r = post_pay(&app, &browser, &csrf, &id).await;
    assert_eq!(r.status(), 409);
    // The payment finished at the bank after all: recorded, and the money goes back.
    pay_at_bank(&app, &browser, &bank_url).await;
    assert_eq!(order_of(&app, &id).await.unwrap().0, "refunded");
    assert_eq!(state_of(&app, &id).await, "cancelled");
    eventually("the expiry and refund notices", || {
        let (app, sub) = (&app, sub.clone());
        async move {
            let t = notice_titles(app, &sub).await;
            t.iter().any(|t| t.starts_with("Varaus vapautui"))
                && t.iter().any(|t| t == "Maksu palautettu: Maksullinen sali")
        }
    })
    .await;
}
