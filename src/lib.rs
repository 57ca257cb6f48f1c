//! Kuntalaistili composed: configuration, start-up (database, migrations, master key) and the
//! actix server that mounts every component. The binary (`main.rs`) is only the CLI over this;
//! the end-to-end tests start the server through the same [`start`].
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cli;
pub mod config;
pub mod demo;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use kuntalaistili_idp::crypto::MasterKeys;
use kuntalaistili_idp::{IdpSettings, IdpState};
use kuntalaistili_schema::{Db, PoolOptions};

pub use config::Config;

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

/// The built-in services that are OIDC relying parties of this IdP: (client id, service name,
/// base path, scopes).
pub const BUILTIN_SERVICES: [(&str, &str, &str, &str); 4] = [
    // authz:check: the directory (served under the portal) asks who may edit it.
    (
        "kuntalaistili-portal",
        "portal",
        "",
        "openid profile authz:check audit:write",
    ),
    (
        "kuntalaistili-noticeboard",
        "noticeboard",
        kuntalaistili_services::noticeboard::BASE,
        // residents:read: the notice API checks that a notice's resident exists.
        "openid profile residents:read",
    ),
    // The booking services post notices, send messages, ask who manages, audit payments.
    (
        "kuntalaistili-reservations",
        "reservations",
        kuntalaistili_services::reservations::BASE,
        "openid profile email authz:check audit:write notices:write messages:send",
    ),
    (
        "kuntalaistili-appointments",
        "appointments",
        kuntalaistili_services::appointments::BASE,
        "openid profile email authz:check audit:write notices:write messages:send",
    ),
];

/// The kit configuration of a built-in service of this server.
fn kit_config(
    state: &IdpState,
    (client_id, service, base, _): (&str, &'static str, &'static str, &str),
) -> kuntalaistili_services::kit::KitConfig {
    kuntalaistili_services::kit::KitConfig {
        service,
        base_path: base,
        issuer: state.settings.public_url.clone(),
        public_url: state.settings.public_url.clone(),
        client_id: client_id.to_owned(),
        client_secret: state.keys.builtin_client_secret(client_id),
        secure_cookies: state.settings.secure_cookies,
        session_hours: state.settings.session.absolute_timeout_hours,
        idle_minutes: state.settings.session.idle_timeout_minutes,
        // The booking services hand the payer's address to the payment service.
        email: matches!(service, "reservations" | "appointments"),
    }
}

/// Registers (or updates) the built-in services as first-party OIDC clients: their redirect,
/// logout and back-channel URIs follow the public URL; secrets derive from the master key.
fn register_builtin_services(state: &IdpState) -> anyhow::Result<()> {
    use kuntalaistili_federation::clients::{ensure_builtin, NewClient};
    let mut conn = state.db.conn()?;
    for svc in BUILTIN_SERVICES {
        let kc = kit_config(state, (svc.0, svc.1, svc.2, svc.3));
        let changed = ensure_builtin(
            &mut conn,
            svc.0,
            NewClient {
                name: format!("Kuntalaistili: {}", svc.1),
                redirect_uris: vec![kc.redirect_uri()],
                grant_types: if svc.3.contains(':') {
                    vec!["authorization_code".into(), "client_credentials".into()]
                } else {
                    vec!["authorization_code".into()]
                },
                scopes: svc.3.to_owned(),
                post_logout_redirect_uris: vec![kc.post_logout_uri()],
                backchannel_logout_uri: Some(kc.backchannel_uri()),
                skip_consent: true,
                ..NewClient::default()
            },
            &kc.client_secret,
            kuntalaistili_schema::now_utc(),
        )?;
        if changed {
            tracing::info!(client = svc.0, "registered built-in service");
        }
    }
    Ok(())
}

/// A bound, not yet awaited server.
pub struct Bound {
    pub server: actix_web::dev::Server,
    pub addrs: Vec<SocketAddr>,
}

