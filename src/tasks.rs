//! Background tasks of the whole server: housekeeping and the SAML metadata refresh.

use std::time::Duration;

use actix_web::web;
use kuntalaistili_idp::IdpState;

/// Every ten minutes, drops expired sessions and stale throttling counters (on every node; the
/// deletes are idempotent).
pub(crate) fn spawn_housekeeping(state: web::Data<IdpState>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let st = state.clone();
            let window = chrono::Duration::minutes(st.settings.throttle.window_minutes);
            let result = web::block(
                move || -> Result<(usize, usize), kuntalaistili_schema::DbError> {
                    let mut conn = st.db.conn()?;
                    let now = kuntalaistili_schema::now_utc();
                    kuntalaistili_schema::signing_keys::delete_expired(&mut conn, now)?;
                    kuntalaistili_schema::oidc_flows::delete_expired(&mut conn, now)?;
                    kuntalaistili_schema::service_sessions::delete_expired(&mut conn, now)?;
                    kuntalaistili_schema::saml::sweep_replay(&mut conn, now)?;
                    let erased = kuntalaistili_idp::customers::gdpr::erase_due(
                        &mut conn,
                        st.settings.erasure_retention_days,
                        now,
                    )?;
                    if erased > 0 {
                        tracing::info!(erased, "personal data erased after the retention period");
                    }
                    Ok((
                        kuntalaistili_schema::sessions::delete_expired(&mut conn, now)?,
                        kuntalaistili_schema::throttle::delete_stale(&mut conn, now, window)?,
                    ))
                },
            )
            .await;
            match result {
                Ok(Ok((sessions, counters))) => {
                    tracing::debug!(sessions, counters, "housekeeping removed expired rows")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
                Err(e) => tracing::warn!(error = %e, "housekeeping could not run"),
            }
        }
    });
}

/// Every `hours`, fetches fresh metadata for SPs registered from a URL and for aggregates; a
/// failure keeps the last good copy and is logged.
pub(crate) fn spawn_metadata_refresh(state: web::Data<IdpState>, hours: u64) {
    if hours == 0 {
        return;
    }
    actix_web::rt::spawn(async move {
        let period = Duration::from_secs(hours * 3600);
        let mut tick =
            actix_web::rt::time::interval_at(actix_web::rt::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            let now = kuntalaistili_schema::now_utc();
            let ca = state.settings.saml_metadata_ca.as_deref();
            match kuntalaistili_federation::saml::refresh(&state.db, None, "refresh", now, ca).await
            {
                Ok(report) => {
                    for (entity, why) in &report.failed {
                        tracing::warn!(%entity, reason = %why, "SAML metadata refresh failed; last good copy kept");
                    }
                    for entity in &report.refreshed {
                        state.saml.forget_sp(entity);
                    }
                    tracing::info!(
                        refreshed = report.refreshed.len(),
                        failed = report.failed.len(),
                        "SAML metadata refreshed"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "SAML metadata refresh could not run"),
            }
        }
    });
}
