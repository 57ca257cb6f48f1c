//! Facility reservation, appointment booking and payments end to end over real HTTP on both
//! backends: the JSON API contract, no double booking under 200 concurrent requests (decided by
//! the database), the rules with their messages, both daylight-saving changes of Europe/Helsinki,
//! the payment flow with the built-in test bank (signed answers, idempotent callbacks, refusal of
//! bad signatures, refunds, expiry of unpaid reservations), staff handling, series and blocks,
//! appointments with types, rescheduling and reminders, live updates and iCalendar feeds. This
//! module holds the fixtures.

mod appointments;
mod booking;
mod calendar;
mod paid_twice;
mod payments;
mod staff;

use chrono::{Duration, NaiveDate};
use kuntalaistili_schema::reservations::{self as store, ApptType, Hours, Resource, Unit};
use kuntalaistili_tests::{csrf_from, field_from, follow, TestApp};
use serde_json::Value;

use crate::oidc::{self, Rp};

pub const PASSWORD: &str = "varaaja-salasana-pitka";
pub const API: &str = "/services/reservations/api";

/// A server whose password hashing is cheap (many residents log in in these tests) and whose
/// unpaid reservations are looked at every second.
pub async fn app(b: kuntalaistili_tests::Backend) -> TestApp {
    TestApp::start_with(b, |c| {
        c.password.memory_kib = 256;
        c.password.iterations = 1;
        c.payments.sweep_seconds = 1;
        email_queued(c);
    })
    .await
}

/// Email as a channel (to a port where nothing listens: messages are queued in the outbox, which
/// is what these tests look at, and their delivery fails harmlessly).
pub fn email_queued(c: &mut kuntalaistili::config::Config) {
    c.messaging.smtp = Some(kuntalaistili_connectors::messaging::SmtpConfig {
        host: "127.0.0.1".into(),
        port: 9,
        tls: "none".into(),
        username: None,
        password: None,
    });
    c.messaging.retry_seconds = 3600;
}

/// A resource of the test unit (created with it on first use): open every day 08–20 local, one-hour
/// slots, one to three hours, free, direct confirmation; `tweak` changes it.
pub async fn resource(
    app: &TestApp,
    id: &str,
    tweak: impl FnOnce(&mut Resource) + Send + 'static,
) -> Resource {
    let id = id.to_owned();
    app.with_conn(move |c| {
        let now = kuntalaistili_schema::now_utc();
        if store::unit(c, "u-testi").unwrap().is_none() {
            store::insert_unit(
                c,
                &Unit {
                    id: "u-testi".into(),
                    name: "Testitalo".into(),
                    municipality_code: "091".into(),
                    street_address: "Testikatu 1".into(),
                    postal_code: "00100".into(),
                    city: "Helsinki".into(),
                    contact: "testitalo@example.fi".into(),
                    latitude: None,
                    longitude: None,
                    created_at: now,
                },
            )
            .unwrap();
        }
        let mut r = Resource {
            id: id.clone(),
            unit_id: "u-testi".into(),
            kind: "facility".into(),
            name_fi: format!("Sali {id}"),
            name_sv: format!("Sal {id}"),
            name_en: format!("Hall {id}"),
            description: "Testisali".into(),
            resource_type: "hall".into(),
            purposes: "sports".into(),
            capacity: 20,
            equipment: String::new(),
            image_url: None,
            terms: String::new(),
            auth_level: "weak".into(),
            lipas_id: None,
            slot_minutes: 60,
            min_minutes: 60,
            max_minutes: 180,
            buffer_before: 0,
            buffer_after: 0,
            advance_min_minutes: 0,
            advance_max_days: 500,
            max_per_resident: 10,
            cancel_hours: 24,
            manual_approval: false,
            price_kind: "free".into(),
            price_cents: 0,
            reduced_price_cents: None,
            vat_basis_points: 0,
            active: true,
            created_at: now,
        };
        tweak(&mut r);
        store::insert_resource(c, &r).unwrap();
        let (opens, closes) = if r.kind == "appointment" {
            (9 * 60, 15 * 60)
        } else {
            (8 * 60, 20 * 60)
        };
        for weekday in 1..=7 {
            store::insert_hours(
                c,
                &Hours {
                    id: format!("{id}-h{weekday}"),
                    resource_id: id.clone(),
                    valid_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                    valid_until: None,
                    weekday,
                    opens_min: opens,
                    closes_min: closes,
                },
            )
            .unwrap();
        }
        r
    })
    .await
}

pub async fn appt_type(app: &TestApp, resource: &str, id: &str, minutes: i32) {
    let (resource, id) = (resource.to_owned(), id.to_owned());
    app.with_conn(move |c| {
        store::insert_appt_type(
            c,
            &ApptType {
                id: id.clone(),
                resource_id: resource,
                name_fi: format!("Käynti {id}"),
                name_sv: format!("Besök {id}"),
                name_en: format!("Visit {id}"),
                minutes,
            },
        )
        .unwrap()
    })
    .await
}

