//! Staff's own entries in the calendar: a block or a staff reservation on one day, and a
//! recurring series for a club (weekly; the days already taken are skipped and named).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, Duration, NaiveDateTime};
use kuntalaistili_schema::reservations::{self as store, Reservation, Series};
use kuntalaistili_schema::DbError;

use super::super::{engine, Booking};
use super::{denied_page, hhmm, manage_page, staff_form, unit_of_resource, BlockForm, SeriesForm};
use crate::kit::{render, KitError};

fn staff_reservation(
    res: &kuntalaistili_schema::reservations::Resource,
    kind: &str,
    begins: NaiveDateTime,
    ends: NaiveDateTime,
    purpose: String,
    series: Option<&str>,
    now: NaiveDateTime,
) -> Reservation {
    let [_, _, blocked_from, blocked_until] = engine::blocked(res, begins, ends);
    Reservation {
        id: uuid::Uuid::new_v4().to_string(),
        resource_id: res.id.clone(),
        sub: None,
        kind: kind.to_owned(),
        series_id: series.map(str::to_owned),
        appt_type_id: None,
        state: "confirmed".into(),
        begins_at: begins,
        ends_at: ends,
        blocked_from,
        blocked_until,
        purpose,
        price_cents: 0,
        vat_basis_points: 0,
        language: "fi".into(),
        message: None,
        expires_at: None,
        reminded_at: None,
        created_at: now,
        updated_at: now,
    }
}

pub(super) async fn block_post(
    b: web::Data<Booking>,
    req: HttpRequest,
    f: BlockForm,
) -> Result<HttpResponse, KitError> {
    let (resident, scope) = match staff_form(&b, &req, f.csrf.as_deref()).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let lang = render::negotiate(&req);
    let tr = |k: &str| b.kit.templates.tr.text(lang, k);
    let (Some(day), Some(s), Some(e)) = (engine::parse_date(&f.date), hhmm(&f.start), hhmm(&f.end))
    else {
        let t = tr("res.rule_bad_times");
        return manage_page(b, req, Some((StatusCode::BAD_REQUEST, "error".into(), t))).await;
    };
    if s >= e {
        let t = tr("res.rule_bad_times");
        return manage_page(b, req, Some((StatusCode::BAD_REQUEST, "error".into(), t))).await;
    }
    match unit_of_resource(&b, &f.resource).await? {
        Some(unit) if scope.allows(&unit) => {}
        Some(_) => return Ok(denied_page(&b, &req, &resident)),
        None => return Ok(HttpResponse::NotFound().finish()),
    }
    let kind = if f.kind.as_deref() == Some("staff") {
        "staff"
    } else {
        "block"
    };
    let (db, bkind, rid) = (b.kit.db.clone(), b.kind, f.resource.clone());
    let reason: String = f.reason.unwrap_or_default().chars().take(300).collect();
    let done = web::block(move || -> Result<Option<Reservation>, DbError> {
        let mut conn = db.conn()?;
        let Some(res) = store::resource(&mut conn, &rid)?.filter(|r| r.kind == bkind) else {
            return Ok(None);
        };
        let now = kuntalaistili_schema::now_utc();
        let r = staff_reservation(
            &res,
            kind,
            engine::local_to_utc(day, s),
            engine::local_to_utc(day, e),
            reason,
            None,
            now,
        );
        store::book(&mut conn, &r, None, now)?;
        Ok(Some(r))
    })
    .await?;
    match done {
        Ok(Some(r)) => {
            b.live.changed(&r.resource_id);
            let t = tr("res.manage_blocked");
            manage_page(b, req, Some((StatusCode::OK, "done".into(), t))).await
        }
        Ok(None) => Ok(HttpResponse::NotFound().finish()),
        Err(DbError::Conflict(_)) => {
            let t = tr("res.error_taken");
            manage_page(b, req, Some((StatusCode::CONFLICT, "error".into(), t))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn series_post(
    b: web::Data<Booking>,
    req: HttpRequest,
    f: SeriesForm,
) -> Result<HttpResponse, KitError> {
    let (resident, scope) = match staff_form(&b, &req, f.csrf.as_deref()).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let lang = render::negotiate(&req);
    let tr = |k: &str| b.kit.templates.tr.text(lang, k);
    let parsed = (
        f.weekday
            .parse::<i32>()
            .ok()
            .filter(|w| (1..=7).contains(w)),
        hhmm(&f.start),
        f.minutes
            .parse::<i32>()
            .ok()
            .filter(|m| (15..=24 * 60).contains(m)),
        engine::parse_date(&f.first_day),
        engine::parse_date(&f.last_day),
    );
    let (Some(weekday), Some(start), Some(minutes), Some(first), Some(last)) = parsed else {
        let t = tr("res.rule_bad_times");
        return manage_page(b, req, Some((StatusCode::BAD_REQUEST, "error".into(), t))).await;
    };
    match unit_of_resource(&b, &f.resource).await? {
        Some(unit) if scope.allows(&unit) => {}
        Some(_) => return Ok(denied_page(&b, &req, &resident)),
        None => return Ok(HttpResponse::NotFound().finish()),
    }
    let holder: String = f.holder.trim().chars().take(200).collect();
    if holder.is_empty() || last < first || (last - first).num_days() > 366 {
        let t = tr("res.rule_bad_times");
        return manage_page(b, req, Some((StatusCode::BAD_REQUEST, "error".into(), t))).await;
    }
    let (db, bkind, rid, by) = (
        b.kit.db.clone(),
        b.kind,
        f.resource.clone(),
        resident.sub.clone(),
    );
    let done = web::block(
        move || -> Result<Option<(usize, Vec<NaiveDateTime>)>, DbError> {
            let mut conn = db.conn()?;
            let Some(res) = store::resource(&mut conn, &rid)?.filter(|r| r.kind == bkind) else {
                return Ok(None);
            };
            let now = kuntalaistili_schema::now_utc();
            let s = Series {
                id: uuid::Uuid::new_v4().to_string(),
                resource_id: res.id.clone(),
                holder: holder.clone(),
                weekday,
                start_min: start,
                minutes,
                first_day: first,
                last_day: last,
                created_by: by,
                created_at: now,
            };
            let mut occ = Vec::new();
            let mut day = first;
            while day <= last {
                if day.weekday().number_from_monday() as i32 == weekday {
                    let begins = engine::local_to_utc(day, start);
                    let ends = begins + Duration::minutes(i64::from(minutes));
                    occ.push(staff_reservation(
                        &res,
                        "series",
                        begins,
                        ends,
                        holder.clone(),
                        Some(&s.id),
                        now,
                    ));
                }
                day += Duration::days(1);
            }
            let skipped = store::add_series(&mut conn, &s, &occ)?;
            Ok(Some((occ.len() - skipped.len(), skipped)))
        },
    )
    .await??;
    let Some((made, skipped)) = done else {
        return Ok(HttpResponse::NotFound().finish());
    };
    b.live.changed(&f.resource);
    let mut text = tr("res.manage_series_done").replace("{n}", &made.to_string());
    if !skipped.is_empty() {
        let days: Vec<String> = skipped
            .iter()
            .map(|t| engine::to_local(*t).format("%-d.%-m.%Y").to_string())
            .collect();
        text.push(' ');
        text.push_str(&tr("res.manage_series_skipped").replace("{days}", &days.join(", ")));
    }
    manage_page(b, req, Some((StatusCode::OK, "done".into(), text))).await
}
