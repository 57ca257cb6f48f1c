//! Shibboleth SP 3 (Debian's mod_shib + shibd) reads our metadata as published — including the
//! algorithm-support extension, so it signs its HTTP-POST AuthnRequests with RSA-SHA256 rather
//! than its SHA-1 default — and logs in over both bindings with signed requests, signed and
//! encrypted assertions and the released attributes, then logs out SP-initiated.

use std::time::Duration;

use kuntalaistili_tests::{dual, Backend, TestApp};

use super::{free_port, run_bounded, script, state_dir};
use crate::saml::{events, PASSWORD};

dual!(shibboleth_sp_logs_in_over_both_bindings_and_out);

async fn shibboleth_sp_logs_in_over_both_bindings_and_out(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("maija", PASSWORD).await;
    let sp = state_dir(
        "shib",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/interop/saml/shibboleth/stop.sh"
        ),
    );
    let port = free_port();
    let setup = run_bounded(
        Duration::from_secs(120),
        "bash",
        vec![
            script("saml/shibboleth/setup.sh"),
            app.base.clone(),
            sp.state.to_string_lossy().into_owned(),
            port.to_string(),
        ],
    )
    .await;
    // Registered before the first login, so the IdP has no stale copy of the settings to cache.
    let (code, v) = app.cli_json(&[
        "sp",
        "add",
        "--metadata",
        setup["sp_metadata"].as_str().unwrap(),
        "--require-signed-requests",
        "--encrypt-assertions",
        "--attributes",
        "givenName,sn,mail,cn,uid",
    ]);
    assert_eq!((code, &v["entity_id"]), (0, &setup["entity_id"]), "{v}");
    let entity = setup["entity_id"].as_str().unwrap().to_owned();

    let seen = run_bounded(
        Duration::from_secs(120),
        "/usr/bin/python3",
        vec![
            script("saml/shibboleth/login.py"),
            app.base.clone(),
            format!("http://127.0.0.1:{port}"),
            "maija".into(),
            PASSWORD.into(),
        ],
    )
    .await;
    assert_eq!(seen["ok"], true, "{seen}");
    let subject = app.state.keys.pairwise_subject(&entity, &user.id);
    for binding in ["redirect", "post"] {
        let run = &seen["runs"][binding];
        for check in [
            "login",
            "request_binding",
            "request_signed",
            "assertion_encrypted",
            "attributes",
            "logout_request_signed",
            "logout_success",
            "logout_returned",
            "idp_session_gone",
            "sp_session_gone",
        ] {
            assert_eq!(run["checks"][check], true, "{binding} {check}: {run}");
        }
        // Shibboleth signs with the first algorithm our metadata lists.
        assert_eq!(
            run["request_sig_alg"], "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "{binding}"
        );
        let attrs = &run["attributes"];
        assert_eq!(attrs["mail"][0], "maija@example.fi", "{binding}: {attrs}");
        assert_eq!(attrs["givenName"][0], "Testi", "{binding}: {attrs}");
        assert_eq!(attrs["uid"][0], "maija", "{binding}: {attrs}");
        assert_eq!(attrs["persistent-id"][0], subject.as_str(), "{binding}");
    }

    // The IdP's side: two encrypted assertions, two SP-initiated logouts, nothing refused.
    let issued = events(&app, "saml.assertion_issued").await;
    assert_eq!(issued.len(), 2, "{issued:?}");
    assert!(issued
        .iter()
        .all(|(o, d)| o == "success" && d["sp"] == entity.as_str() && d["encrypted"] == true));
    let logouts = events(&app, "saml.logout_request").await;
    assert_eq!(logouts.len(), 2, "{logouts:?}");
    assert!(logouts.iter().all(|(_, d)| d["sessions_ended"] == 1));
    assert!(events(&app, "saml.request_refused").await.is_empty());
}
