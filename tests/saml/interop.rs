//! A real SP not written here — pysaml2 (Debian's python3-pysaml2, with xmlsec1) — consumes our
//! metadata as-is, sends signed AuthnRequests over both bindings, accepts our signed and
//! encrypted assertions, and logs out SP-initiated with a signed LogoutRequest.

use kuntalaistili_tests::{dual, Backend, TestApp};

use super::{events, pem, PASSWORD};

dual!(pysaml2_sp_logs_in_and_out_over_both_bindings);

async fn pysaml2_sp_logs_in_and_out_over_both_bindings(b: Backend) {
    let app = TestApp::start(b).await;
    let user = app.add_user("maija", PASSWORD).await;
    let dir = app.db.dir().join("pysaml2");
    std::fs::create_dir_all(&dir).unwrap();
    let key = kuntalaistili_metadata::saml::keys::generate(
        "pysaml2.sp.test",
        kuntalaistili_schema::now_utc(),
    )
    .unwrap()
    .0;
    std::fs::write(dir.join("key.pem"), pem("PRIVATE KEY", &key.private_der)).unwrap();
    std::fs::write(dir.join("cert.pem"), pem("CERTIFICATE", &key.cert_der)).unwrap();
    let d = dir.to_str().unwrap().to_owned();
    let entity = "https://pysaml2.sp.test/metadata".to_owned();
    let sp_base = "http://127.0.0.1:9".to_owned();
    kuntalaistili_tests::run_system_python(
        "saml/sp.py",
        vec![
            "metadata".into(),
            d.clone(),
            entity.clone(),
            sp_base.clone(),
        ],
    )
    .await;
    let md = dir.join("sp.xml");
    let (code, v) = app.cli_json(&[
        "sp",
        "add",
        "--metadata",
        md.to_str().unwrap(),
        "--require-signed-requests",
        "--encrypt-assertions",
        "--attributes",
        "givenName,sn,mail,cn,uid",
        "--json",
    ]);
    assert_eq!(
        (code, v["entity_id"].as_str()),
        (0, Some(entity.as_str())),
        "{v}"
    );

    for binding in ["redirect", "post"] {
        let seen = kuntalaistili_tests::run_system_python(
            "saml/sp.py",
            vec![
                "login".into(),
                d.clone(),
                entity.clone(),
                sp_base.clone(),
                app.base.clone(),
                "maija".into(),
                PASSWORD.into(),
                binding.into(),
            ],
        )
        .await;
        assert_eq!(seen["login_page"], 200, "{binding}: {seen}");
        assert_eq!(seen["acs"], format!("{sp_base}/acs"));
        assert_eq!(seen["relay_state"], "/after-login");
        assert_eq!(seen["in_response_to"], true);
        assert_eq!(seen["encrypted"], true, "{seen}");
        assert_eq!(seen["assertion_signed"], true);
        assert_eq!(
            seen["name_id_format"],
            "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
        );
        assert_eq!(
            seen["name_id"].as_str(),
            Some(app.state.keys.pairwise_subject(&entity, &user.id).as_str())
        );
        assert_eq!(seen["attributes"]["givenName"][0], "Testi");
        assert_eq!(seen["attributes"]["mail"][0], "maija@example.fi");
        assert_eq!(seen["attributes"]["uid"][0], "maija");
        assert_eq!(seen["sso_same_name_id"], true);
        assert_eq!(seen["logout_status"], 303);
        assert_eq!(seen["logout_to_slo"], true);
        assert_eq!(seen["logout_success"], true);
        assert_eq!(seen["account_after_logout"], 303, "the IdP session is gone");
    }

    // What the audit log says: four assertions (two per binding), two logouts from the SP.
    let issued = events(&app, "saml.assertion_issued").await;
    assert_eq!(issued.len(), 4);
    assert!(issued
        .iter()
        .all(|(o, d)| o == "success" && d["sp"] == entity.as_str() && d["encrypted"] == true));
    let logouts = events(&app, "saml.logout_request").await;
    assert_eq!(logouts.len(), 2);
    assert!(logouts.iter().all(|(_, d)| d["sessions_ended"] == 1));
}

dual!(simplesamlphp_sp_logs_in_and_out_with_encrypted_assertions);

/// Stops the SimpleSAMLphp SP's private Apache when the test ends, whatever happens.
struct Apache(std::path::PathBuf);

impl Drop for Apache {
    fn drop(&mut self) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/interop/saml/simplesamlphp/stop.sh"
        );
        let _ = std::process::Command::new("bash")
            .arg(script)
            .arg(&self.0)
            .output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SimpleSAMLphp 1.19 (Debian) as SP in a private Apache: it reads our metadata with its own
/// parser (checking the metadata signature), signs its requests, decrypts and verifies our
/// assertions, and logs out through our SLO endpoint (tests/interop/saml/simplesamlphp/).
async fn simplesamlphp_sp_logs_in_and_out_with_encrypted_assertions(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("maija", PASSWORD).await;
    // Apache's workers run as www-data: the state lives in a directory they can read.
    let state = std::path::PathBuf::from(format!("/tmp/kl-ssp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&state).unwrap();
    let _apache = Apache(state.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/interop/saml/simplesamlphp/setup.sh"
    );
    let (base, st) = (app.base.clone(), state.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(script)
            .arg(&base)
            .arg(&st)
            .arg(port.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "setup.sh: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let setup: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    let (code, v) = app.cli_json(&[
        "sp",
        "add",
        "--metadata",
        setup["sp_metadata"].as_str().unwrap(),
        "--require-signed-requests",
        "--encrypt-assertions",
        "--attributes",
        "givenName,sn,mail,cn,uid",
        "--json",
    ]);
    assert_eq!((code, &v["entity_id"]), (0, &setup["entity_id"]), "{v}");
    let seen = kuntalaistili_tests::run_system_python(
        "saml/simplesamlphp/login.py",
        vec![
            app.base.clone(),
            format!("http://127.0.0.1:{port}"),
            "maija".into(),
            PASSWORD.into(),
            "--expect-encrypted".into(),
            "--ssp-log".into(),
            state
                .join("log/simplesamlphp.log")
                .to_string_lossy()
                .into_owned(),
        ],
    )
    .await;
    assert_eq!(seen["ok"], true, "{seen}");
    for check in [
        "login",
        "assertion_encrypted",
        "logout_completed",
        "idp_session_gone",
        "sp_session_gone",
    ] {
        assert_eq!(seen["checks"][check], true, "{check}: {seen}");
    }
    assert_eq!(
        seen["attributes_friendly"]["mail"][0], "maija@example.fi",
        "{seen}"
    );
    let issued = events(&app, "saml.assertion_issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].1["encrypted"], true);
    assert_eq!(events(&app, "saml.logout_request").await.len(), 1);
}