/// Every ten minutes, drops expired sessions and stale throttling counters (on every node; the
/// deletes are idempotent).
fn spawn_housekeeping(state: web::Data<IdpState>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let st = state.clone();
            let window = chrono::Duration::minutes(st.settings.throttle.window_minutes);
            let result = web::block(
                move || -> Result<(usize, usize), kuntalaistili_schema::DbError> {
                    let mut conn = st.db.conn()?;
                    let now = kuntalaistili_schema::now_utc();
                    kuntalaistili_schema::signing_keys::delete_expired(&mut conn, now)?;
                    kuntalaistili_schema::oidc_flows::delete_expired(&mut conn, now)?;
                    kuntalaistili_schema::service_sessions::delete_expired(&mut conn, now)?;
                    kuntalaistili_schema::saml::sweep_replay(&mut conn, now)?;
                    let erased = kuntalaistili_idp::customers::gdpr::erase_due(
                        &mut conn,
                        st.settings.erasure_retention_days,
                        now,
                    )?;
                    if erased > 0 {
                        tracing::info!(erased, "personal data erased after the retention period");
                    }
                    Ok((
                        kuntalaistili_schema::sessions::delete_expired(&mut conn, now)?,
                        kuntalaistili_schema::throttle::delete_stale(&mut conn, now, window)?,
                    ))
                },
            )
            .await;
            match result {
                Ok(Ok((sessions, counters))) => {
                    tracing::debug!(sessions, counters, "housekeeping removed expired rows")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
                Err(e) => tracing::warn!(error = %e, "housekeeping could not run"),
            }
        }
    });
}

/// Every `hours`, fetches fresh metadata for SPs registered from a URL and for aggregates; a
/// failure keeps the last good copy and is logged.
fn spawn_metadata_refresh(state: web::Data<IdpState>, hours: u64) {
    if hours == 0 {
        return;
    }
    actix_web::rt::spawn(async move {
        let period = Duration::from_secs(hours * 3600);
        let mut tick =
            actix_web::rt::time::interval_at(actix_web::rt::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            let now = kuntalaistili_schema::now_utc();
            let ca = state.settings.saml_metadata_ca.as_deref();
            match kuntalaistili_federation::saml::refresh(&state.db, None, "refresh", now, ca).await
            {
                Ok(report) => {
                    for (entity, why) in &report.failed {
                        tracing::warn!(%entity, reason = %why, "SAML metadata refresh failed; last good copy kept");
                    }
                    for entity in &report.refreshed {
                        state.saml.forget_sp(entity);
                    }
                    tracing::info!(
                        refreshed = report.refreshed.len(),
                        failed = report.failed.len(),
                        "SAML metadata refreshed"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "SAML metadata refresh could not run"),
            }
        }
    });
}

/// Binds the listener(s) and builds the server. Call inside an actix/tokio runtime.
pub fn bind(config: &Config, state: web::Data<IdpState>) -> anyhow::Result<Bound> {
    let secure = state.settings.secure_cookies;
    spawn_housekeeping(state.clone());
    spawn_metadata_refresh(state.clone(), config.saml.refresh_hours);
    let worker = std::sync::Arc::new(kuntalaistili_connectors::messaging::Worker {
        dispatcher: kuntalaistili_connectors::messaging::Dispatcher::new(
            &config.messaging,
            state.db.clone(),
        )
        .map_err(|e| anyhow::anyhow!("messaging: {e}"))?,
        config: config.messaging.clone(),
        db: state.db.clone(),
    });
    worker.spawn();
    let templates = std::sync::Arc::new(
        kuntalaistili_services::kit::Templates::load().map_err(|e| anyhow::anyhow!(e))?,
    );
    let kit = |i: usize| -> anyhow::Result<web::Data<kuntalaistili_services::kit::Kit>> {
        let s = BUILTIN_SERVICES[i];
        Ok(web::Data::new(kuntalaistili_services::kit::Kit::new(
            kit_config(&state, (s.0, s.1, s.2, s.3)),
            state.db.clone(),
            templates.clone(),
        )?))
    };
    let (portal, noticeboard) = (kit(0)?, kit(1)?);
    let (pay, bank) = payment_provider(
        config,
        state.db.clone(),
        &state.settings.public_url,
        state.keys.builtin_client_secret("kuntalaistili-testbank"),
    )?;
    let booking = |i: usize, kind: &'static str| {
        anyhow::Ok(web::Data::new(
            kuntalaistili_services::reservations::Booking::new(
                kit(i)?,
                kind,
                pay.clone(),
                config.payments.payment_minutes,
            ),
        ))
    };
    let reservations = booking(2, "facility")?;
    let appointments = booking(3, "appointment")?;
    kuntalaistili_services::reservations::spawn_tasks(
        reservations.clone(),
        config.payments.sweep_seconds,
    );
    kuntalaistili_services::reservations::spawn_tasks(
        appointments.clone(),
        config.payments.sweep_seconds,
    );
    let bank = bank.map(|b| {
        web::Data::new(kuntalaistili_services::testbank::Bank::new(
            b,
            portal.clone(),
            state
                .keys
                .builtin_client_secret("kuntalaistili-testbank-forms"),
        ))
    });
    let factory = move || {
        let (portal, noticeboard) = (portal.clone(), noticeboard.clone());
        let (reservations, appointments, bank) =
            (reservations.clone(), appointments.clone(), bank.clone());
        let st = state.clone();
        let db = state.db.clone();
        App::new()
            .app_data(st.clone())
            .wrap(kuntalaistili_idp::error_pages())
            .wrap(kuntalaistili_idp::security_headers(secure))
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let started = std::time::Instant::now();
                let method = req.method().clone();
                let path = req.path().to_owned();
                let metrics = st.metrics.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let status = res.status().as_u16();
                    metrics.record_status(status);
                    tracing::info!(%method, %path, status, micros = started.elapsed().as_micros() as u64, "request");
                    Ok(res)
                }
            })
            .configure(kuntalaistili_idp::configure)
            .configure(|cfg| kuntalaistili_services::directory::configure(cfg, db))
            .configure(|cfg| kuntalaistili_services::noticeboard::configure(cfg, noticeboard))
            .configure(|cfg| kuntalaistili_services::directory::pages::configure(cfg, portal.clone()))
            .configure(|cfg| kuntalaistili_services::reservations::configure(cfg, reservations))
            .configure(|cfg| kuntalaistili_services::appointments::configure(cfg, appointments))
            .configure(|cfg| {
                if let Some(bank) = bank {
                    kuntalaistili_services::testbank::configure(cfg, bank);
                }
            })
            .configure(|cfg| kuntalaistili_services::portal::configure(cfg, portal))
    };
    let mut server = HttpServer::new(factory).shutdown_timeout(5);
    if let Some(w) = config.workers {
        server = server.workers(w.max(1));
    }
    let server = match &config.tls {
        Some(tls) => server
            .bind_rustls_0_23(&config.listen, rustls_config(tls)?)
            .with_context(|| format!("binding {}", config.listen))?,
        None => server
            .bind(&config.listen)
            .with_context(|| format!("binding {}", config.listen))?,
    };
    let addrs = server.addrs();
    Ok(Bound {
        server: server.run(),
        addrs,
    })
}

