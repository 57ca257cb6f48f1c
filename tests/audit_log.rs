//! The hash-chained audit log: intact under concurrent logins, tampering detected.

use diesel::connection::SimpleConnection;
use kuntalaistili_schema::audit;
use kuntalaistili_tests::{dual, new_client, Backend, TestApp};

dual!(
    old_events_are_archived_and_pruned_and_the_chain_still_verifies,
    concurrent_logins_keep_one_unbroken_chain,
    tampering_and_gaps_are_detected
);

async fn concurrent_logins_keep_one_unbroken_chain(b: Backend) {
    let app = TestApp::start(b).await;
    for i in 0..6 {
        app.add_user(&format!("user{i}"), "oikea-salasana").await;
    }
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = new_client();
        let (user, pw) = (
            format!("user{}", i % 6),
            if i % 3 == 0 {
                "väärin"
            } else {
                "oikea-salasana"
            },
        );
        let csrf = app.csrf_token(&client, "/login").await;
        let url = app.url("/login");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", user.as_str()),
                    ("password", pw),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let statuses = futures_util::future::join_all(tasks).await;
    let ok = statuses
        .iter()
        .filter(|s| *s.as_ref().unwrap() == 303)
        .count();
    let failed = statuses
        .iter()
        .filter(|s| *s.as_ref().unwrap() == 401)
        .count();
    assert_eq!((ok, failed), (8, 4), "{statuses:?}");
    let report = app.with_conn(|c| audit::verify(c).unwrap()).await;
    // 4 built-in services registered at start + 6 user.created + 8 login.success + 4 login.failure
    assert_eq!(
        report,
        audit::VerifyReport {
            checked: 22,
            first_broken: None
        }
    );
}

async fn tampering_and_gaps_are_detected(b: Backend) {
    let app = TestApp::start(b).await;
    app.add_user("hilkka", "oikea-salasana").await;
    app.login(&app.client, "hilkka", "väärin").await;
    app.login(&app.client, "hilkka", "oikea-salasana").await;
    let report = app.with_conn(|c| audit::verify(c).unwrap()).await;
    assert_eq!(report.first_broken, None);
    // The four built-in services' registrations, then the user and the two logins.
    assert_eq!(report.checked, 7);

    // Someone rewrites the failed login as a success.
    let report = app
        .with_conn(|c| {
            c.batch_execute("UPDATE audit_events SET outcome = 'success' WHERE seq = 6")
                .unwrap();
            audit::verify(c).unwrap()
        })
        .await;
    assert_eq!(
        report.first_broken,
        Some((6, "row content changed".to_owned()))
    );
    assert_eq!(report.checked, 5);

    // Someone deletes the row instead (after restoring it).
    let report = app
        .with_conn(|c| {
            c.batch_execute("UPDATE audit_events SET outcome = 'failure' WHERE seq = 6")
                .unwrap();
            assert_eq!(audit::verify(c).unwrap().first_broken, None);
            c.batch_execute("DELETE FROM audit_events WHERE seq = 6")
                .unwrap();
            audit::verify(c).unwrap()
        })
        .await;
    assert_eq!(report.first_broken, Some((6, "row missing".to_owned())));

    // Or cuts off the tail of the log: the chain head still remembers how long it was.
    let report = app
        .with_conn(|c| {
            c.batch_execute("DELETE FROM audit_events WHERE seq = 7")
                .unwrap();
            audit::verify(c).unwrap()
        })
        .await;
    assert_eq!(
        report.first_broken,
        Some((6, "rows missing at the end of the log".to_owned()))
    );
}

dual!(services_store_their_own_events_in_the_chain);

/// `POST /api/v1/audit/events` (`audit:write`): an external system's event joins the hash chain
/// under `ext.` with the calling client as actor; bad input and the wrong scope are refused.
async fn services_store_their_own_events_in_the_chain(b: Backend) {
    let app = TestApp::start(b).await;
    let token = app.client_token("audit:write").await;
    let post = |body: serde_json::Value, token: String| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url("/api/v1/audit/events"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (s, v) = post(
        serde_json::json!({ "event_type": "reservation.confirmed", "outcome": "success",
            "subject": "asukas-1", "details": { "resource": "Sali 1" } }),
        token.clone(),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let seq = v["seq"].as_i64().unwrap();
    let stored = app
        .with_conn(|c| audit::recent(c, Some("ext.reservation.confirmed"), None, 5).unwrap())
        .await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].seq, seq);
    assert_eq!(stored[0].subject.as_deref(), Some("asukas-1"));
    assert!(stored[0].actor.is_some());
    assert_eq!(
        app.with_conn(|c| audit::verify(c).unwrap())
            .await
            .first_broken,
        None
    );
    for bad in [
        serde_json::json!({ "event_type": "Login.Success", "outcome": "success" }),
        serde_json::json!({ "event_type": "x", "outcome": "maybe" }),
        serde_json::json!({ "event_type": "x", "outcome": "success", "details": [1] }),
        serde_json::json!({ "event_type": "x", "outcome": "success", "extra": true }),
    ] {
        assert_eq!(post(bad.clone(), token.clone()).await.0, 400, "{bad}");
    }
    let other = app.client_token("messages:send").await;
    let (s, _) = post(
        serde_json::json!({ "event_type": "x", "outcome": "success" }),
        other,
    )
    .await;
    assert_eq!(s, 403);
}

