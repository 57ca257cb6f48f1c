//! `/logout`: a confirmation page (GET) and the CSRF-protected logout (POST) that ends the session
//! server-side, clears the cookie and records the event.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::{audit, sessions as store, DbError};
use serde::Deserialize;

use super::{current, removal_cookie};
use crate::audit::{kind, Event};
use crate::csrf;
use crate::error::WebError;
use crate::i18n;
use crate::metrics::inc;
use crate::{client_ip, IdpState};

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

pub async fn session_logout_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let lang = i18n::negotiate(&req);
    let Some((_, user)) = current(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let ctx = state
        .templates
        .context(lang, "/logout", Some(&user.display_name()));
    Ok(state.form_page(&req, StatusCode::OK, "idp/logout.html", ctx))
}

pub async fn session_logout_post(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let secure = state.settings.secure_cookies;
    if !csrf::verify(&req, &state.keys, secure, form.csrf.as_deref()) {
        return Err(WebError::Forbidden);
    }
    if let Some((session, user)) = current(&state, &req).await? {
        let ip = client_ip(&req, &state.settings);
        let st = state.clone();
        web::block(move || -> Result<(), WebError> {
            let mut conn = st.db.conn()?;
            let now = kuntalaistili_schema::now_utc();
            write_tx(&mut conn, |conn| -> Result<(), DbError> {
                store::delete_for_user(conn, &user.id, &session.id)?;
                audit::append_in_tx(
                    conn,
                    Event::success(kind::LOGOUT)
                        .actor(user.id.clone())
                        .subject(user.id.clone())
                        .ip(ip)
                        .details(serde_json::json!({ "session": session.id }))
                        .into_new(),
                    now,
                )?;
                Ok(())
            })?;
            Ok(())
        })
        .await??;
        inc(&state.metrics.logouts);
    }
    let mut resp = redirect("/login?logged_out=1");
    resp.add_cookie(&removal_cookie(secure))
        .map_err(|_| WebError::Internal)?;
    Ok(resp)
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
