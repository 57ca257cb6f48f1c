//! The customer register as SCIM 2.0 (RFC 7643 / 7644) at `/scim/v2`: Users (the register, with
//! a municipal extension, `users`) and Groups (the access-rights groups, `groups`), discovery
//! documents (`discovery`, `schemas`), filters, sorting, pagination, partial
//! representations and searches (`query`, `filter`), PATCH (`patch`), and ETags
//! (`meta.version`, `If-Match`, `If-None-Match`; `http`). Bearer tokens of this IdP with the
//! `scim` scope. Every write to one resource goes through `write`.

mod discovery;
pub mod filter;
mod groups;
mod http;
mod patch;
mod query;
mod schemas;
mod search;
mod users;

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::IdpState;

pub use http::{error, Refusal};
pub use users::user_doc;

pub const SCOPE: &str = "scim";
pub const BASE: &str = "/scim/v2";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const MUNICIPAL_SCHEMA: &str =
    "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User";
pub(crate) const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(crate) const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub(crate) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(crate) const MAX_BODY: usize = 64 * 1024;
pub(crate) const MAX_COUNT: usize = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use search::Scope;
    let not_allowed = || web::route().to(http::method_not_allowed);
    cfg.route(
        "/scim/v2/ServiceProviderConfig",
        web::get().to(discovery::service_provider_config),
    )
    .route("/scim/v2/ServiceProviderConfig", not_allowed())
    .route("/scim/v2/Schemas", web::get().to(discovery::schemas_list))
    .route("/scim/v2/Schemas", not_allowed())
    .route(
        "/scim/v2/Schemas/{id}",
        web::get().to(discovery::schema_get),
    )
    .route("/scim/v2/Schemas/{id}", not_allowed())
    .route(
        "/scim/v2/ResourceTypes",
        web::get().to(discovery::resource_types),
    )
    .route("/scim/v2/ResourceTypes", not_allowed())
    .route(
        "/scim/v2/ResourceTypes/{id}",
        web::get().to(discovery::resource_type_get),
    )
    .route("/scim/v2/ResourceTypes/{id}", not_allowed())
    .route(
        "/scim/v2/.search",
        web::post().to(|s, r, p| search::search(s, r, p, Scope::All)),
    )
    .route("/scim/v2/.search", not_allowed())
    .route(
        "/scim/v2/Users/.search",
        web::post().to(|s, r, p| search::search(s, r, p, Scope::Users)),
    )
    .route("/scim/v2/Users/.search", not_allowed())
    .route(
        "/scim/v2/Groups/.search",
        web::post().to(|s, r, p| search::search(s, r, p, Scope::Groups)),
    )
    .route("/scim/v2/Groups/.search", not_allowed())
    .route("/scim/v2/Users", web::get().to(users::users_list))
    .route("/scim/v2/Users", web::post().to(users::users_create))
    .route("/scim/v2/Users", not_allowed())
    .route("/scim/v2/Users/{id}", web::get().to(users::user_get))
    .route("/scim/v2/Users/{id}", web::put().to(users::user_put))
    .route("/scim/v2/Users/{id}", web::patch().to(users::user_patch))
    .route("/scim/v2/Users/{id}", web::delete().to(users::user_delete))
    .route("/scim/v2/Users/{id}", not_allowed())
    .route("/scim/v2/Groups", web::get().to(groups::groups_list))
    .route("/scim/v2/Groups", web::post().to(groups::groups_create))
    .route("/scim/v2/Groups", not_allowed())
    .route("/scim/v2/Groups/{id}", web::get().to(groups::group_get))
    .route("/scim/v2/Groups/{id}", web::put().to(groups::group_put))
    .route("/scim/v2/Groups/{id}", web::patch().to(groups::group_patch))
    .route(
        "/scim/v2/Groups/{id}",
        web::delete().to(groups::group_delete),
    )
    .route("/scim/v2/Groups/{id}", not_allowed())
    .route(
        "/scim/v2/{tail:.*}",
        web::route().to(http::no_such_endpoint),
    );
}

/// The resources a write may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
}

/// Every PUT, PATCH and DELETE of one resource: the caller's token (401/403), the resource as it
/// is now (404), its `If-Match` precondition (412), for users the rule that only residents are
/// provisioned over SCIM (403); then `act` with the caller, the current representation and the
/// `attributes` / `excludedAttributes` asked for the answer (400 if they are malformed).
async fn write<F, Fut>(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    kind: Kind,
    id: String,
    act: F,
) -> HttpResponse
where
    F: FnOnce(http::Provisioner, Value, query::Projection) -> Fut,
    Fut: Future<Output = HttpResponse>,
{
    let who = match http::authorize_client(state, req).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let p = match query::projection(req) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    let current = match kind {
        Kind::User => users::load_user(state, id).await,
        Kind::Group => groups::load_group(state, id).await,
    };
    let current = match current {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = http::precondition(req, &current) {
        return r.response();
    }
    if kind == Kind::User {
        if let Some(r) = users::managed_elsewhere(&current) {
            return r;
        }
    }
    act(who, current, p).await
}
