//! The SAML service-provider registry: SPs added from metadata (a file, a URL, or a signed
//! federation aggregate), their per-SP settings, refresh, and what each SP may receive.
//!
//! Metadata is stored as received and re-read when an SP is loaded, so what the IdP acts on is
//! always what an operator can inspect. An SP whose metadata has expired (`validUntil`, or the
//! fetch time plus `cacheDuration`) is no longer trusted until a refresh brings valid metadata;
//! a refresh that fails keeps the last good copy.
//!
//! - here: the registry — adding, configuring, replacing and removing SPs, and loading them.
//! - `aggregate`: signed federation aggregates. `refresh`: fetching metadata and refreshing it.

mod aggregate;
mod refresh;

pub use aggregate::{add_aggregate, read_aggregate};
pub use refresh::{fetch, refresh, RefreshReport};

use chrono::NaiveDateTime;
use kuntalaistili_metadata::saml::metadata::{
    self as md, MetadataError, SpMetadata, NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT,
};
use kuntalaistili_metadata::saml::sign::{self, SignError};
use kuntalaistili_metadata::saml::xml;
use kuntalaistili_schema::pool::{write_tx, AnyConnection};
use kuntalaistili_schema::saml::{self as store, ServiceProvider};
use kuntalaistili_schema::DbError;

fn audited(
    conn: &mut AnyConnection,
    kind: &str,
    actor: &str,
    entity_id: &str,
    details: serde_json::Value,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let mut details = details;
    details["entity_id"] = serde_json::json!(entity_id);
    kuntalaistili_schema::audit::append_in_tx(
        conn,
        kuntalaistili_schema::audit::NewEvent {
            event_type: kind.to_owned(),
            outcome: "success".to_owned(),
            actor: Some(actor.to_owned()),
            subject: None,
            ip: None,
            details,
        },
        now,
    )?;
    Ok(())
}

/// Attributes the IdP can release: friendly name, the URI name SPs expect (Suomi.fi
/// e-Identification and the usual LDAP/eduPerson OIDs), and whether it is sensitive.
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("uid", "urn:oid:0.9.2342.19200300.100.1.1"),
    ("cn", "urn:oid:2.5.4.3"),
    ("displayName", "urn:oid:2.16.840.1.113730.3.1.241"),
    ("givenName", "urn:oid:2.5.4.42"),
    ("sn", "urn:oid:2.5.4.4"),
    ("mail", "urn:oid:0.9.2342.19200300.100.1.3"),
    ("preferredLanguage", "urn:oid:2.16.840.1.113730.3.1.39"),
    ("municipalityCode", "urn:oid:1.2.246.517.2002.2.18"),
    ("nationalIdentificationNumber", "urn:oid:1.2.246.21"),
    ("permissions", "urn:oid:1.3.6.1.4.1.5923.1.1.1.7"),
];

/// Released when an SP is added without `--attributes`.
pub const DEFAULT_ATTRIBUTES: &str = "cn,displayName,givenName,sn,mail";

/// The national identification number: released only to SPs explicitly allowed.
pub const NATIONAL_ID: &str = "nationalIdentificationNumber";

