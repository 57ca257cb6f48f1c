//! SSO sessions: the session cookie, finding the current session, and the resident-facing pages
//! (login, logout, account with its session list).

pub mod account;
pub mod login;
pub mod logout;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest};
use chrono::{Duration, NaiveDateTime};
use kuntalaistili_schema::sessions::{self as store, Session};
use kuntalaistili_schema::users::User;

use crate::crypto::sha256_hex;
use crate::error::WebError;
use crate::IdpState;

/// The session cookie's name. `__Host-` needs `Secure`, so plain-http development falls back to
/// an unprefixed name (still HttpOnly, SameSite=Lax, Path=/, host-only).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-kl_session"
    } else {
        "kl_session"
    }
}

pub fn session_cookie(secure: bool, token: &str) -> Cookie<'static> {
    Cookie::build(cookie_name(secure), token.to_owned())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .finish()
}

pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut c = session_cookie(secure, "");
    c.make_removal();
    c
}

/// The hash of the session token the browser sent, if any.
pub fn token_hash(req: &HttpRequest, secure: bool) -> Option<String> {
    req.cookie(cookie_name(secure))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(|v| sha256_hex(&v))
}

/// When a session last seen at `last_seen` and created at `created` expires.
pub fn expiry(state: &IdpState, created: NaiveDateTime, now: NaiveDateTime) -> NaiveDateTime {
    let idle = now + Duration::minutes(state.settings.session.idle_timeout_minutes);
    let absolute = created + Duration::hours(state.settings.session.absolute_timeout_hours);
    idle.min(absolute)
}

/// The logged-in session and user of this request. Slides the idle expiry forward at most once a
/// minute, so browsing is not a stream of writes.
pub async fn current(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, WebError> {
    let Some(hash) = token_hash(req, state.settings.secure_cookies) else {
        return Ok(None);
    };
    let st = state.clone();
    let found = web::block(move || -> Result<_, WebError> {
        let now = kuntalaistili_schema::now_utc();
        let mut conn = st.db.conn()?;
        let found = store::find_active(&mut conn, &hash, now)?;
        if let Some((s, _)) = &found {
            if now - s.last_seen_at > Duration::minutes(1) {
                store::touch(&mut conn, &s.id, now, expiry(&st, s.created_at, now))?;
            }
        }
        Ok(found)
    })
    .await??;
    Ok(found)
}

/// A relative redirect target from a `next` parameter; anything else (absolute URLs,
/// protocol-relative `//host`, backslashes) falls back to the account page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 2048 =>
        {
            n.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_must_be_local() {
        assert_eq!(safe_next(Some("/account?x=1")), "/account?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/account");
        assert_eq!(safe_next(Some("https://evil.example/")), "/account");
        assert_eq!(safe_next(Some("/\\evil.example")), "/account");
        assert_eq!(safe_next(None), "/account");
    }
}
