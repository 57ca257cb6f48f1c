//! The built-in services as relying parties of this IdP: their client registrations, their kit
//! configuration, and the payment provider of the booking services.

use kuntalaistili_idp::IdpState;

use crate::config::Config;

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
pub(crate) fn kit_config(
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
pub(crate) fn register_builtin_services(state: &IdpState) -> anyhow::Result<()> {
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

/// The configured payment provider, and the test bank itself when it is the provider (its page
/// is then mounted); `testbank_secret` signs the test bank's answers. The test bank runs only
/// where [`PaymentsConfig::test_bank_allowed`](kuntalaistili_connectors::payments::PaymentsConfig)
/// lets it: elsewhere payments are off with a clear reason, and never in production mode.
#[allow(clippy::type_complexity)]
pub(crate) fn payment_provider(
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
