//! Tokens: PKCE and code misuse, code replay, refresh rotation, client assertions, revocation,
//! and the claims and subjects an RP receives.

use kuntalaistili_tests::{dual, Backend, TestApp};

use super::*;

dual!(
    pkce_and_code_misuse_get_invalid_grant,
    code_replay_revokes_what_the_first_use_issued,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    private_key_jwt_authenticates_and_refuses_bad_assertions,
    revocation_ends_tokens,
    claims_follow_scopes_pairwise_subjects_and_national_id_rules,
);

async fn pkce_and_code_misuse_get_invalid_grant(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let other = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "pekka").await;

    // Wrong verifier, missing verifier.
    let (code, _) = code_for(&app, &browser, &rp).await;
    let (wrong, _) = pkce();
    let (s, body) = exchange(&app, &rp, &code, &wrong).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (code, _) = code_for(&app, &browser, &rp).await;
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // A verifier with no challenge in the request (PKCE downgrade, A03).
    let r = authorize(
        &app,
        &browser,
        &auth_query(
            &rp,
            "",
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
    )
    .await;
    let p = redirect_params(&r);
    let code = param(&p, "code").unwrap().to_owned();
    let (v, _) = pkce();
    let (s, body) = exchange(&app, &rp, &code, &v).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // Another client's code fails and does not burn the code (A06).
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (s, body) = exchange(&app, &other, &code, &verifier).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // redirect_uri differing from the request (A05) — this attempt uses the code up.
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example.fi/other"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // An expired code.
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let h = kuntalaistili_metadata::crypto::sha256_hex(&code);
    app.with_conn(move |c| {
        use diesel::prelude::*;
        use kuntalaistili_schema::schema::oidc_codes::dsl::*;
        diesel::update(oidc_codes.find(h))
            .set(expires_at.eq(kuntalaistili_schema::now_utc() - chrono::Duration::seconds(1)))
            .execute(c)
            .unwrap();
    })
    .await;
    let (s, body) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // Wrong secret; unknown grant types; implicit/password refused.
    let bad = Rp {
        id: rp.id.clone(),
        secret: Some("wrong".into()),
    };
    let (s, body) = exchange(&app, &bad, "x", "y").await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "password"),
            ("username", "a"),
            ("password", "b"),
        ],
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

