//! Kuntalaistili composed: configuration, start-up (database, migrations, master key) and the
//! actix server that mounts every component. The binary (`main.rs`) is only the CLI over this;
//! the end-to-end tests start the server through the same [`prepare`] and [`bind`].
//!
//! Here the composition ([`bind`]); start-up in `startup`, the built-in services' registration
//! and payments in `builtin`, background tasks in `tasks`, one service alone in `standalone`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod builtin;
pub mod cli;
pub mod config;
pub mod demo;
mod standalone;
mod startup;
mod tasks;

use std::net::SocketAddr;

use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use kuntalaistili_idp::IdpState;

use builtin::{kit_config, payment_provider};
use startup::rustls_config;
use tasks::{spawn_housekeeping, spawn_metadata_refresh};

pub use builtin::BUILTIN_SERVICES;
pub use config::Config;
pub use standalone::bind_service;
pub use startup::{
    idp_settings, install_crypto_provider, load_master_key, open_db, prepare, saml_common_name,
};

/// A bound, not yet awaited server.
pub struct Bound {
    pub server: actix_web::dev::Server,
    pub addrs: Vec<SocketAddr>,
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
