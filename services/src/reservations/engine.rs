//! The booking rules, free of storage and HTTP: opening hours in local time (Europe/Helsinki,
//! daylight saving included) turned into UTC intervals, slots, availability against the existing
//! reservations (with buffers), the checks a booking must pass, prices.
//!
//! Slots step through the *real* time from the opening instant, so the spring day that loses an
//! hour has one slot fewer and the autumn day that repeats an hour has one more; a local time that
//! does not exist (03:30 on the last Sunday of March) moves an hour on, and one that exists twice
//! takes its first occurrence.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use kuntalaistili_schema::reservations::{Exception, Hours, Resource};

/// The time zone of every municipality we serve.
pub const TZ: Tz = chrono_tz::Europe::Helsinki;

/// Why a booking is refused; each has a message key (`res.rule_…`) and an English detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    BadTimes,
    InPast,
    TooSoon(i32),
    TooFar(i32),
    Closed,
    OffGrid(i32),
    TooShort(i32),
    TooLong(i32),
    Limit(i32),
    CancelDeadline(i32),
    NotBookable,
    /// Staff approve this resource's reservations: a new time needs a new request.
    NoReschedule,
}

impl RuleError {
    pub fn key(&self) -> &'static str {
        match self {
            RuleError::BadTimes => "res.rule_bad_times",
            RuleError::InPast => "res.rule_in_past",
            RuleError::TooSoon(_) => "res.rule_too_soon",
            RuleError::TooFar(_) => "res.rule_too_far",
            RuleError::Closed => "res.rule_closed",
            RuleError::OffGrid(_) => "res.rule_off_grid",
            RuleError::TooShort(_) => "res.rule_too_short",
            RuleError::TooLong(_) => "res.rule_too_long",
            RuleError::Limit(_) => "res.rule_limit",
            RuleError::CancelDeadline(_) => "res.rule_cancel_deadline",
            RuleError::NotBookable => "res.rule_not_bookable",
            RuleError::NoReschedule => "res.rule_no_reschedule",
        }
    }

    /// The number the message names ({n}), if any.
    pub fn n(&self) -> Option<i32> {
        match self {
            RuleError::TooSoon(n)
            | RuleError::TooFar(n)
            | RuleError::OffGrid(n)
            | RuleError::TooShort(n)
            | RuleError::TooLong(n)
            | RuleError::Limit(n)
            | RuleError::CancelDeadline(n) => Some(*n),
            _ => None,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            RuleError::BadTimes => "ends_at must be after begins_at, both whole minutes".into(),
            RuleError::InPast => "the time has already begun".into(),
            RuleError::TooSoon(m) => {
                format!("reservations must be made at least {m} minutes before the start")
            }
            RuleError::TooFar(d) => format!("reservations open {d} days ahead"),
            RuleError::Closed => "the resource is not open for the whole time".into(),
            RuleError::OffGrid(m) => {
                format!("reservations start and end on the {m}-minute slots from opening")
            }
            RuleError::TooShort(m) => format!("a reservation is at least {m} minutes"),
            RuleError::TooLong(m) => format!("a reservation is at most {m} minutes"),
            RuleError::Limit(n) => {
                format!(
                    "you already hold {n} upcoming reservations of this resource, the most allowed"
                )
            }
            RuleError::CancelDeadline(h) => {
                format!("reservations can be cancelled until {h} hours before the start")
            }
            RuleError::NotBookable => "the resource takes no reservations".into(),
            RuleError::NoReschedule => {
                "staff approve reservations of this resource: cancel and ask for the new time"
                    .into()
            }
        }
    }
}

/// A date from input (`YYYY-MM-DD`) within the years anyone books (2000–2200): arithmetic on
/// it can never leave chrono's range.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2200).contains(&d.year()))
}

/// `now` plus `days`, saturating (configured limits are not trusted to be small).
fn days_after(now: NaiveDateTime, days: i32) -> NaiveDateTime {
    now.checked_add_signed(Duration::days(i64::from(days)))
        .unwrap_or(NaiveDateTime::MAX)
}

/// A local date and minutes after its midnight as a UTC instant.
pub fn local_to_utc(day: NaiveDate, minutes: i32) -> NaiveDateTime {
    let local = day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(i64::from(minutes));
    match TZ.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.naive_utc(),
        chrono::LocalResult::Ambiguous(first, _) => first.naive_utc(),
        // In the spring gap: the same wall-clock reading an hour on.
        chrono::LocalResult::None => {
            let later = local + Duration::hours(1);
            TZ.from_local_datetime(&later)
                .earliest()
                .map(|t| t.naive_utc())
                .unwrap_or(later)
        }
    }
}

