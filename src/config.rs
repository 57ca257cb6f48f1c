//! The configuration: defaults → TOML file (`--config FILE`) → `KUNTALAISTILI_*` environment.

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use kuntalaistili_idp::password::PasswordParams;
use kuntalaistili_idp::{SessionSettings, ThrottleSettings};
use serde::{Deserialize, Serialize};

/// Everything an operator can set. Every field has a working default, so `kuntalaistili serve`
/// runs with no file at all.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on (`KUNTALAISTILI_LISTEN`).
    pub listen: String,
    /// Base URL that residents and relying parties see (`KUNTALAISTILI_PUBLIC_URL`); defaults to
    /// `http://` + `listen`, or `https://` when TLS is configured.
    pub public_url: Option<String>,
    /// Directory for generated files (the master key by default).
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    /// The master key itself, base64 of 32 bytes (`KUNTALAISTILI_MASTER_KEY`). Takes precedence
    /// over `master_key_file`.
    pub master_key: Option<String>,
    /// File holding the master key; generated on first start when missing.
    /// Default: `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Serve HTTPS with these PEM files (rustls).
    pub tls: Option<TlsConfig>,
    pub log: LogConfig,
    /// Argon2id cost for passwords.
    pub password: PasswordParams,
    pub session: SessionSettings,
    pub throttle: ThrottleSettings,
    pub keys: KeysConfig,
    pub oidc: OidcConfig,
    /// A built-in service run on its own (`serve --only NAME`) against another IdP.
    pub service: ServiceConfig,
    /// Messaging channels (email over SMTP, SMS gateway) and the outbox's retry policy.
    pub messaging: kuntalaistili_connectors::messaging::MessagingConfig,
    /// The customer register.
    pub register: RegisterConfig,
    /// The SAML identity provider.
    pub saml: SamlConfig,
    /// Electronic payments of reservations (`testbank` or `paytrail`).
    pub payments: kuntalaistili_connectors::payments::PaymentsConfig,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// HTTP worker threads; default one per core.
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded, default `sqlite://kuntalaistili.db`) or `postgres://…`
    /// (`KUNTALAISTILI_DATABASE_URL`).
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Seconds to wait for a connection before answering "temporarily unavailable".
    pub connect_timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Token-signing key rotation (`kuntalaistili keys rotate`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Seconds a new key is published in the JWKS before it starts signing.
    pub prepublish_seconds: i64,
    /// Seconds a retired key stays published after it stops signing (at least the longest token
    /// lifetime).
    pub keep_after_retirement_seconds: i64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            prepublish_seconds: 24 * 3600,
            keep_after_retirement_seconds: 24 * 3600,
        }
    }
}

impl KeysConfig {
    pub fn policy(&self) -> kuntalaistili_metadata::keys::RotationPolicy {
        kuntalaistili_metadata::keys::RotationPolicy {
            prepublish: chrono::Duration::seconds(self.prepublish_seconds.max(0)),
            keep_after_retirement: chrono::Duration::seconds(
                self.keep_after_retirement_seconds.max(0),
            ),
        }
    }
}

/// A service run alone: its issuer and its client registration there.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// The IdP's issuer URL (`--issuer` overrides it).
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The customer register.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Days between a resident's erasure request (the account closes at once) and the
    /// overwriting of their personal data (`KUNTALAISTILI_REGISTER__ERASURE_RETENTION_DAYS`).
    pub erasure_retention_days: i64,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            erasure_retention_days: 30,
        }
    }
}

/// The SAML identity provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// Hours between refreshes of SP metadata fetched from URLs and of aggregates (0 = only on
    /// demand with `kuntalaistili sp refresh`; `KUNTALAISTILI_SAML__REFRESH_HOURS`).
    pub refresh_hours: u64,
    /// PEM file of CA certificates that metadata fetched over https may also chain to (for a
    /// federation that publishes from a private CA); the built-in web roots are trusted too.
    pub metadata_ca_file: Option<std::path::PathBuf>,
}

impl Default for SamlConfig {
    fn default() -> Self {
        SamlConfig {
            refresh_hours: 6,
            metadata_ca_file: None,
        }
    }
}

impl SamlConfig {
    /// The metadata CA certificates (PEM), read from `metadata_ca_file` when set.
    pub fn metadata_ca(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(path) = &self.metadata_ca_file else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("[saml] metadata_ca_file {}: {e}", path.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            anyhow::bail!(
                "[saml] metadata_ca_file {}: holds no PEM certificate",
                path.display()
            );
        }
        Ok(Some(pem))
    }
}

/// The OpenID Connect provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// Access token lifetime in seconds.
    pub access_token_seconds: i64,
    /// Refresh token (and `offline_access` grant) lifetime in days.
    pub refresh_token_days: i64,
    /// Dynamic client registration (RFC 7591): `disabled`, `open` or `token` (then only with
    /// `registration_token` as a bearer token).
    pub registration: String,
    pub registration_token: Option<String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            access_token_seconds: 900,
            refresh_token_days: 30,
            registration: "disabled".to_owned(),
            registration_token: None,
        }
    }
}

