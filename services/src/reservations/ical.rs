//! iCalendar (RFC 5545) feeds: a facility's busy times (`{base}/api/resources/{id}/calendar.ics`,
//! public, no personal data) and a resident's own reservations (`{base}/feed/{token}.ics`, a
//! secret address the resident makes on their reservations page and can replace).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_schema::reservations::{self as store, Reservation};
use kuntalaistili_schema::DbError;
use sha2::{Digest, Sha256};

use super::Booking;

/// One VEVENT.
pub struct Event {
    pub uid: String,
    pub begins: NaiveDateTime,
    pub ends: NaiveDateTime,
    pub summary: String,
    pub location: String,
    /// `CONFIRMED` or `TENTATIVE`.
    pub status: &'static str,
    pub stamp: NaiveDateTime,
}

impl Event {
    /// The event of a reservation: confirmed, or tentative while it waits.
    fn of(r: &Reservation, summary: String, location: String) -> Event {
        Event {
            uid: format!("{}@kuntalaistili", r.id),
            begins: r.begins_at,
            ends: r.ends_at,
            summary,
            location,
            status: if r.state == "confirmed" {
                "CONFIRMED"
            } else {
                "TENTATIVE"
            },
            stamp: r.updated_at,
        }
    }
}

/// Escapes a TEXT value (RFC 5545 3.3.11).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets, never inside a UTF-8 character (RFC 5545 3.1).
fn fold(line: &str, out: &mut String) {
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
}

fn utc(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A VCALENDAR with the events.
pub fn calendar(name: &str, events: &[Event]) -> String {
    let mut out = String::new();
    for l in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Kuntalaistili//Reservations//FI",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ] {
        fold(l, &mut out);
    }
    fold(&format!("X-WR-CALNAME:{}", text(name)), &mut out);
    for e in events {
        fold("BEGIN:VEVENT", &mut out);
        fold(&format!("UID:{}", text(&e.uid)), &mut out);
        fold(&format!("DTSTAMP:{}", utc(e.stamp)), &mut out);
        fold(&format!("DTSTART:{}", utc(e.begins)), &mut out);
        fold(&format!("DTEND:{}", utc(e.ends)), &mut out);
        fold(&format!("SUMMARY:{}", text(&e.summary)), &mut out);
        if !e.location.is_empty() {
            fold(&format!("LOCATION:{}", text(&e.location)), &mut out);
        }
        fold(&format!("STATUS:{}", e.status), &mut out);
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    out
}

fn ics(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/calendar; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .body(body)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(
        format!("kuntalaistili-feed/v1:{token}").as_bytes(),
    ))
}

pub fn configure(cfg: &mut web::ServiceConfig, booking: web::Data<Booking>) {
    let base = booking.base();
    let b2 = booking.clone();
    cfg.route(
        &format!("{base}/api/resources/{{id}}/calendar.ics"),
        web::get().to(move |path: web::Path<String>| {
            let b = booking.clone();
            async move { resource_feed(b, path.into_inner()).await }
        }),
    )
    .route(
        &format!("{base}/feed/{{token}}"),
        web::get().to(move |path: web::Path<String>| {
            let b = b2.clone();
            async move { resident_feed(b, path.into_inner()).await }
        }),
    );
}

async fn resource_feed(b: web::Data<Booking>, id: String) -> HttpResponse {
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let found = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let Some(res) = store::resource(&mut conn, &id)?.filter(|r| r.kind == kind && r.active)
        else {
            return Ok(None);
        };
        let now = kuntalaistili_schema::now_utc();
        let busy = store::busy_between(
            &mut conn,
            &id,
            now - Duration::days(7),
            now + Duration::days(120),
        )?;
        Ok(Some((res, busy)))
    })
    .await;
    match found {
        Ok(Ok(Some((res, busy)))) => {
            let events: Vec<Event> = busy
                .iter()
                .map(|r| {
                    Event::of(
                        r,
                        format!("Varattu / Bokad / Reserved: {}", res.name_fi),
                        res.name_fi.clone(),
                    )
                })
                .collect();
            ics(calendar(&res.name_fi, &events))
        }
        Ok(Ok(None)) => HttpResponse::NotFound().finish(),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn resident_feed(b: web::Data<Booking>, token: String) -> HttpResponse {
    let Some(token) = token
        .strip_suffix(".ics")
        .filter(|t| t.len() <= 64)
        .map(str::to_owned)
    else {
        return HttpResponse::NotFound().finish();
    };
    let (db, kind) = (b.kit.db.clone(), b.kind);
    let found = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let Some(sub) = store::feed_sub(&mut conn, kind, &token_hash(&token))? else {
            return Ok(None);
        };
        Ok(Some(store::of_resident(&mut conn, &sub, kind)?))
    })
    .await;
    match found {
        Ok(Ok(Some(list))) => {
            let events: Vec<Event> = list
                .iter()
                .filter(|(r, _)| r.is_active())
                .map(|(r, res)| {
                    let name = res.name(&r.language);
                    Event::of(r, name.to_owned(), name.to_owned())
                })
                .collect();
            ics(calendar("Kuntalaistili", &events))
        }
        Ok(Ok(None)) => HttpResponse::NotFound().finish(),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendars_escape_and_fold() {
        let t = NaiveDateTime::parse_from_str("2027-01-15 08:00", "%Y-%m-%d %H:%M").unwrap();
        let cal = calendar(
            "Sali; iso, hieno",
            &[Event {
                uid: "a@b".into(),
                begins: t,
                ends: t + Duration::hours(1),
                summary: "Pallopeli\nja äänekäs ".repeat(6),
                location: String::new(),
                status: "CONFIRMED",
                stamp: t,
            }],
        );
        assert!(cal.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(cal.contains("X-WR-CALNAME:Sali\\; iso\\, hieno\r\n"));
        assert!(cal.contains("DTSTART:20270115T080000Z\r\nDTEND:20270115T090000Z\r\n"));
        assert!(cal.ends_with("END:VCALENDAR\r\n"));
        for line in cal.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is longer than 75 octets");
        }
        // Unfolding gives the escaped text back.
        let unfolded = cal.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("SUMMARY:{}", "Pallopeli\\nja äänekäs ".repeat(6))));
    }
}
