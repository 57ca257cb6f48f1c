//! `kuntalaistili clients …`: the OIDC client registry for operators' scripts.

use clap::Subcommand;

use super::{open_migrated, Io};
use crate::config::Config;

// Parsed once per process: the size of the `add` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(super) enum ClientsCommand {
    /// Register a client; prints its id and (for confidential clients) its secret, once.
    Add {
        #[arg(long)]
        name: String,
        /// Allowed redirect URI, matched exactly (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        /// Comma-separated: authorization_code, refresh_token, client_credentials.
        #[arg(long, value_delimiter = ',')]
        grant_types: Vec<String>,
        /// Space-separated scopes the client may ask for (default "openid").
        #[arg(long, default_value = "")]
        scopes: String,
        /// The client may receive the personal identity code.
        #[arg(long)]
        allow_national_id: bool,
        /// Where RP-initiated logout may return, matched exactly (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Back-channel logout endpoint that receives logout tokens.
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// Pairwise subject identifiers instead of the public one.
        #[arg(long)]
        pairwise: bool,
        /// Sector identifier (host) for pairwise subjects.
        #[arg(long)]
        sector_identifier: Option<String>,
        /// JWKS file with the client's public keys: the client authenticates with private_key_jwt.
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
        /// A first-party service: residents are not asked for consent.
        #[arg(long)]
        skip_consent: bool,
        /// ID token signing algorithm: RS256 (default) or ES256.
        #[arg(long)]
        id_token_alg: Option<String>,
        /// Services whose permissions the client receives in the `permissions` claim
        /// (comma-separated service names, or * for all).
        #[arg(long, value_delimiter = ',')]
        release_permissions: Vec<String>,
    },
    /// List clients.
    List,
    /// Show one client.
    Show { client_id: String },
    /// Remove a client.
    Remove { client_id: String },
    /// Replace a confidential client's secret; prints the new secret, once.
    RotateSecret { client_id: String },
}

pub(super) fn clients_cmd(
    config: &Config,
    cmd: ClientsCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    use kuntalaistili_federation::clients::{self, NewClient};
    use kuntalaistili_schema::oidc_clients;
    let db = open_migrated(config)?;
    let mut conn = db.conn()?;
    let now = kuntalaistili_schema::now_utc();
    match cmd {
        ClientsCommand::Add {
            name,
            redirect_uris,
            public,
            grant_types,
            scopes,
            allow_national_id,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            pairwise,
            sector_identifier,
            jwks_file,
            skip_consent,
            id_token_alg,
            release_permissions,
        } => {
            let jwks = match jwks_file {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?,
                ),
                None => None,
            };
            let (client, secret) = clients::add(
                &mut conn,
                NewClient {
                    name,
                    redirect_uris,
                    public,
                    grant_types,
                    scopes,
                    allow_national_id,
                    post_logout_redirect_uris,
                    backchannel_logout_uri,
                    pairwise,
                    sector_identifier,
                    jwks,
                    skip_consent,
                    id_token_alg,
                    registration_token_hash: None,
                    release_permissions,
                },
                "cli",
                now,
            )?;
            if json {
                let mut v = serde_json::json!({ "client_id": client.client_id });
                if let Some(s) = &secret {
                    v["client_secret"] = serde_json::json!(s);
                }
                writeln!(io.out, "{v}")?;
            } else {
                writeln!(io.out, "client_id:     {}", client.client_id)?;
                if let Some(s) = &secret {
                    writeln!(io.out, "client_secret: {s}  (shown only now)")?;
                }
            }
        }
        ClientsCommand::List => {
            let all = oidc_clients::list(&mut conn)?;
            if json {
                let v: Vec<_> = all.iter().map(clients::public_json).collect();
                writeln!(io.out, "{}", serde_json::Value::Array(v))?;
            } else {
                for c in &all {
                    let kind = if c.public_client {
                        "public"
                    } else {
                        "confidential"
                    };
                    writeln!(io.out, "{}  {:<12} {}", c.client_id, kind, c.name)?;
                }
            }
        }
        ClientsCommand::Show { client_id } => {
            let c = oidc_clients::find(&mut conn, &client_id)?
                .ok_or_else(|| anyhow::anyhow!("client {client_id} not found"))?;
            let v = clients::public_json(&c);
            if json {
                writeln!(io.out, "{v}")?;
            } else {
                writeln!(io.out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
        }
        ClientsCommand::Remove { client_id } => {
            clients::remove(&mut conn, &client_id, "cli", now)?;
            io.report(
                json,
                serde_json::json!({ "client_id": client_id, "removed": true }),
                format_args!("removed {client_id}"),
            )?;
        }
        ClientsCommand::RotateSecret { client_id } => {
            let secret = clients::rotate_secret(&mut conn, &client_id, "cli", now)?;
            io.report(
                json,
                serde_json::json!({ "client_id": client_id, "client_secret": secret }),
                format_args!("client_secret: {secret}  (shown only now)"),
            )?;
        }
    }
    Ok(0)
}
