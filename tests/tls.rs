//! Serving HTTPS directly with rustls: a full login over TLS with `__Host-` Secure cookies.

use kuntalaistili::config::TlsConfig;
use kuntalaistili_tests::{csrf_from, Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_tls_with_host_prefixed_secure_cookies() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.tls = Some(TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        })
    })
    .await;
    app.add_user("turva", "turvallinen-salasana").await;
    assert!(app.state.settings.secure_cookies);
    assert!(app
        .state
        .settings
        .public_url
        .starts_with("https://127.0.0.1:"));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = app.base.replace("http://", "https://");
    let page = client.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("strict-transport-security"));
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(
        csrf_cookie
            .iter()
            .any(|c| c.starts_with("__Host-kl_csrf=") && c.contains("Secure")),
        "{csrf_cookie:?}"
    );
    let token = csrf_from(&page.text().await.unwrap()).unwrap();
    let r = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", "turva"),
            ("password", "turvallinen-salasana"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("__Host-kl_session=")));
    assert_eq!(
        client
            .get(format!("{base}/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Plain http to the TLS port is refused, not answered.
    assert!(reqwest::get(format!("{}/healthz", app.base))
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true));

    // SAML metadata over https from a server whose certificate chains to a private CA (here: the
    // self-signed one): refused with the web roots alone, fetched with `[saml] metadata_ca_file`.
    let md = format!("{base}/saml/metadata");
    let refused = kuntalaistili_federation::saml::fetch(&md, None).await;
    assert!(refused.is_err(), "an unknown CA is not trusted");
    let pem = cert.cert.pem();
    let xml = kuntalaistili_federation::saml::fetch(&md, Some(pem.as_bytes()))
        .await
        .unwrap();
    assert!(xml.contains("IDPSSODescriptor"));
}
