//! Test kit: starts the real Kuntalaistili server (built by the same [`kuntalaistili::prepare`] and
//! [`kuntalaistili::bind`] as the binary) on `127.0.0.1:0` against a fresh SQLite file or a fresh
//! PostgreSQL database, and gives tests an HTTP client with a cookie jar. Everything is torn down
//! on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use kuntalaistili::Config;
use kuntalaistili_idp::customers::{self, NewPerson};
use kuntalaistili_idp::IdpState;
use kuntalaistili_schema::users::User;
use kuntalaistili_schema::Db;

/// The database engine a test runs on. Every flow test runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test function once per backend:
/// `dual!(login_success);` makes `login_success::sqlite` and `login_success::postgres`.
#[macro_export]
macro_rules! dual {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
            }
        }
    )+};
}

/// Where the PostgreSQL server for tests is: `KUNTALAISTILI_TEST_PG`, or the local one.
pub fn pg_admin_url() -> String {
    std::env::var("KUNTALAISTILI_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh database, removed on drop.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pg_name: Option<String>,
    dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}", dir.path().join("kuntalaistili.db").display()),
                backend,
                pg_name: None,
                dir,
            },
            Backend::Postgres => {
                let name = format!("kl_test_{}", uuid::Uuid::new_v4().simple());
                let admin = pg_admin_url();
                let mut conn = diesel::PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!("PostgreSQL for tests is not reachable at {admin}: {e} (set KUNTALAISTILI_TEST_PG)")
                });
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
                let mut u = url::Url::parse(&admin).unwrap();
                u.set_path(&format!("/{name}"));
                TestDb {
                    url: u.to_string(),
                    backend,
                    pg_name: Some(name),
                    dir,
                }
            }
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Makes the database unreachable: PostgreSQL refuses new connections and drops existing
    /// ones; the SQLite file is overwritten with garbage (header, WAL and shared-memory index).
    pub fn take_down(&self) {
        match &self.pg_name {
            Some(name) => {
                let mut conn = diesel::PgConnection::establish(&pg_admin_url()).unwrap();
                conn.batch_execute(&format!(
                    "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                     SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
                ))
                .unwrap();
            }
            None => {
                let path = self.url.trim_start_matches("sqlite://");
                for suffix in ["", "-wal", "-shm"] {
                    let p = format!("{path}{suffix}");
                    if let Ok(meta) = std::fs::metadata(&p) {
                        let len = meta.len().max(4096) as usize;
                        std::fs::write(&p, vec![0xA5u8; len]).unwrap();
                    }
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut conn) = diesel::PgConnection::establish(&pg_admin_url()) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// A running server.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<IdpState>,
    pub config: Config,
    system: actix_web::rt::System,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    pub db: TestDb,
}

/// A base configuration for tests: random port, the given database, a fixed master key.
pub fn test_config(db: &TestDb) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".to_owned(),
        master_key: Some("q4Tq7e1xXl7P3xqAo8m1oR2J3u8G1S9kq0mYQn2n9VQ=".to_owned()),
        data_dir: db.dir().to_owned(),
        workers: Some(2),
        ..Config::default()
    };
    c.database.url = db.url.clone();
    c.database.connect_timeout_seconds = 3;
    c
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        TestApp::start_with(backend, |_| {}).await
    }

    /// Starts with a configuration adjusted by `tweak` (the public URL is filled in with the bound
    /// port unless `tweak` sets one).
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        kuntalaistili::install_crypto_provider();
        let db = tokio::task::spawn_blocking(move || TestDb::new(backend))
            .await
            .unwrap();
        let mut config = test_config(&db);
        tweak(&mut config);
        // Reserve a port so the public URL is known before the server starts.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.listen = format!("127.0.0.1:{port}");
        let base = format!("http://127.0.0.1:{port}");
        let cfg = config.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            let sys = actix_web::rt::System::current();
            let tx_err = tx.clone();
            let result = system.block_on(async move {
                let state = kuntalaistili::prepare(&cfg)?;
                let bound = kuntalaistili::bind(&cfg, state.clone())?;
                tx.send(Ok((sys, bound.server.handle(), state))).ok();
                bound.server.await?;
                anyhow::Ok(())
            });
            if let Err(e) = result {
                let _ = tx_err.send(Err(e));
            }
        });
        let (system, handle, state) =
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
                .await
                .unwrap()
                .expect("server did not start in time")
                .expect("server failed to start");
        TestApp {
            base,
            client: new_client(),
            state,
            config,
            system,
            handle,
            thread: Some(thread),
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A second, independent browser.
    pub fn browser(&self) -> reqwest::Client {
        new_client()
    }

    /// The server's database pool, for asserting what was stored.
    pub fn store(&self) -> Db {
        self.state.db.clone()
    }

    /// Registers a resident with a password (directly through the customer register).
    pub async fn add_user(&self, username: &str, password: &str) -> User {
        let st = self.state.clone();
        let (u, p) = (username.to_owned(), password.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut conn = st.db.conn().unwrap();
            customers::add(
                &mut conn,
                &st.keys,
                &st.hasher,
                NewPerson {
                    username: u.clone(),
                    password: Some(p),
                    given_name: Some("Testi".into()),
                    family_name: Some(format!("Käyttäjä-{u}")),
                    email: Some(format!("{u}@example.fi")),
                    ..NewPerson::default()
                },
                "test",
                kuntalaistili_schema::now_utc(),
            )
            .unwrap()
        })
        .await
        .unwrap()
    }

    /// Runs blocking database code against the server's pool.
    pub async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut kuntalaistili_schema::AnyConnection) -> T + Send + 'static,
    ) -> T {
        let db = self.store();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn().unwrap();
            f(&mut conn)
        })
        .await
        .unwrap()
    }

    /// GETs the login page with `client` and returns the CSRF token of its form.
    pub async fn csrf_token(&self, client: &reqwest::Client, path: &str) -> String {
        let body = client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_from(&body).unwrap_or_else(|| panic!("no CSRF field on {path}: {body}"))
    }

    /// POSTs a form with `client` (cookies and all) to `path`.
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// Submits the login form with `client`.
    pub async fn login(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let csrf = self.csrf_token(client, "/login").await;
        client
            .post(self.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", username),
                ("password", password),
                ("next", "/account"),
            ])
            .send()
            .await
            .unwrap()
    }
}

