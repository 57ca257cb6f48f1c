//! The SAML 2.0 identity provider: metadata (`/saml/metadata`), Web SSO (`/saml/sso` over the
//! HTTP-Redirect and HTTP-POST bindings, IdP-initiated `/saml/sso/init`) and Single Logout
//! (`/saml/slo`). Messages are read with the safe XML reader and checked against the SP's
//! registered metadata (`kuntalaistili-federation`); answers go back with the HTTP-POST binding.
//!
//! A request that cannot be trusted (unknown SP, bad signature, ACS not in the metadata, replay,
//! stale or misdirected message, hostile XML) gets an error page and an audit event, never a
//! redirect. A trusted request that cannot be satisfied (passive without a session, a NameID
//! format we cannot give) gets a signed SAML status response at the SP's ACS.

mod answer;
mod binding;
pub mod request;
pub mod response;
mod round;
mod slo;
mod sso;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use kuntalaistili_federation::saml::{self as registry, Sp};
use kuntalaistili_metadata::saml::keys::{self as saml_keys, SamlSigner};
use kuntalaistili_metadata::saml::metadata::IdpUrls;
use kuntalaistili_metadata::saml::sign;
use serde_json::json;

use crate::audit::Event;
use crate::error::WebError;
use crate::IdpState;

pub use round::SingleLogout;

pub mod kind {
    pub const REQUEST_REFUSED: &str = "saml.request_refused";
    pub const ASSERTION_ISSUED: &str = "saml.assertion_issued";
    pub const STATUS_SENT: &str = "saml.status_sent";
    pub const NATIONAL_ID_RELEASED: &str = "saml.national_id_released";
    pub const LOGOUT_REQUEST: &str = "saml.logout_request";
    pub const LOGOUT_PROPAGATED: &str = "saml.logout_propagated";
}

pub mod paths {
    pub const METADATA: &str = "/saml/metadata";
    pub const SSO: &str = "/saml/sso";
    pub const SSO_RESUME: &str = "/saml/sso/resume";
    pub const SSO_INIT: &str = "/saml/sso/init";
    pub const SLO: &str = "/saml/slo";
}

/// Largest SAML form body (a POST-binding message with its signature and certificate).
pub const FORM_LIMIT_BYTES: usize = 256 * 1024;

/// How long SPs, the signing key and the metadata document are kept in memory.
const TTL: Duration = Duration::from_secs(30);

/// A cached SP (or the fact that there is none) and when it was read.
type SpEntry = (Instant, Option<Arc<Sp>>);

/// In-memory copies of SPs (or their absence), the signing key and the signed metadata.
#[derive(Default)]
pub struct Cache {
    sps: RwLock<HashMap<String, SpEntry>>,
    signer: RwLock<Option<(Instant, Arc<SamlSigner>)>>,
    metadata: RwLock<Option<(Instant, Arc<String>)>>,
}

impl Cache {
    /// Drops this node's copy of an SP after a change made here (other nodes see it within the
    /// TTL).
    pub fn forget_sp(&self, entity_id: &str) {
        if let Ok(mut m) = self.sps.write() {
            m.remove(entity_id);
        }
    }

    /// Drops the signing key and metadata copies (after a key rotation).
    pub fn forget_keys(&self) {
        if let Ok(mut s) = self.signer.write() {
            *s = None;
        }
        if let Ok(mut m) = self.metadata.write() {
            *m = None;
        }
    }
}

/// The IdP's SAML endpoints under its public URL.
pub fn urls(state: &IdpState) -> IdpUrls {
    let base = &state.settings.public_url;
    IdpUrls {
        entity_id: format!("{base}{}", paths::METADATA),
        sso: format!("{base}{}", paths::SSO),
        slo: format!("{base}{}", paths::SLO),
    }
}

/// An SP by entity ID (cached). Blocking.
fn sp_blocking(state: &IdpState, entity_id: &str) -> Result<Option<Arc<Sp>>, WebError> {
    if let Ok(m) = state.saml.sps.read() {
        if let Some((at, sp)) = m.get(entity_id) {
            if at.elapsed() < TTL {
                return Ok(sp.clone());
            }
        }
    }
    let mut conn = state.db.conn()?;
    let sp = match registry::load(&mut conn, entity_id) {
        Ok(sp) => sp.map(Arc::new),
        Err(registry::RegistryError::Db(e)) => return Err(e.into()),
        Err(e) => {
            // Stored metadata that no longer reads (should not happen: it was read when stored).
            tracing::error!(entity = %entity_id, error = %e, "stored SP metadata does not read");
            None
        }
    };
    if let Ok(mut m) = state.saml.sps.write() {
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(entity_id.to_owned(), (Instant::now(), sp.clone()));
    }
    Ok(sp)
}

