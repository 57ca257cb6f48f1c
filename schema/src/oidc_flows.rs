//! Rows of the authorization-code flow: pending authorization requests (also pushed ones, RFC
//! 9126), grants with their codes and refresh tokens, remembered consent, revoked access-token ids
//! and used client-assertion ids. Secrets (codes, refresh tokens) are stored as SHA-256 only.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::AnyConnection;
use crate::schema::{
    oidc_auth_requests, oidc_codes, oidc_consents, oidc_grants, oidc_refresh_tokens,
    oidc_revoked_tokens, oidc_used_assertions,
};
use crate::DbError;

/// A validated authorization request waiting for login or consent, or pushed by a client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_auth_requests)]
pub struct AuthRequest {
    pub id: String,
    pub client_id: String,
    /// The request's parameters as a JSON object.
    pub params: String,
    pub pushed: bool,
    /// The session the consent page was shown to (consent is bound to it).
    pub session_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_auth_request(conn: &mut AnyConnection, r: &AuthRequest) -> Result<(), DbError> {
    diesel::insert_into(oidc_auth_requests::table)
        .values(r)
        .execute(conn)?;
    Ok(())
}

/// The unexpired request with this id.
pub fn find_auth_request(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<Option<AuthRequest>, DbError> {
    Ok(oidc_auth_requests::table
        .find(id)
        .filter(oidc_auth_requests::expires_at.gt(now))
        .select(AuthRequest::as_select())
        .first(conn)
        .optional()?)
}

pub fn bind_auth_request(
    conn: &mut AnyConnection,
    id: &str,
    session_id: &str,
) -> Result<(), DbError> {
    diesel::update(oidc_auth_requests::table.find(id))
        .set(oidc_auth_requests::session_id.eq(Some(session_id)))
        .execute(conn)?;
    Ok(())
}

/// Removes a request; true when it existed (so each one is answered once).
pub fn delete_auth_request(conn: &mut AnyConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(oidc_auth_requests::table.find(id)).execute(conn)? == 1)
}

/// One authorization: who, to which client, for what, from which session. Its codes, refresh
/// tokens and access tokens live and die together.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_grants)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scope: String,
    pub nonce: Option<String>,
    pub acr: String,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_codes)]
pub struct Code {
    pub code_hash: String,
    pub grant_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_refresh_tokens)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// The outcome of presenting a single-use secret (code or refresh token).
#[derive(Debug)]
pub enum Redeemed<T> {
    /// First use: the row (now marked used) and its grant.
    Fresh(T, Grant),
    /// Presented before: the caller must revoke the grant.
    Reused(Grant),
    /// Unknown.
    Unknown,
}

pub fn insert_grant(conn: &mut AnyConnection, g: &Grant) -> Result<(), DbError> {
    diesel::insert_into(oidc_grants::table)
        .values(g)
        .execute(conn)?;
    Ok(())
}

pub fn find_grant(conn: &mut AnyConnection, id: &str) -> Result<Option<Grant>, DbError> {
    Ok(oidc_grants::table
        .find(id)
        .select(Grant::as_select())
        .first(conn)
        .optional()?)
}

