//! The operator CLI contract (`users …`, `migrate`, `audit verify`, `--json`), run in-process
//! against real databases on both backends.

use kuntalaistili::cli::{run_args, Io};
use kuntalaistili_schema::users;
use kuntalaistili_schema::{Db, PoolOptions};
use kuntalaistili_tests::{dual, Backend, TestDb};

dual!(
    users_commands_manage_the_register,
    bad_cli_input_gets_clear_errors,
    clients_commands_follow_the_operator_contract,
);

struct Cli {
    config: std::path::PathBuf,
}

impl Cli {
    fn new(db: &TestDb) -> Cli {
        let config = db.dir().join("kuntalaistili.toml");
        let key_file = db.dir().join("master.key");
        std::fs::write(
            &config,
            format!(
                "master_key_file = \"{}\"\n[database]\nurl = \"{}\"\n[log]\nlevel = \"error\"\n",
                key_file.display(),
                db.url
            ),
        )
        .unwrap();
        Cli { config }
    }

    /// Runs `kuntalaistili --config FILE ARGS…` with `stdin`; returns the exit code and output.
    fn run(&self, args: &[&str], stdin: &str) -> (i32, String) {
        let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
        let mut out = Vec::new();
        let mut io = Io {
            stdin: &mut input,
            interactive: false,
            out: &mut out,
        };
        let mut argv = vec!["kuntalaistili", "--config", self.config.to_str().unwrap()];
        argv.extend_from_slice(args);
        let code = run_args(argv, &mut io).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
        (code, String::from_utf8(out).unwrap())
    }

    fn json(&self, args: &[&str], stdin: &str) -> (i32, serde_json::Value) {
        let (code, out) = self.run(args, stdin);
        (
            code,
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed {out:?}: {e}")),
        )
    }
}

