//! `/admin/clients`: the relying parties (OIDC clients): list with what each receives, register a
//! new one (its secret shown once), rotate a secret (shown once), remove.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_federation::clients::{self, ClientEdit, ClientError, NewClient};
use kuntalaistili_schema::{oidc_clients, DbError};
use serde::Deserialize;
use serde_json::json;

use super::{context, require_admin, require_admin_form};
use crate::error::WebError;
use crate::session::logout::redirect;
use crate::IdpState;

pub async fn list(state: web::Data<IdpState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let admin = match require_admin(&state, &req).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let st = state.clone();
    let all = web::block(move || oidc_clients::list(&mut *st.db.conn()?)).await??;
    let rows: Vec<_> = all
        .iter()
        .map(|c| {
            let uris: Vec<String> = serde_json::from_str(&c.redirect_uris).unwrap_or_default();
            let grants: Vec<String> = serde_json::from_str(&c.grant_types).unwrap_or_default();
            json!({
                "id": c.client_id,
                "name": c.name,
                "scopes": c.scopes,
                "redirect_uris": uris,
                "grant_types": grants,
                "public": c.public_client,
                "national_id": c.allow_national_id,
                "permissions": c.release_permissions.clone().unwrap_or_default(),
                "consent": c.require_consent,
                "pairwise": c.subject_type == "pairwise",
                "disabled": c.disabled,
            })
        })
        .collect();
    let mut ctx = context(&state, &req, &admin);
    ctx.insert("clients", &rows);
    ctx.insert("secret", &Option::<String>::None);
    Ok(state.form_page(&req, StatusCode::OK, "admin/clients.html", ctx))
}

#[derive(Debug, Deserialize)]
pub struct ClientForm {
    csrf: Option<String>,
    name: Option<String>,
    /// One URI per line.
    redirect_uris: Option<String>,
    scopes: Option<String>,
    code_flow: Option<String>,
    client_credentials: Option<String>,
    public: Option<String>,
    skip_consent: Option<String>,
    /// Comma-separated services whose permissions the client receives.
    release_permissions: Option<String>,
}

fn lines(s: &Option<String>, sep: char) -> Vec<String> {
    s.as_deref()
        .unwrap_or_default()
        .split([sep, '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A page that shows a client's new secret, once.
fn secret_page(
    state: &IdpState,
    req: &HttpRequest,
    admin: &kuntalaistili_schema::users::User,
    client_id: &str,
    secret: Option<String>,
) -> HttpResponse {
    let mut ctx = context(state, req, admin);
    ctx.insert("client_id", client_id);
    ctx.insert("secret", &secret);
    state.form_page(req, StatusCode::OK, "admin/client_secret.html", ctx)
}

pub async fn create(
    state: web::Data<IdpState>,
    req: HttpRequest,
    form: web::Form<ClientForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let mut grants = Vec::new();
    if f.code_flow.is_some() {
        grants.push("authorization_code".to_owned());
        if f.scopes
            .as_deref()
            .unwrap_or_default()
            .contains("offline_access")
        {
            grants.push("refresh_token".to_owned());
        }
    }
    if f.client_credentials.is_some() {
        grants.push("client_credentials".to_owned());
    }
    let n = NewClient {
        name: f.name.unwrap_or_default(),
        redirect_uris: lines(&f.redirect_uris, '\n'),
        public: f.public.is_some(),
        grant_types: grants,
        scopes: f.scopes.unwrap_or_default(),
        skip_consent: f.skip_consent.is_some(),
        release_permissions: lines(&f.release_permissions, ','),
        ..NewClient::default()
    };
    let st = state.clone();
    let actor = admin.id.clone();
    let r = web::block(move || {
        clients::add(
            &mut *st.db.conn()?,
            n,
            &actor,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await?;
    match r {
        Ok((c, secret)) => Ok(secret_page(&state, &req, &admin, &c.client_id, secret)),
        Err(ClientError::Db(e)) => Err(e.into()),
        Err(e) => Ok(super::refused(
            &state,
            &req,
            "admin.client_refused",
            &e.to_string(),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

pub async fn action(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    let admin = match require_admin_form(&state, &req, form.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let (id, what) = path.into_inner();
    let st = state.clone();
    let (actor, cid) = (admin.id.clone(), id.clone());
    match what.as_str() {
        "rotate" => {
            let r = web::block(move || {
                clients::rotate_secret(
                    &mut *st.db.conn()?,
                    &cid,
                    &actor,
                    kuntalaistili_schema::now_utc(),
                )
            })
            .await?;
            state.oidc_cache.forget_client(&id);
            match r {
                Ok(secret) => Ok(secret_page(&state, &req, &admin, &id, Some(secret))),
                Err(ClientError::Db(DbError::NotFound(_))) => Err(WebError::NotFound),
                Err(ClientError::Db(e)) => Err(e.into()),
                Err(e) => Ok(super::refused(
                    &state,
                    &req,
                    "admin.client_refused",
                    &e.to_string(),
                )),
            }
        }
        "remove" => {
            let r = web::block(move || {
                clients::remove(
                    &mut *st.db.conn()?,
                    &cid,
                    &actor,
                    kuntalaistili_schema::now_utc(),
                )
            })
            .await?;
            state.oidc_cache.forget_client(&id);
            match r {
                Ok(()) => Ok(redirect("/admin/clients")),
                Err(ClientError::Db(DbError::NotFound(_))) => Err(WebError::NotFound),
                Err(ClientError::Db(e)) => Err(e.into()),
                Err(e) => Ok(super::refused(
                    &state,
                    &req,
                    "admin.client_refused",
                    &e.to_string(),
                )),
            }
        }
        _ => Err(WebError::NotFound),
    }
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    csrf: Option<String>,
    name: Option<String>,
    redirect_uris: Option<String>,
    scopes: Option<String>,
    release_permissions: Option<String>,
    skip_consent: Option<String>,
    disabled: Option<String>,
}

/// `POST /admin/clients/{id}/edit`: name, redirect URIs, scopes, released permissions, consent,
/// in use or not.
pub async fn edit(
    state: web::Data<IdpState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<EditForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let admin = match require_admin_form(&state, &req, f.csrf.as_deref()).await? {
        Ok(a) => a,
        Err(r) => return Ok(r),
    };
    let id = path.into_inner();
    let e = ClientEdit {
        name: f.name.clone().unwrap_or_default(),
        redirect_uris: lines(&f.redirect_uris, '\n'),
        scopes: f.scopes.clone().unwrap_or_default(),
        release_permissions: f
            .release_permissions
            .as_deref()
            .unwrap_or_default()
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        skip_consent: f.skip_consent.is_some(),
        disabled: f.disabled.is_some(),
    };
    let (st, cid, actor) = (state.clone(), id.clone(), admin.id.clone());
    let r = web::block(move || {
        clients::edit(
            &mut *st.db.conn()?,
            &cid,
            e,
            &actor,
            kuntalaistili_schema::now_utc(),
        )
    })
    .await?;
    state.oidc_cache.forget_client(&id);
    match r {
        Ok(_) => Ok(redirect("/admin/clients")),
        Err(ClientError::Db(DbError::NotFound(_))) => Err(WebError::NotFound),
        Err(ClientError::Db(e)) => Err(e.into()),
        Err(e) => Ok(super::refused(
            &state,
            &req,
            "admin.client_refused",
            &e.to_string(),
        )),
    }
}
