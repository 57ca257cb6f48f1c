//! Administration pages (`/admin/…`), for users with the admin role. So far: statistics.

pub mod stats;

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