/// The key that signs now (cached). Blocking.
fn signer_blocking(state: &IdpState) -> Result<Arc<SamlSigner>, WebError> {
    if let Ok(s) = state.saml.signer.read() {
        if let Some((at, k)) = s.as_ref() {
            if at.elapsed() < TTL {
                return Ok(k.clone());
            }
        }
    }
    let mut conn = state.db.conn()?;
    let k = saml_keys::signer(&mut conn, &state.keys, kuntalaistili_schema::now_utc())
        .map(Arc::new)
        .map_err(|e| {
            tracing::error!(error = %e, "no SAML signing key");
            WebError::Unavailable
        })?;
    if let Ok(mut s) = state.saml.signer.write() {
        *s = Some((Instant::now(), k.clone()));
    }
    Ok(k)
}

/// Records a refused message and answers with the error page (400). Never redirects.
async fn refuse(
    state: &web::Data<IdpState>,
    req: &actix_web::HttpRequest,
    what: &'static str,
    issuer: Option<&str>,
    refused: &request::Refused,
    page_key: &'static str,
) -> HttpResponse {
    tracing::info!(code = refused.code, detail = %refused.detail, issuer = ?issuer, "SAML message refused");
    let event = Event::failure(kind::REQUEST_REFUSED)
        .actor(
            issuer
                .unwrap_or("unknown")
                .chars()
                .take(256)
                .collect::<String>(),
        )
        .ip(crate::client_ip(req, &state.settings))
        .details(json!({ "message": what, "reason": refused.code, "detail": refused.detail }));
    if let Err(e) = crate::audit::record(state, event).await {
        tracing::error!(error = ?e, "could not record a refused SAML message");
    }
    actix_web::ResponseError::error_response(&WebError::BadRequest(page_key))
}

/// An auto-submitting HTTP-POST binding form to `action` (works without JavaScript too).
fn post_form(state: &IdpState, action: &str, fields: Vec<(&str, String)>) -> HttpResponse {
    crate::oidc::answer::post_form(state, action, fields)
}

fn b64(xml: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

/// `GET /saml/metadata`: the IdP's signed metadata (cached for [`TTL`]).
pub async fn saml_metadata_get(state: web::Data<IdpState>) -> Result<HttpResponse, WebError> {
    if let Ok(m) = state.saml.metadata.read() {
        if let Some((at, doc)) = m.as_ref() {
            if at.elapsed() < TTL {
                return Ok(metadata_response(doc));
            }
        }
    }
    let st = state.clone();
    let doc = web::block(move || -> Result<String, WebError> {
        let now = kuntalaistili_schema::now_utc();
        let certs = saml_keys::published(&mut *st.db.conn()?, now).map_err(|e| {
            tracing::error!(error = %e, "SAML keys");
            WebError::Unavailable
        })?;
        let signer = signer_blocking(&st)?;
        let id = response::new_id();
        use base64::Engine;
        let template = sign::template(
            &id,
            &base64::engine::general_purpose::STANDARD.encode(&signer.cert_der),
        );
        let xml = kuntalaistili_metadata::saml::metadata::idp_metadata(
            &urls(&st),
            &certs,
            &id,
            now + chrono::Duration::days(7),
            3600,
            Some(&template),
        );
        let signed = sign::sign_enveloped(&xml, &signer).map_err(|e| {
            tracing::error!(error = %e, "signing the metadata");
            WebError::Internal
        })?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{signed}"
        ))
    })
    .await??;
    let doc = Arc::new(doc);
    if let Ok(mut m) = state.saml.metadata.write() {
        *m = Some((Instant::now(), doc.clone()));
    }
    Ok(metadata_response(&doc))
}

fn metadata_response(doc: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(doc.to_owned())
}

/// Mounts the SAML routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let form = || {
        web::FormConfig::default()
            .limit(FORM_LIMIT_BYTES)
            .error_handler(|err, _| {
                let e = match err {
                    actix_web::error::UrlencodedError::Overflow { .. } => WebError::TooLarge,
                    _ => WebError::BadRequest("saml.error_request"),
                };
                e.into()
            })
    };
    cfg.route(paths::METADATA, web::get().to(saml_metadata_get))
        .service(
            web::resource(paths::SSO)
                .app_data(form())
                .route(web::get().to(sso::saml_sso_get))
                .route(web::post().to(sso::saml_sso_post)),
        )
        .route(paths::SSO_RESUME, web::get().to(sso::saml_sso_resume_get))
        .route(paths::SSO_INIT, web::get().to(sso::saml_sso_init_get))
        .service(
            web::resource(paths::SLO)
                .app_data(form())
                .route(web::get().to(slo::saml_slo_get))
                .route(web::post().to(slo::saml_slo_post)),
        );
}