async fn users_commands_manage_the_register(b: Backend) {
    tokio::task::spawn_blocking(move || {
        let db = TestDb::new(b);
        let cli = Cli::new(&db);
        let (code, v) = cli.json(&["migrate", "--json"], "");
        assert_eq!(code, 0);
        let applied = v["applied"].as_array().unwrap();
        assert!(
            applied
                .iter()
                .any(|m| m.as_str().unwrap().starts_with("20261126000001")),
            "{v}"
        );
        let (_, again) = cli.json(&["migrate", "--json"], "");
        assert_eq!(
            again["applied"],
            serde_json::json!([]),
            "a second migrate applies nothing"
        );

        let (code, maija) = cli.json(
            &[
                "users",
                "add",
                "Maija",
                "--password-stdin",
                "--email",
                "maija@example.fi",
                "--given-name",
                "Maija",
                "--family-name",
                "Meikäläinen",
                "--national-id",
                "131052-308T",
                "--municipality",
                "091",
                "--language",
                "sv",
                "--json",
            ],
            "salasana-123\n",
        );
        assert_eq!(code, 0, "{maija}");
        assert_eq!(maija["username"], "maija");
        assert_eq!(maija["role"], "resident");
        assert_eq!(maija["has_password"], true);
        assert_eq!(maija["has_national_id"], true);
        assert_eq!(maija["preferred_language"], "sv");
        assert!(maija.get("password_hash").is_none() && !maija.to_string().contains("131052"));

        let (code, admin) = cli.json(
            &[
                "users",
                "add",
                "paakayttaja",
                "--password-stdin",
                "--admin",
                "--json",
            ],
            "hallinta-salasana\n",
        );
        assert_eq!((code, admin["role"].as_str()), (0, Some("admin")));

        let (code, dup) = cli.json(&["users", "add", "maija", "--json"], "");
        assert_eq!(code, 1);
        assert!(
            dup["error"].as_str().unwrap().contains("already exists"),
            "{dup}"
        );

        let (code, list) = cli.json(&["users", "list", "--json"], "");
        assert_eq!(code, 0);
        let names: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["maija", "paakayttaja"]);
        let (_, text) = cli.run(&["users", "list"], "");
        assert!(text.contains("maija") && text.contains("Maija Meikäläinen"));

        // What was stored: the national id encrypted, the password as Argon2id.
        let store = Db::connect(&db.url, &PoolOptions::default()).unwrap();
        let stored = users::find_by_username(&mut store.conn().unwrap(), "maija")
            .unwrap()
            .unwrap();
        assert!(stored
            .national_id_enc
            .as_deref()
            .unwrap()
            .starts_with("v1:"));
        assert!(stored
            .password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let old_hash = stored.password_hash.clone();

        let (code, v) = cli.json(
            &[
                "users",
                "set-password",
                "maija",
                "--password-stdin",
                "--json",
            ],
            "uusi-salasana-456\n",
        );
        assert_eq!((code, v["password_set"].as_bool()), (0, Some(true)));
        let stored = users::find_by_username(&mut store.conn().unwrap(), "maija")
            .unwrap()
            .unwrap();
        assert_ne!(stored.password_hash, old_hash);
        let hasher = kuntalaistili_idp::password::PasswordHasher::new(Default::default()).unwrap();
        assert!(hasher.verify(stored.password_hash.as_deref(), "uusi-salasana-456"));

        let (code, v) = cli.json(&["users", "disable", "maija", "--json"], "");
        assert_eq!((code, v["disabled"].as_bool()), (0, Some(true)));
        assert!(
            users::find_by_username(&mut store.conn().unwrap(), "maija")
                .unwrap()
                .unwrap()
                .disabled
        );

        // Signing keys (ES256, RS256 and the SAML key): listed, and rotated on request with the
        // new key pre-published.
        let (code, list) = cli.json(&["keys", "list", "--json"], "");
        assert_eq!(code, 0);
        assert_eq!(list.as_array().unwrap().len(), 3);
        assert!(list
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["state"] == "signing"));
        let (code, rotated) = cli.json(
            &[
                "keys",
                "rotate",
                "--alg",
                "ES256",
                "--prepublish-seconds",
                "3600",
                "--json",
            ],
            "",
        );
        assert_eq!(code, 0);
        assert_eq!(rotated["rotated"][0]["state"], "pre-published");
        let (_, list) = cli.json(&["keys", "list", "--json"], "");
        assert_eq!(list.as_array().unwrap().len(), 4);
        let (code, rotated) = cli.json(
            &[
                "keys",
                "rotate",
                "--alg",
                "SAML",
                "--prepublish-seconds",
                "3600",
                "--json",
            ],
            "",
        );
        assert_eq!(code, 0);
        assert_eq!(rotated["rotated"][0]["alg"], "SAML");
        let (_, list) = cli.json(&["keys", "list", "--json"], "");
        assert_eq!(list.as_array().unwrap().len(), 5);
        let (code, err) = cli.json(&["keys", "rotate", "--alg", "HS256", "--json"], "");
        assert_eq!(code, 1);
        assert!(err["error"]
            .as_str()
            .unwrap()
            .contains("ES256, RS256 or SAML"));

        // Every change above is in the audit log, and the chain is intact.
        let (code, v) = cli.json(&["audit", "verify", "--json"], "");
        assert_eq!(code, 0);
        assert_eq!(v["checked"], 4, "{v}");
        assert!(v["first_broken"].is_null());

        // Export as JSON lines: every row with its hashes, linked into one chain.
        let (code, text) = cli.run(&["audit", "export"], "");
        assert_eq!(code, 0);
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0]["prev_hash"],
            kuntalaistili_schema::audit::GENESIS_HASH
        );
        for pair in rows.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
            assert_eq!(
                pair[1]["seq"].as_i64().unwrap(),
                pair[0]["seq"].as_i64().unwrap() + 1
            );
        }
        assert_eq!(rows[0]["event_type"], "user.created");
        let (_, tail) = cli.run(&["audit", "export", "--after-seq", "3"], "");
        assert_eq!(tail.lines().count(), 1, "incremental export");
    })
    .await
    .unwrap();
}

