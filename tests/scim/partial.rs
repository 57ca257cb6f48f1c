//! SCIM beyond the basics: `externalId`, partial representations (`attributes`,
//! `excludedAttributes`), `.search`, a GET after PATCH showing what was patched, and SCIM errors
//! for unsupported methods and unknown paths.

use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};

use super::{Scim, EXT};

dual!(scim_external_ids_partial_representations_and_search);

/// `externalId` kept and filtered on (case-exact), `attributes` / `excludedAttributes`
/// (RFC 7644 §3.9), `POST …/.search` (§3.4.3), a GET after PATCH showing what was patched, and
/// SCIM errors for unsupported methods and unknown paths.
async fn scim_external_ids_partial_representations_and_search(b: Backend) {
    let app = TestApp::start(b).await;
    let scim = Scim {
        app: &app,
        token: app.client_token("scim").await,
    };
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;
    let (s, u, _) = scim
        .call(
            post.clone(),
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "scim-ext",
                "externalId": "HR-0042",
                "name": { "givenName": "Eila", "familyName": "Ext" },
                "emails": [{ "value": "eila@example.fi", "primary": true }],
            })),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["externalId"], "HR-0042");
    assert_eq!(u["emails"], json!([{ "value": "eila@example.fi" }]));
    assert!(u["name"].get("formatted").is_none(), "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(scim.total(r#"externalId eq "HR-0042""#).await, 1);
    assert_eq!(scim.total(r#"externalId eq "hr-0042""#).await, 0);
    assert_eq!(
        scim.total(r#"externalId sw "HR" and userName eq "SCIM-EXT""#)
            .await,
        1
    );

    // Partial representations: id, schemas and meta always come along.
    let (s, v) = scim
        .get(&format!("/Users/{id}?attributes=userName,name.givenName"))
        .await;
    assert_eq!(s, 200);
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["id", "meta", "name", "schemas", "userName"], "{v}");
    assert_eq!(v["name"], json!({ "givenName": "Eila" }));
    let (_, v) = scim
        .get(&format!(
            "/Users/{id}?excludedAttributes=emails,externalId,id"
        ))
        .await;
    assert!(v.get("emails").is_none() && v.get("externalId").is_none());
    assert_eq!(v["id"], id.as_str());
    let (_, v) = scim
        .get("/Users?filter=userName%20eq%20%22scim-ext%22&attributes=emails.value")
        .await;
    assert_eq!(
        v["Resources"][0]["emails"],
        json!([{ "value": "eila@example.fi" }])
    );
    assert!(v["Resources"][0].get("userName").is_none());

    // PATCH: an added email replaces the one kept; removed channels stay removed; the external
    // id can be replaced and removed.
    let ops = |ops: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops });
    let (s, v, _) = scim
        .call(
            patch.clone(),
            &format!("/Users/{id}"),
            Some(ops(json!([
                { "op": "add", "path": "emails", "value": [{ "value": "eila.ext@example.fi" }] },
                { "op": "remove", "path": format!("{EXT}:messageChannels") },
                { "op": "replace", "path": "externalId", "value": "HR-0043" },
            ]))),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["emails"], json!([{ "value": "eila.ext@example.fi" }]));
    assert!(v[EXT].get("messageChannels").is_none(), "{v}");
    assert_eq!(v["externalId"], "HR-0043");
    let (_, v, _) = scim
        .call(
            patch.clone(),
            &format!("/Users/{id}"),
            Some(ops(
                json!([{ "op": "remove", "path": "externalId" }, { "op": "replace", "path": "name.familyName", "value": "Ulkoinen" }]),
            )),
            &[],
        )
        .await;
    assert!(v.get("externalId").is_none(), "{v}");
    assert!(v[EXT].get("messageChannels").is_none(), "{v}");
    let (_, got) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(
        got["name"],
        json!({ "givenName": "Eila", "familyName": "Ulkoinen" })
    );

    // Groups keep an external id too.
    let (s, g, _) = scim
        .call(
            post.clone(),
            "/Groups",
            Some(json!({ "displayName": "Ulkoiset", "externalId": "AD-G-7",
                "members": [{ "value": id }] })),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["externalId"], "AD-G-7");
    let (_, v) = scim
        .get("/Groups?filter=externalId%20eq%20%22AD-G-7%22&excludedAttributes=members")
        .await;
    assert_eq!(v["totalResults"], 1);
    assert!(v["Resources"][0].get("members").is_none());

    // Searches (RFC 7644 §3.4.3).
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"scim-ext\"",
        "attributes": ["userName"],
    });
    let (s, v, _) = scim
        .call(post.clone(), "/Users/.search", Some(search.clone()), &[])
        .await;
    assert_eq!((s, &v["totalResults"]), (200, &json!(1)), "{v}");
    assert_eq!(v["Resources"][0]["userName"], "scim-ext");
    assert!(v["Resources"][0].get("name").is_none());
    let (_, v, _) = scim
        .call(post.clone(), "/.search", Some(json!({ "count": 50 })), &[])
        .await;
    let types: Vec<_> = v["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains(&"User".to_owned()) && types.contains(&"Group".to_owned()));
    let (_, v, _) = scim
        .call(
            post.clone(),
            "/Groups/.search",
            Some(json!({ "filter": "displayName eq \"Ulkoiset\"", "startIndex": 1, "count": 1 })),
            &[],
        )
        .await;
    assert_eq!(v["totalResults"], 1);
    // Sorting (RFC 7644 §3.4.2.3), here the people by userName, descending.
    for name in ["scim-aino", "scim-zyy"] {
        let (s, _, _) = scim
            .call(
                post.clone(),
                "/Users",
                Some(json!({ "userName": name })),
                &[],
            )
            .await;
        assert_eq!(s, 201);
    }
    let (s, v) = scim
        .get("/Users?sortBy=userName&sortOrder=descending&attributes=userName")
        .await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["scim-zyy", "scim-ext", "scim-aino"]);
    let (s, _) = scim.get("/Users?sortBy=userName&sortOrder=sideways").await;
    assert_eq!(s, 400);
    // Writes answer with the representation asked for too.
    let (s, v, _) = scim
        .call(
            post.clone(),
            "/Users?attributes=userName",
            Some(json!({ "userName": "scim-osittain", "externalId": "X-1" })),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["id", "meta", "schemas", "userName"], "{v}");
    let (s, v, _) = scim
        .call(
            patch.clone(),
            &format!(
                "/Users/{}?excludedAttributes=externalId",
                v["id"].as_str().unwrap()
            ),
            Some(ops(
                json!([{ "op": "replace", "path": "externalId", "value": "X-2" }]),
            )),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("externalId").is_none() && v["userName"] == "scim-osittain");
    for (bad, scim_type) in [
        (json!({ "filter": "userName zz 1" }), "invalidFilter"),
        (json!({ "filter": 7 }), "invalidFilter"),
        (json!({ "schemas": ["urn:x"] }), "invalidSyntax"),
        (json!({ "attributes": [{}] }), "invalidValue"),
        (json!({ "count": "many" }), "invalidValue"),
    ] {
        let (s, v, _) = scim.call(post.clone(), "/.search", Some(bad), &[]).await;
        assert_eq!((s, &v["scimType"]), (400, &json!(scim_type)), "{v}");
    }

    // Unsupported methods are 405, unknown paths 404, both as SCIM errors.
    for (method, path) in [
        (reqwest::Method::DELETE, "/ServiceProviderConfig"),
        (post.clone(), "/Schemas"),
        (reqwest::Method::PUT, "/ResourceTypes/User"),
        (reqwest::Method::GET, "/.search"),
        (reqwest::Method::DELETE, "/Users"),
        (post.clone(), &*format!("/Users/{id}")),
    ] {
        let (s, _, h) = scim.call(method.clone(), path, None, &[]).await;
        assert_eq!(s, 405, "{method} {path}");
        assert!(h.contains_key("allow"));
    }
    let (s, _) = scim.get("/Nothing/here").await;
    assert_eq!(s, 404);
    let (s, _) = scim.get(&format!("/Users/{id}?count=x")).await;
    assert_eq!(s, 400);
}
