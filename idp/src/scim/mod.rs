//! The customer register as SCIM 2.0 (RFC 7643 / 7644) at `/scim/v2`: Users (the register, with
//! a municipal extension) and Groups (the access-rights groups), discovery documents, filters,
//! pagination, PATCH, and ETags (`meta.version`, `If-Match`, `If-None-Match`). Bearer tokens of
//! this IdP with the `scim` scope. Deleting a user is the register's soft delete: the account
//! closes at once and the data is erased after the retention period.

pub mod filter;
mod patch;
mod schemas;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use kuntalaistili_schema::{authz as groups_store, iso_utc, users, DbError};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::customers::{self, CustomerError, NewPerson};
use crate::IdpState;

pub const SCOPE: &str = "scim";
pub const BASE: &str = "/scim/v2";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const MUNICIPAL_SCHEMA: &str =
    "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const MAX_BODY: usize = 64 * 1024;
const MAX_COUNT: usize = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/scim/v2/ServiceProviderConfig",
        web::get().to(service_provider_config),
    )
    .route("/scim/v2/Schemas", web::get().to(schemas_list))
    .route("/scim/v2/Schemas/{id}", web::get().to(schema_get))
    .route("/scim/v2/ResourceTypes", web::get().to(resource_types))
    .route(
        "/scim/v2/ResourceTypes/{id}",
        web::get().to(resource_type_get),
    )
    .route("/scim/v2/Users", web::get().to(users_list))
    .route("/scim/v2/Users", web::post().to(users_create))
    .route("/scim/v2/Users/{id}", web::get().to(user_get))
    .route("/scim/v2/Users/{id}", web::put().to(user_put))
    .route("/scim/v2/Users/{id}", web::patch().to(user_patch))
    .route("/scim/v2/Users/{id}", web::delete().to(user_delete))
    .route("/scim/v2/Groups", web::get().to(groups_list))
    .route("/scim/v2/Groups", web::post().to(groups_create))
    .route("/scim/v2/Groups/{id}", web::get().to(group_get))
    .route("/scim/v2/Groups/{id}", web::put().to(group_put))
    .route("/scim/v2/Groups/{id}", web::patch().to(group_patch))
    .route("/scim/v2/Groups/{id}", web::delete().to(group_delete));
}

/// A refused request, answered with [`error`] at the edge.
#[derive(Debug)]
pub struct Refusal(StatusCode, Option<&'static str>, String);

impl Refusal {
    fn bad(scim_type: &'static str, detail: &str) -> Refusal {
        Refusal(StatusCode::BAD_REQUEST, Some(scim_type), detail.to_owned())
    }

    fn response(&self) -> HttpResponse {
        error(self.0, self.1, &self.2)
    }
}

/// A SCIM error answer (RFC 7644 §3.12).
pub fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> HttpResponse {
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    HttpResponse::build(status)
        .content_type("application/scim+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

fn scim_json(status: StatusCode, v: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/scim+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(v.to_string())
}

/// A single resource with its ETag and Location.
fn resource(status: StatusCode, v: &Value) -> HttpResponse {
    let mut r = scim_json(status, v);
    if let Some(tag) = v["meta"]["version"].as_str() {
        if let Ok(h) = header::HeaderValue::from_str(tag) {
            r.headers_mut().insert(header::ETAG, h);
        }
    }
    if let Some(loc) = v["meta"]["location"].as_str() {
        if let Ok(h) = header::HeaderValue::from_str(loc) {
            r.headers_mut().insert(header::LOCATION, h);
        }
    }
    r
}

async fn authorize(state: &web::Data<IdpState>, req: &HttpRequest) -> Result<String, HttpResponse> {
    authorize_client(state, req).await.map(|c| c.actor)
}

/// The provisioning client: its name in the audit log, and whether it may handle national ids.
struct Provisioner {
    actor: String,
    national_id: bool,
}

async fn authorize_client(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
) -> Result<Provisioner, HttpResponse> {
    match crate::api::caller(state, req, SCOPE).await {
        Ok(c) => Ok(Provisioner {
            actor: format!("client:{}", c.client_id),
            national_id: c.allow_national_id,
        }),
        Err(resp) => {
            let status = resp.status();
            let detail = match status {
                StatusCode::UNAUTHORIZED => "a valid bearer access token is required",
                StatusCode::FORBIDDEN => "the token lacks the scim scope",
                _ => "try again shortly",
            };
            let mut r = error(status, None, detail);
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            Err(r)
        }
    }
}

fn unavailable() -> HttpResponse {
    error(StatusCode::SERVICE_UNAVAILABLE, None, "try again shortly")
}

fn not_found(what: &str) -> HttpResponse {
    error(StatusCode::NOT_FOUND, None, &format!("{what} not found"))
}

async fn body(payload: web::Payload) -> Result<Value, HttpResponse> {
    let bytes = kuntalaistili_connectors::http::read_limited(payload, MAX_BODY)
        .await
        .map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                &format!("the body is larger than {MAX_BODY} bytes"),
            )
        })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            &format!("the body is not JSON: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "the body must be a JSON object",
        ));
    }
    Ok(v)
}

