//! Administration pages (`/admin/…`), for users with the admin role: people (search, view,
//! disable, reset password, end sessions, grant and revoke rights), relying parties (register,
//! rotate secrets, remove), SAML SPs (with their REST API, [`sps`]), roles, the audit log
//! browser, statistics. Server-rendered, fi/sv/en, every form CSRF-protected, every change
//! audited with the administrator as actor.

pub mod clients;
pub mod log;
pub mod roles;
pub mod sps;
pub mod stats;
pub mod users;

use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::users::User;

use crate::error::WebError;
use crate::session::current;
use crate::IdpState;

/// The logged-in administrator, a redirect to the login page, or 403 for everyone else.
pub async fn require_admin(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
) -> Result<Result<User, HttpResponse>, WebError> {
    match current(state, req).await? {
        None => Ok(Err(crate::session::logout::redirect(&format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(req.path().as_bytes()).collect::<String>()
        )))),
        Some((_, user)) if user.role == "admin" => Ok(Ok(user)),
        Some(_) => Err(WebError::Forbidden),
    }
}

/// Routes of the administration pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/admin",
        web::get().to(|| async { crate::session::logout::redirect("/admin/users") }),
    )
    .route("/admin/users", web::get().to(users::list))
    .route("/admin/users/{id}", web::get().to(users::show))
    .route("/admin/users/{id}/{action}", web::post().to(users::action))
    .route(
        "/admin/grants/{id}/revoke",
        web::post().to(users::revoke_grant),
    )
    .route("/admin/clients", web::get().to(clients::list))
    .route("/admin/clients", web::post().to(clients::create))
    .route("/admin/clients/{id}/edit", web::post().to(clients::edit))
    .route(
        "/admin/clients/{id}/{action}",
        web::post().to(clients::action),
    )
    .route("/admin/roles", web::get().to(roles::list))
    .route("/admin/roles", web::post().to(roles::save))
    .route("/admin/roles/{name}/remove", web::post().to(roles::remove))
    .route("/admin/groups", web::post().to(roles::save_group))
    .route(
        "/admin/groups/{name}/{action}",
        web::post().to(roles::group_action),
    )
    .route("/admin/audit", web::get().to(log::browse));
}

/// The administrator after a CSRF check of a submitted form.
pub async fn require_admin_form(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    csrf: Option<&str>,
) -> Result<Result<User, HttpResponse>, WebError> {
    if !crate::csrf::verify(req, &state.keys, state.settings.secure_cookies, csrf) {
        return Err(WebError::Forbidden);
    }
    require_admin(state, req).await
}

/// The common context of admin pages.
pub fn context(state: &IdpState, req: &HttpRequest, admin: &User) -> tera::Context {
    let lang = crate::i18n::negotiate(req);
    let mut ctx = state
        .templates
        .context(lang, req.path(), Some(&admin.display_name()));
    ctx.insert("section", req.path().split('/').nth(2).unwrap_or(""));
    ctx
}

/// A translated text of the admin pages.
pub fn text(state: &IdpState, req: &HttpRequest, key: &str) -> String {
    state.templates.tr.text(crate::i18n::negotiate(req), key)
}

/// A refused change of an admin form: the page says nothing was changed, with the text of
/// `key` and the reason (`detail`, when there is one).
pub fn refused(state: &IdpState, req: &HttpRequest, key: &str, detail: &str) -> HttpResponse {
    let lang = crate::i18n::negotiate(req);
    let mut ctx = state.templates.context(lang, req.path(), None);
    ctx.insert(
        "heading",
        &state.templates.tr.text(lang, "admin.refused_title"),
    );
    let msg = state.templates.tr.text(lang, key);
    ctx.insert(
        "message",
        &if detail.is_empty() {
            msg
        } else {
            format!("{msg} ({detail})")
        },
    );
    crate::render::html(
        &state.templates,
        req,
        actix_web::http::StatusCode::BAD_REQUEST,
        "idp/message.html",
        &ctx,
        vec![],
    )
}
