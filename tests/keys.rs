//! Token-signing keys: JWKS, signing with the active key, rotation with pre-publication and
//! retirement, private parts only under the master key.

use chrono::Duration;
use kuntalaistili_idp::crypto::MasterKeys;
use kuntalaistili_metadata::keys::{self, Alg, KeysError, RotationPolicy};
use kuntalaistili_schema::signing_keys;
use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::json;

dual!(
    jwks_publishes_one_es256_and_one_rs256_key_that_verify_our_tokens,
    rotation_prepublishes_switches_and_retires,
    private_keys_are_only_usable_with_the_master_key,
);

async fn jwks_publishes_one_es256_and_one_rs256_key_that_verify_our_tokens(b: Backend) {
    let app = TestApp::start(b).await;
    let r = app
        .client
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let jwks: serde_json::Value = r.json().await.unwrap();
    let list = jwks["keys"].as_array().unwrap();
    let mut algs: Vec<_> = list
        .iter()
        .map(|k| (k["alg"].as_str().unwrap(), k["kty"].as_str().unwrap()))
        .collect();
    algs.sort();
    assert_eq!(algs, [("ES256", "EC"), ("RS256", "RSA")]);
    for k in list {
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                k.get(private).is_none(),
                "{private} must never be published"
            );
        }
    }
    let st = app.state.clone();
    let (tokens, created_again) = app
        .with_conn(move |c| {
            let now = kuntalaistili_schema::now_utc();
            let tokens: Vec<String> = Alg::ALL
                .iter()
                .map(|a| {
                    keys::signer(c, &st.keys, *a, now)
                        .unwrap()
                        .sign_jwt(&json!({ "sub": "s", "alg_used": a.as_str() }))
                })
                .collect();
            // A second node starting on the same database creates nothing new.
            (tokens, keys::ensure(c, &st.keys, now).unwrap())
        })
        .await;
    assert!(created_again.is_empty());
    for t in tokens {
        assert_eq!(keys::verify_jwt(&jwks, &t).unwrap()["sub"], "s");
    }
}

async fn rotation_prepublishes_switches_and_retires(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    let (old_kid, new_kid, published_now, signer_now, signer_later, published_after, old_token_ok) =
        app.with_conn(move |c| {
            let now = kuntalaistili_schema::now_utc();
            let old = keys::signer(c, &st.keys, Alg::Es256, now).unwrap();
            let old_token = old.sign_jwt(&json!({ "sub": "before rotation" }));
            let policy = RotationPolicy {
                prepublish: Duration::hours(1),
                keep_after_retirement: Duration::hours(1),
            };
            let new = keys::rotate(c, &st.keys, Alg::Es256, now, policy).unwrap();
            let jwks_now = keys::jwks(c, now).unwrap();
            (
                old.kid.clone(),
                new.kid.clone(),
                jwks_now["keys"].as_array().unwrap().len(),
                keys::signer(c, &st.keys, Alg::Es256, now + Duration::minutes(59))
                    .unwrap()
                    .kid,
                keys::signer(c, &st.keys, Alg::Es256, now + Duration::minutes(61))
                    .unwrap()
                    .kid,
                keys::jwks(c, now + Duration::minutes(121)).unwrap()["keys"]
                    .as_array()
                    .unwrap()
                    .len(),
                keys::verify_jwt(&jwks_now, &old_token).is_some(),
            )
        })
        .await;
    assert_ne!(old_kid, new_kid);
    assert_eq!(
        published_now, 3,
        "the successor is published before it signs"
    );
    assert_eq!(signer_now, old_kid, "the old key signs until the switch");
    assert_eq!(signer_later, new_kid, "the new key signs after the delay");
    assert_eq!(
        published_after, 2,
        "the old key leaves the JWKS once its tokens have expired"
    );
    assert!(old_token_ok);
    // The HTTP JWKS shows the same three keys now.
    let jwks: serde_json::Value = app
        .client
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid));
}

async fn private_keys_are_only_usable_with_the_master_key(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    let (rows, foreign) = app
        .with_conn(move |c| {
            let now = kuntalaistili_schema::now_utc();
            let other = MasterKeys::from_base64(&MasterKeys::generate_base64()).unwrap();
            (
                signing_keys::published(c, now).unwrap(),
                keys::signer(c, &other, Alg::Es256, now).map(|s| s.kid),
            )
        })
        .await;
    assert!(matches!(foreign, Err(KeysError::Key(_))), "{foreign:?}");
    for r in rows {
        assert!(r.private_key_enc.starts_with("v1:"));
        assert!(!r.private_key_enc.contains("PRIVATE KEY"));
        assert!(st.keys.unwrap_private_key(&r.private_key_enc).is_ok());
    }
}
