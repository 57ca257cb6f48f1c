//! `POST /.search`, `/Users/.search` and `/Groups/.search` (RFC 7644 §3.4.3): a SearchRequest
//! over users, groups or both, answered as a list response.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::http::{authorize, body, scim_json, unavailable};
use super::query::parse_search;
use super::{groups, users};
use crate::IdpState;

/// Which resources a search covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    All,
    Users,
    Groups,
}

/// `POST /.search`, `POST /Users/.search`, `POST /Groups/.search` (RFC 7644 §3.4.3).
pub(super) async fn search(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
    scope: Scope,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let doc = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let q = match parse_search(&doc) {
        Ok(q) => q,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    let r = web::block(move || -> Result<Value, kuntalaistili_schema::DbError> {
        match scope {
            Scope::Users => users::users_page(&st, &q),
            Scope::Groups => Ok(q.page(groups::all_groups(&st)?)),
            Scope::All => {
                let mut docs = users::all_users(&st)?;
                docs.extend(groups::all_groups(&st)?);
                Ok(q.page(docs))
            }
        }
    })
    .await;
    match r {
        Ok(Ok(v)) => scim_json(StatusCode::OK, &v),
        _ => unavailable(),
    }
}