/// The configured payment provider, and the test bank itself when it is the provider (its page
/// is then mounted); `testbank_secret` signs the test bank's answers. The test bank runs only
/// where [`PaymentsConfig::test_bank_allowed`](kuntalaistili_connectors::payments::PaymentsConfig)
/// lets it: elsewhere payments are off with a clear reason, and never in production mode.
#[allow(clippy::type_complexity)]
fn payment_provider(
    config: &Config,
    db: kuntalaistili_schema::Db,
    public: &str,
    testbank_secret: String,
) -> anyhow::Result<(
    std::sync::Arc<dyn kuntalaistili_connectors::payments::Provider>,
    Option<std::sync::Arc<kuntalaistili_connectors::payments::testbank::TestBank>>,
)> {
    use kuntalaistili_connectors::payments;
    if config.payments.provider == "testbank" && !config.payments.test_bank_allowed(public) {
        let reason = "payments are not configured: the test bank (pretend money) does not run on a public site; set [payments] provider = \"paytrail\" (or allow_test_bank = true for a staging site)".to_owned();
        if config.payments.production {
            anyhow::bail!("[payments] production = true and provider = \"testbank\": the test bank does not run in production; set provider = \"paytrail\"");
        }
        tracing::warn!(%public, "{reason}");
        return Ok((std::sync::Arc::new(payments::Unavailable { reason }), None));
    }
    if config.payments.provider == "testbank" {
        let bank = std::sync::Arc::new(payments::testbank::TestBank::new(
            db,
            public,
            testbank_secret,
        ));
        return Ok((bank.clone(), Some(bank)));
    }
    let provider = payments::from_config(&config.payments, db, public, String::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((provider, None))
}

/// Binds one built-in service alone (`serve --only NAME`): its own database tables, its pages and
/// APIs, and the IdP at `service.issuer` reached only over HTTP.
pub fn bind_service(config: &Config, name: &str) -> anyhow::Result<Bound> {
    let (service, base) = match name {
        "portal" => ("portal", ""),
        "noticeboard" => ("noticeboard", kuntalaistili_services::noticeboard::BASE),
        "reservations" => ("reservations", kuntalaistili_services::reservations::BASE),
        "appointments" => ("appointments", kuntalaistili_services::appointments::BASE),
        other => anyhow::bail!(
            "unknown service {other:?}: portal, noticeboard, reservations or appointments"
        ),
    };
    let issuer = config
        .service
        .issuer
        .clone()
        .context("--only needs the IdP's issuer URL (--issuer or service.issuer)")?;
    let (Some(client_id), Some(client_secret)) = (
        config.service.client_id.clone(),
        config.service.client_secret.clone(),
    ) else {
        anyhow::bail!("--only needs service.client_id and service.client_secret (KUNTALAISTILI_SERVICE__CLIENT_ID, KUNTALAISTILI_SERVICE__CLIENT_SECRET)");
    };
    let db = open_db(config)?;
    db.migrate().context("applying database migrations")?;
    if name == "portal" {
        kuntalaistili_services::directory::classification::ensure_loaded(&mut *db.conn()?)?;
    }
    let public = config.public_url();
    let kit_cfg = kuntalaistili_services::kit::KitConfig {
        service,
        base_path: base,
        issuer: issuer.trim_end_matches('/').to_owned(),
        secure_cookies: public.starts_with("https://"),
        public_url: public,
        client_id,
        client_secret,
        session_hours: config.session.absolute_timeout_hours,
        idle_minutes: config.session.idle_timeout_minutes,
        email: matches!(service, "reservations" | "appointments"),
    };
    let templates = std::sync::Arc::new(
        kuntalaistili_services::kit::Templates::load().map_err(|e| anyhow::anyhow!(e))?,
    );
    let secure = kit_cfg.secure_cookies;
    let secret = kit_cfg.client_secret.clone();
    let kit = web::Data::new(kuntalaistili_services::kit::Kit::new(
        kit_cfg,
        db.clone(),
        templates,
    )?);
    // The booking services: their payments (the test bank's secret derives from the service's
    // own client secret) and their expiry/reminder task.
    let mut bank = None;
    let booking = if matches!(service, "reservations" | "appointments") {
        let (pay, testbank) = payment_provider(
            config,
            db.clone(),
            &config.public_url(),
            format!("testbank:{secret}"),
        )?;
        bank = testbank.map(|b| {
            web::Data::new(kuntalaistili_services::testbank::Bank::new(
                b,
                kit.clone(),
                format!("testbank-forms:{secret}"),
            ))
        });
        let kind = if service == "appointments" {
            "appointment"
        } else {
            "facility"
        };
        Some(web::Data::new(
            kuntalaistili_services::reservations::Booking::new(
                kit.clone(),
                kind,
                pay,
                config.payments.payment_minutes,
            ),
        ))
    } else {
        None
    };
    if let Some(b) = &booking {
        kuntalaistili_services::reservations::spawn_tasks(b.clone(), config.payments.sweep_seconds);
    }
    let name = name.to_owned();
    let factory = move || {
        let (kit, db, name) = (kit.clone(), db.clone(), name.clone());
        let (booking, bank) = (booking.clone(), bank.clone());
        App::new()
            .wrap(kuntalaistili_idp::security_headers(secure))
            .configure(move |cfg| {
                if let Some(b) = booking {
                    kuntalaistili_services::reservations::configure(cfg, b);
                    if let Some(bank) = bank {
                        kuntalaistili_services::testbank::configure(cfg, bank);
                    }
                } else if name == "portal" {
                    kuntalaistili_services::directory::configure(cfg, db);
                    kuntalaistili_services::directory::pages::configure(cfg, kit.clone());
                    kuntalaistili_services::portal::configure(cfg, kit);
                } else {
                    kuntalaistili_services::noticeboard::configure(cfg, kit);
                }
            })
            .route(
                "/static/style.css",
                web::get().to(|| async {
                    actix_web::HttpResponse::Ok()
                        .content_type("text/css; charset=utf-8")
                        .body(kuntalaistili_idp::render::STYLESHEET)
                }),
            )
    };
    let mut server = HttpServer::new(factory).shutdown_timeout(5);
    if let Some(w) = config.workers {
        server = server.workers(w.max(1));
    }
    let server = server
        .bind(&config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    let addrs = server.addrs();
    Ok(Bound {
        server: server.run(),
        addrs,
    })
}

fn rustls_config(tls: &config::TlsConfig) -> anyhow::Result<rustls::ServerConfig> {
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
