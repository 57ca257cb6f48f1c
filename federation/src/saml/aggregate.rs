//! Signed federation aggregates: read one (its signature must verify with the federation's
//! certificate and cover the root; it must not have expired) and register every SP in it.

use chrono::NaiveDateTime;
use kuntalaistili_metadata::saml::metadata::{self as md, MetadataError, SpMetadata};
use kuntalaistili_metadata::saml::sign;
use kuntalaistili_metadata::saml::xml;
use kuntalaistili_schema::pool::{write_tx, AnyConnection};
use kuntalaistili_schema::saml::{self as store, Aggregate};

use super::{audited, expiry, new_row, RegistryError};

/// Reads a signed aggregate: the signature must verify with `cert_der` and cover the root, and
/// the aggregate must not have expired. Returns the SPs in it.
pub fn read_aggregate(
    metadata_xml: &str,
    cert_der: &[u8],
    now: NaiveDateTime,
) -> Result<Vec<(SpMetadata, String)>, RegistryError> {
    let root = sign::verify_enveloped(metadata_xml, &[cert_der.to_vec()], xml::METADATA)?;
    if let Some(u) = root.attr("validUntil").and_then(md::parse_time) {
        if u <= now {
            return Err(MetadataError::Expired(md::saml_time(u)).into());
        }
    }
    let entities = md::read_document(&root)?;
    Ok(entities
        .into_iter()
        .filter(|(m, _)| m.valid_until.is_none_or(|u| u > now))
        .collect())
}

/// Registers (or refreshes) every SP of a signed aggregate. SPs added before from elsewhere are
/// left alone; SPs of this aggregate that left it are disabled. Returns the entity IDs read.
pub fn add_aggregate(
    conn: &mut AnyConnection,
    url: &str,
    cert_pem: &str,
    metadata_xml: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Vec<String>, RegistryError> {
    let cert = sign::cert_der_from_pem(cert_pem)?;
    let entities = read_aggregate(metadata_xml, &cert, now)?;
    let ids = write_tx(conn, |conn| -> Result<Vec<String>, RegistryError> {
        let mut ids = Vec::new();
        for (m, stored_xml) in &entities {
            match store::find_sp(conn, &m.entity_id)? {
                Some(existing) if existing.aggregate_url.as_deref() != Some(url) => {
                    tracing::warn!(entity = %m.entity_id, "aggregate entry skipped: registered from elsewhere");
                    continue;
                }
                Some(mut existing) => {
                    existing.metadata_xml = stored_xml.clone();
                    existing.valid_until = expiry(m, now);
                    existing.fetched_at = now;
                    existing.updated_at = now;
                    // Back in the aggregate after leaving it: enabled again. An operator's own
                    // disable (no `left_aggregate_at`) stands.
                    // One that was allowed the national id or permissions waits for an
                    // operator: the federation may have removed it for a reason.
                    if existing.left_aggregate_at.take().is_some() {
                        let elevated =
                            existing.allow_national_id || !existing.release_permissions.is_empty();
                        existing.enabled = !elevated;
                        audited(
                            conn,
                            "saml.sp_rejoined",
                            actor,
                            &m.entity_id,
                            serde_json::json!({ "aggregate": url, "enabled": !elevated }),
                            now,
                        )?;
                    }
                    store::update_sp(conn, &existing)?;
                }
                None => {
                    store::insert_sp(
                        conn,
                        &new_row(m, stored_xml.clone(), None, Some(url.to_owned()), now),
                    )?;
                }
            }
            ids.push(m.entity_id.clone());
        }
        for mut gone in store::list_sps(conn)?.into_iter().filter(|s| {
            s.aggregate_url.as_deref() == Some(url)
                && !ids.contains(&s.entity_id)
                && s.enabled
                && s.left_aggregate_at.is_none()
        }) {
            gone.enabled = false;
            gone.left_aggregate_at = Some(now);
            gone.updated_at = now;
            store::update_sp(conn, &gone)?;
            audited(
                conn,
                "saml.sp_left",
                actor,
                &gone.entity_id,
                serde_json::json!({ "aggregate": url }),
                now,
            )?;
        }
        store::save_aggregate(
            conn,
            &Aggregate {
                url: url.to_owned(),
                cert_pem: cert_pem.to_owned(),
                valid_until: None,
                fetched_at: Some(now),
                created_at: now,
            },
        )?;
        audited(
            conn,
            "saml.aggregate_loaded",
            actor,
            url,
            serde_json::json!({ "entities": ids.len() }),
            now,
        )?;
        Ok(ids)
    })?;
    Ok(ids)
}