/// `W/"…"` from the resource's content (without `meta`): equal content, equal tag.
fn version(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        o.remove("meta");
    }
    let h = Sha256::digest(d.to_string().as_bytes());
    format!("W/\"{}\"", hex::encode(&h[..12]))
}

fn with_meta(
    mut doc: Value,
    kind: &str,
    location: String,
    created: NaiveDateTime,
    modified: NaiveDateTime,
) -> Value {
    let v = version(&doc);
    doc["meta"] = json!({
        "resourceType": kind,
        "created": iso_utc(created),
        "lastModified": iso_utc(modified),
        "location": location,
        "version": v,
    });
    doc
}

/// `If-Match` must name the current version (or `*`); `412` otherwise.
fn precondition(req: &HttpRequest, current: &Value) -> Result<(), Refusal> {
    let Some(want) = req.headers().get(header::IF_MATCH) else {
        return Ok(());
    };
    let want = want.to_str().unwrap_or_default();
    let have = current["meta"]["version"].as_str().unwrap_or_default();
    if want.trim() == "*" || want.split(',').any(|t| t.trim() == have) {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::PRECONDITION_FAILED,
            None,
            "the resource has changed (If-Match does not name its current version)".into(),
        ))
    }
}

fn public_base(state: &IdpState) -> String {
    format!("{}{BASE}", state.settings.public_url)
}

// ---------------------------------------------------------------- discovery

async fn service_provider_config(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    scim_json(
        StatusCode::OK,
        &schemas::service_provider_config(&public_base(&state)),
    )
}

async fn schemas_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let all = schemas::schemas(&public_base(&state));
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