dual!(administrators_see_statistics_from_the_audit_log);

/// `/admin/statistics`: logins per day as SVG and table, active residents, tokens per client;
/// administrators only.
async fn administrators_see_statistics_from_the_audit_log(b: Backend) {
    let app = TestApp::start(b).await;
    let st = app.state.clone();
    app.with_conn(move |c| {
        kuntalaistili_idp::customers::add(
            c,
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: "paakayttaja".into(),
                password: Some("yllapidon-salasana".into()),
                role: "admin".into(),
                ..Default::default()
            },
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap();
    })
    .await;
    app.add_user("asukas", "asukkaan-salasana").await;
    let resident = new_client();
    app.login(&resident, "asukas", "väärä-salasana").await;
    app.login(&resident, "asukas", "asukkaan-salasana").await;
    // Residents may not; visitors are sent to log in.
    let r = resident
        .get(app.url("/admin/statistics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = new_client()
        .get(app.url("/admin/statistics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let admin = new_client();
    assert_eq!(
        app.login(&admin, "paakayttaja", "yllapidon-salasana")
            .await
            .status(),
        303
    );
    let r = admin
        .get(app.url("/admin/statistics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("<svg class=\"chart\""));
    // Two successful logins today (resident, admin), one failure, two residents active.
    assert!(
        page.contains("<dt>Onnistuneet kirjautumiset</dt><dd>2</dd>"),
        "{page}"
    );
    assert!(page.contains("<dt>Epäonnistuneet kirjautumiset</dt><dd>1</dd>"));
    assert!(page.contains("<dt>Kirjautuneet asukkaat</dt><dd>2</dd>"));
    assert!(
        page.contains("Jaksolla ei myönnetty tunnisteita."),
        "{page}"
    );
    // A resident's sign-in to a service shows up per service.
    let rp = crate::oidc::add_rp(&app, |_| {}).await;
    let (code, verifier) = crate::oidc::code_for(&app, &resident, &rp).await;
    assert_eq!(
        crate::oidc::exchange(&app, &rp, &code, &verifier).await.0,
        200
    );
    let page = admin
        .get(app.url("/admin/statistics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<td>Kirjasto</td><td>1</td>"), "{page}");
}

async fn old_events_are_archived_and_pruned_and_the_chain_still_verifies(b: Backend) {
    let app = TestApp::start(b).await;
    for i in 0..3 {
        app.add_user(&format!("vanha{i}"), "oikea-salasana").await;
    }
    let before = app.with_conn(|c| audit::verify(c).unwrap()).await;
    assert!(before.first_broken.is_none());
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let archive = app.db.dir().join("audit-archive.jsonl");
    let a = archive.to_str().unwrap().to_owned();
    let (code, v) = tokio::task::block_in_place(|| {
        app.cli_json(&["audit", "prune", "--before", &tomorrow, "--export", &a])
    });
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["pruned"], before.checked);
    // The archive holds every pruned row, from the genesis link on, re-verifiable elsewhere.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&archive)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as i64, before.checked);
    assert_eq!(lines[0]["prev_hash"], audit::GENESIS_HASH);
    for w in lines.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
    }
    // The chain continues from the anchor, through new events.
    app.add_user("uusi", "oikea-salasana").await;
    let after = app.with_conn(|c| audit::verify(c).unwrap()).await;
    assert!(after.first_broken.is_none(), "{after:?}");
    assert_eq!(after.checked, 2, "the pruning event and the new user");
    // A second prune into an existing file deletes nothing.
    let (code, _) = tokio::task::block_in_place(|| {
        app.cli_json(&["audit", "prune", "--before", &tomorrow, "--export", &a])
    });
    assert_eq!(code, 1);
    assert_eq!(
        app.with_conn(|c| audit::verify(c).unwrap()).await.checked,
        2
    );
    // Rows deleted by hand with the anchor moved to hide it: detected.
    app.with_conn(|c| {
        let seq: i64 = {
            use diesel::prelude::*;
            use kuntalaistili_schema::schema::audit_events::dsl as e;
            e::audit_events
                .order(e::seq.desc())
                .select(e::seq)
                .first(c)
                .unwrap()
        };
        c.batch_execute(&format!(
            "DELETE FROM audit_events WHERE seq < {seq}; UPDATE audit_anchor SET seq = {}, hash = (SELECT prev_hash FROM audit_events WHERE seq = {seq})",
            seq - 1
        ))
        .unwrap();
    })
    .await;
    let report = app.with_conn(|c| audit::verify(c).unwrap()).await;
    assert!(
        report
            .first_broken
            .as_ref()
            .is_some_and(|(_, why)| why.contains("without a recorded pruning")),
        "{report:?}"
    );
}
