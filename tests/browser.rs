//! The login flow in a real browser (Debian's Chromium driven by playwright-core), with axe-core
//! WCAG 2.1 AA checks of the login, error, account and logout pages in fi, sv and en.

use kuntalaistili_tests::{dual, Backend, TestApp};

dual!(resident_logs_in_and_out_in_chromium_on_accessible_pages);

async fn resident_logs_in_and_out_in_chromium_on_accessible_pages(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("selain", "selaimen-salasana").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/login.mjs");
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/browser/screenshots");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args([script, &base, "selain", "selaimen-salasana", shots])
            .output()
            .expect("node is needed for the browser tests (ops/setup.sh installs the rest)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["pages"].as_array().unwrap().len(), 12);
    assert_eq!(seen["violations"], serde_json::json!([]));
    // The browser's logins are in the audit log: three successes and three failures.
    let (ok, failed) = app
        .with_conn(|c| {
            use kuntalaistili_schema::audit::recent;
            (
                recent(c, Some("login.success"), None, 50).unwrap().len(),
                recent(c, Some("login.failure"), None, 50).unwrap().len(),
            )
        })
        .await;
    assert_eq!((ok, failed), (3, 3));
}
