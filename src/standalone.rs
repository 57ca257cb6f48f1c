//! One built-in service served alone (`serve --only NAME`), a relying party of an IdP elsewhere.

use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::builtin::payment_provider;
use crate::config::Config;
use crate::startup::open_db;
use crate::Bound;

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