async fn schema_get(
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

async fn resource_types(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let all = schemas::resource_types(&public_base(&state));
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

async fn resource_type_get(
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

fn list_response(total: usize, start: usize, items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
}

fn parse_list_query(req: &HttpRequest) -> Result<(Option<filter::Filter>, usize, usize), Refusal> {
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| Refusal::bad("invalidValue", &e.to_string()))?
        .into_inner();
    let f = match q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(filter::parse(f).map_err(|e| Refusal::bad("invalidFilter", &e.0))?),
        None => None,
    };
    // RFC 7644 §3.4.2.4: startIndex < 1 means 1; a negative count means 0.
    let start = q.start_index.unwrap_or(1).max(1) as usize;
    let count = q.count.unwrap_or(100).clamp(0, MAX_COUNT as i64) as usize;
    Ok((f, start, count))
}

fn page(docs: Vec<Value>, f: Option<&filter::Filter>, start: usize, count: usize) -> Value {
    let matching: Vec<Value> = docs
        .into_iter()
        .filter(|d| f.is_none_or(|f| filter::matches(f, d)))
        .collect();
    let total = matching.len();
    let items = matching.into_iter().skip(start - 1).take(count).collect();
    list_response(total, start, items)
}

// ---------------------------------------------------------------- users

/// A person as a SCIM User.
pub fn user_doc(state: &IdpState, u: &users::User) -> Value {
    let mut doc = json!({
        "schemas": [USER_SCHEMA, MUNICIPAL_SCHEMA],
        "id": u.id,
        "userName": u.username,
        "displayName": u.display_name(),
        "active": !u.disabled,
        "preferredLanguage": u.preferred_language,
    });
    let mut name = Map::new();
    if let Some(g) = &u.given_name {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(f) = &u.family_name {
        name.insert("familyName".into(), json!(f));
    }
    if !name.is_empty() {
        name.insert("formatted".into(), json!(u.display_name()));
        doc["name"] = Value::Object(name);
    }
    if let Some(e) = &u.email {
        doc["emails"] = json!([{ "value": e, "primary": true }]);
    }
    if let Some(p) = &u.phone {
        doc["phoneNumbers"] = json!([{ "value": p, "primary": true }]);
    }
    let mut addr = Map::new();
    for (k, v) in [
        ("streetAddress", &u.street_address),
        ("postalCode", &u.postal_code),
        ("locality", &u.locality),
        ("country", &u.country),
    ] {
        if let Some(v) = v {
            addr.insert(k.into(), json!(v));
        }
    }
    if !addr.is_empty() {
        addr.insert("primary".into(), json!(true));
        doc["addresses"] = json!([Value::Object(addr)]);
    }
    let mut ext = json!({
        "role": u.role,
        "messageChannels": u.message_channels.split_whitespace().collect::<Vec<_>>(),
        "hasNationalId": u.national_id_enc.is_some(),
    });
    if let Some(m) = &u.home_municipality {
        ext["homeMunicipality"] = json!(m);
    }
    doc[MUNICIPAL_SCHEMA] = ext;
    with_meta(
        doc,
        "User",
        format!("{}/Users/{}", public_base(state), u.id),
        u.created_at,
        u.updated_at,
    )
}

fn str_at<'a>(doc: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let mut v = doc;
    for k in keys {
        v = v.as_object().and_then(|o| {
            o.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        })?;
    }
    v.as_str()
}

/// The primary (or first) `value` of a multi-valued attribute.
fn primary_value(doc: &Value, attr: &str) -> Option<String> {
    let items = doc.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v)
    })?;
    let items = items.as_array()?;
    items
        .iter()
        .find(|i| i["primary"] == json!(true))
        .or_else(|| items.first())
        .and_then(|i| i["value"].as_str())
        .map(str::to_owned)
}

/// Reads a SCIM User into a register entry, and whether it is active (`None`: not said). The
/// role is not writable over SCIM (provisioning manages residents; administrators grant roles);
/// a national id only from clients allowed to handle them.
fn person_from(
    doc: &Value,
    national_id_allowed: bool,
) -> Result<(NewPerson, Option<bool>), Refusal> {
    let bad = |d: &str| Refusal::bad("invalidValue", d);
    let Some(user_name) = str_at(doc, &["userName"]) else {
        return Err(bad("userName is required"));
    };
    let active = match doc
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("active")))
        .map(|(_, v)| v)
    {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        // Some provisioning clients send booleans as strings.
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        Some(_) => return Err(bad("active must be a boolean")),
    };
    let ext = doc
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(MUNICIPAL_SCHEMA))
                .map(|(_, v)| v.clone())
        })
        .unwrap_or(Value::Null);
    let addr = doc
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("addresses")))
        .and_then(|(_, v)| v.as_array())
        .and_then(|a| a.iter().find(|i| i["primary"] == json!(true)).or(a.first()))
        .cloned()
        .unwrap_or(Value::Null);
    let channels = match ext.get("messageChannels") {
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    };
    Ok((
        NewPerson {
            username: user_name.to_owned(),
            password: str_at(doc, &["password"]).map(str::to_owned),
            role: String::new(),
            given_name: str_at(doc, &["name", "givenName"]).map(str::to_owned),
            family_name: str_at(doc, &["name", "familyName"]).map(str::to_owned),
            email: primary_value(doc, "emails"),
            phone: primary_value(doc, "phoneNumbers"),
            street_address: addr["streetAddress"].as_str().map(str::to_owned),
            postal_code: addr["postalCode"].as_str().map(str::to_owned),
            locality: addr["locality"].as_str().map(str::to_owned),
            country: addr["country"].as_str().map(str::to_owned),
            home_municipality: ext["homeMunicipality"].as_str().map(str::to_owned),
            preferred_language: str_at(doc, &["preferredLanguage"])
                .map(|l| l.split(['-', '_']).next().unwrap_or(l).to_ascii_lowercase()),
            national_id: match ext["nationalId"].as_str() {
                Some(_) if !national_id_allowed => {
                    return Err(Refusal(
                        StatusCode::FORBIDDEN,
                        None,
                        "this client may not handle national identification numbers".into(),
                    ))
                }
                n => n.map(str::to_owned),
            },
            message_channels: channels,
        },
        active,
    ))
}

