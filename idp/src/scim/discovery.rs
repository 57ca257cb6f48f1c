//! The discovery endpoints (RFC 7644 §4): ServiceProviderConfig, Schemas and ResourceTypes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::http::{authorize, not_found, public_base, scim_json};
use super::query::list_response;
use super::schemas;
use crate::IdpState;

// ---------------------------------------------------------------- discovery

pub(super) async fn service_provider_config(
    state: web::Data<IdpState>,
    req: HttpRequest,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    scim_json(
        StatusCode::OK,
        &schemas::service_provider_config(&public_base(&state)),
    )
}

pub(super) async fn schemas_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let all = schemas::schemas(&public_base(&state));
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

pub(super) async fn schema_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    match schemas::schemas(&public_base(&state))
        .into_iter()
        .find(|s| s["id"] == id.as_str())
    {
        Some(s) => scim_json(StatusCode::OK, &s),
        None => not_found("schema"),
    }
}

pub(super) async fn resource_types(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let all = schemas::resource_types(&public_base(&state));
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

pub(super) async fn resource_type_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    match schemas::resource_types(&public_base(&state))
        .into_iter()
        .find(|s| s["id"] == id.as_str())
    {
        Some(s) => scim_json(StatusCode::OK, &s),
        None => not_found("resource type"),
    }
}
