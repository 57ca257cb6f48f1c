//! The Kuntalaistili identity provider as actix-web handlers: password login, SSO sessions, the
//! resident's account page, the customer register's operations, the audit API and the operations
//! endpoints. Protocol areas (OIDC, SAML, admin, SCIM, authz) join as folders of their own.
//!
//! Handlers parse, call and render; storage goes through `kuntalaistili-schema`. This crate never
//! reads another component's tables.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin;
pub mod api;
pub mod audit;
pub mod authz;
pub mod carry;
pub mod csrf;
pub mod customers;
pub mod error;
pub mod messages;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod ops;
pub mod password;
pub mod render;
pub mod rest;
pub mod saml;
pub mod scim;
pub mod session;
pub mod settings;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::Db;

pub use kuntalaistili_connectors::i18n;
pub use kuntalaistili_metadata::crypto;
pub use settings::{IdpSettings, SessionSettings, ThrottleSettings};

/// Route paths (part of the public contract).
pub mod paths {
    pub const LOGIN: &str = "/login";
    pub const LOGOUT: &str = "/logout";
    pub const ACCOUNT: &str = "/account";
    pub const ACCOUNT_END_SESSION: &str = "/account/sessions/{id}/end";
    pub const ACCOUNT_END_ALL: &str = "/account/sessions/end-all";
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
    pub const METRICS: &str = "/metrics";
    pub const STYLESHEET: &str = "/static/style.css";
    pub const JWKS: &str = "/oauth2/jwks";
    pub const TOKEN: &str = "/oauth2/token";
    pub const INTROSPECT: &str = "/oauth2/introspect";
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZE: &str = "/oauth2/authorize";
    pub const AUTHORIZE_RESUME: &str = "/oauth2/authorize/resume";
    pub const CONSENT: &str = "/consent";
    pub const ACCOUNT_WITHDRAW_CONSENT: &str = "/account/consents/{client_id}/withdraw";
    pub const ACCOUNT_PREFERENCES: &str = "/account/preferences";
    pub const ACCOUNT_EXPORT: &str = "/account/export";
    pub const ACCOUNT_ERASE: &str = "/account/erase";
    pub const PAR: &str = "/oauth2/par";
    pub const USERINFO: &str = "/oauth2/userinfo";
    pub const REVOKE: &str = "/oauth2/revoke";
    pub const END_SESSION: &str = "/oauth2/logout";
    pub const REGISTER: &str = "/oauth2/register";
    pub const REGISTER_CLIENT: &str = "/oauth2/register/{client_id}";
    pub const MESSAGES: &str = "/api/v1/messages";
    pub const MESSAGE: &str = "/api/v1/messages/{id}";
    pub const RESIDENT: &str = "/api/v1/residents/{sub}";
    pub const RESIDENT_LOOKUP: &str = "/api/v1/residents/lookup";
    pub const AUDIT_EVENTS: &str = "/api/v1/audit/events";
    pub const ADMIN_STATISTICS: &str = "/admin/statistics";
}

/// Largest form body the IdP accepts.
pub const FORM_LIMIT_BYTES: usize = 16 * 1024;