/// A UTC instant in local time.
pub fn to_local(t: NaiveDateTime) -> chrono::DateTime<Tz> {
    TZ.from_utc_datetime(&t)
}

/// The local date of a UTC instant.
pub fn local_date(t: NaiveDateTime) -> NaiveDate {
    to_local(t).date_naive()
}

/// The opening intervals of one local day, as UTC instants, in order.
pub fn opening(
    hours: &[Hours],
    exceptions: &[Exception],
    day: NaiveDate,
) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    let mut mins: Vec<(i32, i32)> = match exceptions.iter().find(|e| e.day == day) {
        Some(e) => match (e.opens_min, e.closes_min) {
            (Some(o), Some(c)) => vec![(o, c)],
            _ => vec![],
        },
        None => {
            let wd = day.weekday().number_from_monday() as i32;
            hours
                .iter()
                .filter(|h| {
                    h.weekday == wd && h.valid_from <= day && h.valid_until.is_none_or(|u| day <= u)
                })
                .map(|h| (h.opens_min, h.closes_min))
                .collect()
        }
    };
    mins.retain(|(o, c)| 0 <= *o && o < c && *c <= 24 * 60);
    mins.sort();
    mins.into_iter()
        .map(|(o, c)| (local_to_utc(day, o), local_to_utc(day, c)))
        .filter(|(a, b)| a < b)
        .collect()
}

/// The slots of an opening interval: `slot_minutes` of real time from the opening instant.
pub fn slots_of(
    open: (NaiveDateTime, NaiveDateTime),
    slot_minutes: i32,
) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    let step = Duration::minutes(i64::from(slot_minutes.max(5)));
    let mut out = Vec::new();
    let mut t = open.0;
    while t + step <= open.1 {
        out.push((t, t + step));
        t += step;
    }
    out
}

/// The time a reservation of `[begins, ends)` keeps from others (with the buffers).
pub fn blocked(r: &Resource, begins: NaiveDateTime, ends: NaiveDateTime) -> [NaiveDateTime; 4] {
    [
        begins,
        ends,
        begins - Duration::minutes(i64::from(r.buffer_before)),
        ends + Duration::minutes(i64::from(r.buffer_after)),
    ]
}

/// A blocked time of an existing reservation: `[from, until)`.
pub type Span = (NaiveDateTime, NaiveDateTime);

/// Whether `[from, until)` meets any of `busy` (sorted by start).
pub fn overlaps(busy: &[Span], from: NaiveDateTime, until: NaiveDateTime) -> bool {
    // Spans starting at or after `until` cannot meet it.
    let end = busy.partition_point(|b| b.0 < until);
    busy[..end].iter().any(|b| b.1 > from)
}

/// A slot as shown: when, and whether it can be booked now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Slot {
    pub begins_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    /// `free`, `taken` or `unavailable` (past, too soon, too far).
    pub status: &'static str,
}

