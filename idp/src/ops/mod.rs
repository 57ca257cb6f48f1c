//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the database answers),
//! `/metrics` (Prometheus text format).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::IdpState;

pub async fn ops_healthz_get() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub async fn ops_readyz_get(state: web::Data<IdpState>) -> HttpResponse {
    let st = state.clone();
    match web::block(move || st.db.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "unavailable", "reason": "database" }))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unavailable", "reason": "worker pool" })),
    }
}

pub async fn ops_metrics_get(state: web::Data<IdpState>) -> HttpResponse {
    let st = state.clone();
    let sessions = web::block(move || -> Option<i64> {
        let mut conn = st.db.conn().ok()?;
        kuntalaistili_schema::sessions::count_active(&mut conn, kuntalaistili_schema::now_utc())
            .ok()
    })
    .await
    .ok()
    .flatten();
    let (open, idle) = state.db.pool_state();
    let mut gauges = vec![
        (
            "kuntalaistili_db_pool_connections",
            "Open database connections in the pool.",
            f64::from(open),
        ),
        (
            "kuntalaistili_db_pool_idle_connections",
            "Idle database connections in the pool.",
            f64::from(idle),
        ),
        (
            "kuntalaistili_db_up",
            "1 when the database answered this scrape.",
            if sessions.is_some() { 1.0 } else { 0.0 },
        ),
    ];
    if let Some(n) = sessions {
        gauges.push((
            "kuntalaistili_sessions_active",
            "Live SSO sessions (all nodes).",
            n as f64,
        ));
    }
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(state.metrics.render(&gauges))
}