/// Shared state of the IdP (application data).
pub struct IdpState {
    pub db: Db,
    pub settings: IdpSettings,
    pub keys: Arc<crypto::MasterKeys>,
    pub hasher: Arc<password::PasswordHasher>,
    /// Where request-time password hashing runs.
    pub hash_pool: password::HashPool,
    pub templates: Arc<render::Templates>,
    pub metrics: Arc<metrics::Metrics>,
    /// In-memory copies of clients and signing keys for the token endpoint.
    pub oidc_cache: oidc::cache::Caches,
    /// Outgoing HTTP (back-channel logout), with short timeouts and no redirects.
    pub http: reqwest::Client,
    /// What addresses calls made for dynamically registered clients may reach.
    pub outbound: oidc::outbound::Policy,
    /// Outgoing HTTP for dynamically registered clients: public addresses only, checked when
    /// the name is resolved for each call.
    pub http_guarded: reqwest::Client,
    /// Everyone's access rights, as of the database's generation.
    pub authz: Arc<authz::Index>,
    /// In-memory copies of SAML SPs, the SAML signing key and the IdP metadata.
    pub saml: saml::Cache,
    /// The protocols told when a session ends (OIDC back-channel, SAML front-channel).
    pub logout: session::logout::LogoutParties,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("{0}")]
    Templates(String),
    #[error("starting the password hashing threads: {0}")]
    Threads(#[from] std::io::Error),
    #[error("building the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl IdpState {
    /// Builds the state; fails on bad Argon2 parameters or a broken template.
    pub fn new(
        db: Db,
        settings: IdpSettings,
        keys: crypto::MasterKeys,
    ) -> Result<IdpState, StartError> {
        let hasher = Arc::new(password::PasswordHasher::new(settings.password)?);
        let threads = match settings.password.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // Development: the public URL is plain http (cookies cannot be Secure).
        let outbound = oidc::outbound::Policy {
            development: !settings.public_url.starts_with("https://"),
        };
        Ok(IdpState {
            outbound,
            http_guarded: outbound.client()?,
            db,
            hash_pool: password::HashPool::new(hasher.clone(), threads)?,
            hasher,
            settings,
            keys: Arc::new(keys),
            templates: Arc::new(render::Templates::load().map_err(StartError::Templates)?),
            metrics: Arc::new(metrics::Metrics::default()),
            oidc_cache: oidc::cache::Caches::default(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            authz: Arc::new(authz::Index::default()),
            saml: saml::Cache::default(),
            logout: session::logout::LogoutParties::default()
                .with(oidc::logout::BackChannelLogout)
                .with(saml::SingleLogout),
        })
    }
}

impl IdpState {
    /// Renders a page that holds forms: puts the CSRF token into `ctx` and sets the CSRF cookie
    /// when the browser has none yet.
    pub fn form_page(
        &self,
        req: &HttpRequest,
        status: actix_web::http::StatusCode,
        template: &str,
        mut ctx: tera::Context,
    ) -> HttpResponse {
        let secure = self.settings.secure_cookies;
        let csrf = csrf::Csrf::ensure(req, &self.keys, secure);
        ctx.insert("csrf", &csrf.token);
        render::html(
            &self.templates,
            req,
            status,
            template,
            &ctx,
            csrf.cookies(secure),
        )
    }
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop when configured to trust
/// a reverse proxy.
pub fn client_ip(req: &HttpRequest, settings: &IdpSettings) -> Option<String> {
    if settings.trust_forwarded_for {
        if let Some(ip) = req.connection_info().realip_remote_addr() {
            return Some(ip.to_owned());
        }
    }
    req.peer_addr().map(|a| a.ip().to_string())
}

async fn stylesheet_get() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(render::STYLESHEET)
}

/// Mounts every IdP route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use session::{account, login, logout};
    cfg.app_data(
        web::FormConfig::default()
            .limit(FORM_LIMIT_BYTES)
            .error_handler(error::form_error),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|_, _| error::WebError::BadRequest("error.bad_request").into()),
    )
    .app_data(web::PathConfig::default().error_handler(|_, _| error::WebError::NotFound.into()))
    .route(paths::LOGIN, web::get().to(login::session_login_get))
    .route(paths::LOGIN, web::post().to(login::session_login_post))
    .route(paths::LOGOUT, web::get().to(logout::session_logout_get))
    .route(paths::LOGOUT, web::post().to(logout::session_logout_post))
    .route(paths::ACCOUNT, web::get().to(account::session_account_get))
    .route(
        paths::ACCOUNT_EXPORT,
        web::get().to(account::session_account_export_get),
    )
    .route(
        paths::ACCOUNT_ERASE,
        web::post().to(account::session_account_erase_post),
    )
    .route(
        paths::ACCOUNT_END_SESSION,
        web::post().to(account::session_account_end_post),
    )
    .route(
        paths::ACCOUNT_END_ALL,
        web::post().to(account::session_account_end_all_post),
    )
    .route(
        paths::ACCOUNT_PREFERENCES,
        web::post().to(account::session_account_preferences_post),
    )
    .route(
        paths::ACCOUNT_WITHDRAW_CONSENT,
        web::post().to(account::session_account_withdraw_consent_post),
    )
    .route(paths::HEALTHZ, web::get().to(ops::ops_healthz_get))
    .route(paths::READYZ, web::get().to(ops::ops_readyz_get))
    .route(paths::METRICS, web::get().to(ops::ops_metrics_get))
    .route(paths::STYLESHEET, web::get().to(stylesheet_get))
    .route(paths::JWKS, web::get().to(oidc::jwks::oidc_jwks_get))
    .service(
        web::resource(paths::TOKEN)
            .app_data(oidc::error::form_config())
            .route(web::post().to(oidc::token::oidc_token_post)),
    )
    .service(
        web::resource(paths::INTROSPECT)
            .app_data(oidc::error::form_config())
            .route(web::post().to(oidc::introspect::oidc_introspect_post)),
    )
    .service(
        web::resource(paths::REVOKE)
            .app_data(oidc::error::form_config())
            .route(web::post().to(oidc::revoke::oidc_revoke_post)),
    )
    .route(
        paths::DISCOVERY,
        web::get().to(oidc::discovery::oidc_discovery_get),
    )
    .route(
        paths::AUTHORIZE,
        web::get().to(oidc::authorize::oidc_authorize_get),
    )
    .route(
        paths::AUTHORIZE,
        web::post().to(oidc::authorize::oidc_authorize_post),
    )
    .route(
        paths::AUTHORIZE_RESUME,
        web::get().to(oidc::authorize::oidc_authorize_resume_get),
    )
    .route(
        paths::CONSENT,
        web::post().to(oidc::authorize::oidc_consent_post),
    )
    .service(
        web::resource(paths::PAR)
            .app_data(web::PayloadConfig::new(FORM_LIMIT_BYTES))
            .route(web::post().to(oidc::par::oidc_par_post)),
    )
    .route(
        paths::USERINFO,
        web::get().to(oidc::userinfo::oidc_userinfo),
    )
    .route(
        paths::USERINFO,
        web::post().to(oidc::userinfo::oidc_userinfo),
    )
    .route(
        paths::END_SESSION,
        web::get().to(oidc::logout::oidc_end_session_get),
    )
    .route(
        paths::END_SESSION,
        web::post().to(oidc::logout::oidc_end_session_post),
    )
    .route(paths::MESSAGES, web::post().to(messages::messages_post))
    .route(paths::MESSAGE, web::get().to(messages::messages_get))
    .route(
        paths::RESIDENT_LOOKUP,
        web::post().to(api::residents_lookup_post),
    )
    .route(paths::RESIDENT, web::get().to(api::residents_get))
    .route(paths::AUDIT_EVENTS, web::post().to(api::audit_events_post))
    .configure(admin::sps::configure)
    .configure(saml::configure)
    .configure(authz::api::configure)
    .configure(scim::configure)
    .configure(rest::configure)
    .route("/api/v1/openapi.json", web::get().to(openapi::openapi_get))
    .configure(admin::configure)
    .route(
        paths::ADMIN_STATISTICS,
        web::get().to(admin::stats::admin_statistics_get),
    )
    .service(
        web::resource(paths::REGISTER)
            .app_data(web::PayloadConfig::new(FORM_LIMIT_BYTES))
            .route(web::post().to(oidc::register::oidc_register_post)),
    )
    .service(
        web::resource(paths::REGISTER_CLIENT)
            .app_data(web::PayloadConfig::new(FORM_LIMIT_BYTES))
            .route(web::get().to(oidc::register::oidc_register_read))
            .route(web::put().to(oidc::register::oidc_register_update))
            .route(web::delete().to(oidc::register::oidc_register_delete)),
    );
}

/// The Content-Security-Policy of every page: nothing loaded from elsewhere, no script.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of pages whose forms end in a redirect to a relying party (login, consent):
/// browsers apply `form-action` to every hop of the redirect chain after a form is sent, so it
/// cannot be `'self'` there; everything else stays.
pub const CSP_LEAVING_FORMS: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Gives a page the [`CSP_LEAVING_FORMS`] policy.
pub fn forms_may_leave(mut resp: HttpResponse) -> HttpResponse {
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP_LEAVING_FORMS),
    );
    resp
}

/// Security headers for every response. Pages load nothing from elsewhere and run no script.
pub fn security_headers(secure: bool) -> actix_web::middleware::DefaultHeaders {
    let mut h = actix_web::middleware::DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CSP))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"));
    if secure {
        h = h.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ));
    }
    h
}

/// The error-page middleware for every client and server error status.
pub fn error_pages<B: actix_web::body::MessageBody + 'static>(
) -> actix_web::middleware::ErrorHandlers<B> {
    actix_web::middleware::ErrorHandlers::new().default_handler(error::render_error_page)
}
