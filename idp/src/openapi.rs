//! The OpenAPI 3 description of the REST API (`GET /api/v1/openapi.json`), generated from the
//! handlers' own annotations (utoipa), so it cannot drift from the routes it describes. The
//! protocol endpoints (OIDC, SCIM) have their own discovery documents and are not repeated here.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kuntalaistili REST API",
        description = "Administration, access rights, customer register, messages and audit. \
            Bearer access tokens of this identity provider (client credentials) with the scope \
            each operation names; errors are RFC 7807 problem JSON.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    paths(
        crate::rest::users::users_list,
        crate::rest::users::users_create,
        crate::rest::users::user_get,
        crate::rest::users::user_disable,
        crate::rest::users::user_delete,
        crate::rest::clients::clients_list,
        crate::rest::clients::clients_create,
        crate::rest::clients::client_get,
        crate::rest::clients::client_rotate,
        crate::rest::clients::client_patch,
        crate::rest::clients::client_delete,
        crate::admin::sps::api_sps_list,
        crate::admin::sps::api_sps_create,
        crate::admin::sps::api_sp_get,
        crate::admin::sps::api_sp_patch,
        crate::admin::sps::api_sp_delete,
        crate::authz::api::check_post,
        crate::authz::api::roles_get,
        crate::authz::api::role_put,
        crate::authz::api::role_delete,
        crate::authz::api::groups_get,
        crate::authz::api::group_put,
        crate::authz::api::group_delete,
        crate::authz::api::member_put,
        crate::authz::api::member_delete,
        crate::authz::api::grants_get,
        crate::authz::api::grants_post,
        crate::authz::api::grant_delete,
        crate::authz::api::person_get,
        crate::api::residents_get,
        crate::api::residents_lookup_post,
        crate::api::audit_events_post,
        crate::messages::messages_post,
        crate::messages::messages_get,
    ),
    modifiers(&Bearer),
    tags(
        (name = "register", description = "People in the customer register"),
        (name = "clients", description = "Relying parties (OIDC clients)"),
        (name = "saml", description = "Relying parties (SAML service providers)"),
        (name = "authz", description = "Roles, groups, grants and access checks"),
        (name = "messages", description = "Messages to residents"),
        (name = "audit", description = "The tamper-evident audit log"),
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from /oauth2/token (client_credentials); the scopes \
                         listed on each operation are required",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json` (public: it describes, it does not grant).
pub async fn openapi_get() -> HttpResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(doc.clone())
}
