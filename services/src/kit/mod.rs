//! The service kit: what a built-in service needs to be an OpenID Connect relying party of the
//! IdP, built on the `openidconnect` crate as client — discovery (cached), the code flow with
//! PKCE and nonce, ID-token validation, the service's own server-side session and cookie, silent
//! SSO (`prompt=none`) so a resident already logged in at the IdP never types the password again,
//! RP-initiated and back-channel logout, bearer access-token validation for the service's JSON
//! APIs, the shared page layout (fi/sv/en) and CSRF tokens.
//!
//! A service talks to the IdP only over HTTP at its issuer URL, so it runs the same in the
//! all-in-one server and alone against another IdP.

pub mod render;
mod routes;
mod rp;

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::service_sessions::{self as store, ServiceSession};
use kuntalaistili_schema::{Db, DbError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use render::{Lang, Templates};
pub use rp::{Lookup, Rp, RpError};

/// One built-in service's identity towards the IdP.
#[derive(Debug, Clone)]
pub struct KitConfig {
    /// Short name: cookie names, stored rows, logs (`portal`, `noticeboard`).
    pub service: &'static str,
    /// Where the service is mounted (`""` for the front page, `/services/noticeboard`).
    pub base_path: &'static str,
    /// The IdP's issuer URL.
    pub issuer: String,
    /// This service's public base URL (scheme and host; the base path is added).
    pub public_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Cookies `Secure` and `__Host-` prefixed (https).
    pub secure_cookies: bool,
    /// Lifetime of the service's own session (the IdP's absolute limit).
    pub session_hours: i64,
    /// The service's session ends after this long unused (the IdP's idle limit).
    pub idle_minutes: i64,
    /// Ask for the `email` scope and keep the resident's address with the session.
    pub email: bool,
}

impl KitConfig {
    /// `path` under the service's base path.
    pub fn path(&self, path: &str) -> String {
        format!("{}{}", self.base_path, path)
    }

    /// Absolute URL of `path` under the service's base path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.public_url, self.base_path, path)
    }

    pub fn redirect_uri(&self) -> String {
        self.url(CALLBACK)
    }

    pub fn post_logout_uri(&self) -> String {
        self.url("/")
    }

    pub fn backchannel_uri(&self) -> String {
        self.url(BACKCHANNEL)
    }
}

/// How long a started login may take.
const PENDING_MINUTES: i64 = 30;

/// A login in progress, as carried in the browser's signed cookie.
#[derive(Debug, serde::Serialize, Deserialize)]
struct Pending {
    /// state
    s: String,
    /// nonce
    n: String,
    /// PKCE verifier
    v: String,
    /// where to return
    r: String,
    /// silent (prompt=none)
    q: bool,
    /// started at (Unix seconds)
    t: i64,
}

pub const LOGIN: &str = "/auth/login";
pub const CALLBACK: &str = "/auth/callback";
pub const LOGOUT: &str = "/auth/logout";
pub const BACKCHANNEL: &str = "/auth/backchannel-logout";

/// A service's kit: configuration, storage, the RP and the templates.
pub struct Kit {
    pub cfg: KitConfig,
    pub db: Db,
    pub rp: Rp,
    pub templates: Arc<Templates>,
}

/// The logged-in resident of a service request.
#[derive(Debug, Clone)]
pub struct Resident {
    pub sub: String,
    pub name: String,
    /// With [`KitConfig::email`]: the address userinfo gave at login.
    pub email: Option<String>,
    pub csrf: String,
    token_hash: String,
}

fn hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Constant-time string comparison.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The edge error of service pages and APIs.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("identity provider: {0}")]
    Idp(#[from] RpError),
    #[error("blocking pool")]
    Blocking,
    /// The IdP's session may have ended since it was last asked: a page load goes round the IdP
    /// silently (to this address) before it is served.
    #[error("the IdP session is checked again")]
    Recheck(String),
}

impl From<actix_web::error::BlockingError> for KitError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        KitError::Blocking
    }
}

impl actix_web::ResponseError for KitError {
    fn status_code(&self) -> StatusCode {
        match self {
            KitError::Recheck(_) => StatusCode::SEE_OTHER,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let KitError::Recheck(to) = self {
            return see_other(to);
        }
        tracing::error!(error = %self, "service error");
        // A bare 503: the error-page middleware renders it for people.
        HttpResponse::ServiceUnavailable().finish()
    }
}

impl Kit {
    pub fn new(cfg: KitConfig, db: Db, templates: Arc<Templates>) -> Result<Kit, RpError> {
        let rp = Rp::new(&cfg)?;
        Ok(Kit {
            cfg,
            db,
            rp,
            templates,
        })
    }