/// Largest metadata document fetched or read.
pub const MAX_METADATA_BYTES: usize = xml::METADATA.max_bytes;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Metadata(#[from] MetadataError),
    #[error("{0}")]
    Signature(#[from] SignError),
    #[error("{0}")]
    Invalid(String),
    #[error("service provider {0} is already registered")]
    Exists(String),
    #[error("service provider {0} is not registered")]
    NotFound(String),
    #[error("fetching metadata: {0}")]
    Fetch(String),
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for RegistryError {
    fn from(e: DbError) -> Self {
        RegistryError::Db(e)
    }
}

impl From<kuntalaistili_schema::QueryError> for RegistryError {
    fn from(e: kuntalaistili_schema::QueryError) -> Self {
        RegistryError::Db(DbError::Query(e))
    }
}

/// Per-SP settings; `None` leaves a setting as it is (or at its default for a new SP).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub require_signed_requests: Option<bool>,
    pub sign_response: Option<bool>,
    pub sign_assertion: Option<bool>,
    pub encrypt_assertions: Option<bool>,
    pub name_id_format: Option<String>,
    pub attributes: Option<Vec<String>>,
    pub allow_national_id: Option<bool>,
    pub release_permissions: Option<String>,
    pub enabled: Option<bool>,
}

/// An SP as the IdP acts on it: the stored row and its parsed metadata.
#[derive(Debug, Clone)]
pub struct Sp {
    pub row: ServiceProvider,
    pub md: SpMetadata,
}

impl Sp {
    /// Enabled and its metadata has not expired.
    pub fn trusted_at(&self, now: NaiveDateTime) -> bool {
        self.row.enabled && self.row.valid_until.is_none_or(|u| u > now)
    }

    /// The attributes released, by friendly name (the national id only when allowed).
    pub fn attributes(&self) -> Vec<&str> {
        self.row
            .attributes
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .filter(|a| *a != NATIONAL_ID || self.row.allow_national_id)
            .collect()
    }

    /// Requests must be signed: by setting, or because the metadata says the SP signs them.
    pub fn requires_signed_requests(&self) -> bool {
        self.row.require_signed_requests || self.md.authn_requests_signed
    }

    /// The assertion is signed unless only the response is (an SP's `WantAssertionsSigned`
    /// wins).
    pub fn signs_assertion(&self) -> bool {
        self.row.sign_assertion || self.md.want_assertions_signed || !self.row.sign_response
    }

    /// The certificate to encrypt assertions to, when encryption is on.
    pub fn encryption_cert(&self) -> Option<&[u8]> {
        if !self.row.encrypt_assertions {
            return None;
        }
        self.md.encryption_certs.first().map(Vec::as_slice)
    }

    /// JSON for the CLI and the admin API.
    pub fn to_json(&self) -> serde_json::Value {
        let endpoints = |e: &[md::Endpoint]| -> Vec<serde_json::Value> {
            e.iter()
                .map(|e| serde_json::json!({ "binding": e.binding, "location": e.location, "index": e.index, "is_default": e.is_default }))
                .collect()
        };
        serde_json::json!({
            "entity_id": self.row.entity_id,
            "enabled": self.row.enabled,
            "source_url": self.row.source_url,
            "aggregate_url": self.row.aggregate_url,
            "valid_until": self.row.valid_until.map(kuntalaistili_schema::iso_utc),
            "fetched_at": kuntalaistili_schema::iso_utc(self.row.fetched_at),
            "require_signed_requests": self.requires_signed_requests(),
            "sign_response": self.row.sign_response,
            "sign_assertion": self.signs_assertion(),
            "encrypt_assertions": self.row.encrypt_assertions,
            "name_id_format": self.row.name_id_format,
            "attributes": self.attributes(),
            "allow_national_id": self.row.allow_national_id,
            "release_permissions": self.row.release_permissions,
            "assertion_consumer_services": endpoints(&self.md.acs),
            "single_logout_services": endpoints(&self.md.slo),
            "signing_certificates": self.md.signing_certs.len(),
            "expired_certificates": self
                .md
                .signing_certs
                .iter()
                .chain(&self.md.encryption_certs)
                .filter(|c| sign::cert_expired(c))
                .count(),
            "encryption_certificates": self.md.encryption_certs.len(),
        })
    }
}

fn check_name_id_format(f: &str) -> Result<(), RegistryError> {
    if [NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_EMAIL].contains(&f) {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "name id format {f:?} is not one of {NAMEID_PERSISTENT}, {NAMEID_TRANSIENT}, {NAMEID_EMAIL}"
        )))
    }
}

fn check_attributes(list: &[String]) -> Result<String, RegistryError> {
    let mut out: Vec<&str> = Vec::new();
    for a in list.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        if !ATTRIBUTES.iter().any(|(n, _)| *n == a) {
            let known: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
            return Err(RegistryError::Invalid(format!(
                "unknown attribute {a:?}; known: {}",
                known.join(", ")
            )));
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out.join(","))
}

