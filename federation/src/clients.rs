//! OIDC clients: validated registration, secrets (256-bit, shown once, stored as SHA-256),
//! listing, removal and secret rotation. Every change is audited in the same transaction.

use chrono::NaiveDateTime;
use kuntalaistili_metadata::crypto::{ct_eq, random_token, sha256_hex};
use kuntalaistili_schema::audit::{self, NewEvent};
use kuntalaistili_schema::oidc_clients::{self, OidcClient};
use kuntalaistili_schema::pool::{write_tx, AnyConnection};
use kuntalaistili_schema::DbError;
use serde_json::json;

/// Grant types a client may be registered for.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<kuntalaistili_schema::QueryError> for ClientError {
    fn from(e: kuntalaistili_schema::QueryError) -> Self {
        ClientError::Db(DbError::Query(e))
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ClientError {
    ClientError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A client to register.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Public clients (browser or native apps) have no secret and must use PKCE.
    pub public: bool,
    /// Default: `authorization_code` (plus `refresh_token` when `offline_access` is in scope).
    pub grant_types: Vec<String>,
    /// Space-separated; default `openid`.
    pub scopes: String,
    pub allow_national_id: bool,
}

/// A redirect URI must be absolute, without a fragment, and https — except loopback http for
/// native apps and development (RFC 8252).
pub fn check_redirect_uri(raw: &str) -> Result<String, ClientError> {
    let u = url::Url::parse(raw).map_err(|e| {
        invalid(
            "redirect_uri",
            format!("{raw:?} is not an absolute URI ({e})"),
        )
    })?;
    if u.fragment().is_some() {
        return Err(invalid(
            "redirect_uri",
            format!("{raw:?} must not contain a fragment"),
        ));
    }
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(
                "redirect_uri",
                format!("{raw:?} must use https (http only on loopback)"),
            ))
        }
        _ if !u.cannot_be_a_base() && u.scheme().contains('.') => {} // private-use scheme of a native app
        other => {
            return Err(invalid(
                "redirect_uri",
                format!("scheme {other:?} is not allowed"),
            ))
        }
    }
    // Stored exactly as given: redirect URIs are matched by exact string comparison.
    Ok(raw.to_owned())
}

/// Registers a client; returns it with its secret (confidential clients only — shown this once).
pub fn add(
    conn: &mut AnyConnection,
    c: NewClient,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(OidcClient, Option<String>), ClientError> {
    let name = c.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid("name", "must be 1-200 printable characters"));
    }
    let scopes: Vec<&str> = if c.scopes.trim().is_empty() {
        vec!["openid"]
    } else {
        c.scopes.split_whitespace().collect()
    };
    if let Some(bad) = scopes.iter().find(|s| {
        !s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        return Err(invalid(
            "scopes",
            format!("{bad:?} is not a valid scope token"),
        ));
    }
    let mut grants: Vec<String> = if c.grant_types.is_empty() {
        let mut g = vec!["authorization_code".to_owned()];
        if scopes.contains(&"offline_access") {
            g.push("refresh_token".to_owned());
        }
        g
    } else {
        c.grant_types
            .iter()
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect()
    };
    grants.dedup();
    if let Some(bad) = grants.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
        return Err(invalid(
            "grant_types",
            format!("{bad:?} is not one of {}", GRANT_TYPES.join(", ")),
        ));
    }
    if c.public && grants.iter().any(|g| g == "client_credentials") {
        return Err(invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        ));
    }
    let redirect_uris = c
        .redirect_uris
        .iter()
        .map(|u| check_redirect_uri(u))
        .collect::<Result<Vec<_>, _>>()?;
    if grants.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uri",
            "authorization_code needs at least one redirect URI",
        ));
    }
    let secret = (!c.public).then(random_token);
    let client = OidcClient {
        client_id: uuid::Uuid::new_v4().to_string(),
        name,
        secret_hash: secret.as_deref().map(sha256_hex),
        public_client: c.public,
        redirect_uris: json!(redirect_uris).to_string(),
        grant_types: json!(grants).to_string(),
        scopes: scopes.join(" "),
        token_endpoint_auth_method: if c.public {
            "none"
        } else {
            "client_secret_basic"
        }
        .to_owned(),
        allow_national_id: c.allow_national_id,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    write_tx(conn, |conn| -> Result<(), ClientError> {
        oidc_clients::insert(conn, &client)?;
        audit::append_in_tx(
            conn,
            event(
                "client.created",
                actor,
                &client.client_id,
                json!({ "name": client.name, "public": client.public_client }),
            ),
            now,
        )?;
        Ok(())
    })?;
    Ok((client, secret))
}

fn event(kind: &str, actor: &str, client_id: &str, details: serde_json::Value) -> NewEvent {
    NewEvent {
        event_type: kind.to_owned(),
        outcome: "success".to_owned(),
        actor: Some(actor.to_owned()),
        subject: Some(client_id.to_owned()),
        ip: None,
        details,
    }
}

/// Removes a client (audited).
pub fn remove(
    conn: &mut AnyConnection,
    client_id: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), ClientError> {
    write_tx(conn, |conn| -> Result<(), ClientError> {
        oidc_clients::delete(conn, client_id)?;
        audit::append_in_tx(
            conn,
            event("client.removed", actor, client_id, json!({})),
            now,
        )?;
        Ok(())
    })
}

/// Replaces a confidential client's secret; returns the new secret (shown once).
pub fn rotate_secret(
    conn: &mut AnyConnection,
    client_id: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<String, ClientError> {
    let client = oidc_clients::find(conn, client_id)?.ok_or(DbError::NotFound("client"))?;
    if client.public_client {
        return Err(invalid("client", "a public client has no secret"));
    }
    let secret = random_token();
    write_tx(conn, |conn| -> Result<(), ClientError> {
        oidc_clients::set_secret_hash(conn, client_id, &sha256_hex(&secret), now)?;
        audit::append_in_tx(
            conn,
            event("client.secret_rotated", actor, client_id, json!({})),
            now,
        )?;
        Ok(())
    })?;
    Ok(secret)
}

/// True when `secret` is the client's current secret (constant-time over the hashes).
pub fn secret_matches(client: &OidcClient, secret: &str) -> bool {
    match &client.secret_hash {
        Some(h) => ct_eq(h, &sha256_hex(secret)),
        None => false,
    }
}

/// The public description of a client for CLI and API output (never the secret or its hash).
pub fn public_json(c: &OidcClient) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "client_name": c.name,
        "public": c.public_client,
        "redirect_uris": serde_json::from_str::<serde_json::Value>(&c.redirect_uris).unwrap_or_default(),
        "grant_types": serde_json::from_str::<serde_json::Value>(&c.grant_types).unwrap_or_default(),
        "scope": c.scopes,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "allow_national_id": c.allow_national_id,
        "disabled": c.disabled,
        "created_at": kuntalaistili_schema::iso_utc(c.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::check_redirect_uri;

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://rp.example.fi/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8765/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("fi.kunta.app:/oauth").is_ok());
        assert!(check_redirect_uri("http://rp.example.fi/cb").is_err());
        assert!(check_redirect_uri("https://rp.example.fi/cb#x").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }
}