async fn bad_cli_input_gets_clear_errors(b: Backend) {
    tokio::task::spawn_blocking(move || {
        let db = TestDb::new(b);
        let cli = Cli::new(&db);
        for (args, stdin, needle) in [
            (
                vec!["users", "add", "a b", "--json"],
                "",
                "invalid username",
            ),
            (
                vec![
                    "users",
                    "add",
                    "x",
                    "--national-id",
                    "131052-308U",
                    "--json",
                ],
                "",
                "personal identity code",
            ),
            (
                vec!["users", "add", "x", "--password-stdin", "--json"],
                "short\n",
                "at least 8",
            ),
            (
                vec!["users", "add", "x", "--password-stdin", "--json"],
                "",
                "no password",
            ),
            (
                vec!["users", "add", "x", "--email", "not-an-email", "--json"],
                "",
                "invalid email",
            ),
            (
                vec!["users", "add", "x", "--role", "king", "--json"],
                "",
                "invalid role",
            ),
            (
                vec!["users", "add", "x", "--municipality", "91", "--json"],
                "",
                "municipality",
            ),
            (
                vec!["users", "disable", "nobody", "--json"],
                "",
                "not found",
            ),
            (
                vec![
                    "users",
                    "set-password",
                    "nobody",
                    "--password-stdin",
                    "--json",
                ],
                "hyvä-salasana\n",
                "not found",
            ),
        ] {
            let (code, v) = cli.json(&args, stdin);
            assert_eq!(code, 1, "{args:?}");
            let msg = v["error"].as_str().unwrap();
            assert!(msg.contains(needle), "{args:?}: {msg}");
        }
        // Nothing half-created.
        let (_, list) = cli.json(&["users", "list", "--json"], "");
        assert_eq!(list, serde_json::json!([]));
        // A usage error is clap's, not a panic.
        let mut out = Vec::new();
        let mut input = std::io::Cursor::new(Vec::new());
        let mut io = Io {
            stdin: &mut input,
            interactive: false,
            out: &mut out,
        };
        assert!(run_args(["kuntalaistili", "users", "frobnicate"], &mut io).is_err());
    })
    .await
    .unwrap();
}

