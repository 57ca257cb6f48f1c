//! The resident's rights over their data (GDPR art. 15, 17, 20): a complete export as JSON, and
//! erasure — the account closes at once, the personal data is overwritten after the retention
//! period (so a mistaken or forced request can still be undone by an administrator, and ongoing
//! matters can be settled), and the audit log keeps its rows (they name the person only by id).

use chrono::NaiveDateTime;
use kuntalaistili_metadata::crypto::MasterKeys;
use kuntalaistili_schema::pool::write_tx;
use kuntalaistili_schema::{audit, authz, iso_utc, oidc_flows, outbox, sessions, users};
use kuntalaistili_schema::{AnyConnection, DbError};
use serde_json::{json, Value};

use crate::audit::{kind, Event};

/// Closes the account at the person's request: sessions end, grants and refresh tokens stop,
/// rights leave every node's index; the data itself waits for the retention period.
pub fn request_erasure(
    conn: &mut AnyConnection,
    user_id: &str,
    actor: &str,
    ip: Option<String>,
    retention_days: i64,
    now: NaiveDateTime,
) -> Result<Vec<oidc_flows::Grant>, DbError> {
    write_tx(conn, |conn| -> Result<Vec<oidc_flows::Grant>, DbError> {
        users::request_erasure(conn, user_id, now)?;
        let ended = sessions::delete_all_for_user(conn, user_id)?;
        let revoked = oidc_flows::revoke_for_user(conn, user_id, now)?;
        authz::bump(conn)?;
        audit::append_in_tx(
            conn,
            Event::success(kind::USER_ERASURE_REQUESTED)
                .actor(actor)
                .subject(user_id)
                .ip(ip)
                .details(json!({
                    "sessions_ended": ended,
                    "grants_revoked": revoked.len(),
                    "erase_after": iso_utc(now + chrono::Duration::days(retention_days)),
                }))
                .into_new(),
            now,
        )?;
        Ok(revoked)
    })
}

/// Overwrites the personal data of everyone whose erasure request is older than the retention
/// period: register fields, national id, consents, own rights, messages. Returns how many.
pub fn erase_due(
    conn: &mut AnyConnection,
    retention_days: i64,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    let due = users::due_for_erasure(conn, now - chrono::Duration::days(retention_days), 500)?;
    for id in &due {
        write_tx(conn, |conn| -> Result<(), DbError> {
            users::overwrite_personal_data(conn, id, now)?;
            let consents = oidc_flows::delete_consents_of(conn, id)?;
            let rights = authz::delete_for_user(conn, id)?;
            let messages = outbox::delete_for_recipient(conn, id)?;
            authz::bump(conn)?;
            audit::append_in_tx(
                conn,
                Event::success(kind::USER_ERASED)
                    .actor("retention")
                    .subject(id.clone())
                    .details(json!({
                        "consents": consents,
                        "rights": rights,
                        "messages": messages,
                    }))
                    .into_new(),
                now,
            )?;
            Ok(())
        })?;
    }
    Ok(due.len())
}

/// Everything the IdP holds about a person, as one JSON document; the export itself is audited.
pub fn export(
    conn: &mut AnyConnection,
    keys: &MasterKeys,
    user_id: &str,
    ip: Option<String>,
    now: NaiveDateTime,
) -> Result<Option<Value>, DbError> {
    let Some(u) = users::find_by_id(conn, user_id)? else {
        return Ok(None);
    };
    let national_id = u
        .national_id_enc
        .as_deref()
        .and_then(|e| keys.decrypt_national_id(e).ok());
    let t = |t: Option<NaiveDateTime>| t.map(iso_utc);
    let person = json!({
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "disabled": u.disabled,
        "given_name": u.given_name,
        "family_name": u.family_name,
        "email": u.email,
        "phone": u.phone,
        "street_address": u.street_address,
        "postal_code": u.postal_code,
        "locality": u.locality,
        "country": u.country,
        "home_municipality": u.home_municipality,
        "preferred_language": u.preferred_language,
        "national_id": national_id,
        "message_channels": u.message_channels.split_whitespace().collect::<Vec<_>>(),
        // The identifier a provisioning system (SCIM) keeps for the person.
        "external_id": u.external_id,
        "created_at": iso_utc(u.created_at),
        "updated_at": iso_utc(u.updated_at),
        "erasure_requested_at": t(u.erasure_requested_at),
    });
    let sessions: Vec<Value> = sessions::list_for_user(conn, user_id, now)?
        .iter()
        .map(|s| {
            json!({
                "created_at": iso_utc(s.created_at),
                "last_seen_at": iso_utc(s.last_seen_at),
                "expires_at": iso_utc(s.expires_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
            })
        })
        .collect();
    let consents: Vec<Value> = oidc_flows::consents_of(conn, user_id)?
        .into_iter()
        .map(|(client_id, name, scope, at)| {
            json!({ "client_id": client_id, "service": name, "scope": scope, "granted_at": iso_utc(at) })
        })
        .collect();
    let authorizations: Vec<Value> = oidc_flows::grants_of(conn, user_id)?
        .iter()
        .map(|g| {
            json!({
                "client_id": g.client_id,
                "scope": g.scope,
                "created_at": iso_utc(g.created_at),
                "expires_at": iso_utc(g.expires_at),
                "revoked_at": t(g.revoked_at),
            })
        })
        .collect();
    let rights: Vec<Value> = authz::entitlements(conn, user_id)?
        .iter()
        .map(|e| {
            json!({
                "permission": e.permission,
                "role": e.role,
                "group": e.group,
                "valid_from": t(e.valid_from),
                "valid_until": t(e.valid_until),
            })
        })
        .collect();
    let messages: Vec<Value> = outbox::for_recipient(conn, user_id)?
        .iter()
        .map(|m| {
            json!({
                "sender": m.sender,
                "service": m.service,
                "channel": m.channel,
                "address": m.address,
                "language": m.language,
                "subject": m.subject,
                "body": m.body,
                "link": m.link,
                "status": m.status,
                "created_at": iso_utc(m.created_at),
                "sent_at": t(m.sent_at),
            })
        })
        .collect();
    let events: Vec<Value> = audit::recent(conn, None, Some(user_id), 10_000)?
        .iter()
        .map(|e| {
            json!({
                "occurred_at": iso_utc(e.occurred_at),
                "event_type": e.event_type,
                "outcome": e.outcome,
                "actor": e.actor,
                "ip": e.ip,
                "details": serde_json::from_str::<Value>(&e.details).unwrap_or(Value::Null),
            })
        })
        .collect();
    audit::append(
        conn,
        Event::success(kind::USER_EXPORTED)
            .actor(user_id)
            .subject(user_id)
            .ip(ip)
            .into_new(),
        now,
    )?;
    Ok(Some(json!({
        "format": "kuntalaistili-export/1",
        "exported_at": iso_utc(now),
        "person": person,
        "groups": authz::groups_of(conn, user_id)?,
        "access_rights": rights,
        "sessions": sessions,
        "consents": consents,
        "authorizations": authorizations,
        "messages": messages,
        "audit_events": events,
        "not_included": "notices on the notice board are held by the notice board service and shown there",
    })))
}