fn apply(row: &mut ServiceProvider, s: &Settings) -> Result<(), RegistryError> {
    if let Some(v) = s.require_signed_requests {
        row.require_signed_requests = v;
    }
    if let Some(v) = s.sign_response {
        row.sign_response = v;
    }
    if let Some(v) = s.sign_assertion {
        row.sign_assertion = v;
    }
    if let Some(v) = s.encrypt_assertions {
        row.encrypt_assertions = v;
    }
    if let Some(f) = &s.name_id_format {
        check_name_id_format(f)?;
        row.name_id_format = f.clone();
    }
    if let Some(a) = &s.attributes {
        row.attributes = check_attributes(a)?;
    }
    if let Some(v) = s.allow_national_id {
        row.allow_national_id = v;
    }
    if let Some(p) = &s.release_permissions {
        let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
        if p.split(' ').any(|s| {
            !s.is_empty()
                && s != "*"
                && !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            return Err(RegistryError::Invalid(
                "release_permissions: service names (letters, digits, - and _) or *".into(),
            ));
        }
        row.release_permissions = p;
    }
    if let Some(v) = s.enabled {
        row.enabled = v;
    }
    Ok(())
}

/// The expiry of freshly read metadata: its `validUntil`, or the fetch time plus its
/// `cacheDuration`, whichever is earlier.
fn expiry(m: &SpMetadata, now: NaiveDateTime) -> Option<NaiveDateTime> {
    let by_cache = m.cache_duration.map(|d| now + d);
    match (m.valid_until, by_cache) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// SAML trusts the keys in metadata, not certificate dates, so an expired certificate still
/// verifies; operators are told (log and `sp show`) so they can ask the SP for new metadata.
fn warn_expired(m: &SpMetadata) {
    let expired = m
        .signing_certs
        .iter()
        .chain(&m.encryption_certs)
        .filter(|c| sign::cert_expired(c))
        .count();
    if expired > 0 {
        tracing::warn!(entity = %m.entity_id, expired, "SP metadata carries expired certificates");
    }
}

/// The row of a newly registered SP, from its metadata `m` (stored as `stored_xml`) with the
/// defaults: persistent NameIDs, the default attributes, signed assertions, enabled.
fn new_row(
    m: &SpMetadata,
    stored_xml: String,
    source_url: Option<String>,
    aggregate_url: Option<String>,
    now: NaiveDateTime,
) -> ServiceProvider {
    ServiceProvider {
        entity_id: m.entity_id.clone(),
        metadata_xml: stored_xml,
        source_url,
        aggregate_url,
        valid_until: expiry(m, now),
        fetched_at: now,
        require_signed_requests: false,
        sign_response: false,
        sign_assertion: true,
        encrypt_assertions: false,
        name_id_format: NAMEID_PERSISTENT.to_owned(),
        attributes: DEFAULT_ATTRIBUTES.to_owned(),
        allow_national_id: false,
        release_permissions: String::new(),
        enabled: true,
        left_aggregate_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// Reads one SP's metadata document; refuses aggregates (they need `add_aggregate` and a
/// certificate) and expired metadata.
pub fn read_single(
    metadata_xml: &str,
    now: NaiveDateTime,
) -> Result<(SpMetadata, String), RegistryError> {
    let root = xml::parse(metadata_xml, xml::METADATA).map_err(MetadataError::from)?;
    if root.is(xml::NS_MD, "EntitiesDescriptor") {
        return Err(RegistryError::Invalid(
            "this is an aggregate (EntitiesDescriptor): add it with `sp add-aggregate --url … --cert …`, which verifies its signature".into(),
        ));
    }
    let mut found = md::read_document(&root)?;
    let (m, xml) = found.remove(0);
    if m.valid_until.is_some_and(|u| u <= now) {
        return Err(MetadataError::Expired(md::saml_time(m.valid_until.unwrap_or(now))).into());
    }
    Ok((m, xml))
}

/// Registers an SP from its metadata.
pub fn add(
    conn: &mut AnyConnection,
    metadata_xml: &str,
    source_url: Option<&str>,
    settings: &Settings,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Sp, RegistryError> {
    let (m, stored_xml) = read_single(metadata_xml, now)?;
    let mut row = new_row(&m, stored_xml, source_url.map(str::to_owned), None, now);
    apply(&mut row, settings)?;
    if row.encrypt_assertions && m.encryption_certs.is_empty() {
        return Err(RegistryError::Invalid(format!(
            "{} publishes no encryption key, so assertions cannot be encrypted for it",
            m.entity_id
        )));
    }
    let added = write_tx(conn, |conn| -> Result<(), DbError> {
        store::insert_sp(conn, &row)?;
        audited(
            conn,
            "saml.sp_added",
            actor,
            &row.entity_id,
            serde_json::json!({ "source_url": row.source_url, "attributes": row.attributes }),
            now,
        )
    });
    match added {
        Err(DbError::Conflict(_)) => return Err(RegistryError::Exists(row.entity_id)),
        other => other?,
    }
    warn_expired(&m);
    Ok(Sp { row, md: m })
}

/// Loads an SP (any state; callers check [`Sp::trusted_at`]).
pub fn load(conn: &mut AnyConnection, entity_id: &str) -> Result<Option<Sp>, RegistryError> {
    let Some(row) = store::find_sp(conn, entity_id)? else {
        return Ok(None);
    };
    let root = xml::parse(&row.metadata_xml, xml::METADATA).map_err(MetadataError::from)?;
    let valid = row.valid_until;
    let md = md::read_entity(&root, valid)?;
    Ok(Some(Sp { row, md }))
}

pub fn list(conn: &mut AnyConnection) -> Result<Vec<Sp>, RegistryError> {
    let mut out = Vec::new();
    for row in store::list_sps(conn)? {
        let root = xml::parse(&row.metadata_xml, xml::METADATA).map_err(MetadataError::from)?;
        let md = md::read_entity(&root, row.valid_until)?;
        out.push(Sp { row, md });
    }
    Ok(out)
}

/// Changes an SP's settings.
pub fn configure(
    conn: &mut AnyConnection,
    entity_id: &str,
    settings: &Settings,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Sp, RegistryError> {
    let mut sp = load(conn, entity_id)?.ok_or_else(|| RegistryError::NotFound(entity_id.into()))?;
    apply(&mut sp.row, settings)?;
    // An operator who enables or disables it decides: a later return to the aggregate does not
    // override that. Other settings leave the "left the aggregate" mark as it is.
    if settings.enabled.is_some() {
        sp.row.left_aggregate_at = None;
    }
    if sp.row.encrypt_assertions && sp.md.encryption_certs.is_empty() {
        return Err(RegistryError::Invalid(format!(
            "{entity_id} publishes no encryption key, so assertions cannot be encrypted for it"
        )));
    }
    sp.row.updated_at = now;
    write_tx(conn, |conn| -> Result<(), DbError> {
        store::update_sp(conn, &sp.row)?;
        audited(
            conn,
            "saml.sp_configured",
            actor,
            entity_id,
            sp.to_json(),
            now,
        )
    })?;
    Ok(sp)
}

/// Replaces an SP's metadata with a newer copy (same entity ID), keeping its settings.
pub fn replace_metadata(
    conn: &mut AnyConnection,
    entity_id: &str,
    metadata_xml: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Sp, RegistryError> {
    let mut sp = load(conn, entity_id)?.ok_or_else(|| RegistryError::NotFound(entity_id.into()))?;
    let (m, stored_xml) = read_single(metadata_xml, now)?;
    if m.entity_id != entity_id {
        return Err(RegistryError::Invalid(format!(
            "the metadata describes {}, not {entity_id}",
            m.entity_id
        )));
    }
    sp.row.metadata_xml = stored_xml;
    sp.row.valid_until = expiry(&m, now);
    sp.row.fetched_at = now;
    sp.row.updated_at = now;
    write_tx(conn, |conn| -> Result<(), DbError> {
        store::update_sp(conn, &sp.row)?;
        audited(
            conn,
            "saml.sp_refreshed",
            actor,
            entity_id,
            serde_json::json!({}),
            now,
        )
    })?;
    Ok(Sp { row: sp.row, md: m })
}

pub fn remove(
    conn: &mut AnyConnection,
    entity_id: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), RegistryError> {
    let removed = write_tx(conn, |conn| -> Result<bool, DbError> {
        if !store::delete_sp(conn, entity_id)? {
            return Ok(false);
        }
        audited(
            conn,
            "saml.sp_removed",
            actor,
            entity_id,
            serde_json::json!({}),
            now,
        )?;
        Ok(true)
    })?;
    if removed {
        Ok(())
    } else {
        Err(RegistryError::NotFound(entity_id.into()))
    }
}
