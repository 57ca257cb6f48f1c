//! `kuntalaistili sp …`: the SAML service-provider registry for operators' scripts.

use clap::{Args, Subcommand};
use kuntalaistili_federation::saml::{self as registry, Settings};

use super::{open_migrated, Io};
use crate::config::Config;

/// Per-SP settings shared by `add` and `set`.
#[derive(Args, Debug, Default)]
pub(super) struct SpSettings {
    /// Refuse AuthnRequests that are not signed with a key from the SP's metadata.
    #[arg(long)]
    require_signed_requests: bool,
    /// Accept unsigned requests again (unless the metadata says AuthnRequestsSigned).
    #[arg(long, conflicts_with = "require_signed_requests")]
    allow_unsigned_requests: bool,
    /// Encrypt assertions to the SP's encryption key (AES-256-GCM, RSA-OAEP).
    #[arg(long)]
    encrypt_assertions: bool,
    /// Stop encrypting assertions.
    #[arg(long, conflicts_with = "encrypt_assertions")]
    no_encrypt_assertions: bool,
    /// Sign the Response too (the assertion is signed unless only the response is).
    #[arg(long)]
    sign_response: bool,
    /// Sign only the Response, not the assertion (unless the SP wants signed assertions).
    #[arg(long, requires = "sign_response")]
    unsigned_assertion: bool,
    /// Default NameID format: persistent (pairwise per SP), transient, or email.
    #[arg(long)]
    name_id_format: Option<String>,
    /// Attributes released, comma-separated friendly names (default cn,displayName,givenName,sn,mail).
    #[arg(long, value_delimiter = ',')]
    attributes: Option<Vec<String>>,
    /// The SP may receive the national identification number (urn:oid:1.2.246.21) when it is in
    /// --attributes.
    #[arg(long)]
    allow_national_id: bool,
    /// Services whose permissions the SP receives in the `permissions` attribute (comma-separated,
    /// or * for all).
    #[arg(long, value_delimiter = ',')]
    release_permissions: Option<Vec<String>>,
    /// Stop answering this SP (kept registered).
    #[arg(long)]
    disable: bool,
    /// Answer this SP again.
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
}

fn on_off(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

impl SpSettings {
    fn settings(&self) -> Settings {
        let format = self.name_id_format.as_deref().map(|f| match f {
            "persistent" => kuntalaistili_metadata::saml::metadata::NAMEID_PERSISTENT.to_owned(),
            "transient" => kuntalaistili_metadata::saml::metadata::NAMEID_TRANSIENT.to_owned(),
            "email" => kuntalaistili_metadata::saml::metadata::NAMEID_EMAIL.to_owned(),
            other => other.to_owned(),
        });
        Settings {
            require_signed_requests: on_off(
                self.require_signed_requests,
                self.allow_unsigned_requests,
            ),
            sign_response: self.sign_response.then_some(true),
            sign_assertion: self.unsigned_assertion.then_some(false),
            encrypt_assertions: on_off(self.encrypt_assertions, self.no_encrypt_assertions),
            name_id_format: format,
            attributes: self.attributes.clone(),
            allow_national_id: self.allow_national_id.then_some(true),
            release_permissions: self.release_permissions.as_ref().map(|p| p.join(" ")),
            enabled: on_off(self.enable, self.disable),
        }
    }
}

#[derive(Subcommand)]
pub(super) enum SpCommand {
    /// Register an SP from its metadata (a file or an https URL); prints its entity ID.
    Add {
        /// Metadata file, or URL to fetch it from (refreshed from there by `sp refresh`).
        #[arg(long)]
        metadata: String,
        #[command(flatten)]
        settings: SpSettings,
    },
    /// Register (and later refresh) every SP of a signed metadata aggregate.
    AddAggregate {
        #[arg(long)]
        url: String,
        /// PEM certificate whose key must have signed the aggregate.
        #[arg(long)]
        cert: std::path::PathBuf,
    },
    /// Change an SP's settings.
    Set {
        entity_id: String,
        #[command(flatten)]
        settings: SpSettings,
    },
    /// List SPs.
    List,
    /// Show one SP: settings, endpoints, keys, what it receives.
    Show { entity_id: String },
    /// Remove an SP.
    Remove { entity_id: String },
    /// Fetch fresh metadata for SPs added from a URL and for aggregates (or one SP); a failed
    /// fetch keeps the last good copy.
    Refresh { entity_id: Option<String> },
}

/// Runs `f` to completion on a runtime of its own thread (the CLI may itself be called from
/// async code, as the tests do).
fn block_on<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || actix_web::rt::System::new().block_on(f))
        .join()
        .map_err(|_| anyhow::anyhow!("the fetch thread failed"))
}

