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
    /// Where RP-initiated logout may return (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Receives logout tokens when the resident's session ends (OIDC Back-Channel Logout).
    pub backchannel_logout_uri: Option<String>,
    /// Pairwise subject identifiers (per sector) instead of the public user id.
    pub pairwise: bool,
    /// Host the pairwise subject is computed for; default: the host of the redirect URIs.
    pub sector_identifier: Option<String>,
    /// Public keys (a JWKS document) for `private_key_jwt` client authentication.
    pub jwks: Option<String>,
    /// A first-party service whose residents are not asked for consent.
    pub skip_consent: bool,
    /// ID token signing algorithm; default RS256 (the OIDC default).
    pub id_token_alg: Option<String>,
    /// SHA-256 of the RFC 7592 registration access token.
    pub registration_token_hash: Option<String>,
    /// Services whose permissions the client receives in the `permissions` claim (`*`: all).
    pub release_permissions: Vec<String>,
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

/// Validates a client description into a row (with a new secret for confidential clients that
/// do not authenticate with keys).
fn build(c: NewClient, now: NaiveDateTime) -> Result<(OidcClient, Option<String>), ClientError> {
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
    let post_logout = c
        .post_logout_redirect_uris
        .iter()
        .map(|u| check_redirect_uri(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid("post_logout_redirect_uri", "must be absolute https URIs"))?;
    let backchannel = match &c.backchannel_logout_uri {
        Some(u) => Some(
            check_redirect_uri(u)
                .map_err(|_| invalid("backchannel_logout_uri", "must be an absolute https URI"))?,
        ),
        None => None,
    };
    let sector_identifier = if c.pairwise {
        let hosts: std::collections::BTreeSet<String> = redirect_uris
            .iter()
            .filter_map(|u| url::Url::parse(u).ok()?.host_str().map(str::to_owned))
            .collect();
        match (&c.sector_identifier, hosts.len()) {
            (Some(s), _) => Some(s.trim().to_owned()),
            (None, 1) => hosts.into_iter().next(),
            (None, _) => {
                return Err(invalid(
                    "sector_identifier",
                    "redirect URIs on several hosts need an explicit sector identifier",
                ))
            }
        }
    } else {
        None
    };
    let jwks = match &c.jwks {
        Some(doc) => {
            let v: serde_json::Value =
                serde_json::from_str(doc).map_err(|e| invalid("jwks", format!("not JSON: {e}")))?;
            if v["keys"].as_array().is_none_or(|k| k.is_empty()) {
                return Err(invalid("jwks", "must be a JWKS with at least one key"));
            }
            Some(v.to_string())
        }
        None => None,
    };
    let id_token_alg = match c.id_token_alg.as_deref() {
        None | Some("RS256") => "RS256".to_owned(),
        Some("ES256") => "ES256".to_owned(),
        Some(other) => {
            return Err(invalid(
                "id_token_signed_response_alg",
                format!("{other:?} is not supported (RS256, ES256)"),
            ))
        }
    };
    if let Some(bad) = c
        .release_permissions
        .iter()
        .find(|s| *s != "*" && !kuntalaistili_schema::authz::valid_part(s))
    {
        return Err(invalid(
            "release_permissions",
            format!("{bad:?} is not a service name (a-z, 0-9, '-', '_') or *"),
        ));
    }
    let release_permissions =
        (!c.release_permissions.is_empty()).then(|| c.release_permissions.join(" "));
    let secret = (!c.public && jwks.is_none()).then(random_token);
    let auth_method = if c.public {
        "none"
    } else if jwks.is_some() {
        "private_key_jwt"
    } else {
        "client_secret_basic"
    };
    let client = OidcClient {
        client_id: uuid::Uuid::new_v4().to_string(),
        name,
        secret_hash: secret.as_deref().map(sha256_hex),
        public_client: c.public,
        redirect_uris: json!(redirect_uris).to_string(),
        grant_types: json!(grants).to_string(),
        scopes: scopes.join(" "),
        token_endpoint_auth_method: auth_method.to_owned(),
        allow_national_id: c.allow_national_id,
        disabled: false,
        created_at: now,
        updated_at: now,
        post_logout_redirect_uris: json!(post_logout).to_string(),
        backchannel_logout_uri: backchannel,
        subject_type: if c.pairwise { "pairwise" } else { "public" }.to_owned(),
        sector_identifier,
        jwks,
        require_consent: !c.skip_consent,
        id_token_alg,
        registration_token_hash: c.registration_token_hash,
        release_permissions,
    };
    Ok((client, secret))
}

/// Registers a client; returns it with its secret (confidential clients only — shown this once).
pub fn add(
    conn: &mut AnyConnection,
    c: NewClient,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(OidcClient, Option<String>), ClientError> {
    let (client, secret) = build(c, now)?;

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

/// Registers a built-in service as a client under a fixed id with a known secret, or brings an
/// existing registration up to date (redirect URIs follow the public URL). Audited when anything
/// changed; returns whether it did.
pub fn ensure_builtin(
    conn: &mut AnyConnection,
    client_id: &str,
    c: NewClient,
    secret: &str,
    now: NaiveDateTime,
) -> Result<bool, ClientError> {
    let (mut client, _) = build(c, now)?;
    client.client_id = client_id.to_owned();
    client.secret_hash = Some(sha256_hex(secret));
    let existing = oidc_clients::find(conn, client_id)?;
    if let Some(old) = &existing {
        let same = old.redirect_uris == client.redirect_uris
            && old.post_logout_redirect_uris == client.post_logout_redirect_uris
            && old.backchannel_logout_uri == client.backchannel_logout_uri
            && old.secret_hash == client.secret_hash
            && old.scopes == client.scopes
            && old.grant_types == client.grant_types
            && !old.disabled;
        if same {
            return Ok(false);
        }
        client.created_at = old.created_at;
    }
    write_tx(conn, |conn| -> Result<(), ClientError> {
        if existing.is_some() {
            oidc_clients::replace(conn, &client)?;
        } else {
            oidc_clients::insert(conn, &client)?;
        }
        audit::append_in_tx(
            conn,
            event(
                "client.builtin_registered",
                "system",
                client_id,
                json!({ "redirect_uris": client.redirect_uris }),
            ),
            now,
        )?;
        Ok(())
    })?;
    Ok(true)
}

/// Replaces a client's metadata (RFC 7592 update), keeping its id, secret, creation time and
/// registration token (audited).
pub fn update(
    conn: &mut AnyConnection,
    client_id: &str,
    c: NewClient,
    actor: &str,
    now: NaiveDateTime,
) -> Result<OidcClient, ClientError> {
    let old = oidc_clients::find(conn, client_id)?.ok_or(DbError::NotFound("client"))?;
    let (mut client, _) = build(c, now)?;
    if old.public_client != client.public_client
        || old.token_endpoint_auth_method != client.token_endpoint_auth_method
    {
        return Err(invalid(
            "token_endpoint_auth_method",
            "cannot change how an existing client authenticates",
        ));
    }
    // Residents consented to one kind of subject; switching pairwise ↔ public would hand out
    // linkable ids under that consent.
    if old.subject_type != client.subject_type || old.sector_identifier != client.sector_identifier
    {
        return Err(invalid(
            "subject_type",
            "cannot change the subject type of an existing client",
        ));
    }
    client.client_id = old.client_id.clone();
    client.secret_hash = old.secret_hash.clone();
    client.created_at = old.created_at;
    // An update does not re-enable a client an administrator took out of use.
    client.disabled = old.disabled;
    client.registration_token_hash = old.registration_token_hash.clone();
    client.allow_national_id = old.allow_national_id;
    write_tx(conn, |conn| -> Result<(), ClientError> {
        oidc_clients::replace(conn, &client)?;
        audit::append_in_tx(
            conn,
            event(
                "client.updated",
                actor,
                client_id,
                json!({ "name": client.name }),
            ),
            now,
        )?;
        Ok(())
    })?;
    Ok(client)
}

/// What an administrator edits of a client.
#[derive(Debug, Clone, Default)]
pub struct ClientEdit {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: String,
    pub release_permissions: Vec<String>,
    pub skip_consent: bool,
    /// Out of use: no logins, no tokens, no API calls.
    pub disabled: bool,
}

/// Edits a client's name, redirect URIs, scopes, released permissions, consent and whether it is
/// in use; everything else (authentication, subject type, keys) stays. Validated like a new
/// client; audited (`client.updated`, and `client.disabled` / `client.enabled`).
pub fn edit(
    conn: &mut AnyConnection,
    client_id: &str,
    e: ClientEdit,
    actor: &str,
    now: NaiveDateTime,
) -> Result<OidcClient, ClientError> {
    let old = oidc_clients::find(conn, client_id)?.ok_or(DbError::NotFound("client"))?;
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    let n = NewClient {
        name: e.name,
        redirect_uris: e.redirect_uris,
        public: old.public_client,
        grant_types: list(&old.grant_types),
        scopes: e.scopes,
        allow_national_id: old.allow_national_id,
        post_logout_redirect_uris: list(&old.post_logout_redirect_uris),
        backchannel_logout_uri: old.backchannel_logout_uri.clone(),
        pairwise: old.subject_type == "pairwise",
        sector_identifier: old.sector_identifier.clone(),
        jwks: old.jwks.clone(),
        skip_consent: e.skip_consent,
        id_token_alg: Some(old.id_token_alg.clone()),
        registration_token_hash: old.registration_token_hash.clone(),
        release_permissions: e.release_permissions,
    };
    let mut client = update(conn, client_id, n, actor, now)?;
    if client.disabled != e.disabled {
        client.disabled = e.disabled;
        let kind = if e.disabled {
            "client.disabled"
        } else {
            "client.enabled"
        };
        write_tx(conn, |conn| -> Result<(), ClientError> {
            oidc_clients::replace(conn, &client)?;
            audit::append_in_tx(conn, event(kind, actor, client_id, json!({})), now)?;
            Ok(())
        })?;
    }
    Ok(client)
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
        "post_logout_redirect_uris": serde_json::from_str::<serde_json::Value>(&c.post_logout_redirect_uris).unwrap_or_default(),
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "subject_type": c.subject_type,
        "sector_identifier": c.sector_identifier,
        "require_consent": c.require_consent,
        "id_token_signed_response_alg": c.id_token_alg,
        "release_permissions": c.release_permissions.as_deref().map(|s| s.split(' ').collect::<Vec<_>>()).unwrap_or_default(),
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
