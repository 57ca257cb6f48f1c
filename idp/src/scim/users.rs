//! `/Users`: the customer register's people as SCIM Users with the municipal extension. Deleting
//! a user is the register's soft delete: the account closes at once and the data is erased after
//! the retention period.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::{users, DbError};
use serde_json::{json, Map, Value};

use super::http::{
    authorize, authorize_client, body, error, not_found, public_base, resource, scim_json,
    unavailable, with_meta, Provisioner, Refusal,
};
use super::query::{list_response, parse_list_query, projection, read, Projection, Query};
use super::{filter, patch, Kind, MUNICIPAL_SCHEMA, USER_SCHEMA};
use crate::customers::{self, CustomerError, NewPerson};
use crate::IdpState;

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
    if let Some(e) = &u.external_id {
        doc["externalId"] = json!(e);
    }
    let mut name = Map::new();
    if let Some(g) = &u.given_name {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(f) = &u.family_name {
        name.insert("familyName".into(), json!(f));
    }
    // The register keeps the name's parts; the whole is `displayName`. It keeps one email
    // address, one phone number and one postal address, so none is marked primary.
    if !name.is_empty() {
        doc["name"] = Value::Object(name);
    }
    if let Some(e) = &u.email {
        doc["emails"] = json!([{ "value": e }]);
    }
    if let Some(p) = &u.phone {
        doc["phoneNumbers"] = json!([{ "value": p }]);
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
        doc["addresses"] = json!([Value::Object(addr)]);
    }
    let mut ext = json!({
        "role": u.role,
        "hasNationalId": u.national_id_enc.is_some(),
    });
    let channels: Vec<&str> = u.message_channels.split_whitespace().collect();
    if !channels.is_empty() {
        ext["messageChannels"] = json!(channels);
    }
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

pub(super) fn str_at<'a>(doc: &'a Value, keys: &[&str]) -> Option<&'a str> {
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

/// The `value` the register keeps of a multi-valued attribute: the one marked primary, else the
/// last one (so a value added by PATCH replaces the one there was).
fn primary_value(doc: &Value, attr: &str) -> Option<String> {
    let items = doc.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v)
    })?;
    let items = items.as_array()?;
    items
        .iter()
        .rfind(|i| i["primary"] == json!(true))
        .or_else(|| items.last())
        .and_then(|i| i["value"].as_str())
        .map(str::to_owned)
}

/// A patched User as the register reads it: message channels are always shown when there are
/// any, so a patched document without them has none left (a PUT without them gets the
/// register's default).
fn as_stored(mut doc: Value) -> Value {
    let Some(o) = doc.as_object_mut() else {
        return doc;
    };
    let ext_key = o
        .keys()
        .find(|k| k.eq_ignore_ascii_case(MUNICIPAL_SCHEMA))
        .cloned()
        .unwrap_or_else(|| MUNICIPAL_SCHEMA.to_owned());
    let ext = o.entry(ext_key).or_insert_with(|| json!({}));
    if let Some(e) = ext.as_object_mut() {
        if !e.keys().any(|k| k.eq_ignore_ascii_case("messageChannels")) {
            e.insert("messageChannels".into(), json!([]));
        }
    }
    doc
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
        .and_then(|a| a.iter().rfind(|i| i["primary"] == json!(true)).or(a.last()))
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
            external_id: str_at(doc, &["externalId"]).map(str::to_owned),
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
pub(super) fn live_user(
    conn: &mut kuntalaistili_schema::AnyConnection,
    id: &str,
) -> Result<Option<users::User>, DbError> {
    Ok(users::find_by_id(conn, id)?.filter(|u| u.erasure_requested_at.is_none()))
}

pub(super) async fn users_list(state: web::Data<IdpState>, req: HttpRequest) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let q = match parse_list_query(&req) {
        Ok(q) => q,
        Err(r) => return r.response(),
    };
    let st = state.clone();
    match web::block(move || users_page(&st, &q)).await {
        Ok(Ok(v)) => scim_json(StatusCode::OK, &v),
        _ => unavailable(),
    }
}

/// Every live person as a SCIM User.
pub(super) fn all_users(st: &IdpState) -> Result<Vec<Value>, DbError> {
    let mut conn = st.db.conn()?;
    Ok(users::list(&mut conn)?
        .iter()
        .filter(|u| u.erasure_requested_at.is_none())
        .map(|u| user_doc(st, u))
        .collect())
}