    fn cookie_name(&self) -> String {
        if self.cfg.secure_cookies {
            format!("__Host-kl_svc_{}", self.cfg.service)
        } else {
            format!("kl_svc_{}", self.cfg.service)
        }
    }

    /// Set when silent SSO found no IdP session, so the browser is not sent round again.
    fn anon_cookie_name(&self) -> String {
        format!("{}_anon", self.cookie_name())
    }

    fn cookie(&self, name: String, value: String) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.cfg.secure_cookies)
            .same_site(SameSite::Lax)
            .finish()
    }

    fn removal(&self, name: String) -> Cookie<'static> {
        let mut c = self.cookie(name, String::new());
        c.make_removal();
        c
    }

    /// The resident logged in to this service, if any. A session unused for longer than the
    /// idle limit has ended (as the IdP's has); a page load whose IdP session may have ended since
    /// the IdP last confirmed it goes round the IdP silently first ([`KitError::Recheck`]).
    pub async fn resident(&self, req: &HttpRequest) -> Result<Option<Resident>, KitError> {
        let Some(token) = self.session_token(req) else {
            return Ok(None);
        };
        let (db, service, h) = (self.db.clone(), self.cfg.service, hash(&token));
        let limits = self.limits();
        let now = kuntalaistili_schema::now_utc();
        let found = web::block(move || -> Result<Option<ServiceSession>, DbError> {
            let mut conn = db.conn()?;
            let Some(s) = store::find(&mut conn, service, &h, now)? else {
                return Ok(None);
            };
            let unused = now - s.seen();
            if unused > limits.idle {
                store::delete(&mut conn, &h)?;
                return Ok(None);
            }
            if unused > limits.touch_after {
                store::touch(&mut conn, &h, now)?;
            }
            Ok(Some(s))
        })
        .await??;
        let Some(s) = found else { return Ok(None) };
        let unconfirmed = now - s.idp_checked();
        // Past the IdP's own idle limit since it last confirmed its session, that session may be
        // gone (idled out, ended where no logout token reached us): a form post or a script's
        // request is not served on the strength of it; a page load asks the IdP first.
        if unconfirmed > limits.idle && !is_page_load(req) {
            return Ok(None);
        }
        if unconfirmed > limits.recheck_after && is_page_load(req) {
            let back = req
                .uri()
                .path_and_query()
                .map_or(req.path(), |p| p.as_str());
            return Err(KitError::Recheck(format!(
                "{}?silent=1&recheck=1&return_to={}",
                self.cfg.path(LOGIN),
                enc(&self.safe_return(Some(back)))
            )));
        }
        Ok(Some(Resident {
            sub: s.sub,
            name: s.name,
            email: s.email,
            csrf: s.csrf,
            token_hash: s.token_hash,
        }))
    }

    /// The session limits that follow from the configuration.
    fn limits(&self) -> Limits {
        let idle = chrono::Duration::minutes(self.cfg.idle_minutes.max(1));
        Limits {
            idle,
            // Written at most this often (each write is a database round).
            touch_after: (idle / 4).min(chrono::Duration::seconds(60)),
            // Asked well before the IdP's own idle limit, so that a resident busy in a service
            // keeps the IdP session alive and one idle at the IdP is noticed.
            recheck_after: idle / 2,
        }
    }

    /// The session token this browser's cookie carries, when it has a plausible one.
    fn session_token(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(&self.cookie_name())
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 128)
    }

    /// Ends this browser's session of the service, if it has one (the cookie is the caller's).
    async fn end_local(&self, req: &HttpRequest) -> Result<(), KitError> {
        let Some(token) = self.session_token(req) else {
            return Ok(());
        };
        let (db, h) = (self.db.clone(), hash(&token));
        web::block(move || store::delete(&mut *db.conn()?, &h)).await??;
        Ok(())
    }

    /// Whether silent SSO may be tried for this browser (not tried and failed already).
    pub fn may_try_silent(&self, req: &HttpRequest) -> bool {
        req.cookie(&self.anon_cookie_name()).is_none()
    }

    /// The resident, or a redirect into the login (silent first, when not tried yet).
    pub async fn require(
        &self,
        req: &HttpRequest,
        return_to: &str,
    ) -> Result<Result<Resident, HttpResponse>, KitError> {
        if let Some(r) = self.resident(req).await? {
            return Ok(Ok(r));
        }
        // Silently first (a resident logged in at the IdP gets straight in), then the login page.
        let silent = if self.may_try_silent(req) {
            "silent=1&"
        } else {
            ""
        };
        Ok(Err(see_other(&format!(
            "{}?{silent}return_to={}",
            self.cfg.path(LOGIN),
            enc(return_to)
        ))))
    }

    /// The cookie that carries a pending login in the browser that started it.
    fn login_cookie_name(&self) -> String {
        format!("{}_login", self.cookie_name())
    }

    /// The key that signs pending-login cookies (derived from the client secret, so every node
    /// of the service computes it).
    fn login_key(&self) -> [u8; 32] {
        Sha256::digest(format!(
            "kuntalaistili-kit-login/v1:{}",
            self.cfg.client_secret
        ))
        .into()
    }

    fn sign(&self, payload: &str) -> String {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = match <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.login_key()) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(payload.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Starts the code flow. The pending login (state, nonce, PKCE verifier, where to return)
    /// travels in a signed, HttpOnly cookie: it binds the callback to this browser (no login
    /// CSRF) and stores nothing for anonymous visitors.
    async fn start_login(&self, return_to: String, silent: bool) -> Result<HttpResponse, KitError> {
        use base64::Engine;
        let started = self.rp.authorize_url(silent).await?;
        let pending = Pending {
            s: started.state,
            n: started.nonce,
            v: started.pkce_verifier,
            r: return_to,
            q: silent,
            t: chrono::Utc::now().timestamp(),
        };
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&pending).map_err(|_| KitError::Blocking)?);
        let value = format!("{payload}.{}", self.sign(&payload));
        let mut cookie = self.cookie(self.login_cookie_name(), value);
        cookie.set_max_age(actix_web::cookie::time::Duration::minutes(PENDING_MINUTES));
        let mut resp = see_other(started.url.as_str());
        resp.add_cookie(&cookie).map_err(|_| KitError::Blocking)?;
        Ok(resp)
    }

    /// The pending login of this browser, when its cookie is ours, fresh, and names `state`.
    fn pending(&self, req: &HttpRequest, state: &str) -> Option<Pending> {
        use base64::Engine;
        let value = req.cookie(&self.login_cookie_name())?.value().to_owned();
        let (payload, mac) = value.split_once('.')?;
        if !ct_eq(&self.sign(payload), mac) {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let p: Pending = serde_json::from_slice(&raw).ok()?;
        let age = chrono::Utc::now().timestamp() - p.t;
        ((0..PENDING_MINUTES * 60).contains(&age) && ct_eq(&p.s, state)).then_some(p)
    }

    /// A local return path for after login (never another site).
    fn safe_return(&self, r: Option<&str>) -> String {
        match r {
            Some(p) if is_local_path(p) => p.to_owned(),
            _ => self.cfg.path("/"),
        }
    }

    /// Where a form asks to go back to after its action: the service's default `fallback` when
    /// it names none, the path when it is a local path under this service's base path, and
    /// `None` (refuse the form before acting) otherwise.
    pub fn form_return(&self, back: Option<&str>, fallback: String) -> Option<String> {
        match back {
            None | Some("") => Some(fallback),
            Some(p) if is_local_path(p) && p.starts_with(self.cfg.base_path) => Some(p.to_owned()),
            Some(_) => None,
        }
    }

    /// A page in the service layout.
    pub fn page(
        &self,
        req: &HttpRequest,
        status: StatusCode,
        template: &str,
        resident: Option<&Resident>,
        mut ctx: tera::Context,
    ) -> HttpResponse {
        let lang = render::negotiate(req);
        ctx.extend(self.templates.context(lang, req.path(), resident));
        ctx.insert("logout_action", &self.cfg.path(LOGOUT));
        ctx.insert("login_href", &self.cfg.path(LOGIN));
        self.templates.html(req, status, template, &ctx)
    }

    /// Checks a form's CSRF token against the resident's session.
    pub fn csrf_ok(resident: &Resident, token: Option<&str>) -> bool {
        token.is_some_and(|t| ct_eq(t, &resident.csrf))
    }
}

/// A path on this site: absolute, not protocol-relative, no backslashes or control characters
/// (no header injection in `Location`), of bounded length.
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.chars().any(char::is_control)
        && p.len() <= 1024
}

/// The time limits of a service session.
struct Limits {
    idle: chrono::Duration,
    touch_after: chrono::Duration,
    recheck_after: chrono::Duration,
}

/// A browser loading a page (not a script's request, a form post or a feed).
fn is_page_load(req: &HttpRequest) -> bool {
    use actix_web::http::Method;
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

pub use kuntalaistili_connectors::http::{problem, read_limited};

pub use routes::configure;
