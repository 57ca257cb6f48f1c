//! The service directory's seutukunta classification: bundled data loaded on first start, served
//! as JSON, replaceable as a whole from the CLI, refused whole when broken.

use kuntalaistili::cli::{run_args, Io};
use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::Value;

dual!(bundled_classification_is_served_and_can_be_replaced);

fn cli(app: &TestApp, args: &[&str]) -> (i32, Value) {
    let config = app.db.dir().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "master_key = \"{}\"\n[database]\nurl = \"{}\"\n[log]\nlevel = \"error\"\n",
            app.config.master_key.clone().unwrap(),
            app.db.url
        ),
    )
    .unwrap();
    let (mut input, mut out) = (std::io::Cursor::new(Vec::new()), Vec::new());
    let mut io = Io {
        stdin: &mut input,
        interactive: false,
        out: &mut out,
    };
    let mut argv = vec!["kuntalaistili", "--config", config.to_str().unwrap()];
    argv.extend_from_slice(args);
    let code = run_args(argv, &mut io).unwrap();
    (code, serde_json::from_slice(&out).unwrap())
}

async fn bundled_classification_is_served_and_can_be_replaced(b: Backend) {
    let app = TestApp::start(b).await;
    let r = app
        .client
        .get(app.url("/services/directory/api/seutukunnat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    let regions = doc["seutukunnat"].as_array().unwrap();
    assert_eq!(regions.len(), 69);
    let munis: usize = regions
        .iter()
        .map(|r| r["municipalities"].as_array().unwrap().len())
        .sum();
    assert_eq!(munis, 308);
    let helsinki = regions.iter().find(|r| r["code"] == "011").unwrap();
    assert_eq!(
        (helsinki["name_fi"].as_str(), helsinki["name_sv"].as_str()),
        (Some("Helsinki"), Some("Helsingfors"))
    );
    assert!(helsinki["municipalities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["code"] == "091"));
    assert!(doc["source"]
        .as_str()
        .unwrap()
        .contains("Statistics Finland"));

    // Next year's classification (here: a two-region excerpt) replaces this one as a whole.
    let next = app.db.dir().join("next.json");
    std::fs::write(
        &next,
        r#"{"source":"Statistics Finland seutukunta_1_20260101 (test excerpt)","seutukunnat":[
            {"code":"011","name_fi":"Helsinki","name_sv":"Helsingfors","municipalities":[{"code":"091","name_fi":"Helsinki"},{"code":"049","name_fi":"Espoo"}]},
            {"code":"021","name_fi":"Turku","name_sv":"Åbo","municipalities":[{"code":"853","name_fi":"Turku"}]}]}"#,
    )
    .unwrap();
    let (code, v) = tokio::task::block_in_place(|| {
        cli(
            &app,
            &["directory", "import", next.to_str().unwrap(), "--json"],
        )
    });
    assert_eq!(
        (code, v),
        (
            0,
            serde_json::json!({ "seutukunnat": 2, "municipalities": 3 })
        )
    );
    let doc: Value = app
        .client
        .get(app.url("/services/directory/api/seutukunnat"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["seutukunnat"].as_array().unwrap().len(), 2);
    assert!(doc["source"].as_str().unwrap().contains("20260101"));

    // A broken file changes nothing.
    std::fs::write(&next, r#"{"source":"x","seutukunnat":[{"code":"1","name_fi":"a","name_sv":"b","municipalities":[]}]}"#).unwrap();
    let (code, v) = tokio::task::block_in_place(|| {
        cli(
            &app,
            &["directory", "import", next.to_str().unwrap(), "--json"],
        )
    });
    assert_eq!(code, 1);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("invalid classification"),
        "{v}"
    );
    let doc: Value = app
        .client
        .get(app.url("/services/directory/api/seutukunnat"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["seutukunnat"].as_array().unwrap().len(), 2);
}