/// The page of users a list or search request asks for.
pub(super) fn users_page(st: &IdpState, q: &Query) -> Result<Value, DbError> {
    let mut conn = st.db.conn()?;
    // The common questions go to the database: a page of everyone, and the provisioning
    // clients' `userName eq "…"` or `externalId eq "…"` before they create someone. Other
    // filters read the register.
    let eq = match &q.filter {
        None if q.sort.is_none() => {
            let (rows, total) = users::page_live(&mut conn, q.start as i64 - 1, q.count as i64)?;
            let items = rows
                .iter()
                .map(|u| q.projection.apply(user_doc(st, u)))
                .collect();
            return Ok(list_response(
                usize::try_from(total).unwrap_or_default(),
                q.start,
                items,
            ));
        }
        Some(filter::Filter::Compare(attr, filter::Op::Eq, Value::String(v))) => Some((attr, v)),
        _ => None,
    };
    let found = match eq {
        Some((attr, name)) if attr.eq_ignore_ascii_case("userName") => Some(
            customers::normalize_username(name)
                .ok()
                .map(|n| users::find_by_username(&mut conn, &n))
                .transpose()?
                .flatten()
                .into_iter()
                .collect::<Vec<_>>(),
        ),
        Some((attr, ext)) if attr.eq_ignore_ascii_case("externalId") => {
            Some(users::find_by_external_id(&mut conn, ext)?)
        }
        _ => None,
    };
    let docs = match found {
        Some(rows) => rows
            .iter()
            .filter(|u| u.erasure_requested_at.is_none())
            .map(|u| user_doc(st, u))
            .collect(),
        None => {
            drop(conn);
            all_users(st)?
        }
    };
    Ok(q.page(docs))
}

pub(super) async fn users_create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let who = match authorize_client(&state, &req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match projection(&req) {
        Ok(p) => p,
        Err(r) => return r.response(),
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
        Ok(Ok(v)) => resource(StatusCode::CREATED, &p.apply(v)),
        Ok(Err(e)) => customer_error(e),
        Err(_) => unavailable(),
    }
}

pub(super) async fn load_user(
    state: &web::Data<IdpState>,
    id: String,
) -> Result<Value, HttpResponse> {
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

pub(super) async fn user_get(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = authorize(&state, &req).await {
        return r;
    }
    let p = match projection(&req) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    match load_user(&state, id.into_inner()).await {
        Ok(v) => read(&req, &p, v),
        Err(r) => r,
    }
}

/// Staff and administrator accounts are not provisioned over SCIM: their passwords, national
/// ids and state are the administrators' (a provisioning token must not be a way to an admin
/// account).
pub(super) fn managed_elsewhere(current: &Value) -> Option<HttpResponse> {
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
    p: &Projection,
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
            crate::session::logout::grants_revoked(state, &uid, grants).await;
            resource(StatusCode::OK, &p.apply(v))
        }
        Ok(Err(e)) => customer_error(e),
        Err(_) => unavailable(),
    }
}

pub(super) async fn user_put(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let id = id.into_inner();
    let st = state.clone();
    super::write(
        &state,
        &req,
        Kind::User,
        id.clone(),
        |who, _, p| async move {
            match body(payload).await {
                Ok(doc) => replace_user(&st, id, doc, who, &p).await,
                Err(r) => r,
            }
        },
    )
    .await
}

pub(super) async fn user_patch(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let id = id.into_inner();
    let st = state.clone();
    super::write(
        &state,
        &req,
        Kind::User,
        id.clone(),
        |who, current, p| async move {
            let ops = match body(payload).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            match patch::apply(current, &ops) {
                Ok(patched) => replace_user(&st, id, as_stored(patched), who, &p).await,
                Err(e) => error(StatusCode::BAD_REQUEST, Some(e.scim_type), &e.detail),
            }
        },
    )
    .await
}

pub(super) async fn user_delete(
    state: web::Data<IdpState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let uid = id.into_inner();
    let st = state.clone();
    super::write(
        &state,
        &req,
        Kind::User,
        uid.clone(),
        |who, _, _| async move { erase_user(st, uid, who.actor).await },
    )
    .await
}

/// The register's soft delete: the account closes now, the data goes after the retention period.
async fn erase_user(state: web::Data<IdpState>, uid: String, actor: String) -> HttpResponse {
    let st = state.clone();
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