/// The slots of the local days `[first, last]` with their status.
pub fn availability(
    r: &Resource,
    hours: &[Hours],
    exceptions: &[Exception],
    busy: &[Span],
    first: NaiveDate,
    last: NaiveDate,
    now: NaiveDateTime,
) -> Vec<(NaiveDate, Vec<Slot>)> {
    let mut busy = busy.to_vec();
    busy.sort_unstable();
    let earliest = now + Duration::minutes(i64::from(r.advance_min_minutes));
    let latest = days_after(now, r.advance_max_days);
    let bb = Duration::minutes(i64::from(r.buffer_before));
    let ba = Duration::minutes(i64::from(r.buffer_after));
    let mut days = Vec::new();
    let mut day = first;
    while day <= last {
        let mut slots = Vec::new();
        for open in opening(hours, exceptions, day) {
            for (b, e) in slots_of(open, r.slot_minutes) {
                let status = if overlaps(&busy, b - bb, e + ba) {
                    "taken"
                } else if b < earliest || b > latest || !r.active {
                    "unavailable"
                } else {
                    "free"
                };
                slots.push(Slot {
                    begins_at: b,
                    ends_at: e,
                    status,
                });
            }
        }
        days.push((day, slots));
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    days
}

/// Checks a booking of `[begins, ends)` against the resource's rules (not the other
/// reservations: the database decides those).
pub fn check_booking(
    r: &Resource,
    hours: &[Hours],
    exceptions: &[Exception],
    begins: NaiveDateTime,
    ends: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), RuleError> {
    use chrono::Timelike;
    if !r.active {
        return Err(RuleError::NotBookable);
    }
    if begins >= ends || begins.second() != 0 || ends.second() != 0 || begins.nanosecond() != 0 {
        return Err(RuleError::BadTimes);
    }
    if begins <= now {
        return Err(RuleError::InPast);
    }
    if begins < now + Duration::minutes(i64::from(r.advance_min_minutes)) {
        return Err(RuleError::TooSoon(r.advance_min_minutes));
    }
    if begins > days_after(now, r.advance_max_days) {
        return Err(RuleError::TooFar(r.advance_max_days));
    }
    let minutes = (ends - begins).num_minutes();
    if minutes < i64::from(r.min_minutes) {
        return Err(RuleError::TooShort(r.min_minutes));
    }
    if minutes > i64::from(r.max_minutes) {
        return Err(RuleError::TooLong(r.max_minutes));
    }
    // The whole time inside one opening interval of its local day.
    let day = local_date(begins);
    let Some(open) = opening(hours, exceptions, day)
        .into_iter()
        .find(|(o, c)| *o <= begins && ends <= *c)
    else {
        return Err(RuleError::Closed);
    };
    let slot = i64::from(r.slot_minutes.max(5));
    if (begins - open.0).num_minutes() % slot != 0 || minutes % slot != 0 {
        return Err(RuleError::OffGrid(r.slot_minutes));
    }
    Ok(())
}

/// Whether a resident may still cancel a reservation beginning at `begins`.
pub fn check_cancel(
    r: &Resource,
    begins: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), RuleError> {
    if now > begins - Duration::hours(i64::from(r.cancel_hours)) {
        return Err(RuleError::CancelDeadline(r.cancel_hours));
    }
    Ok(())
}

/// The price of `[begins, ends)` in cents.
pub fn price(r: &Resource, begins: NaiveDateTime, ends: NaiveDateTime) -> i64 {
    match r.price_kind.as_str() {
        "hourly" => r.price_cents * (ends - begins).num_minutes() / 60,
        "fixed" => r.price_cents,
        _ => 0,
    }
}

/// Euros and cents in Finnish notation (`12,50 €`).
pub fn euros(cents: i64) -> String {
    format!("{},{:02} €", cents / 100, (cents % 100).abs())
}

/// Local time for people (`26.11.2026 klo 14.00–15.00` style, without the word).
pub fn local_span(begins: NaiveDateTime, ends: NaiveDateTime) -> String {
    let (b, e) = (to_local(begins), to_local(ends));
    if b.date_naive() == e.date_naive() {
        format!(
            "{} {}–{}",
            b.format("%-d.%-m.%Y"),
            b.format("%H.%M"),
            e.format("%H.%M")
        )
    } else {
        format!(
            "{} – {}",
            b.format("%-d.%-m.%Y %H.%M"),
            e.format("%-d.%-m.%Y %H.%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    pub fn resource() -> Resource {
        Resource {
            id: "r1".into(),
            unit_id: "u1".into(),
            kind: "facility".into(),
            name_fi: "Sali".into(),
            name_sv: "Sal".into(),
            name_en: "Hall".into(),
            description: String::new(),
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
            advance_min_minutes: 60,
            advance_max_days: 1000,
            max_per_resident: 3,
            cancel_hours: 24,
            manual_approval: false,
            price_kind: "hourly".into(),
            price_cents: 1250,
            reduced_price_cents: None,
            vat_basis_points: 0,
            active: true,
            created_at: utc("2026-01-01 00:00"),
        }
    }

    fn every_day(opens: i32, closes: i32) -> Vec<Hours> {
        (1..=7)
            .map(|wd| Hours {
                id: format!("h{wd}"),
                resource_id: "r1".into(),
                valid_from: d(2020, 1, 1),
                valid_until: None,
                weekday: wd,
                opens_min: opens,
                closes_min: closes,
            })
            .collect()
    }

    #[test]
    fn opening_hours_are_local_time_across_both_dst_changes() {
        let hours = every_day(8 * 60, 20 * 60);
        // Winter: UTC+2; summer: UTC+3.
        assert_eq!(
            opening(&hours, &[], d(2027, 1, 15)),
            vec![(utc("2027-01-15 06:00"), utc("2027-01-15 18:00"))]
        );
        assert_eq!(
            opening(&hours, &[], d(2027, 7, 15)),
            vec![(utc("2027-07-15 05:00"), utc("2027-07-15 17:00"))]
        );
        // Spring forward (Sunday 28 March 2027, 03:00 → 04:00): a night opening 01–05 lasts
        // three real hours; autumn back (Sunday 31 October 2027, 04:00 → 03:00) five.
        let night = every_day(60, 5 * 60);
        let spring = opening(&night, &[], d(2027, 3, 28));
        assert_eq!(
            spring,
            vec![(utc("2027-03-27 23:00"), utc("2027-03-28 02:00"))]
        );
        assert_eq!(slots_of(spring[0], 60).len(), 3);
        let autumn = opening(&night, &[], d(2027, 10, 31));
        assert_eq!(
            autumn,
            vec![(utc("2027-10-30 22:00"), utc("2027-10-31 03:00"))]
        );
        assert_eq!(slots_of(autumn[0], 60).len(), 5);
        // A local time in the spring gap moves an hour on.
        assert_eq!(
            local_to_utc(d(2027, 3, 28), 3 * 60 + 30),
            utc("2027-03-28 01:30")
        );
    }

    #[test]
    fn bookings_follow_the_rules() {
        let r = resource();
        let hours = every_day(8 * 60, 20 * 60);
        let now = utc("2027-01-10 10:00");
        let ok = |b: &str, e: &str| check_booking(&r, &hours, &[], utc(b), utc(e), now);
        // 10–12 local on 15 Jan = 08–10 UTC.
        assert_eq!(ok("2027-01-15 08:00", "2027-01-15 10:00"), Ok(()));
        assert_eq!(
            ok("2027-01-15 08:30", "2027-01-15 09:30"),
            Err(RuleError::OffGrid(60))
        );
        assert_eq!(
            ok("2027-01-15 05:00", "2027-01-15 07:00"),
            Err(RuleError::Closed)
        );
        assert_eq!(
            ok("2027-01-15 17:00", "2027-01-15 19:00"),
            Err(RuleError::Closed)
        );
        assert_eq!(
            ok("2027-01-15 08:00", "2027-01-15 12:00"),
            Err(RuleError::TooLong(180))
        );
        assert_eq!(
            ok("2027-01-09 08:00", "2027-01-09 09:00"),
            Err(RuleError::InPast)
        );
        assert_eq!(
            ok("2027-01-10 10:30", "2027-01-10 11:30"),
            Err(RuleError::TooSoon(60))
        );
        assert_eq!(
            ok("2027-01-15 09:00", "2027-01-15 08:00"),
            Err(RuleError::BadTimes)
        );
        let mut short = r.clone();
        short.advance_max_days = 3;
        assert_eq!(
            check_booking(
                &short,
                &hours,
                &[],
                utc("2027-01-15 08:00"),
                utc("2027-01-15 09:00"),
                now
            ),
            Err(RuleError::TooFar(3))
        );
        // An exception closes a day, another shortens it.
        let closed = Exception {
            resource_id: "r1".into(),
            day: d(2027, 1, 15),
            opens_min: None,
            closes_min: None,
            reason: "Itsenäisyyspäivä".into(),
        };
        assert_eq!(
            check_booking(
                &r,
                &hours,
                &[closed],
                utc("2027-01-15 08:00"),
                utc("2027-01-15 09:00"),
                now
            ),
            Err(RuleError::Closed)
        );
        // Cancellation deadline: 24 h before.
        assert_eq!(check_cancel(&r, utc("2027-01-11 12:00"), now), Ok(()));
        assert_eq!(
            check_cancel(&r, utc("2027-01-11 09:00"), now),
            Err(RuleError::CancelDeadline(24))
        );
        assert_eq!(
            price(&r, utc("2027-01-15 08:00"), utc("2027-01-15 10:00")),
            2500
        );
        assert_eq!(euros(2500), "25,00 €");
    }

    #[test]
    fn availability_marks_taken_slots_with_buffers() {
        let mut r = resource();
        r.buffer_after = 30;
        let hours = every_day(8 * 60, 12 * 60);
        let now = utc("2027-01-10 10:00");
        let taken = (utc("2027-01-15 07:00"), utc("2027-01-15 08:30"));
        let days = availability(
            &r,
            &hours,
            &[],
            &[taken],
            d(2027, 1, 15),
            d(2027, 1, 15),
            now,
        );
        let st: Vec<&str> = days[0].1.iter().map(|s| s.status).collect();
        // 08–12 local = 06–10 UTC. Each slot keeps 30 minutes after it: 06–07 (to 07.30) and
        // 08–09 meet the reservation's 07.00–08.30 as well as 07–08 itself.
        assert_eq!(st, vec!["taken", "taken", "taken", "free"]);
    }
}
