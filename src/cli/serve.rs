//! `kuntalaistili serve`: the whole server, or one built-in service alone (`--only`).

use std::time::Instant;

use anyhow::Context;

use super::Io;
use crate::config::Config;
use crate::demo;

pub(super) fn serve(config: &Config, demo_user: bool, io: &mut Io<'_>) -> anyhow::Result<i32> {
    let started = Instant::now();
    let state = crate::prepare(config)?;
    if demo_user && demo::seed(&state)? {
        writeln!(
            io.out,
            "demo resident created: username {} password {}",
            demo::DEMO_USERNAME,
            demo::DEMO_PASSWORD
        )?;
    }
    if demo_user && demo::seed_bookings(&state)? {
        writeln!(
            io.out,
            "demo unit created: bookable facilities at /services/reservations/, appointments at /services/appointments/"
        )?;
    }
    let public = state.settings.public_url.clone();
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let bound = crate::bind(config, state)?;
        for a in &bound.addrs {
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            writeln!(
                io.out,
                "Kuntalaistili listening on {scheme}://{a} (public URL {public}), ready in {} ms",
                started.elapsed().as_millis()
            )?;
        }
        io.out.flush()?;
        bound.server.await.context("server stopped with an error")?;
        Ok(0)
    })
}

pub(super) fn serve_only(
    config: &Config,
    name: &str,
    issuer: Option<String>,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    let mut config = config.clone();
    if issuer.is_some() {
        config.service.issuer = issuer;
    }
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let bound = crate::bind_service(&config, name)?;
        for a in &bound.addrs {
            writeln!(
                io.out,
                "Kuntalaistili service {name} listening on http://{a} (public URL {})",
                config.public_url()
            )?;
        }
        io.out.flush()?;
        bound.server.await.context("server stopped with an error")?;
        Ok(0)
    })
}