async fn clients_commands_follow_the_operator_contract(b: Backend) {
    use kuntalaistili_federation::clients::secret_matches;
    use kuntalaistili_schema::oidc_clients;
    tokio::task::spawn_blocking(move || {
        let db = TestDb::new(b);
        let cli = Cli::new(&db);
        let (code, api) = cli.json(
            &[
                "clients",
                "add",
                "--name",
                "Kuntarekisteri-API",
                "--grant-types",
                "client_credentials",
                "--scopes",
                "admin",
                "--json",
            ],
            "",
        );
        assert_eq!(code, 0, "{api}");
        let api_id = api["client_id"].as_str().unwrap().to_owned();
        let secret = api["client_secret"].as_str().unwrap().to_owned();
        assert!(secret.len() >= 43, "256-bit secret");

        let (code, spa) = cli.json(
            &[
                "clients",
                "add",
                "--name",
                "Asukasportaali",
                "--public",
                "--redirect-uri",
                "https://portaali.example.fi/cb",
                "--redirect-uri",
                "http://127.0.0.1:8765/cb",
                "--scopes",
                "openid profile email offline_access",
                "--json",
            ],
            "",
        );
        assert_eq!(code, 0, "{spa}");
        assert!(
            spa.get("client_secret").is_none(),
            "public clients get no secret"
        );
        let spa_id = spa["client_id"].as_str().unwrap().to_owned();

        let (_, shown) = cli.json(&["clients", "show", &spa_id, "--json"], "");
        assert_eq!(
            shown["grant_types"],
            serde_json::json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(shown["token_endpoint_auth_method"], "none");
        assert_eq!(shown["redirect_uris"][1], "http://127.0.0.1:8765/cb");
        assert!(shown.get("secret_hash").is_none());

        // Stored: the secret's hash, never the secret.
        let store = Db::connect(&db.url, &PoolOptions::default()).unwrap();
        let row = oidc_clients::find(&mut store.conn().unwrap(), &api_id)
            .unwrap()
            .unwrap();
        assert_ne!(row.secret_hash.as_deref(), Some(secret.as_str()));
        assert!(secret_matches(&row, &secret));
        assert!(!secret_matches(&row, "arvaus"));

        let (code, rotated) = cli.json(&["clients", "rotate-secret", &api_id, "--json"], "");
        assert_eq!(code, 0);
        let row = oidc_clients::find(&mut store.conn().unwrap(), &api_id)
            .unwrap()
            .unwrap();
        assert!(
            !secret_matches(&row, &secret),
            "the old secret stops working"
        );
        assert!(secret_matches(
            &row,
            rotated["client_secret"].as_str().unwrap()
        ));
        let (code, _) = cli.json(&["clients", "rotate-secret", &spa_id, "--json"], "");
        assert_eq!(code, 1, "a public client has no secret to rotate");

        for (args, needle) in [
            (
                vec![
                    "clients",
                    "add",
                    "--name",
                    "x",
                    "--public",
                    "--grant-types",
                    "client_credentials",
                    "--json",
                ],
                "public client",
            ),
            (
                vec![
                    "clients",
                    "add",
                    "--name",
                    "x",
                    "--redirect-uri",
                    "http://rp.example.fi/cb",
                    "--json",
                ],
                "https",
            ),
            (
                vec!["clients", "add", "--name", "x", "--json"],
                "redirect URI",
            ),
            (
                vec![
                    "clients",
                    "add",
                    "--name",
                    "x",
                    "--grant-types",
                    "password",
                    "--json",
                ],
                "not one of",
            ),
            (vec!["clients", "remove", "ei-ole", "--json"], "not found"),
        ] {
            let (code, v) = cli.json(&args, "");
            assert_eq!(code, 1, "{args:?}");
            assert!(
                v["error"].as_str().unwrap().contains(needle),
                "{args:?}: {v}"
            );
        }

        // Logout URIs, pairwise subjects, first-party consent, key authentication, ID token alg.
        let jwks = db.dir().join("rp-jwks.json");
        std::fs::write(
            &jwks,
            r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
        )
        .unwrap();
        let (code, rp) = cli.json(
            &[
                "clients",
                "add",
                "--name",
                "Tilavaraus",
                "--redirect-uri",
                "https://varaus.example.fi/cb",
                "--post-logout-redirect-uri",
                "https://varaus.example.fi/bye",
                "--backchannel-logout-uri",
                "https://varaus.example.fi/bcl",
                "--pairwise",
                "--skip-consent",
                "--id-token-alg",
                "ES256",
                "--jwks-file",
                jwks.to_str().unwrap(),
                "--json",
            ],
            "",
        );
        assert_eq!(code, 0, "{rp}");
        assert!(rp.get("client_secret").is_none(), "keys, not a secret");
        let (_, shown) = cli.json(&["clients", "show", rp["client_id"].as_str().unwrap(), "--json"], "");
        assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(shown["subject_type"], "pairwise");
        assert_eq!(shown["sector_identifier"], "varaus.example.fi");
        assert_eq!(shown["post_logout_redirect_uris"][0], "https://varaus.example.fi/bye");
        assert_eq!(shown["backchannel_logout_uri"], "https://varaus.example.fi/bcl");
        assert_eq!(shown["require_consent"], false);
        assert_eq!(shown["id_token_signed_response_alg"], "ES256");
        let (code, v) = cli.json(
            &["clients", "add", "--name", "x", "--redirect-uri", "https://x.example.fi/cb", "--id-token-alg", "none", "--json"],
            "",
        );
        assert_eq!(code, 1);
        assert!(v["error"].as_str().unwrap().contains("not supported"), "{v}");
        let (code, _) = cli.json(&["clients", "remove", rp["client_id"].as_str().unwrap(), "--json"], "");
        assert_eq!(code, 0);

        let (code, _) = cli.json(&["clients", "remove", &spa_id, "--json"], "");
        assert_eq!(code, 0);
        let (_, list) = cli.json(&["clients", "list", "--json"], "");
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["client_id"], api_id.as_str());
        let (_, audit) = cli.json(&["audit", "verify", "--json"], "");
        assert_eq!(
            audit["checked"], 6,
            "created ×3, secret rotated, removed ×2: {audit}"
        );
        assert!(audit["first_broken"].is_null());
    })
    .await
    .unwrap();
}