/// Revokes a grant (and so its tokens); true when it was live.
pub fn revoke_grant(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(
        oidc_grants::table
            .find(id)
            .filter(oidc_grants::revoked_at.is_null()),
    )
    .set(oidc_grants::revoked_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes the live grants of an SSO session and returns them (for back-channel logout).
pub fn revoke_for_session(
    conn: &mut AnyConnection,
    session_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<Grant>, DbError> {
    let live: Vec<Grant> = oidc_grants::table
        .filter(oidc_grants::session_id.eq(session_id))
        .filter(oidc_grants::revoked_at.is_null())
        .select(Grant::as_select())
        .load(conn)?;
    diesel::update(
        oidc_grants::table
            .filter(oidc_grants::session_id.eq(session_id))
            .filter(oidc_grants::revoked_at.is_null()),
    )
    .set(oidc_grants::revoked_at.eq(Some(now)))
    .execute(conn)?;
    Ok(live)
}

/// Revokes every live grant of a user (password change, account disabled, "end all sessions")
/// and returns them.
pub fn revoke_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<Grant>, DbError> {
    let live: Vec<Grant> = oidc_grants::table
        .filter(oidc_grants::user_id.eq(user_id))
        .filter(oidc_grants::revoked_at.is_null())
        .select(Grant::as_select())
        .load(conn)?;
    diesel::update(
        oidc_grants::table
            .filter(oidc_grants::user_id.eq(user_id))
            .filter(oidc_grants::revoked_at.is_null()),
    )
    .set(oidc_grants::revoked_at.eq(Some(now)))
    .execute(conn)?;
    Ok(live)
}

pub fn insert_code(conn: &mut AnyConnection, c: &Code) -> Result<(), DbError> {
    diesel::insert_into(oidc_codes::table)
        .values(c)
        .execute(conn)?;
    Ok(())
}

/// The code and its grant, without using it (so a code shown by the wrong client is not burnt).
pub fn find_code(
    conn: &mut AnyConnection,
    code_hash: &str,
) -> Result<Option<(Code, Grant)>, DbError> {
    Ok(oidc_codes::table
        .inner_join(oidc_grants::table)
        .filter(oidc_codes::code_hash.eq(code_hash))
        .select((Code::as_select(), Grant::as_select()))
        .first(conn)
        .optional()?)
}

/// Marks a code used, atomically: of two concurrent redemptions exactly one is `Fresh`.
pub fn redeem_code(
    conn: &mut AnyConnection,
    code_hash: &str,
    now: NaiveDateTime,
) -> Result<Redeemed<Code>, DbError> {
    let took = diesel::update(
        oidc_codes::table
            .find(code_hash)
            .filter(oidc_codes::used_at.is_null()),
    )
    .set(oidc_codes::used_at.eq(Some(now)))
    .execute(conn)?;
    let row: Option<(Code, Grant)> = oidc_codes::table
        .inner_join(oidc_grants::table)
        .filter(oidc_codes::code_hash.eq(code_hash))
        .select((Code::as_select(), Grant::as_select()))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((code, grant)) if took == 1 => Redeemed::Fresh(code, grant),
        Some((_, grant)) => Redeemed::Reused(grant),
        None => Redeemed::Unknown,
    })
}

pub fn insert_refresh(conn: &mut AnyConnection, r: &RefreshToken) -> Result<(), DbError> {
    diesel::insert_into(oidc_refresh_tokens::table)
        .values(r)
        .execute(conn)?;
    Ok(())
}

/// Marks a refresh token used, atomically (rotation): a second presentation is `Reused`.
pub fn redeem_refresh(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Redeemed<RefreshToken>, DbError> {
    let took = diesel::update(
        oidc_refresh_tokens::table
            .find(token_hash)
            .filter(oidc_refresh_tokens::used_at.is_null()),
    )
    .set(oidc_refresh_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    let row: Option<(RefreshToken, Grant)> = oidc_refresh_tokens::table
        .inner_join(oidc_grants::table)
        .filter(oidc_refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshToken::as_select(), Grant::as_select()))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((rt, grant)) if took == 1 => Redeemed::Fresh(rt, grant),
        Some((_, grant)) => Redeemed::Reused(grant),
        None => Redeemed::Unknown,
    })
}

/// The refresh token row and its grant, without using it (revocation, introspection).
pub fn find_refresh(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<(RefreshToken, Grant)>, DbError> {
    Ok(oidc_refresh_tokens::table
        .inner_join(oidc_grants::table)
        .filter(oidc_refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshToken::as_select(), Grant::as_select()))
        .first(conn)
        .optional()?)
}

/// The scopes a user has consented to for a client (space-separated).
pub fn consent(
    conn: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
) -> Result<Option<String>, DbError> {
    Ok(oidc_consents::table
        .find((user_id, client_id))
        .select(oidc_consents::scope)
        .first(conn)
        .optional()?)
}