fn customer_error(e: CustomerError) -> HttpResponse {
    match e {
        // Which identifier clashed is not told (it could be a national id).
        CustomerError::Db(DbError::Conflict(_)) => error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "the user clashes with an existing one (userName or another unique identifier)",
        ),
        CustomerError::Db(DbError::NotFound(_)) => not_found("user"),
        CustomerError::Db(e) => {
            tracing::error!(error = %e, "SCIM storage error");
            unavailable()
        }
        other => error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            &other.to_string(),
        ),
    }
}

/// The live (not erased, not erasure-requested) person with this id.
fn live_user(
    conn: &mut kuntalaistili_schema::AnyConnection,
    id: &str,
) -> Result<Option<users::User>, DbError> {
    Ok(users::find_by_id(conn, id)?.filter(|u| u.erasure_requested_at.is_none()))
}

async fn users_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let (f, start, count) = match parse_list_query(&req) {
        Ok(q) => q,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    let r = web::block(move || -> Result<Value, DbError> {
        let mut conn = st.db.conn()?;
        // The common questions go to the database: a page of everyone, and the provisioning
        // clients' `userName eq "…"` before they create someone. Other filters read the register.
        match &f {
            None => {
                let (rows, total) = users::page_live(&mut conn, start as i64 - 1, count as i64)?;
                let items = rows.iter().map(|u| user_doc(&st, u)).collect();
                return Ok(list_response(total as usize, start, items));
            }
            Some(filter::Filter::Compare(attr, filter::Op::Eq, Value::String(name)))
                if attr.eq_ignore_ascii_case("userName") =>
            {
                let found = customers::normalize_username(name)
                    .ok()
                    .map(|n| users::find_by_username(&mut conn, &n))
                    .transpose()?
                    .flatten()
                    .filter(|u| u.erasure_requested_at.is_none())
                    .map(|u| user_doc(&st, &u));
                let docs: Vec<Value> = found.into_iter().collect();
                return Ok(page(docs, None, start, count));
            }
            Some(_) => {}
        }
        let docs = users::list(&mut conn)?
            .iter()
            .filter(|u| u.erasure_requested_at.is_none())
            .map(|u| user_doc(&st, u))
            .collect();
        Ok(page(docs, f.as_ref(), start, count))
    })
    .await;
    match r {
        Ok(Ok(v)) => scim_json(StatusCode::OK, &v),
        _ => unavailable(),
    }
}

async fn users_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let who = match authorize_client(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let doc = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (person, active) = match person_from(&doc, who.national_id) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    let actor = who.actor;
    let st = state.clone();
    let r = web::block(move || -> Result<Value, CustomerError> {
        let mut conn = st.db.conn()?;
        let now = kuntalaistili_schema::now_utc();
        let u = customers::add(&mut conn, &st.keys, &st.hasher, person, &actor, now)?;
        let u = if active.unwrap_or(true) {
            u
        } else {
            customers::disable(&mut conn, &u.username, &actor, now)?;
            live_user(&mut conn, &u.id)?.ok_or(DbError::NotFound("user"))?
        };
        Ok(user_doc(&st, &u))
    })
    .await;
    match r {
        Ok(Ok(v)) => resource(StatusCode::CREATED, &v),
        Ok(Err(e)) => customer_error(e),
        Err(_) => unavailable(),
    }
}