/// A relying party other front ends would be: it may ask for the booking scopes.
pub async fn front_end(app: &TestApp) -> Rp {
    oidc::add_rp(app, |n| {
        n.scopes = "openid profile reservations appointments notices".into();
    })
    .await
}

/// A resident's access token from the code flow of `rp`, with `scope`.
pub async fn token_for(app: &TestApp, rp: &Rp, browser: &reqwest::Client, scope: &str) -> String {
    let (verifier, challenge) = oidc::pkce();
    let q = oidc::auth_query(rp, &challenge, &[("scope", scope)]);
    let r = oidc::authorize(app, browser, &q).await;
    let p = oidc::redirect_params(&r);
    let code = oidc::param(&p, "code").unwrap().to_owned();
    let (status, v) = oidc::exchange(app, rp, &code, &verifier).await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// A new resident `name`, logged in at the IdP, with an access token of `scope`.
pub async fn resident(
    app: &TestApp,
    rp: &Rp,
    name: &str,
    scope: &str,
) -> (reqwest::Client, String, String) {
    let user = app.add_user(name, PASSWORD).await;
    let b = app.browser();
    assert_eq!(app.login(&b, name, PASSWORD).await.status(), 303);
    let token = token_for(app, rp, &b, scope).await;
    (b, token, user.id)
}

/// The local time `day` `hh:mm` in Helsinki as RFC 3339 (UTC).
pub fn at(day: NaiveDate, minutes: i32) -> String {
    let local = day.and_hms_opt(0, 0, 0).unwrap() + Duration::minutes(i64::from(minutes));
    let offset = if is_summer(day) { 3 } else { 2 };
    format!(
        "{}Z",
        (local - Duration::hours(offset)).format("%Y-%m-%dT%H:%M:%S")
    )
}

/// Whether Finland keeps summer time on `day` (last Sunday of March … last Sunday of October).
fn is_summer(day: NaiveDate) -> bool {
    use chrono::Datelike;
    let last_sunday = |m: u32| {
        let mut d = NaiveDate::from_ymd_opt(day.year(), m, 31).unwrap();
        while d.weekday() != chrono::Weekday::Sun {
            d -= Duration::days(1);
        }
        d
    };
    day > last_sunday(3) && day < last_sunday(10)
}

/// A day `n` days ahead (local).
pub fn in_days(n: i64) -> NaiveDate {
    (chrono::Utc::now() + Duration::hours(2)).date_naive() + Duration::days(n)
}

pub async fn post_json(app: &TestApp, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn get_json(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut rq = app.client.get(app.url(path));
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    let r = rq.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn delete(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let r = app
        .client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `f` holds (the notices and messages are sent after the answer).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 10 s");
}

/// The notices of a resident (titles).
pub async fn notice_titles(app: &TestApp, sub: &str) -> Vec<String> {
    let sub = sub.to_owned();
    app.with_conn(move |c| {
        kuntalaistili_schema::notices::list(
            c,
            &sub,
            &kuntalaistili_schema::notices::Filter {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|n| n.title)
        .collect()
    })
    .await
}

/// Audit events of a type (their details).
pub async fn audit_events(app: &TestApp, event_type: &str) -> Vec<Value> {
    let t = event_type.to_owned();
    app.with_conn(move |c| {
        kuntalaistili_schema::audit::recent(c, Some(&t), None, 1000)
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_str(&e.details).unwrap())
            .collect()
    })
    .await
}

/// Presses "pay" on the resident's page; the test bank's address.
pub async fn press_pay(app: &TestApp, browser: &reqwest::Client, id: &str) -> String {
    let (_, _, mine) = follow(app, browser, "/services/reservations/mine").await;
    let csrf = csrf_from(&mine).unwrap();
    let r = post_pay(app, browser, &csrf, id).await;
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Posts the "pay" form of reservation `id` on the resident's page with the page's `csrf`.
pub async fn post_pay(
    app: &TestApp,
    browser: &reqwest::Client,
    csrf: &str,
    id: &str,
) -> reqwest::Response {
    app.post_form(
        browser,
        &format!("/services/reservations/mine/{id}/pay"),
        &[("csrf", csrf)],
    )
    .await
}

/// Pays at the test bank page.
pub async fn pay_at_bank(app: &TestApp, browser: &reqwest::Client, bank_url: &str) {
    let page = browser
        .get(bank_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = field_from(&page, "token").unwrap();
    let path = bank_url.trim_start_matches(&app.base).to_owned();
    let r = app
        .post_form(browser, &format!("{path}/pay"), &[("token", &token)])
        .await;
    assert_eq!(r.status(), 303);
}
