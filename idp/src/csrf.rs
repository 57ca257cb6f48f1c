//! CSRF protection for every form: a random cookie and a form token that is the HMAC of the cookie
//! under a key derived from the master key (signed double submit). Works before login too, so the
//! login form itself is protected against login CSRF.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;

use crate::crypto::{ct_eq, random_token, MasterKeys};

/// The cookie's name: `__Host-` prefixed when cookies are Secure.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-kl_csrf"
    } else {
        "kl_csrf"
    }
}

/// The CSRF pair for one response.
#[derive(Debug, Clone)]
pub struct Csrf {
    cookie_value: String,
    /// Goes into every form as the hidden field `csrf`.
    pub token: String,
    fresh: bool,
}

impl Csrf {
    /// Reuses the browser's CSRF cookie or makes a new one.
    pub fn ensure(req: &HttpRequest, keys: &MasterKeys, secure: bool) -> Csrf {
        match req.cookie(cookie_name(secure)) {
            Some(c) if c.value().len() >= 32 && c.value().len() <= 64 => Csrf {
                token: keys.csrf_token(c.value()),
                cookie_value: c.value().to_owned(),
                fresh: false,
            },
            _ => {
                let v = random_token();
                Csrf {
                    token: keys.csrf_token(&v),
                    cookie_value: v,
                    fresh: true,
                }
            }
        }
    }

    /// The cookie to set, when it is new.
    pub fn cookie(&self, secure: bool) -> Option<Cookie<'static>> {
        self.fresh.then(|| {
            Cookie::build(cookie_name(secure), self.cookie_value.clone())
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Lax)
                .finish()
        })
    }

    pub fn cookies(&self, secure: bool) -> Vec<Cookie<'static>> {
        self.cookie(secure).into_iter().collect()
    }
}

/// True when the submitted token belongs to the request's CSRF cookie.
pub fn verify(req: &HttpRequest, keys: &MasterKeys, secure: bool, submitted: Option<&str>) -> bool {
    let (Some(cookie), Some(token)) = (req.cookie(cookie_name(secure)), submitted) else {
        return false;
    };
    ct_eq(&keys.csrf_token(cookie.value()), token)
}