/// Remembers consent (replacing an earlier one); run inside a write transaction.
pub fn save_consent(
    conn: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::delete(oidc_consents::table.find((user_id, client_id))).execute(conn)?;
    diesel::insert_into(oidc_consents::table)
        .values((
            oidc_consents::user_id.eq(user_id),
            oidc_consents::client_id.eq(client_id),
            oidc_consents::scope.eq(scope),
            oidc_consents::granted_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The resident's remembered consents with the client names: (client id, name, scope, when).
pub fn consents_of(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<(String, String, String, NaiveDateTime)>, DbError> {
    use crate::schema::oidc_clients;
    Ok(oidc_consents::table
        .inner_join(oidc_clients::table)
        .filter(oidc_consents::user_id.eq(user_id))
        .order(oidc_clients::name.asc())
        .select((
            oidc_consents::client_id,
            oidc_clients::name,
            oidc_consents::scope,
            oidc_consents::granted_at,
        ))
        .load(conn)?)
}

/// Withdraws a consent and revokes the user's grants to that client; true when one existed.
/// Run inside a write transaction.
pub fn withdraw_consent(
    conn: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::delete(oidc_consents::table.find((user_id, client_id))).execute(conn)?;
    diesel::update(
        oidc_grants::table
            .filter(oidc_grants::user_id.eq(user_id))
            .filter(oidc_grants::client_id.eq(client_id))
            .filter(oidc_grants::revoked_at.is_null()),
    )
    .set(oidc_grants::revoked_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records a revoked access token id until the token would have expired anyway.
pub fn revoke_jti(
    conn: &mut AnyConnection,
    jti: &str,
    expires_at: NaiveDateTime,
) -> Result<(), DbError> {
    match diesel::insert_into(oidc_revoked_tokens::table)
        .values((
            oidc_revoked_tokens::jti.eq(jti),
            oidc_revoked_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
    {
        Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub fn is_jti_revoked(conn: &mut AnyConnection, jti: &str) -> Result<bool, DbError> {
    Ok(oidc_revoked_tokens::table
        .find(jti)
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Records a client assertion's `jti`; false when it was seen before (a replay).
pub fn record_assertion(
    conn: &mut AnyConnection,
    jti: &str,
    expires_at: NaiveDateTime,
) -> Result<bool, DbError> {
    match diesel::insert_into(oidc_used_assertions::table)
        .values((
            oidc_used_assertions::jti.eq(jti),
            oidc_used_assertions::expires_at.eq(expires_at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Housekeeping: drops expired requests, codes, refresh tokens, grants and id lists.
pub fn delete_expired(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<usize, DbError> {
    let mut n =
        diesel::delete(oidc_auth_requests::table.filter(oidc_auth_requests::expires_at.le(now)))
            .execute(conn)?;
    // Used codes are kept a day past expiry so a late replay is still recognised and revokes.
    let day = chrono::Duration::days(1);
    n += diesel::delete(oidc_codes::table.filter(oidc_codes::expires_at.le(now - day)))
        .execute(conn)?;
    n +=
        diesel::delete(oidc_grants::table.filter(oidc_grants::expires_at.le(now))).execute(conn)?;
    n += diesel::delete(oidc_refresh_tokens::table.filter(oidc_refresh_tokens::expires_at.le(now)))
        .execute(conn)?;
    n += diesel::delete(oidc_revoked_tokens::table.filter(oidc_revoked_tokens::expires_at.le(now)))
        .execute(conn)?;
    n += diesel::delete(
        oidc_used_assertions::table.filter(oidc_used_assertions::expires_at.le(now)),
    )
    .execute(conn)?;
    Ok(n)
}

/// Forgets every consent of a user (their erasure); returns how many.
pub fn delete_consents_of(conn: &mut AnyConnection, user_id: &str) -> Result<usize, DbError> {
    Ok(
        diesel::delete(oidc_consents::table.filter(oidc_consents::user_id.eq(user_id)))
            .execute(conn)?,
    )
}

/// A user's grants (authorizations given to relying parties), newest first.
pub fn grants_of(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<Grant>, DbError> {
    Ok(oidc_grants::table
        .filter(oidc_grants::user_id.eq(user_id))
        .order(oidc_grants::created_at.desc())
        .select(Grant::as_select())
        .load(conn)?)
}
