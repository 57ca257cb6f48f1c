//! Stored token-signing keys (rows only; generation, rotation rules and signing live in
//! `kuntalaistili-metadata`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::pool::AnyConnection;
use crate::schema::signing_keys;
use crate::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    /// The public JWK (JSON text).
    pub public_jwk: String,
    /// The private key, encrypted (`v1:` + base64).
    pub private_key_enc: String,
    pub created_at: NaiveDateTime,
    /// Signing starts.
    pub activates_at: NaiveDateTime,
    /// Signing stops (a successor took over).
    pub retires_at: Option<NaiveDateTime>,
    /// The key leaves the JWKS (tokens it signed have expired).
    pub expires_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut AnyConnection, key: &SigningKey) -> Result<(), DbError> {
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(conn)?;
    Ok(())
}

/// Keys still published at `now` (not expired), oldest activation first.
pub fn published(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<Vec<SigningKey>, DbError> {
    Ok(signing_keys::table
        .filter(
            signing_keys::expires_at
                .is_null()
                .or(signing_keys::expires_at.gt(now)),
        )
        .order((signing_keys::activates_at.asc(), signing_keys::kid.asc()))
        .select(SigningKey::as_select())
        .load(conn)?)
}

/// Ends a key's signing at `retires_at` and its publication at `expires_at`.
pub fn schedule_retirement(
    conn: &mut AnyConnection,
    kid: &str,
    retires_at: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(signing_keys::table.find(kid))
        .set((
            signing_keys::retires_at.eq(Some(retires_at)),
            signing_keys::expires_at.eq(Some(expires_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Housekeeping: removes keys that left the JWKS before `before`.
pub fn delete_expired(conn: &mut AnyConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(
        diesel::delete(signing_keys::table.filter(signing_keys::expires_at.le(before)))
            .execute(conn)?,
    )
}