impl OidcConfig {
    pub fn registration(&self) -> anyhow::Result<kuntalaistili_idp::settings::Registration> {
        use kuntalaistili_idp::settings::Registration;
        Ok(match (self.registration.as_str(), &self.registration_token) {
            ("disabled", _) => Registration::Disabled,
            ("open", _) => Registration::Open,
            ("token", Some(t)) if t.len() >= 32 => Registration::Token(t.clone()),
            ("token", _) => anyhow::bail!(
                "oidc.registration = \"token\" needs oidc.registration_token (at least 32 characters)"
            ),
            (other, _) => {
                anyhow::bail!("oidc.registration must be disabled, open or token, not {other:?}")
            }
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: String,
    /// Default filter (overridden by `RUST_LOG`), e.g. `info` or `kuntalaistili_idp=debug`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: None,
            data_dir: PathBuf::from("."),
            database: DatabaseConfig::default(),
            master_key: None,
            master_key_file: None,
            tls: None,
            log: LogConfig::default(),
            password: PasswordParams::default(),
            session: SessionSettings::default(),
            throttle: ThrottleSettings::default(),
            keys: KeysConfig::default(),
            oidc: OidcConfig::default(),
            service: ServiceConfig::default(),
            messaging: Default::default(),
            register: RegisterConfig::default(),
            saml: SamlConfig::default(),
            payments: Default::default(),
            trust_forwarded_for: false,
            workers: None,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://kuntalaistili.db".to_owned(),
            max_connections: 10,
            connect_timeout_seconds: 3,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".to_owned(),
            level: "info".to_owned(),
        }
    }
}

/// Environment names that are not configuration keys.
const NOT_CONFIG: [&str; 2] = ["config", "test_pg"];

impl Config {
    /// Loads defaults, then the TOML file if given, then the environment. Nested keys are reached
    /// with `__` (`KUNTALAISTILI_SESSION__IDLE_TIMEOUT_MINUTES`); the documented flat names
    /// `KUNTALAISTILI_DATABASE_URL`, `KUNTALAISTILI_LOG_FORMAT` and `KUNTALAISTILI_LOG_LEVEL` work too.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        fig = fig.merge(
            Env::prefixed("KUNTALAISTILI_")
                .filter(|k| !NOT_CONFIG.contains(&k.as_str().to_ascii_lowercase().as_str()))
                .map(|k| {
                    let k = k.as_str().to_ascii_lowercase().replace("__", ".");
                    match k.as_str() {
                        "database_url" => "database.url".into(),
                        "database_max_connections" => "database.max_connections".into(),
                        "log_format" => "log.format".into(),
                        "log_level" => "log.level".into(),
                        _ => k.into(),
                    }
                }),
        );
        fig.extract().map_err(Box::new)
    }

    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None if self.tls.is_some() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_configuration_is_valid() {
        let c: Config = figment::Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(include_str!(
                "../ops/config/kuntalaistili.toml"
            )))
            .extract()
            .unwrap();
        assert_eq!(c.public_url(), "https://kirjautuminen.example.fi");
        assert!(c.database.url.starts_with("postgres://"));
        assert_eq!(c.keys.prepublish_seconds, 86400);
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn defaults_env_and_file() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.listen, "127.0.0.1:8080");
            assert_eq!(c.database.url, "sqlite://kuntalaistili.db");
            assert_eq!(c.public_url(), "http://127.0.0.1:8080");

            jail.create_file(
                "k.toml",
                "listen = \"0.0.0.0:9000\"\npublic_url = \"https://id.example.fi/\"\nmaster_key_file = \"/etc/k.key\"\n[database]\nurl = \"postgres://db/kl\"\n[password]\nmemory_kib = 65536\n",
            )?;
            let c = Config::load(Some(std::path::Path::new("k.toml"))).map_err(|e| *e)?;
            assert_eq!(c.listen, "0.0.0.0:9000");
            assert_eq!(c.public_url(), "https://id.example.fi");
            assert_eq!(c.database.url, "postgres://db/kl");
            assert_eq!(c.password.memory_kib, 65536);
            assert_eq!(c.password.iterations, 2);
            assert_eq!(c.master_key_path(), PathBuf::from("/etc/k.key"));

            jail.set_env("KUNTALAISTILI_LISTEN", "127.0.0.1:7000");
            jail.set_env("KUNTALAISTILI_DATABASE_URL", "sqlite:///tmp/x.db");
            jail.set_env("KUNTALAISTILI_MASTER_KEY", "abc");
            jail.set_env("KUNTALAISTILI_TEST_PG", "postgres://ignored");
            jail.set_env("KUNTALAISTILI_SESSION__IDLE_TIMEOUT_MINUTES", "5");
            let c = Config::load(Some(std::path::Path::new("k.toml"))).map_err(|e| *e)?;
            assert_eq!(c.listen, "127.0.0.1:7000");
            assert_eq!(c.database.url, "sqlite:///tmp/x.db");
            assert_eq!(c.master_key.as_deref(), Some("abc"));
            assert_eq!(c.session.idle_timeout_minutes, 5);

            jail.create_file("bad.toml", "lisen = \"typo\"\n")?;
            assert!(Config::load(Some(std::path::Path::new("bad.toml"))).is_err());
            Ok(())
        });
    }
}