async fn load_user(state: &web::Data<IdpState>, id: String) -> Result<Value, HttpResponse> {
    let st = state.clone();
    match web::block(move || {
        live_user(&mut *st.db.conn()?, &id).map(|u| u.map(|u| user_doc(&st, &u)))
    })
    .await
    {
        Ok(Ok(Some(v))) => Ok(v),
        Ok(Ok(None)) => Err(not_found("user")),
        _ => Err(unavailable()),
    }
}

async fn user_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    match load_user(&state, id.into_inner()).await {
        Ok(v) => {
            let tag = v["meta"]["version"].as_str().unwrap_or_default();
            if req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| h.split(',').any(|t| t.trim() == tag))
            {
                return HttpResponse::NotModified()
                    .insert_header((header::ETAG, tag.to_owned()))
                    .finish();
            }
            resource(StatusCode::OK, &v)
        }
        Err(r) => r,
    }
}

/// Staff and administrator accounts are not provisioned over SCIM: their passwords, national
/// ids and state are the administrators' (a provisioning token must not be a way to an admin
/// account).
fn managed_elsewhere(current: &Value) -> Option<HttpResponse> {
    (current[MUNICIPAL_SCHEMA]["role"] != "resident").then(|| {
        error(
            StatusCode::FORBIDDEN,
            None,
            "staff and administrator accounts are managed by administrators, not over SCIM",
        )
    })
}

async fn replace_user(
    state: &web::Data<IdpState>,
    id: String,
    doc: Value,
    who: Provisioner,
) -> HttpResponse {
    let (person, active) = match person_from(&doc, who.national_id) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    let uid = id.clone();
    let r = web::block(move || -> Result<_, CustomerError> {
        let mut conn = st.db.conn()?;
        let (u, grants) = customers::replace(
            &mut conn,
            &st.keys,
            &st.hasher,
            &id,
            person,
            active,
            &who.actor,
            kuntalaistili_schema::now_utc(),
        )?;
        Ok((user_doc(&st, &u), grants))
    })
    .await;
    match r {
        Ok(Ok((v, grants))) => {
            crate::oidc::logout::notify(state, &uid, grants).await;
            resource(StatusCode::OK, &v)
        }
        Ok(Err(e)) => customer_error(e),
        Err(_) => unavailable(),
    }
}