async fn code_replay_revokes_what_the_first_use_issued(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "liisa").await;
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (s, first) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(s, 200);
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, at).await.0, 200);
    let (s, again) = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!((s, again["error"].as_str()), (400, Some("invalid_grant")));
    // The first access token and refresh token are dead now.
    assert_eq!(userinfo(&app, at).await.0, 401);
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(audit_count(&app, "oidc.token_replay").await, 1);
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let other = add_rp(&app, |_| {}).await;
    let browser = logged_in(&app, "ritva").await;
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t1) = exchange(&app, &rp, &code, &verifier).await;
    let rt1 = t1["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String, who: String| {
        let app = &app;
        async move {
            token(
                app,
                Some(who),
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }
    };
    // Another client cannot use it (and does not burn it).
    let (s, body) = refresh(rt1.clone(), other.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (s, t2) = refresh(rt1.clone(), rp.basic()).await;
    assert_eq!(s, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // The refreshed ID token keeps the original nonce and auth_time.
    let keys = jwks(&app).await;
    let c1 =
        kuntalaistili_metadata::keys::verify_jwt(&keys, t1["id_token"].as_str().unwrap()).unwrap();
    let c2 =
        kuntalaistili_metadata::keys::verify_jwt(&keys, t2["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(c2["nonce"], "nonssi-456");
    assert_eq!(c1["auth_time"], c2["auth_time"]);
    // Narrowing the scope works; widening does not.
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt2),
            ("scope", "openid admin"),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
    // (that attempt used rt2 up; the family is still fine because it was a first use)
    // Reuse of rt1: the whole family dies, rt2's successor and access tokens included.
    let (s, body) = refresh(rt1.clone(), rp.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        userinfo(&app, t2["access_token"].as_str().unwrap()).await.0,
        401
    );

    // A new grant: logout ends its refresh tokens (A12).
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    let csrf = app.csrf_token(&browser, "/logout").await;
    assert_eq!(
        app.post_form(&browser, "/logout", &[("csrf", &csrf)])
            .await
            .status(),
        303
    );
    let (s, body) = refresh(t["refresh_token"].as_str().unwrap().to_owned(), rp.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

    // And a password change ends them too.
    assert_eq!(app.login(&browser, "ritva", PASSWORD).await.status(), 303);
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    let st = app.state.clone();
    app.with_conn(move |c| {
        kuntalaistili_idp::customers::set_password(
            c,
            &st.hasher,
            "ritva",
            "uusi-salasana-pitka",
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap();
    })
    .await;
    let (s, body) = refresh(t["refresh_token"].as_str().unwrap().to_owned(), rp.basic()).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

/// An ES256 key pair for a client: (PKCS#8 signing key, public JWKS).
fn client_key() -> (ring::signature::EcdsaKeyPair, Value) {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = kp.public_key().as_ref();
    let jwks = json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "kid": "rp-key-1",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    }]});
    (kp, jwks)
}

fn sign_es256(kp: &ring::signature::EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = kp
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

async fn private_key_jwt_authenticates_and_refuses_bad_assertions(b: Backend) {
    let app = TestApp::start(b).await;
    let (kp, keys) = client_key();
    let rp = add_rp(&app, move |n| n.jwks = Some(keys.to_string())).await;
    assert!(
        rp.secret.is_none(),
        "key-authenticated clients get no secret"
    );
    let browser = logged_in(&app, "jwt").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, exp: i64, jti: &str| json!({ "iss": rp.id, "sub": rp.id, "aud": aud, "exp": exp, "iat": now, "jti": jti });
    let es = json!({ "alg": "ES256", "kid": "rp-key-1" });
    let token_url = app.url("/oauth2/token");
    let ok = sign_es256(&kp, &es, &claims(&token_url, now + 60, "j1"));
    let use_assertion = |assertion: String| {
        let app = &app;
        let browser = &browser;
        let rp = &rp;
        async move {
            let (code, verifier) = code_for(app, browser, rp).await;
            token(
                app,
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    let (s, body) = use_assertion(ok.clone()).await;
    assert_eq!(s, 200, "{body}");
    // Replayed jti.
    let (s, body) = use_assertion(ok).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    // Issuer as audience is fine too.
    assert_eq!(
        use_assertion(sign_es256(&kp, &es, &claims(&app.base, now + 60, "j2")))
            .await
            .0,
        200
    );
    let bad = [
        sign_es256(
            &kp,
            &es,
            &claims("https://elsewhere.example/token", now + 60, "j3"),
        ),
        sign_es256(&kp, &es, &claims(&token_url, now + 3600, "j4")),
        sign_es256(&kp, &es, &claims(&token_url, now - 10, "j5")),
        // alg=none
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims(&token_url, now + 60, "j6").to_string())
        ),
        // HS256 keyed with the public key (algorithm confusion).
        {
            use hmac::{Hmac, Mac};
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"rp-key-1"}"#),
                URL_SAFE_NO_PAD.encode(claims(&token_url, now + 60, "j7").to_string())
            );
            let mut mac =
                Hmac::<Sha256>::new_from_slice(json!({"kty":"EC"}).to_string().as_bytes()).unwrap();
            mac.update(input.as_bytes());
            format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        },
        // Signed by another key.
        sign_es256(&client_key().0, &es, &claims(&token_url, now + 60, "j8")),
    ];
    for a in bad {
        let (s, body) = use_assertion(a.clone()).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{a}"
        );
    }
}

async fn revocation_ends_tokens(b: Backend) {
    let app = TestApp::start(b).await;
    let rp = add_rp(&app, |_| {}).await;
    let other = add_rp(&app, |_| {}).await;
    let introspector = add_rp(&app, |n| n.grant_types = vec!["client_credentials".into()]).await;
    let browser = logged_in(&app, "revo").await;
    let (code, verifier) = code_for(&app, &browser, &rp).await;
    let (_, t) = exchange(&app, &rp, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let introspect = |tok: String| {
        let app = &app;
        let who = introspector.basic();
        async move {
            let r = app
                .client
                .post(app.url("/oauth2/introspect"))
                .header("authorization", who)
                .form(&[("token", tok)])
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(introspect(at.to_owned()).await["active"], true);
    let rt_info = introspect(rt.to_owned()).await;
    assert_eq!(
        (rt_info["active"].as_bool(), rt_info["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    let revoke = |tok: String, who: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/oauth2/revoke"))
                .header("authorization", who)
                .form(&[("token", tok)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Another client's revocation is a no-op (200, token still live).
    assert_eq!(revoke(at.to_owned(), other.basic()).await, 200);
    assert_eq!(userinfo(&app, at).await.0, 200);
    assert_eq!(revoke(at.to_owned(), rp.basic()).await, 200);
    assert_eq!(userinfo(&app, at).await.0, 401);
    assert_eq!(introspect(at.to_owned()).await["active"], false);
    // The refresh token still works until revoked; then the grant is gone.
    let (s, t2) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(s, 200);
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert_eq!(revoke(rt2.to_owned(), rp.basic()).await, 200);
    let (s, body) = token(
        &app,
        Some(rp.basic()),
        &[("grant_type", "refresh_token"), ("refresh_token", rt2)],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        userinfo(&app, t2["access_token"].as_str().unwrap()).await.0,
        401
    );
    // Unknown tokens: 200 all the same; no authentication: 401.
    assert_eq!(revoke("nonsense".into(), rp.basic()).await, 200);
    let r = app
        .client
        .post(app.url("/oauth2/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(audit_count(&app, "oidc.token_revoked").await >= 2);
}

/// What an RP learns: claims by scope (address, phone, municipality), the national id only to a
/// client allowed it (and audited), and pairwise subjects that differ per sector.
async fn claims_follow_scopes_pairwise_subjects_and_national_id_rules(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    let user = app
        .with_conn(move |c| {
            kuntalaistili_idp::customers::add(
                c,
                &st.keys,
                &st.hasher,
                kuntalaistili_idp::customers::NewPerson {
                    username: "henna".into(),
                    password: Some(PASSWORD.into()),
                    given_name: Some("Henna".into()),
                    family_name: Some("Hämäläinen".into()),
                    phone: Some("+358401234567".into()),
                    street_address: Some("Kirkkokatu 1".into()),
                    postal_code: Some("90100".into()),
                    locality: Some("Oulu".into()),
                    home_municipality: Some("564".into()),
                    national_id: Some("010190-123M".into()),
                    ..Default::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap()
        })
        .await;
    let browser = app.browser();
    assert_eq!(app.login(&browser, "henna", PASSWORD).await.status(), 303);
    let scope = "openid profile phone address municipality national_id";
    let allowed = add_rp(&app, move |n| {
        n.scopes = scope.into();
        n.allow_national_id = true;
    })
    .await;
    let not_allowed = add_rp(&app, move |n| n.scopes = scope.into()).await;
    let pair_a = add_rp(&app, |n| n.pairwise = true).await;
    let pair_b = add_rp(&app, |n| {
        n.pairwise = true;
        n.sector_identifier = Some("other-sector.example.fi".into());
    })
    .await;

    let tokens_for = |rp: &Rp, scope: &'static str| {
        let (app, browser) = (&app, &browser);
        let rp = Rp {
            id: rp.id.clone(),
            secret: rp.secret.clone(),
        };
        async move {
            let (verifier, challenge) = pkce();
            let r = authorize(
                app,
                browser,
                &auth_query(&rp, &challenge, &[("scope", scope)]),
            )
            .await;
            let p = redirect_params(&r);
            let (s, t) = exchange(app, &rp, param(&p, "code").unwrap(), &verifier).await;
            assert_eq!(s, 200, "{t}");
            t
        }
    };
    let t = tokens_for(&allowed, scope).await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["sub"], user.id.as_str());
    assert_eq!(info["national_id"], "010190-123M");
    assert_eq!(info["home_municipality"], "564");
    assert_eq!(info["phone_number"], "+358401234567");
    assert_eq!(info["address"]["locality"], "Oulu");
    assert_eq!(info["address"]["formatted"], "Kirkkokatu 1\n90100 Oulu");
    assert_eq!(info["name"], "Henna Hämäläinen");
    assert!(info.get("email").is_none(), "email was not asked for");
    assert_eq!(audit_count(&app, "oidc.national_id_released").await, 1);

    let t = tokens_for(&not_allowed, scope).await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert!(info.get("national_id").is_none());
    assert_eq!(audit_count(&app, "oidc.national_id_released").await, 1);

    let keys = jwks(&app).await;
    let sub_of = |t: &Value| {
        kuntalaistili_metadata::keys::verify_jwt(&keys, t["id_token"].as_str().unwrap()).unwrap()
            ["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a1 = sub_of(&tokens_for(&pair_a, "openid").await);
    let a2 = sub_of(&tokens_for(&pair_a, "openid").await);
    let b1 = sub_of(&tokens_for(&pair_b, "openid").await);
    assert_eq!(a1, a2, "stable per sector");
    assert_ne!(a1, user.id);
    assert_ne!(a1, b1, "unlinkable across sectors");
    let t = tokens_for(&pair_a, "openid").await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["sub"], a1.as_str(), "userinfo and ID token agree");
}
