//! Stored SAML state: service providers (their metadata as received plus per-SP settings), signed
//! metadata aggregates, the replay cache of message IDs, the SPs that took part in an SSO session,
//! and Single Logout rounds in progress. Parsing and protocol rules live elsewhere.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::pool::AnyConnection;
use crate::schema::{
    saml_aggregates, saml_logouts, saml_participant_names, saml_participants, saml_replay, saml_sps,
};
use crate::DbError;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = saml_sps, treat_none_as_null = true)]
pub struct ServiceProvider {
    pub entity_id: String,
    /// The `EntityDescriptor` as received (re-parsed when loaded).
    pub metadata_xml: String,
    /// Where the metadata was fetched from (refreshed from there), if not from a file.
    pub source_url: Option<String>,
    /// The signed aggregate this SP came from, if any.
    pub aggregate_url: Option<String>,
    /// The metadata's `validUntil` (or fetch time + `cacheDuration`): no trust after it.
    pub valid_until: Option<NaiveDateTime>,
    pub fetched_at: NaiveDateTime,
    pub require_signed_requests: bool,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub encrypt_assertions: bool,
    /// NameID format used when the request does not ask for one.
    pub name_id_format: String,
    /// Attributes released (comma-separated friendly names).
    pub attributes: String,
    /// Whether the national identification number may be released.
    pub allow_national_id: bool,
    /// Services whose permissions are released (space-separated, `*` = all, empty = none).
    pub release_permissions: String,
    pub enabled: bool,
    /// When the SP left the aggregate it came from (and was disabled for it); cleared when it
    /// comes back (enabled again) or an operator sets it.
    pub left_aggregate_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Adds an SP; `Conflict` when the entity ID is registered.
pub fn insert_sp(conn: &mut AnyConnection, sp: &ServiceProvider) -> Result<(), DbError> {
    match diesel::insert_into(saml_sps::table)
        .values(sp)
        .execute(conn)
    {
        Ok(_) => Ok(()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(DbError::Conflict("service provider"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Replaces an SP's row; `NotFound` when it is not registered.
pub fn update_sp(conn: &mut AnyConnection, sp: &ServiceProvider) -> Result<(), DbError> {
    let n = diesel::update(saml_sps::table.find(&sp.entity_id))
        .set(sp)
        .execute(conn)?;
    if n == 0 {
        return Err(DbError::NotFound("service provider"));
    }
    Ok(())
}

pub fn find_sp(
    conn: &mut AnyConnection,
    entity_id: &str,
) -> Result<Option<ServiceProvider>, DbError> {
    Ok(saml_sps::table
        .find(entity_id)
        .select(ServiceProvider::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_sps(conn: &mut AnyConnection) -> Result<Vec<ServiceProvider>, DbError> {
    Ok(saml_sps::table
        .order(saml_sps::entity_id.asc())
        .select(ServiceProvider::as_select())
        .load(conn)?)
}

/// Removes an SP and its session records; false when it was not registered.
pub fn delete_sp(conn: &mut AnyConnection, entity_id: &str) -> Result<bool, DbError> {
    diesel::delete(
        saml_participant_names::table.filter(saml_participant_names::sp_entity_id.eq(entity_id)),
    )
    .execute(conn)?;
    diesel::delete(saml_participants::table.filter(saml_participants::sp_entity_id.eq(entity_id)))
        .execute(conn)?;
    Ok(diesel::delete(saml_sps::table.find(entity_id)).execute(conn)? > 0)
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = saml_aggregates)]
pub struct Aggregate {
    pub url: String,
    /// The certificate whose key must have signed the aggregate (PEM).
    pub cert_pem: String,
    pub valid_until: Option<NaiveDateTime>,
    pub fetched_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// Adds or replaces an aggregate's record. Run it inside the caller's write transaction.
pub fn save_aggregate(conn: &mut AnyConnection, a: &Aggregate) -> Result<(), DbError> {
    diesel::delete(saml_aggregates::table.find(&a.url)).execute(conn)?;
    diesel::insert_into(saml_aggregates::table)
        .values(a)
        .execute(conn)?;
    Ok(())
}

pub fn aggregates(conn: &mut AnyConnection) -> Result<Vec<Aggregate>, DbError> {
    Ok(saml_aggregates::table
        .order(saml_aggregates::url.asc())
        .select(Aggregate::as_select())
        .load(conn)?)
}

/// Records a message ID (`key` names its issuer too); false when it was seen before (a replay).
/// Expired entries are swept now and then by [`sweep_replay`].
pub fn record_message_id(
    conn: &mut AnyConnection,
    key: &str,
    expires_at: NaiveDateTime,
) -> Result<bool, DbError> {
    match diesel::insert_into(saml_replay::table)
        .values((
            saml_replay::replay_key.eq(key),
            saml_replay::expires_at.eq(expires_at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes replay entries and logout rounds that expired before `now`.
pub fn sweep_replay(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<usize, DbError> {
    let n =
        diesel::delete(saml_replay::table.filter(saml_replay::expires_at.lt(now))).execute(conn)?;
    diesel::delete(saml_logouts::table.filter(saml_logouts::expires_at.lt(now))).execute(conn)?;
    Ok(n)
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = saml_participants)]
pub struct Participant {
    pub session_id: String,
    pub sp_entity_id: String,
    pub name_id: String,
    pub name_id_format: String,
    pub session_index: String,
    pub created_at: NaiveDateTime,
}

/// Records that an SP received an assertion in a session: the participant row keeps the latest
/// NameID (used when the IdP tells the SP), and every NameID issued to the SP in the session is
/// remembered for its LogoutRequests. Run it inside the caller's write transaction.
pub fn record_participant(conn: &mut AnyConnection, p: &Participant) -> Result<(), DbError> {
    diesel::delete(saml_participants::table.find((p.session_id.as_str(), p.sp_entity_id.as_str())))
        .execute(conn)?;
    diesel::insert_into(saml_participants::table)
        .values(p)
        .execute(conn)?;
    // Two answers at once to the same SP in one session may carry the same NameID: the second
    // insert is a no-op, not an error.
    let stmt = diesel::insert_into(saml_participant_names::table)
        .values((
            saml_participant_names::session_id.eq(&p.session_id),
            saml_participant_names::sp_entity_id.eq(&p.sp_entity_id),
            saml_participant_names::name_id.eq(&p.name_id),
            saml_participant_names::created_at.eq(p.created_at),
        ))
        .on_conflict_do_nothing();
    match conn {
        AnyConnection::Postgresql(pg) => stmt.execute(pg)?,
        AnyConnection::Sqlite(lite) => stmt.execute(lite)?,
    };
    Ok(())
}

/// The SPs that took part in a session.
pub fn participants(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<Participant>, DbError> {
    Ok(saml_participants::table
        .filter(saml_participants::session_id.eq(session_id))
        .order(saml_participants::created_at.asc())
        .select(Participant::as_select())
        .load(conn)?)
}

/// The sessions in which an SP was issued `name_id` (any NameID it got in the session, not only
/// the latest), narrowed to the session of `session_index` when given.
pub fn find_participation(
    conn: &mut AnyConnection,
    sp_entity_id: &str,
    name_id: &str,
    session_index: Option<&str>,
) -> Result<Vec<Participant>, DbError> {
    let sessions = saml_participant_names::table
        .filter(saml_participant_names::sp_entity_id.eq(sp_entity_id))
        .filter(saml_participant_names::name_id.eq(name_id))
        .select(saml_participant_names::session_id);
    let mut q = saml_participants::table
        .filter(saml_participants::sp_entity_id.eq(sp_entity_id))
        .filter(saml_participants::session_id.eq_any(sessions))
        .into_boxed();
    if let Some(ix) = session_index {
        q = q.filter(saml_participants::session_index.eq(ix));
    }
    Ok(q.select(Participant::as_select()).load(conn)?)
}

/// Stores a logout round's state (JSON) until `expires_at`.
pub fn save_logout(
    conn: &mut AnyConnection,
    id: &str,
    state: &str,
    expires_at: NaiveDateTime,
) -> Result<(), DbError> {
    crate::pool::write_tx(conn, |conn| -> Result<(), DieselError> {
        diesel::delete(saml_logouts::table.find(id)).execute(conn)?;
        diesel::insert_into(saml_logouts::table)
            .values((
                saml_logouts::id.eq(id),
                saml_logouts::state.eq(state),
                saml_logouts::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok(())
    })?;
    Ok(())
}

/// A logout round's state, while it has not expired.
pub fn find_logout(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, DbError> {
    Ok(saml_logouts::table
        .find(id)
        .filter(saml_logouts::expires_at.gt(now))
        .select(saml_logouts::state)
        .first(conn)
        .optional()?)
}

pub fn delete_logout(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    diesel::delete(saml_logouts::table.find(id)).execute(conn)?;
    Ok(())
}