/// A client that keeps cookies and does not follow redirects (tests look at them).
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The value of the first `name="csrf"` hidden field in a page.
pub fn csrf_from(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only reports completion.
        drop(self.handle.stop(false));
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The value of the first `name="…"` form field in a page, with tera's HTML escapes undone.
pub fn field_from(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker)? + marker.len();
    let rest = &html[at..];
    Some(
        rest[..rest.find('"')?]
            .replace("&#x2F;", "/")
            .replace("&#x3D;", "=")
            .replace("&#x3F;", "?")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Runs a node script of `tests/interop/` with arguments and returns the one JSON line it prints;
/// fails the test with its output when it exits non-zero.
pub async fn run_node(script: &str, args: Vec<String>) -> serde_json::Value {
    run_interop("node".into(), script, args).await
}

/// Runs a Python script of `tests/interop/DIR/` in that directory's virtualenv (created by
/// ops/setup.sh from its requirements.txt), like [`run_node`].
pub async fn run_python(script: &str, args: Vec<String>) -> serde_json::Value {
    let dir = script.split('/').next().unwrap_or_default();
    let python = format!(
        "{}/interop/{dir}/.venv/bin/python",
        env!("CARGO_MANIFEST_DIR")
    );
    run_interop(python, script, args).await
}

/// Runs a Python script of `tests/interop/` with Debian's Python 3, whose packages (such as
/// `python3-pysaml2`) ops/setup.sh installs from apt.
pub async fn run_system_python(script: &str, args: Vec<String>) -> serde_json::Value {
    run_interop("/usr/bin/python3".into(), script, args).await
}

async fn run_interop(program: String, script: &str, args: Vec<String>) -> serde_json::Value {
    let path = format!("{}/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .arg(&path)
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!("{program} is needed for the interop tests (ops/setup.sh installs it): {e}")
            })
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{script} printed {stdout}: {e}"))
}

impl TestApp {
    /// Runs `kuntalaistili --config … ARGS` in-process against this server's database (as an
    /// operator would, next to the running server); returns the exit code and the output.
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        cli_on(&self.db, &self.config, args)
    }

    /// As [`cli`](Self::cli) with `--json`, the output parsed.
    pub fn cli_json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let (code, out) = self.cli(&a);
        let v = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{args:?} printed {out:?}: {e}"));
        (code, v)
    }

    /// Registers a client-credentials client with `scopes` and returns an access token for it.
    pub async fn client_token(&self, scopes: &str) -> String {
        self.client_with_token(scopes).await.2
    }

    /// As [`client_token`](Self::client_token), also returning the client's id and secret.
    pub async fn client_with_token(&self, scopes: &str) -> (String, String, String) {
        use kuntalaistili_federation::clients::{self, NewClient};
        let s = scopes.to_owned();
        let (id, secret) = self
            .with_conn(move |c| {
                let (cl, secret) = clients::add(
                    c,
                    NewClient {
                        name: "Taustajärjestelmä".into(),
                        grant_types: vec!["client_credentials".into()],
                        scopes: s,
                        ..NewClient::default()
                    },
                    "test",
                    kuntalaistili_schema::now_utc(),
                )
                .unwrap();
                (cl.client_id, secret.unwrap())
            })
            .await;
        let r: serde_json::Value = self
            .client
            .post(self.url("/oauth2/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (id, secret, r["access_token"].as_str().unwrap().to_owned())
    }
}

/// Follows redirects by hand (the client keeps cookies); returns the last status, URL and body.
pub async fn follow(app: &TestApp, client: &reqwest::Client, start: &str) -> (u16, String, String) {
    let mut url = if start.starts_with("http") {
        start.to_owned()
    } else {
        app.url(start)
    };
    for _ in 0..12 {
        let r = client.get(&url).send().await.unwrap();
        let status = r.status().as_u16();
        if status != 303 && status != 302 {
            return (status, url, r.text().await.unwrap());
        }
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        // Relative to the page that answered (services may run on another origin).
        url = url::Url::parse(&url)
            .unwrap()
            .join(&loc)
            .unwrap()
            .to_string();
    }
    panic!("redirect loop from {start}");
}

/// Runs `kuntalaistili --config … ARGS` in-process against `db` with `config`'s master key (a
/// `cli.toml` written in the database's directory); returns the exit code and the output.
fn cli_on(db: &TestDb, config: &Config, args: &[&str]) -> (i32, String) {
    let file = db.dir().join("cli.toml");
    std::fs::write(
        &file,
        format!(
            "master_key = \"{}\"\npublic_url = \"{}\"\n[database]\nurl = \"{}\"\n[log]\nlevel = \"error\"\n",
            config.master_key.clone().unwrap(),
            config.public_url(),
            db.url
        ),
    )
    .unwrap();
    let (mut input, mut out) = (std::io::Cursor::new(Vec::new()), Vec::new());
    let mut io = kuntalaistili::cli::Io {
        stdin: &mut input,
        interactive: false,
        out: &mut out,
    };
    let mut argv = vec!["kuntalaistili", "--config", file.to_str().unwrap()];
    argv.extend_from_slice(args);
    let code =
        kuntalaistili::cli::run_args(argv, &mut io).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
    (code, String::from_utf8(out).unwrap())
}

/// A built-in service served alone (`serve --only NAME --issuer URL`) on its own port and its own
/// SQLite database (whatever the IdP runs on), a relying party of a [`TestApp`]'s IdP over HTTP
/// only. [`stop`](Self::stop) ends it.
pub struct Alone {
    /// `http://127.0.0.1:PORT`, the service's server.
    pub base: String,
    /// The service's own database.
    pub db: TestDb,
    pub config: Config,
    sys: actix_web::rt::System,
    handle: actix_web::dev::ServerHandle,
}

impl Alone {
    /// Serves the built-in service `name` alone: a free port, the client `client` makes of the
    /// service's address (`base` + `path`) registered at `app`'s IdP, its own database.
    pub async fn start(
        app: &TestApp,
        name: &'static str,
        path: &str,
        client: impl FnOnce(&str) -> kuntalaistili_federation::clients::NewClient + Send + 'static,
    ) -> Alone {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let (id, secret) = {
            let url = format!("{base}{path}");
            app.with_conn(move |c| {
                let (cl, s) = kuntalaistili_federation::clients::add(
                    c,
                    client(&url),
                    "test",
                    kuntalaistili_schema::now_utc(),
                )
                .unwrap();
                (cl.client_id, s.unwrap())
            })
            .await
        };
        let db = tokio::task::spawn_blocking(|| TestDb::new(Backend::Sqlite))
            .await
            .unwrap();
        let mut config = test_config(&db);
        config.listen = format!("127.0.0.1:{port}");
        config.service.issuer = Some(app.base.clone());
        config.service.client_id = Some(id);
        config.service.client_secret = Some(secret);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            let sys = actix_web::rt::System::current();
            system.block_on(async move {
                let bound = kuntalaistili::bind_service(&config, name).unwrap();
                tx.send((sys, bound.server.handle(), config)).unwrap();
                let _ = bound.server.await;
            });
        });
        let (sys, handle, config) = tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        Alone {
            base,
            db,
            config,
            sys,
            handle,
        }
    }

    /// Runs `kuntalaistili --config … ARGS` in-process against the service's own database, as its
    /// operator would; returns the exit code and the output.
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        cli_on(&self.db, &self.config, args)
    }

    /// Stops the service's server.
    pub fn stop(self) {
        drop(self.handle.stop(false));
        self.sys.stop();
    }
}
