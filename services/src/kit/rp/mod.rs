//! The relying-party side of OpenID Connect with the `openidconnect` crate: discovery (kept for a
//! minute, so key rotation at the IdP is seen), authorization URLs with PKCE and nonce, the code
//! exchange with ID-token validation, the end-session URL, and verification of the IdP's logout
//! tokens and access tokens against the discovered keys (the algorithm comes from our allow-list,
//! never from the token alone).
//!
//! Here discovery and the login and logout flows; the IdP's APIs with the service's own token in
//! `api`; verifying logout and access tokens in `verify`.

mod api;
mod verify;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::RwLock;

use super::KitConfig;

/// Discovery fields the crate's core type lacks.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LogoutMetadata {
    pub end_session_endpoint: Option<String>,
    pub introspection_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long discovery (with the JWKS) is reused.
const META_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RpError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("token request failed: {0}")]
    Token(String),
    #[error("ID token refused: {0}")]
    IdToken(String),
    #[error("JWT refused: {0}")]
    Jwt(&'static str),
}

pub struct Rp {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    /// Ask for the `email` scope too.
    email: bool,
    http: reqwest::Client,
    meta: RwLock<Option<(Instant, Metadata)>>,
    /// The service's own client-credentials tokens (one per scope) and when they stop being
    /// usable.
    service_tokens: RwLock<std::collections::HashMap<&'static str, (Instant, String)>>,
}

/// The soonest discovery is fetched again for an unknown `kid` (so forged tokens cannot make the
/// service hammer the IdP).
const FORCED_REFRESH_EVERY: Duration = Duration::from_secs(30);

/// The answer of a look-up by national id.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(String),
    /// Nobody (active) has that national id.
    Unknown,
    /// The requesting system may not address residents by national id.
    Refused,
    /// Not a valid national id.
    Invalid(String),
}

/// A started login: where to send the browser and what to keep until it comes back.
pub struct Started {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who logged in, from a validated ID token.
pub struct Identity {
    pub sub: String,
    pub name: String,
    pub email: Option<String>,
    pub sid: Option<String>,
    pub id_token: String,
    /// When the resident authenticated at the IdP (`auth_time`), as a Unix time.
    pub auth_time: Option<i64>,
}

/// The parts of a validated logout token that name what to end.
pub struct LogoutClaims {
    pub sid: Option<String>,
    pub sub: Option<String>,
}

impl Rp {
    pub fn new(cfg: &KitConfig) -> Result<Rp, RpError> {
        Ok(Rp {
            issuer: IssuerUrl::new(cfg.issuer.clone())
                .map_err(|e| RpError::Config(format!("issuer: {e}")))?,
            client_id: ClientId::new(cfg.client_id.clone()),
            client_secret: ClientSecret::new(cfg.client_secret.clone()),
            redirect: RedirectUrl::new(cfg.redirect_uri())
                .map_err(|e| RpError::Config(format!("redirect URI: {e}")))?,
            email: cfg.email,
            // No redirects (the crate's advice against SSRF), short timeouts.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| RpError::Config(e.to_string()))?,
            meta: RwLock::new(None),
            service_tokens: RwLock::new(std::collections::HashMap::new()),
        })
    }

    async fn metadata(&self, refresh: bool) -> Result<Metadata, RpError> {
        if let Some((at, m)) = self.meta.read().await.as_ref() {
            let fresh = at.elapsed() < META_TTL;
            let recently = at.elapsed() < FORCED_REFRESH_EVERY;
            if (fresh && !refresh) || (refresh && recently) {
                return Ok(m.clone());
            }
        }
        let m = Metadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| RpError::Discovery(e.to_string()))?;
        *self.meta.write().await = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    async fn client(&self) -> Result<Client, RpError> {
        let m = self.metadata(false).await?;
        Ok(CoreClient::from_provider_metadata(
            m,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone()))
    }

    /// An authorization URL (code flow, PKCE S256, state, nonce); `silent` adds `prompt=none`.
    pub async fn authorize_url(&self, silent: bool) -> Result<Started, RpError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut rq = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if self.email {
            rq = rq.add_scope(Scope::new("email".into()));
        }
        if silent {
            rq = rq.add_prompt(CoreAuthPrompt::None);
        }
        let (url, state, nonce) = rq.url();
        Ok(Started {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and validates the ID token (signature, issuer, audience, expiry,
    /// nonce).
    pub async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<Identity, RpError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| RpError::Token(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        let id_token = tokens
            .extra_fields()
            .id_token()
            .ok_or_else(|| RpError::IdToken("missing".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
            .map_err(|e| RpError::IdToken(e.to_string()))?;
        let raw = id_token.to_string();
        // `sid` is not in the crate's claim set; read it from the payload just validated.
        let sid = payload(&raw)
            .ok()
            .and_then(|p| p["sid"].as_str().map(str::to_owned));
        // The display name comes from userinfo (the ID token carries only the identity).
        let info: Option<CoreUserInfoClaims> = match client.user_info(
            tokens.access_token().to_owned(),
            // OIDC Core 5.3.2: userinfo must be about the ID token's subject.
            Some(claims.subject().clone()),
        ) {
            Ok(rq) => rq.request_async(&self.http).await.ok(),
            Err(_) => None,
        };
        let name = info
            .as_ref()
            .and_then(|i| {
                i.name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned())
                    .or_else(|| i.preferred_username().map(|u| u.as_str().to_owned()))
            })
            .unwrap_or_else(|| claims.subject().as_str().to_owned());
        let email = info
            .as_ref()
            .and_then(|i| i.email())
            .map(|e| e.as_str().to_owned());
        Ok(Identity {
            sub: claims.subject().as_str().to_owned(),
            name,
            email,
            sid,
            id_token: raw,
            auth_time: claims.auth_time().map(|t| t.timestamp()),
        })
    }

    /// The IdP's end-session URL with the hint and where to come back.
    pub async fn end_session_url(
        &self,
        id_token_hint: Option<&str>,
        post_logout: &str,
    ) -> Result<String, RpError> {
        let m = self.metadata(false).await?;
        let end = m
            .additional_metadata()
            .end_session_endpoint
            .clone()
            .ok_or_else(|| RpError::Discovery("no end_session_endpoint".into()))?;
        let mut url = url::Url::parse(&end).map_err(|e| RpError::Discovery(e.to_string()))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(h) = id_token_hint {
                q.append_pair("id_token_hint", h);
            }
            q.append_pair("client_id", self.client_id.as_str());
            q.append_pair("post_logout_redirect_uri", post_logout);
        }
        Ok(url.to_string())
    }
}

fn payload(token: &str) -> Result<Value, RpError> {
    let c = token.split('.').nth(1).ok_or(RpError::Jwt("payload"))?;
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| RpError::Jwt("payload encoding"))?,
    )
    .map_err(|_| RpError::Jwt("payload JSON"))
}
