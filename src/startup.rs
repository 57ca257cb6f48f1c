//! Start-up: the database pool, the master key, the IdP's settings and state, TLS.

use std::path::Path;
use std::time::Duration;

use actix_web::web;
use anyhow::Context as _;
use kuntalaistili_idp::crypto::MasterKeys;
use kuntalaistili_idp::{IdpSettings, IdpState};
use kuntalaistili_schema::{Db, PoolOptions};

use crate::builtin::register_builtin_services;
use crate::config::{self, Config};

/// Opens the database pool described by the configuration.
pub fn open_db(config: &Config) -> anyhow::Result<Db> {
    let opts = PoolOptions {
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_seconds.max(1)),
    };
    Db::connect(&config.database.url, &opts).with_context(|| "opening the database")
}

/// The master key: from the configuration, else from its file, else generated into that file
/// (readable by the owner only) on first start.
pub fn load_master_key(config: &Config) -> anyhow::Result<MasterKeys> {
    if let Some(k) = &config.master_key {
        return MasterKeys::from_base64(k).context("KUNTALAISTILI_MASTER_KEY / master_key");
    }
    let path = config.master_key_path();
    if !path.exists() {
        write_new_key(&path)?;
        tracing::warn!(path = %path.display(), "generated a new master key; back it up: without it, encrypted data cannot be read");
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    MasterKeys::from_base64(&text).with_context(|| format!("master key in {}", path.display()))
}

fn write_new_key(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{}", MasterKeys::generate_base64())?;
    Ok(())
}

/// The IdP settings derived from the configuration.
pub fn idp_settings(config: &Config) -> anyhow::Result<IdpSettings> {
    let mut s = IdpSettings::new(&config.public_url());
    s.password = config.password;
    s.session = config.session;
    s.throttle = config.throttle;
    s.trust_forwarded_for = config.trust_forwarded_for;
    s.access_token_seconds = config.oidc.access_token_seconds.clamp(60, 86_400);
    s.refresh_token_days = config.oidc.refresh_token_days.clamp(1, 3650);
    s.registration = config.oidc.registration()?;
    s.erasure_retention_days = config.register.erasure_retention_days.clamp(0, 3650);
    s.saml_metadata_ca = config.saml.metadata_ca()?;
    s.message_channels = config
        .messaging
        .available()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(s)
}

/// Everything `serve` needs, prepared: database migrated, keys loaded, templates compiled.
pub fn prepare(config: &Config) -> anyhow::Result<web::Data<IdpState>> {
    let db = open_db(config)?;
    let applied = db.migrate().context("applying database migrations")?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied database migrations");
    }
    let keys = load_master_key(config)?;
    let created = kuntalaistili_metadata::keys::ensure(
        &mut *db.conn()?,
        &keys,
        kuntalaistili_schema::now_utc(),
    )
    .context("creating the first signing keys")?;
    if !created.is_empty() {
        tracing::info!(count = created.len(), "created signing keys");
    }
    if let Some(kid) = kuntalaistili_metadata::saml::keys::ensure(
        &mut *db.conn()?,
        &keys,
        &saml_common_name(config),
        kuntalaistili_schema::now_utc(),
    )
    .context("creating the SAML signing key")?
    {
        tracing::info!(%kid, "created the SAML signing key");
    }
    if kuntalaistili_services::directory::classification::ensure_loaded(&mut *db.conn()?)
        .context("loading the seutukunta classification")?
    {
        tracing::info!("loaded the bundled seutukunta classification");
    }
    let state = IdpState::new(db, idp_settings(config)?, keys)?;
    register_builtin_services(&state).context("registering the built-in services as clients")?;
    Ok(web::Data::new(state))
}

pub(crate) fn rustls_config(tls: &config::TlsConfig) -> anyhow::Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .with_context(|| format!("reading {}", tls.cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", tls.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("reading {}", tls.key_file.display()))?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")
}

/// Installs the process-wide rustls crypto provider (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The subject name of the SAML signing certificate: the public host name.
pub fn saml_common_name(config: &Config) -> String {
    let url = config.public_url();
    url.split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or_default().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kuntalaistili".to_owned())
}
