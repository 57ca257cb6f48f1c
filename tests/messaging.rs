//! Messaging end to end: the message API queues to the durable outbox; the worker delivers email
//! to a real SMTP server the test runs (a sink speaking SMTP over TCP), SMS to a local HTTP
//! gateway stand-in (no real gateway exists here), and notices to the notice board; failures are
//! retried and then marked failed; a row left mid-send by a crash is sent again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kuntalaistili_connectors::messaging::{SmsConfig, SmtpConfig};
use kuntalaistili_tests::{dual, Backend, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

dual!(
    messages_reach_residents_in_their_language_on_their_channels,
    failed_deliveries_are_retried_then_marked_failed_and_nothing_is_lost,
);

/// A minimal SMTP server that accepts every mail and keeps its DATA.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let kept = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            kept.lock().unwrap().push(data.take().unwrap_or_default());
                            w.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    w.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

/// An SMS gateway stand-in: answers every POST with `status` and keeps the bodies.
async fn sms_gateway(status: u16) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(h) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() < h + 4 + len {
                        continue;
                    }
                    kept.lock().unwrap().push(
                        serde_json::from_str(&text[h + 4..h + 4 + len]).unwrap_or(Value::Null),
                    );
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    return;
                }
            });
        }
    });
    (url, got)
}

async fn add_person(app: &TestApp, username: &str, lang: &str, channels: &str) -> String {
    let st = app.state.clone();
    let (u, l, c) = (username.to_owned(), lang.to_owned(), channels.to_owned());
    app.with_conn(move |conn| {
        kuntalaistili_idp::customers::add(
            conn,
            &st.keys,
            &st.hasher,
            kuntalaistili_idp::customers::NewPerson {
                username: u.clone(),
                password: Some("viesti-salasana".into()),
                email: Some(format!("{u}@example.fi")),
                phone: Some("+358 40 765 4321".into()),
                preferred_language: Some(l),
                message_channels: Some(c),
                ..Default::default()
            },
            "test",
            kuntalaistili_schema::now_utc(),
        )
        .unwrap()
        .id
    })
    .await
}

/// The decoded Subject header of a mail (RFC 2047 encoded words or plain text).
fn subject_of(mail: &str) -> String {
    use base64::Engine;
    let line = mail
        .lines()
        .find(|l| l.starts_with("Subject: "))
        .unwrap()
        .trim_start_matches("Subject: ");
    let mut out = String::new();
    let mut prev_encoded = false;
    for w in line.split_whitespace() {
        let lower = w.to_ascii_lowercase();
        let encoded = lower.starts_with("=?utf-8?") && lower.ends_with("?=");
        // Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
        let joined = encoded && prev_encoded;
        if !out.is_empty() && !joined {
            out.push(' ');
        }
        prev_encoded = encoded;
        if lower.starts_with("=?utf-8?b?") && lower.ends_with("?=") {
            let raw = &w[10..w.len() - 2];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap();
            out.push_str(&String::from_utf8(bytes).unwrap());
        } else if lower.starts_with("=?utf-8?q?") && lower.ends_with("?=") {
            let raw = &w.as_bytes()[10..w.len() - 2];
            let mut bytes = Vec::new();
            let mut i = 0;
            while i < raw.len() {
                match raw[i] {
                    b'=' => {
                        let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
                        bytes.push(u8::from_str_radix(hex, 16).unwrap());
                        i += 3;
                    }
                    b'_' => {
                        bytes.push(b' ');
                        i += 1;
                    }
                    c => {
                        bytes.push(c);
                        i += 1;
                    }
                }
            }
            out.push_str(&String::from_utf8(bytes).unwrap());
        } else {
            out.push_str(w);
        }
    }
    out
}

fn message(sub: &str, key: &str) -> Value {
    json!({
        "sub": sub, "idempotency_key": key, "service": "Tilavaraus",
        "subject": { "fi": "Varauksesi on vahvistettu", "sv": "Din bokning är bekräftad", "en": "Your booking is confirmed" },
        "body": { "fi": "Tervetuloa.", "sv": "Välkommen.", "en": "Welcome." },
        "link": "https://varaamo.example.fi/varaus/7",
    })
}

