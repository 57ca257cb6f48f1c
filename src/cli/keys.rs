//! `kuntalaistili keys …`: list and rotate token-signing keys.

use anyhow::bail;
use clap::Subcommand;

use super::{open_migrated, Io};
use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum KeysCommand {
    /// The published keys with their signing windows.
    List,
    /// Pre-publish a new key that starts signing after the configured delay; the current key
    /// retires then and stays published until its tokens have expired.
    Rotate {
        /// ES256, RS256 or SAML (the SAML signing key and certificate; default: all three).
        #[arg(long)]
        alg: Option<String>,
        /// Seconds before the new key signs (default: keys.prepublish_seconds).
        #[arg(long)]
        prepublish_seconds: Option<i64>,
    },
}

fn key_json(
    k: &kuntalaistili_schema::signing_keys::SigningKey,
    now: chrono::NaiveDateTime,
) -> serde_json::Value {
    let iso = kuntalaistili_schema::iso_utc;
    let signing = k.activates_at <= now && k.retires_at.is_none_or(|r| r > now);
    serde_json::json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": if signing { "signing" } else if k.activates_at > now { "pre-published" } else { "retired" },
        "created_at": iso(k.created_at),
        "activates_at": iso(k.activates_at),
        "retires_at": k.retires_at.map(iso),
        "expires_at": k.expires_at.map(iso),
    })
}

pub(super) fn keys_cmd(
    config: &Config,
    cmd: KeysCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    use kuntalaistili_metadata::keys::{self, Alg};
    let db = open_migrated(config)?;
    let master = crate::load_master_key(config)?;
    let mut conn = db.conn()?;
    let now = kuntalaistili_schema::now_utc();
    keys::ensure(&mut conn, &master, now)?;
    let saml_cn = crate::saml_common_name(config);
    kuntalaistili_metadata::saml::keys::ensure(&mut conn, &master, &saml_cn, now)?;
    match cmd {
        KeysCommand::List => {
            let all = kuntalaistili_schema::signing_keys::published(&mut conn, now)?;
            if json {
                let v: Vec<_> = all.iter().map(|k| key_json(k, now)).collect();
                writeln!(io.out, "{}", serde_json::Value::Array(v))?;
            } else {
                for k in &all {
                    let j = key_json(k, now);
                    writeln!(
                        io.out,
                        "{} {} {} from {}",
                        j["alg"].as_str().unwrap_or(""),
                        j["kid"].as_str().unwrap_or(""),
                        j["state"].as_str().unwrap_or(""),
                        j["activates_at"].as_str().unwrap_or("")
                    )?;
                }
            }
        }
        KeysCommand::Rotate {
            alg,
            prepublish_seconds,
        } => {
            let saml = matches!(alg.as_deref(), None | Some("SAML"));
            let algs = match alg.as_deref() {
                None => Alg::ALL.to_vec(),
                Some("SAML") => Vec::new(),
                Some(a) => vec![Alg::parse(a).ok_or_else(|| {
                    anyhow::anyhow!("unknown algorithm {a:?}: use ES256, RS256 or SAML")
                })?],
            };
            let mut policy = config.keys.policy();
            if let Some(s) = prepublish_seconds {
                if s < 0 {
                    bail!("--prepublish-seconds must not be negative");
                }
                policy.prepublish = chrono::Duration::seconds(s);
            }
            let mut rotated = Vec::new();
            for a in algs {
                let k = keys::rotate(&mut conn, &master, a, now, policy)?;
                rotated.push(key_json(&k, now));
            }
            if saml {
                let k = kuntalaistili_metadata::saml::keys::rotate(
                    &mut conn, &master, &saml_cn, now, policy,
                )?;
                rotated.push(key_json(&k, now));
            }
            if json {
                writeln!(io.out, "{}", serde_json::json!({ "rotated": rotated }))?;
            } else {
                for k in &rotated {
                    writeln!(
                        io.out,
                        "new {} key {} signs from {}",
                        k["alg"].as_str().unwrap_or(""),
                        k["kid"].as_str().unwrap_or(""),
                        k["activates_at"].as_str().unwrap_or("")
                    )?;
                }
            }
        }
    }
    Ok(0)
}
