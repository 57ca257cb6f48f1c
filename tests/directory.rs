//! The service directory's seutukunta classification: bundled data loaded on first start, served
//! as JSON, replaceable as a whole from the CLI, refused whole when broken.

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::Value;

dual!(bundled_classification_is_served_and_can_be_replaced);

fn cli(app: &TestApp, args: &[&str]) -> (i32, Value) {
    let (code, out) = app.cli(args);
    (code, serde_json::from_str(&out).unwrap())
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
            {"code":"023","name_fi":"Turku","name_sv":"Åbo","municipalities":[{"code":"853","name_fi":"Turku"}]}]}"#,
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

const CATALOGUE: &str = r#"{"services": [
  {"id": "kirjasto", "name": {"fi": "Kirjastokortti", "sv": "Bibliotekskort", "en": "Library card"},
   "description": {"fi": "Hae kirjastokorttia.", "sv": "Ansök om bibliotekskort.", "en": "Apply for a library card."},
   "provider": "Helsingin kaupunki", "channel_url": "https://kirjasto.example.fi/kortti", "auth_level": "password",
   "keywords": ["kirjasto", "lainaus"], "target_groups": ["residents"], "municipalities": ["091"], "built_in": false},
  {"id": "uimahalli", "name": {"fi": "Uimahallivuorot", "sv": "Simhallsturer", "en": "Swimming hall shifts"},
   "description": {"fi": "Varaa vuoro.", "sv": "Boka en tur.", "en": "Book a shift."},
   "provider": "Turun kaupunki", "channel_url": "https://turku.example.fi/uinti", "auth_level": "strong",
   "keywords": ["liikunta"], "target_groups": ["clubs"], "municipalities": ["853"], "built_in": false},
  {"id": "palaute", "name": {"fi": "Palaute", "sv": "Respons", "en": "Feedback"},
   "description": {"fi": "Anna palautetta.", "sv": "Ge respons.", "en": "Give feedback."},
   "provider": "Kuntalaistili", "channel_url": "/services/feedback", "auth_level": "none",
   "keywords": [], "target_groups": [], "municipalities": [], "built_in": true}
]}"#;

dual!(services_are_imported_searched_and_exported);

async fn services_are_imported_searched_and_exported(b: Backend) {
    let app = TestApp::start(b).await;
    let file = app.db.dir().join("services.json");
    std::fs::write(&file, CATALOGUE).unwrap();
    let (code, v) = tokio::task::block_in_place(|| {
        cli(
            &app,
            &[
                "directory",
                "import-services",
                file.to_str().unwrap(),
                "--json",
            ],
        )
    });
    assert_eq!((code, v), (0, serde_json::json!({ "services": 3 })));

    let ids = |doc: &Value| -> Vec<String> {
        let mut v: Vec<String> = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let get = |query: &'static str| {
        let url = app.url(&format!("/services/directory/api/services{query}"));
        let client = app.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // The directory page: the same search for people, in their language.
    let page = |query: &'static str| {
        let url = app.url(&format!("/services/directory/{query}"));
        let client = app.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) = page("?seutukunta=011").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Kirjastokortti")
            && html.contains("Palaute")
            && !html.contains("Uimahallivuorot")
    );
    assert!(html.contains("Löytyi 2 palvelua."), "{html}");
    assert!(html.contains("<option value=\"011\" selected>"));
    let (_, html) = page("?q=simhall&lang=sv").await;
    assert!(html.contains("Simhallsturer") && html.contains("1 tjänster hittades."));
    // Nonsense filters are ignored, never an error.
    assert_eq!(page("?seutukunta=%3Cscript%3E&q=").await.0, 200);

    let (s, all) = get("").await;
    assert_eq!(
        (s, ids(&all)),
        (
            200,
            vec!["kirjasto".to_owned(), "palaute".into(), "uimahalli".into()]
        )
    );
    // Helsinki sub-region: its own service and the one offered everywhere.
    assert_eq!(
        ids(&get("?seutukunta=011").await.1),
        ["kirjasto", "palaute"]
    );
    assert_eq!(
        ids(&get("?seutukunta=023").await.1),
        ["palaute", "uimahalli"]
    );
    // Text in any language, names, descriptions and keywords, case-insensitive.
    assert_eq!(ids(&get("?q=SIMHALL").await.1), ["uimahalli"]);
    assert_eq!(ids(&get("?q=lainaus").await.1), ["kirjasto"]);
    assert_eq!(
        ids(&get("?q=kirjasto&seutukunta=023").await.1),
        Vec::<String>::new()
    );
    // Bad parameters: RFC 7807 problems.
    let r = app
        .client
        .get(app.url("/services/directory/api/services?seutukunta=x1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));

    // A service without its Swedish name is refused, and nothing of that file is stored.
    let broken = CATALOGUE
        .replace(r#""sv": "Respons""#, r#""sv": """#)
        .replace("Kirjastokortti", "Uusi nimi");
    std::fs::write(&file, broken).unwrap();
    let (code, v) = tokio::task::block_in_place(|| {
        cli(
            &app,
            &[
                "directory",
                "import-services",
                file.to_str().unwrap(),
                "--json",
            ],
        )
    });
    assert_eq!(code, 1);
    assert!(
        v["error"].as_str().unwrap().contains("fi, sv and en"),
        "{v}"
    );
    assert!(get("?q=Uusi").await.1["services"]
        .as_array()
        .unwrap()
        .is_empty());

    // Export gives back what was imported.
    let (code, out) = tokio::task::block_in_place(|| app.cli(&["directory", "export-services"]));
    assert_eq!(code, 0);
    let exported: Value = serde_json::from_str(&out).unwrap();
    let mut original: Value = serde_json::from_str(CATALOGUE).unwrap();
    original["services"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|s| s["name"]["fi"].as_str().unwrap().to_owned());
    assert_eq!(exported, original);
}