async fn send(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/messages"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn status_of(app: &TestApp, token: &str, id: &str) -> Value {
    app.client
        .get(app.url(&format!("/api/v1/messages/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `done` holds (the worker polls every 100 ms in these tests).
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not done in 10 s");
}

async fn messages_reach_residents_in_their_language_on_their_channels(b: Backend) {
    let (smtp_port, mails) = smtp_sink().await;
    let (sms_url, texts) = sms_gateway(200).await;
    let app = TestApp::start_with(b, move |c| {
        c.messaging.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            tls: "none".into(),
            username: None,
            password: None,
        });
        c.messaging.sms = Some(SmsConfig {
            url: sms_url,
            token: Some("gateway-token".into()),
            sender: "Kunta".into(),
        });
        c.messaging.poll_millis = 100;
    })
    .await;
    let sven = add_person(&app, "sven", "sv", "email sms notice").await;
    let erkki = add_person(&app, "erkki", "fi", "email notice").await;
    let token = app.client_token("messages:send").await;

    let (s, v) = send(&app, &token, &message(&sven, "varaus-7")).await;
    assert_eq!(s, 202, "{v}");
    let rows = v["messages"].as_array().unwrap().clone();
    let channels: Vec<&str> = rows
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email", "sms", "notice"]);
    assert!(rows
        .iter()
        .all(|m| m["language"] == "sv" && m["status"] == "queued"));
    // Delivered: the mail in Swedish, the SMS through the gateway, the notice on the board.
    eventually(|| !mails.lock().unwrap().is_empty()).await;
    let mail = mails.lock().unwrap()[0].clone();
    assert!(mail.contains("To: sven@example.fi"), "{mail}");
    assert_eq!(subject_of(&mail), "Din bokning är bekräftad", "{mail}");
    assert!(mail.contains("https://varaamo.example.fi/varaus/7"));
    eventually(|| !texts.lock().unwrap().is_empty()).await;
    let sms = texts.lock().unwrap()[0].clone();
    assert_eq!(sms["to"], "+358 40 765 4321");
    assert!(sms["text"]
        .as_str()
        .unwrap()
        .starts_with("Din bokning är bekräftad"));
    for m in &rows {
        let id = m["id"].as_str().unwrap().to_owned();
        let mut st = Value::Null;
        for _ in 0..100 {
            st = status_of(&app, &token, &id).await;
            if st["status"] == "sent" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            (st["status"].as_str(), st["attempts"].as_i64()),
            (Some("sent"), Some(1)),
            "{st}"
        );
    }
    let notices = app
        .with_conn({
            let sven = sven.clone();
            move |c| {
                kuntalaistili_schema::notices::list(
                    c,
                    &sven,
                    &kuntalaistili_schema::notices::Filter {
                        limit: 10,
                        ..Default::default()
                    },
                )
                .unwrap()
            }
        })
        .await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].title, "Din bokning är bekräftad");

    // The same key again: the same messages, nothing sent twice.
    let (s, again) = send(&app, &token, &message(&sven, "varaus-7")).await;
    assert_eq!((s, &again["messages"][0]["id"]), (200, &rows[0]["id"]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails.lock().unwrap().len(), 1);

    // Erkki does not want SMS: only email and notice, in Finnish; asking for SMS only is 422.
    let (s, v) = send(&app, &token, &message(&erkki, "varaus-8")).await;
    assert_eq!(s, 202);
    assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    assert_eq!(v["messages"][0]["language"], "fi");
    let mut only_sms = message(&erkki, "varaus-9");
    only_sms["channels"] = json!(["sms"]);
    assert_eq!(send(&app, &token, &only_sms).await.0, 422);

    // Contract errors: unknown resident, wrong scope, malformed, no token.
    let (s, p) = send(&app, &token, &message("ei-ketaan", "x")).await;
    assert_eq!((s, p["status"].as_i64()), (404, Some(404)));
    let wrong = app.client_token("notices:write").await;
    assert_eq!(send(&app, &wrong, &message(&sven, "x")).await.0, 403);
    let mut bad = message(&sven, "x");
    bad["link"] = json!("http://insecure.example/");
    assert_eq!(send(&app, &token, &bad).await.0, 400);
    let r = app
        .client
        .post(app.url("/api/v1/messages"))
        .json(&message(&sven, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A revoked token stops at once.
    let (rid, rsecret, revoked) = app.client_with_token("messages:send").await;
    assert_eq!(send(&app, &revoked, &message(&sven, "r-1")).await.0, 202);
    let r = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&rid, Some(&rsecret))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(send(&app, &revoked, &message(&sven, "r-2")).await.0, 401);
    // Another client cannot read the delivery status.
    let other = app.client_token("messages:send").await;
    let st = status_of(&app, &other, rows[0]["id"].as_str().unwrap()).await;
    assert_eq!(st["status"], 404);
}

async fn failed_deliveries_are_retried_then_marked_failed_and_nothing_is_lost(b: Backend) {
    let (sms_url, texts) = sms_gateway(503).await;
    let (smtp_port, mails) = smtp_sink().await;
    let app = TestApp::start_with(b, move |c| {
        c.messaging.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            tls: "none".into(),
            username: None,
            password: None,
        });
        c.messaging.sms = Some(SmsConfig {
            url: sms_url,
            token: None,
            sender: "Kunta".into(),
        });
        c.messaging.max_attempts = 3;
        c.messaging.retry_seconds = 0;
        c.messaging.poll_millis = 100;
    })
    .await;
    let anna = add_person(&app, "anna", "fi", "sms").await;
    let token = app.client_token("messages:send").await;
    let (s, v) = send(&app, &token, &message(&anna, "k1")).await;
    assert_eq!(s, 202);
    let id = v["messages"][0]["id"].as_str().unwrap().to_owned();
    let mut st = Value::Null;
    for _ in 0..100 {
        st = status_of(&app, &token, &id).await;
        if st["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (st["status"].as_str(), st["attempts"].as_i64()),
        (Some("failed"), Some(3)),
        "{st}"
    );
    assert!(st["last_error"].as_str().unwrap().contains("503"));
    assert_eq!(
        texts.lock().unwrap().len(),
        3,
        "three attempts reached the gateway"
    );

    // A crash between claiming and sending: the row stays `sending` with its lease; once the
    // lease has run out the worker sends it again.
    let erkki = add_person(&app, "erkki2", "fi", "email").await;
    let row = kuntalaistili_schema::outbox::OutboxMessage {
        id: uuid::Uuid::new_v4().to_string(),
        sender: "test".into(),
        idempotency_key: "crash".into(),
        recipient_sub: erkki.clone(),
        channel: "email".into(),
        address: "erkki2@example.fi".into(),
        language: "fi".into(),
        service: "Testi".into(),
        subject: "Keskeytynyt lähetys".into(),
        body: "Tämä lähti uudelleen.".into(),
        link: None,
        status: "sending".into(),
        attempts: 1,
        next_attempt_at: kuntalaistili_schema::now_utc() - chrono::Duration::seconds(1),
        last_error: None,
        created_at: kuntalaistili_schema::now_utc(),
        sent_at: None,
    };
    let rid = row.id.clone();
    app.with_conn(move |c| kuntalaistili_schema::outbox::enqueue(c, &[row]).unwrap())
        .await;
    eventually(|| {
        mails
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("erkki2@example.fi"))
    })
    .await;
    // The row is marked sent right after the mail is handed over.
    let mut stored = None;
    for _ in 0..50 {
        let id = rid.clone();
        let row = app
            .with_conn(move |c| kuntalaistili_schema::outbox::find(c, &id).unwrap().unwrap())
            .await;
        if row.status != "sending" {
            stored = Some(row);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = stored.expect("the delivered row left the sending state");
    assert_eq!((stored.status.as_str(), stored.attempts), ("sent", 2));
}

dual!(residents_choose_their_channels_and_language_on_the_account_page);

async fn residents_choose_their_channels_and_language_on_the_account_page(b: Backend) {
    let (sms_url, texts) = sms_gateway(200).await;
    let app = TestApp::start_with(b, move |c| {
        c.messaging.sms = Some(SmsConfig {
            url: sms_url,
            token: None,
            sender: "Kunta".into(),
        });
        c.messaging.poll_millis = 100;
    })
    .await;
    let id = add_person(&app, "valitsija", "fi", "email notice").await;
    let browser = app.browser();
    assert_eq!(
        app.login(&browser, "valitsija", "viesti-salasana")
            .await
            .status(),
        303
    );
    let page = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"ch-email\" name=\"channel_email\" value=\"1\" checked"));
    assert!(!page.contains("id=\"ch-sms\" name=\"channel_sms\" value=\"1\" checked"));
    let csrf = kuntalaistili_tests::csrf_from(&page).unwrap();
    // Without the CSRF token nothing changes.
    let r = app
        .post_form(
            &browser,
            "/account/preferences",
            &[("channel_sms", "1"), ("language", "sv")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post_form(
            &browser,
            "/account/preferences",
            &[("csrf", &csrf), ("channel_sms", "1"), ("language", "en")],
        )
        .await;
    assert_eq!(r.headers()["location"], "/account?saved=1");
    let token = app.client_token("messages:send").await;
    let (s, v) = send(&app, &token, &message(&id, "valinta")).await;
    assert_eq!(s, 202, "{v}");
    let rows = v["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only SMS now: {v}");
    assert_eq!(
        (rows[0]["channel"].as_str(), rows[0]["language"].as_str()),
        (Some("sms"), Some("en"))
    );
    let events = app
        .with_conn(|c| {
            kuntalaistili_schema::audit::recent(c, Some("user.preferences_changed"), None, 5)
                .unwrap()
                .len()
        })
        .await;
    assert_eq!(events, 1);

    // A template with parameters, in the resident's (new) language.
    let templated = json!({
        "sub": id, "idempotency_key": "tpl-1", "service": "Tilavaraus",
        "template": "reservation_confirmed",
        "params": { "resource": "Sali 1", "time": "pe 27.11. klo 18–20" },
    });
    let (s, v) = send(&app, &token, &templated).await;
    assert_eq!(s, 202, "{v}");
    eventually(|| {
        texts.lock().unwrap().iter().any(|t| {
            t["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("Booking confirmed: Sali 1")
        })
    })
    .await;
    for (bad, why) in [
        (
            json!({ "sub": id, "idempotency_key": "t2", "service": "S", "template": "reservation_confirmed", "params": { "resource": "x" } }),
            "missing parameter",
        ),
        (
            json!({ "sub": id, "idempotency_key": "t3", "service": "S", "template": "no_such" }),
            "unknown template",
        ),
        (
            json!({ "sub": id, "idempotency_key": "t4", "service": "S", "template": "matter_status", "params": { "matter": "a", "status": "b" }, "subject": { "fi": "x" }, "body": { "fi": "y" } }),
            "both",
        ),
    ] {
        let (s, p) = send(&app, &token, &bad).await;
        assert_eq!((s, p["status"].as_i64()), (400, Some(400)), "{why}: {p}");
    }
}