fn read_metadata(source: &str, ca: Option<&[u8]>) -> anyhow::Result<(String, Option<String>)> {
    if source.starts_with("https://") || source.starts_with("http://") {
        let (url, ca) = (source.to_owned(), ca.map(<[u8]>::to_vec));
        let xml = block_on(async move { registry::fetch(&url, ca.as_deref()).await })??;
        return Ok((xml, Some(source.to_owned())));
    }
    let meta = std::fs::metadata(source).map_err(|e| anyhow::anyhow!("reading {source}: {e}"))?;
    if meta.len() as usize > registry::MAX_METADATA_BYTES {
        anyhow::bail!(
            "{source}: larger than {} bytes",
            registry::MAX_METADATA_BYTES
        );
    }
    let xml =
        std::fs::read_to_string(source).map_err(|e| anyhow::anyhow!("reading {source}: {e}"))?;
    Ok((xml, None))
}

pub(super) fn sp_cmd(
    config: &Config,
    cmd: SpCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    let db = open_migrated(config)?;
    let ca = config.saml.metadata_ca()?;
    let now = kuntalaistili_schema::now_utc();
    match cmd {
        SpCommand::Add { metadata, settings } => {
            let (xml, url) = read_metadata(&metadata, ca.as_deref())?;
            let sp = registry::add(
                &mut *db.conn()?,
                &xml,
                url.as_deref(),
                &settings.settings(),
                "cli",
                now,
            )?;
            io.report(
                json,
                serde_json::json!({ "entity_id": sp.row.entity_id }),
                format_args!("{}", sp.row.entity_id),
            )?;
        }
        SpCommand::AddAggregate { url, cert } => {
            // An aggregate is refreshed from where it came: that must be a URL, not a file.
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                anyhow::bail!(
                    "{url}: an aggregate is refreshed from its address, so give its https URL (register single SPs from files with `sp add --metadata FILE`)"
                );
            }
            let pem = std::fs::read_to_string(&cert)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", cert.display()))?;
            let (xml, _) = read_metadata(&url, ca.as_deref())?;
            let ids = registry::add_aggregate(&mut *db.conn()?, &url, &pem, &xml, "cli", now)?;
            io.report(
                json,
                serde_json::json!({ "aggregate": url, "entity_ids": ids }),
                format_args!("{} service providers from {url}", ids.len()),
            )?;
        }
        SpCommand::Set {
            entity_id,
            settings,
        } => {
            let sp = registry::configure(
                &mut *db.conn()?,
                &entity_id,
                &settings.settings(),
                "cli",
                now,
            )?;
            let v = sp.to_json();
            io.report(
                json,
                &v,
                format_args!("{}", serde_json::to_string_pretty(&v)?),
            )?;
        }
        SpCommand::List => {
            let all = registry::list(&mut *db.conn()?)?;
            if json {
                let v: Vec<_> = all.iter().map(|s| s.to_json()).collect();
                writeln!(io.out, "{}", serde_json::Value::Array(v))?;
            } else {
                for s in &all {
                    let state = if !s.row.enabled {
                        "disabled"
                    } else if !s.trusted_at(now) {
                        "expired"
                    } else {
                        "active"
                    };
                    writeln!(io.out, "{:<9} {}", state, s.row.entity_id)?;
                }
            }
        }
        SpCommand::Show { entity_id } => {
            let sp = registry::load(&mut *db.conn()?, &entity_id)?
                .ok_or_else(|| anyhow::anyhow!("service provider {entity_id} is not registered"))?;
            let v = sp.to_json();
            io.report(
                json,
                &v,
                format_args!("{}", serde_json::to_string_pretty(&v)?),
            )?;
        }
        SpCommand::Remove { entity_id } => {
            registry::remove(&mut *db.conn()?, &entity_id, "cli", now)?;
            io.report(
                json,
                serde_json::json!({ "entity_id": entity_id, "removed": true }),
                format_args!("removed {entity_id}"),
            )?;
        }
        SpCommand::Refresh { entity_id } => {
            let db2 = db.clone();
            let report = block_on(async move {
                registry::refresh(&db2, entity_id.as_deref(), "cli", now, ca.as_deref()).await
            })??;
            let v = serde_json::to_value(&report)?;
            io.report(
                json,
                &v,
                format_args!(
                    "refreshed {}, failed {}{}",
                    report.refreshed.len(),
                    report.failed.len(),
                    report
                        .failed
                        .iter()
                        .map(|(e, why)| format!("\n  {e}: {why}"))
                        .collect::<String>()
                ),
            )?;
            if !report.failed.is_empty() {
                return Ok(1);
            }
        }
    }
    Ok(0)
}