async fn user_put(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let who = match authorize_client(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let doc = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let current = match load_user(&state, id.clone()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = precondition(&req, &current) {
        return r.response();
    }
    if let Some(r) = managed_elsewhere(&current) {
        return r;
    }
    replace_user(&state, id.into_inner(), doc, who).await
}

async fn user_patch(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let who = match authorize_client(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let ops = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let current = match load_user(&state, id.clone()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = precondition(&req, &current) {
        return r.response();
    }
    if let Some(r) = managed_elsewhere(&current) {
        return r;
    }
    let patched = match patch::apply(current, &ops) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, Some(e.scim_type), &e.detail),
    };
    replace_user(&state, id.into_inner(), patched, who).await
}

async fn user_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = match authorize(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let current = match load_user(&state, id.clone()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = precondition(&req, &current) {
        return r.response();
    }
    if let Some(r) = managed_elsewhere(&current) {
        return r;
    }
    let st = state.clone();
    let uid = id.into_inner();
    let u2 = uid.clone();
    let r = web::block(move || {
        customers::gdpr::request_erasure(
            &mut *st.db.conn()?,
            &u2,
            &actor,
            None,
            st.settings.erasure_retention_days,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await;
    match r {
        Ok(Ok(grants)) => {
            crate::oidc::logout::notify(&state, &uid, grants).await;
            HttpResponse::NoContent().finish()
        }
        _ => unavailable(),
    }
}

// ---------------------------------------------------------------- groups

fn group_doc(
    state: &IdpState,
    g: &groups_store::Group,
    members: &[String],
    names: &std::collections::HashMap<String, String>,
) -> Value {
    let base = public_base(state);
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "value": m,
                "display": names.get(m).cloned().unwrap_or_default(),
                "$ref": format!("{base}/Users/{m}"),
                "type": "User",
            })
        })
        .collect();
    let display = if g.description.is_empty() {
        g.name.clone()
    } else {
        g.description.clone()
    };
    with_meta(
        json!({
            "schemas": [GROUP_SCHEMA],
            "id": g.name,
            "displayName": display,
            "members": members,
        }),
        "Group",
        format!("{base}/Groups/{}", g.name),
        g.created_at,
        g.created_at,
    )
}

/// Every group (or only the one named `only`) as SCIM documents; members are named from one
/// query over their ids only.
fn all_groups(state: &IdpState) -> Result<Vec<Value>, DbError> {
    groups_docs(state, None)
}

fn groups_docs(state: &IdpState, only: Option<&str>) -> Result<Vec<Value>, DbError> {
    let mut conn = state.db.conn()?;
    let groups: Vec<_> = groups_store::groups(&mut conn)?
        .into_iter()
        .filter(|(g, _)| only.is_none_or(|n| g.name == n))
        .collect();
    let mut ids: Vec<String> = groups.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    let names = users::usernames(&mut conn, &ids)?;
    Ok(groups
        .iter()
        .map(|(g, m)| group_doc(state, g, m, &names))
        .collect())
}

async fn groups_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let (f, start, count) = match parse_list_query(&req) {
        Ok(q) => q,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    match web::block(move || all_groups(&st).map(|d| page(d, f.as_ref(), start, count))).await {
        Ok(Ok(v)) => scim_json(StatusCode::OK, &v),
        _ => unavailable(),
    }
}

async fn load_group(state: &web::Data<IdpState>, id: String) -> Result<Value, HttpResponse> {
    let st = state.clone();
    let name = id.clone();
    match web::block(move || groups_docs(&st, Some(&name))).await {
        Ok(Ok(all)) => all
            .into_iter()
            .find(|g| g["id"] == id.as_str())
            .ok_or_else(|| not_found("group")),
        _ => Err(unavailable()),
    }
}

/// A group id from its display name: lower-case a-z, 0-9 and '-', at most 64 characters.
fn slug(display: &str) -> String {
    let mut s = String::new();
    for c in display.trim().to_lowercase().chars() {
        let c = match c {
            'ä' | 'å' => 'a',
            'ö' => 'o',
            c if c.is_ascii_alphanumeric() => c,
            _ => '-',
        };
        if !(c == '-' && (s.is_empty() || s.ends_with('-'))) {
            s.push(c);
        }
    }
    let s: String = s.trim_end_matches('-').chars().take(56).collect();
    if s.is_empty() {
        "group".to_owned()
    } else {
        s
    }
}

/// Display name and member ids of a SCIM Group document.
fn group_from(doc: &Value) -> Result<(String, Vec<String>), Refusal> {
    let Some(display) = str_at(doc, &["displayName"])
        .map(str::trim)
        .filter(|d| !d.is_empty())
    else {
        return Err(Refusal::bad("invalidValue", "displayName is required"));
    };
    let members = match doc
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")))
        .map(|(_, v)| v)
    {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let mut ids = Vec::new();
            for m in a {
                match m["value"].as_str() {
                    Some(v) => ids.push(v.to_owned()),
                    None => {
                        return Err(Refusal::bad(
                            "invalidValue",
                            "every member needs a value (a user id)",
                        ))
                    }
                }
            }
            ids.sort();
            ids.dedup();
            ids
        }
        Some(_) => return Err(Refusal::bad("invalidValue", "members must be an array")),
    };
    Ok((display.to_owned(), members))
}

/// Saves a group's display name and exact member list (in one transaction, audited).
fn store_group(
    state: &IdpState,
    name: &str,
    display: &str,
    members: &[String],
    actor: &str,
    create: bool,
) -> Result<(), crate::authz::AuthzError> {
    let mut conn = state.db.conn()?;
    for m in members {
        if live_user(&mut conn, m)?.is_none() {
            return Err(crate::authz::AuthzError::NotFound("member"));
        }
    }
    crate::authz::set_group(
        &mut conn,
        name,
        display,
        members,
        create,
        actor,
        kuntalaistili_schema::now_utc(),
    )
}

fn authz_error(e: crate::authz::AuthzError) -> HttpResponse {
    match e {
        crate::authz::AuthzError::NotFound(what) => error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            &format!("{what} not found"),
        ),
        crate::authz::AuthzError::Invalid(d) => {
            error(StatusCode::BAD_REQUEST, Some("invalidValue"), &d)
        }
        crate::authz::AuthzError::Db(e) => {
            tracing::error!(error = %e, "SCIM storage error");
            unavailable()
        }
    }
}

