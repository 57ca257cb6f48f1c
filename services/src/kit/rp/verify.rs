//! Tokens from the IdP verified against its discovered keys: back-channel logout tokens and
//! access tokens (the algorithm comes from our allow-list, never from the token alone).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::JsonWebKey;
use serde_json::Value;

use super::{payload, LogoutClaims, Rp, RpError};

impl Rp {
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
