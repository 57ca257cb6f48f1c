//! The relying-party side of OpenID Connect with the `openidconnect` crate: discovery (kept for a
//! minute, so key rotation at the IdP is seen), authorization URLs with PKCE and nonce, the code
//! exchange with ID-token validation, the end-session URL, and verification of the IdP's logout
//! tokens and access tokens against the discovered keys (the algorithm comes from our allow-list,
//! never from the token alone).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, JsonWebKey, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
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

    /// The service's own access token (client credentials) for the IdP's APIs, reused until
    /// shortly before it expires.
    async fn service_token(&self, scope: &'static str) -> Result<String, RpError> {
        if let Some((until, t)) = self.service_tokens.read().await.get(scope) {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let client = self.client().await?;
        let tokens = client
            .exchange_client_credentials()
            .map_err(|e| RpError::Token(e.to_string()))?
            .add_scope(Scope::new(scope.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        let life = tokens
            .expires_in()
            .unwrap_or(Duration::from_secs(60))
            .saturating_sub(Duration::from_secs(30));
        let token = tokens.access_token().secret().clone();
        self.service_tokens
            .write()
            .await
            .insert(scope, (Instant::now() + life, token.clone()));
        Ok(token)
    }

    fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.as_str().trim_end_matches('/'))
    }

    /// Whether the resident may do `service:function` now (`POST /api/v1/authz/check`,
    /// `authz:check`): asked at the moment of use, so a revoked right stops at once. A `probe`
    /// only decides what to show (a link), so its denial is not audited.
    pub async fn may(
        &self,
        sub: &str,
        service: &str,
        function: &str,
        probe: bool,
    ) -> Result<bool, RpError> {
        let token = self.service_token("authz:check").await?;
        let r = self
            .http
            .post(self.api_url("/api/v1/authz/check"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "sub": sub, "service": service, "permission": function, "probe": probe,
            }))
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        match r.status().as_u16() {
            200 => Ok(r
                .json::<Value>()
                .await
                .map_err(|e| RpError::Token(e.to_string()))?["allowed"]
                == Value::Bool(true)),
            404 => Ok(false),
            s => Err(RpError::Token(format!("the access check answered {s}"))),
        }
    }

    /// Records an event of this service in the IdP's tamper-evident audit log
    /// (`POST /api/v1/audit/events`, `audit:write`).
    pub async fn audit(
        &self,
        event_type: &str,
        subject: Option<&str>,
        details: Value,
    ) -> Result<(), RpError> {
        let token = self.service_token("audit:write").await?;
        let r = self
            .http
            .post(self.api_url("/api/v1/audit/events"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "event_type": event_type,
                "outcome": "success",
                "subject": subject,
                "details": details,
            }))
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(RpError::Token(format!(
                "the audit log answered {}",
                r.status()
            )))
        }
    }

    /// Posts JSON with the service's own access token for `scope` (client credentials) and
    /// returns the answer's status; used for the IdP's message API and the notice board.
    pub async fn post_as_service(
        &self,
        scope: &'static str,
        url: &str,
        body: &Value,
    ) -> Result<u16, RpError> {
        let token = self.service_token(scope).await?;
        let r = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        Ok(r.status().as_u16())
    }

    /// The IdP's API URL of `path`.
    pub fn idp_url(&self, path: &str) -> String {
        self.api_url(path)
    }

    /// Whether the IdP knows this resident (`GET /api/v1/residents/{sub}`, `residents:read`).
    pub async fn resident_exists(&self, sub: &str) -> Result<bool, RpError> {
        let token = self.service_token("residents:read").await?;
        let url = self.api_url(&format!("/api/v1/residents/{}", super::enc(sub)));
        let r = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        match r.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(RpError::Token(format!("resident look-up answered {s}"))),
        }
    }

    /// The subject of the resident with this national id, looked up for the system whose access
    /// token is `requester_token` (`POST /api/v1/residents/lookup`, `residents:read`): that
    /// system, not this service, must be allowed to address residents by national id.
    pub async fn resident_by_national_id(
        &self,
        national_id: &str,
        requester_token: &str,
    ) -> Result<Lookup, RpError> {
        let token = self.service_token("residents:read").await?;
        let r = self
            .http
            .post(self.api_url("/api/v1/residents/lookup"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "national_id": national_id,
                "requester_token": requester_token,
            }))
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match status {
            200 => match body["sub"].as_str() {
                Some(sub) => Ok(Lookup::Found(sub.to_owned())),
                None => Err(RpError::Token("the look-up answered without a sub".into())),
            },
            404 => Ok(Lookup::Unknown),
            403 => Ok(Lookup::Refused),
            400 => Ok(Lookup::Invalid(
                body["detail"]
                    .as_str()
                    .unwrap_or("invalid national id")
                    .to_owned(),
            )),
            s => Err(RpError::Token(format!("the resident look-up answered {s}"))),
        }
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

    /// Verifies a compact JWS with the IdP's published keys; refreshes the keys once when the
    /// `kid` is unknown (rotation).
    async fn verified(&self, token: &str) -> Result<Value, RpError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(RpError::Jwt("not a compact JWS"));
        };
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(h)
                .map_err(|_| RpError::Jwt("header encoding"))?,
        )
        .map_err(|_| RpError::Jwt("header JSON"))?;
        let alg = match header["alg"].as_str() {
            Some("RS256") => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            Some("ES256") => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            _ => return Err(RpError::Jwt("algorithm not allowed")),
        };
        let kid = header["kid"].as_str().ok_or(RpError::Jwt("no kid"))?;
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| RpError::Jwt("signature encoding"))?;
        let message = format!("{h}.{c}");
        for refresh in [false, true] {
            let m = self.metadata(refresh).await?;
            if let Some(key) = m
                .jwks()
                .keys()
                .iter()
                .find(|k| k.key_id().is_some_and(|id| id.as_str() == kid))
            {
                key.verify_signature(&alg, message.as_bytes(), &sig)
                    .map_err(|_| RpError::Jwt("signature"))?;
                return payload(token);
            }
        }
        Err(RpError::Jwt("unknown key"))
    }

    /// A back-channel logout token (OIDC Back-Channel Logout 1.0 §2.6): our issuer, our client
    /// as audience, fresh, the logout event, no nonce, and a `sid` or `sub`.
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutClaims, RpError> {
        let c = self.verified(token).await?;
        let now = chrono::Utc::now().timestamp();
        let aud_ok = match &c["aud"] {
            Value::String(a) => a == self.client_id.as_str(),
            Value::Array(a) => a.iter().any(|x| x == self.client_id.as_str()),
            _ => false,
        };
        if c["iss"].as_str() != Some(self.issuer.as_str()) || !aud_ok {
            return Err(RpError::Jwt("issuer or audience"));
        }
        if c["iat"].as_i64().is_none_or(|t| (now - t).abs() >= 600)
            || c["exp"].as_i64().is_some_and(|e| e < now)
        {
            return Err(RpError::Jwt("stale"));
        }
        if !c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object()
            || c.get("nonce").is_some()
        {
            return Err(RpError::Jwt("not a logout token"));
        }
        let sid = c["sid"].as_str().map(str::to_owned);
        let sub = c["sub"].as_str().map(str::to_owned);
        if sid.is_none() && sub.is_none() {
            return Err(RpError::Jwt("names no session"));
        }
        Ok(LogoutClaims { sid, sub })
    }

    /// An access token that is valid here (signature, issuer, expiry, type) *and* still live at
    /// the IdP (RFC 7662 introspection with the service's own credentials), so a revoked token
    /// stops at once. Returns the verified claims.
    pub async fn verify_live_access_token(&self, token: &str) -> Result<Value, RpError> {
        let claims = self.verify_access_token(token).await?;
        let m = self.metadata(false).await?;
        let url = m
            .additional_metadata()
            .introspection_endpoint
            .clone()
            .ok_or_else(|| RpError::Discovery("no introspection_endpoint".into()))?;
        let r = self
            .http
            .post(url)
            .basic_auth(self.client_id.as_str(), Some(self.client_secret.secret()))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| RpError::Token(e.to_string()))?;
        if !r.status().is_success() {
            return Err(RpError::Token(format!(
                "introspection answered {}",
                r.status()
            )));
        }
        let v: Value = r.json().await.map_err(|e| RpError::Token(e.to_string()))?;
        if v["active"] != true {
            return Err(RpError::Jwt("revoked or inactive"));
        }
        Ok(claims)
    }

    /// An access token of the IdP (RFC 9068 JWT): signature, issuer, expiry, type. Returns its
    /// claims; scope and client checks are the caller's.
    pub async fn verify_access_token(&self, token: &str) -> Result<Value, RpError> {
        if token.len() > 8192 {
            return Err(RpError::Jwt("too long"));
        }
        let header: Value = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(RpError::Jwt("header"))?;
        if header["typ"].as_str() != Some("at+jwt") {
            return Err(RpError::Jwt("not an access token"));
        }
        let c = self.verified(token).await?;
        let now = chrono::Utc::now().timestamp();
        if c["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err(RpError::Jwt("issuer"));
        }
        if c["exp"].as_i64().is_none_or(|e| e <= now) {
            return Err(RpError::Jwt("expired"));
        }
        Ok(c)
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