async fn groups_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let actor = match authorize(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let doc = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (display, members) = match group_from(&doc) {
        Ok(g) => g,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    let r = web::block(move || -> Result<String, crate::authz::AuthzError> {
        // Display names are unique (RFC 7643 §4.2 leaves it to the provider; clients expect it).
        let existing = all_groups(&st)?;
        if existing.iter().any(|g| {
            g["displayName"]
                .as_str()
                .is_some_and(|d| d.to_lowercase() == display.to_lowercase())
        }) {
            return Err(crate::authz::AuthzError::Invalid("exists".into()));
        }
        let base = slug(&display);
        let mut name = base.clone();
        let mut n = 2;
        while existing.iter().any(|g| g["id"] == name.as_str()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        store_group(&st, &name, &display, &members, &actor, true)?;
        Ok(name)
    })
    .await;
    match r {
        Ok(Ok(name)) => match load_group(&state, name).await {
            Ok(v) => resource(StatusCode::CREATED, &v),
            Err(r) => r,
        },
        Ok(Err(crate::authz::AuthzError::Invalid(d))) if d == "exists" => error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "a group with this displayName exists",
        ),
        Ok(Err(e)) => authz_error(e),
        Err(_) => unavailable(),
    }
}

async fn group_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    match load_group(&state, id.into_inner()).await {
        Ok(v) => resource(StatusCode::OK, &v),
        Err(r) => r,
    }
}

async fn replace_group(
    state: &web::Data<IdpState>,
    id: String,
    doc: Value,
    actor: String,
) -> HttpResponse {
    let (display, members) = match group_from(&doc) {
        Ok(g) => g,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    let name = id.clone();
    let r = web::block(move || store_group(&st, &name, &display, &members, &actor, false)).await;
    match r {
        Ok(Ok(())) => match load_group(state, id).await {
            Ok(v) => resource(StatusCode::OK, &v),
            Err(r) => r,
        },
        Ok(Err(e)) => authz_error(e),
        Err(_) => unavailable(),
    }
}

async fn group_put(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let actor = match authorize(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let doc = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let current = match load_group(&state, id.clone()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = precondition(&req, &current) {
        return r.response();
    }
    replace_group(&state, id.into_inner(), doc, actor).await
}

async fn group_patch(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let actor = match authorize(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let ops = match body(payload).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let current = match load_group(&state, id.clone()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = precondition(&req, &current) {
        return r.response();
    }
    let patched = match patch::apply(current, &ops) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, Some(e.scim_type), &e.detail),
    };
    replace_group(&state, id.into_inner(), patched, actor).await
}

async fn group_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = match authorize(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let current = match load_group(&state, id.clone()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = precondition(&req, &current) {
        return r.response();
    }
    let st = state.clone();
    let r = web::block(move || {
        crate::authz::remove_group(
            &mut *st.db.conn()?,
            &id,
            &actor,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await;
    match r {
        Ok(Ok(())) => HttpResponse::NoContent().finish(),
        Ok(Err(e)) => authz_error(e),
        Err(_) => unavailable(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_ids_from_display_names() {
        assert_eq!(
            super::slug("Kirjaston henkilökunta"),
            "kirjaston-henkilokunta"
        );
        assert_eq!(super::slug("  Åbo / Turku  "), "abo-turku");
        assert_eq!(super::slug("???"), "group");
    }
}
