//! Stored OIDC clients (rows only; validation and rules live in `kuntalaistili-federation`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::AnyConnection;
use crate::schema::oidc_clients;
use crate::DbError;

/// A client. List-valued fields are stored as JSON arrays (`redirect_uris`, `grant_types`) and
/// scopes space-separated, as on the wire.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = oidc_clients, treat_none_as_null = true)]
pub struct OidcClient {
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub public_client: bool,
    pub redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub token_endpoint_auth_method: String,
    pub allow_national_id: bool,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// JSON array of URIs allowed after RP-initiated logout (exact match).
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: Option<String>,
    /// `public` or `pairwise`.
    pub subject_type: String,
    /// Host that pairwise subjects are computed for (defaults to the redirect URIs' host).
    pub sector_identifier: Option<String>,
    /// The client's public keys (JWKS JSON) for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Ask the resident before releasing claims (first-party services may skip it).
    pub require_consent: bool,
    /// `RS256` (the OIDC default) or `ES256`.
    pub id_token_alg: String,
    /// SHA-256 of the RFC 7592 registration access token (dynamically registered clients).
    pub registration_token_hash: Option<String>,
    /// Services (space-separated, `*` for all) whose permissions this client receives in the
    /// `permissions` claim; none when unset.
    pub release_permissions: Option<String>,
}

pub fn insert(conn: &mut AnyConnection, c: &OidcClient) -> Result<(), DbError> {
    diesel::insert_into(oidc_clients::table)
        .values(c)
        .execute(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                DbError::Conflict("client")
            }
            other => DbError::Query(other),
        })?;
    Ok(())
}

/// Overwrites every column of an existing client (its grants stay).
pub fn replace(conn: &mut AnyConnection, c: &OidcClient) -> Result<(), DbError> {
    let n = diesel::update(oidc_clients::table.find(&c.client_id))
        .set(c)
        .execute(conn)?;
    if n == 0 {
        return Err(DbError::NotFound("client"));
    }
    Ok(())
}

pub fn find(conn: &mut AnyConnection, client_id: &str) -> Result<Option<OidcClient>, DbError> {
    Ok(oidc_clients::table
        .find(client_id)
        .select(OidcClient::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut AnyConnection) -> Result<Vec<OidcClient>, DbError> {
    Ok(oidc_clients::table
        .order((oidc_clients::name.asc(), oidc_clients::client_id.asc()))
        .select(OidcClient::as_select())
        .load(conn)?)
}

pub fn delete(conn: &mut AnyConnection, client_id: &str) -> Result<(), DbError> {
    let n = diesel::delete(oidc_clients::table.find(client_id)).execute(conn)?;
    if n == 0 {
        return Err(DbError::NotFound("client"));
    }
    Ok(())
}

pub fn set_secret_hash(
    conn: &mut AnyConnection,
    client_id: &str,
    secret_hash: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let n = diesel::update(oidc_clients::table.find(client_id))
        .set((
            oidc_clients::secret_hash.eq(Some(secret_hash)),
            oidc_clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(DbError::NotFound("client"));
    }
    Ok(())
}
