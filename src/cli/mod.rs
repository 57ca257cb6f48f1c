//! The `kuntalaistili` command line: serve, migrate, manage users, verify the audit log. Lives in
//! the library so tests can run commands in-process with their own input and output.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{config::Config, demo};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use kuntalaistili_idp::customers::{self, NewPerson};
use kuntalaistili_idp::password::PasswordHasher;
use kuntalaistili_schema::users;

mod authz;
mod bookings;
mod clients;
mod keys;
mod sp;
use authz::{authz_cmd, AuthzCommand};
use bookings::{bookings_cmd, BookingsCommand};
use clients::{clients_cmd, ClientsCommand};
use keys::{keys_cmd, KeysCommand};
use sp::{sp_cmd, SpCommand};

#[derive(Parser)]
#[command(
    name = "kuntalaistili",
    version,
    about = "Identity provider and e-service platform for Finnish municipalities"
)]
struct Cli {
    /// TOML configuration file (environment variables KUNTALAISTILI_* override it).
    #[arg(long, global = true, env = "KUNTALAISTILI_CONFIG")]
    config: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and run the server.
    Serve {
        /// Create a demo resident (maija / kuntalainen2026) and a demo unit with bookable
        /// facilities and appointment resources, if missing.
        #[arg(long)]
        demo: bool,
        /// Run one built-in service alone (portal, noticeboard, reservations or appointments) as a
        /// relying party of the IdP
        /// at `--issuer`, with `service.client_id` / `service.client_secret` from the
        /// configuration (KUNTALAISTILI_SERVICE__CLIENT_ID, …__CLIENT_SECRET).
        #[arg(long, requires = "issuer")]
        only: Option<String>,
        /// The IdP's issuer URL (with `--only`).
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage residents, staff and administrators.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Token-signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The service directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// OIDC / OAuth 2 clients (relying parties).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Access rights: roles, groups, grants.
    #[command(subcommand)]
    Authz(AuthzCommand),
    /// SAML service providers.
    #[command(subcommand)]
    Sp(SpCommand),
    /// Units, facilities and appointment resources of the booking services.
    #[command(subcommand)]
    Bookings(BookingsCommand),
    /// Measure the raw Argon2id hash rate of the configured parameters (for capacity planning and
    /// the login benchmark).
    Argon2Bench {
        /// How long to measure.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Parallel hashing threads (default: cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Register a person.
    Add(Box<AddUser>),
    /// List everyone in the register.
    List,
    /// Set a new password, read from standard input.
    SetPassword {
        username: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account and end its sessions.
    Disable { username: String },
}

#[derive(Args)]
struct AddUser {
    username: String,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    #[arg(long)]
    phone: Option<String>,
    /// Finnish personal identity code (stored encrypted).
    #[arg(long)]
    national_id: Option<String>,
    /// Message channels, space- or comma-separated: email, sms, notice (default "email notice").
    #[arg(long)]
    channels: Option<String>,
    /// Home municipality code (three digits, e.g. 091 for Helsinki).
    #[arg(long)]
    municipality: Option<String>,
    /// Preferred language: fi, sv or en.
    #[arg(long)]
    language: Option<String>,
    /// Make the user an administrator (same as --role admin).
    #[arg(long)]
    admin: bool,
    /// resident (default), staff or admin.
    #[arg(long)]
    role: Option<String>,
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Replace the seutukunta classification with a Statistics Finland JSON file (the shape of
    /// services/data/seutukunnat-2025.json); all or nothing.
    Import { file: PathBuf },
    /// Add or replace services from a JSON file (`{"services": [...]}`, the export format);
    /// all or nothing.
    ImportServices { file: PathBuf },
    /// Print every service in the exchange format.
    ExportServices,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; report the first broken or missing row.
    Verify,
    /// Write events as JSON lines (every field, hashes included, so the chain can be re-checked
    /// elsewhere), oldest first.
    Export {
        /// Only events after this sequence number (for incremental export).
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
    },
    /// Retention: write the events that occurred before a date to a new JSON-lines file, then
    /// delete them from the database; the chain continues from an anchor recorded in the log.
    Prune {
        /// Events before this day (UTC, YYYY-MM-DD) go.
        #[arg(long)]
        before: chrono::NaiveDate,
        /// The archive to write first (must not exist); nothing is deleted if writing fails.
        #[arg(long)]
        export: PathBuf,
    },
}

/// Input and output of one command run.
pub struct Io<'a> {
    pub stdin: &'a mut dyn BufRead,
    /// Whether standard input is a terminal (then the password prompt is shown).
    pub interactive: bool,
    pub out: &'a mut dyn Write,
}

impl Io<'_> {
    /// Prints `value` as one JSON line with `--json`, else the human-readable `text`.
    fn report(
        &mut self,
        json: bool,
        value: impl std::fmt::Display,
        text: std::fmt::Arguments<'_>,
    ) -> std::io::Result<()> {
        if json {
            writeln!(self.out, "{value}")
        } else {
            writeln!(self.out, "{text}")
        }
    }
}

/// Parses `args` (including the program name) and runs the command; returns the exit code.
/// Errors are printed to `io.out` as JSON with `--json`, else returned.
pub fn run_args<I, T>(args: I, io: &mut Io<'_>) -> anyhow::Result<i32>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let json = cli.json;
    match run(cli, io) {
        Ok(code) => Ok(code),
        Err(e) if json => {
            writeln!(io.out, "{}", serde_json::json!({ "error": error_text(&e) }))?;
            Ok(1)
        }
        Err(e) => Err(e),
    }
}

/// Sets up logging to standard error as the configuration says (once per process).
pub fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn read_password_stdin(io: &mut Io<'_>) -> anyhow::Result<String> {
    if io.interactive {
        eprint!("Password: ");
    }
    let mut line = String::new();
    io.stdin
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

fn run(cli: Cli, io: &mut Io<'_>) -> anyhow::Result<i32> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    init_logging(&config);
    crate::install_crypto_provider();
    match cli.command {
        Command::Serve {
            only: Some(name),
            issuer,
            ..
        } => serve_only(&config, &name, issuer, io),
        Command::Serve { demo, .. } => serve(&config, demo, io),
        Command::Migrate => {
            let db = crate::open_db(&config)?;
            let applied = db.migrate()?;
            if cli.json {
                writeln!(io.out, "{}", serde_json::json!({ "applied": applied }))?;
            } else if applied.is_empty() {
                writeln!(io.out, "database is up to date")?;
            } else {
                for v in &applied {
                    writeln!(io.out, "applied {v}")?;
                }
            }
            Ok(0)
        }
        Command::Users(cmd) => users_cmd(&config, cmd, cli.json, io),
        Command::Audit(AuditCommand::Verify) => {
            let db = open_migrated(&config)?;
            let mut conn = db.conn()?;
            let report = kuntalaistili_schema::audit::verify(&mut conn)?;
            if cli.json {
                writeln!(io.out, "{}", serde_json::to_string(&report)?)?;
            } else if let Some((seq, why)) = &report.first_broken {
                writeln!(
                    io.out,
                    "audit log BROKEN at row {seq}: {why} ({} rows intact before it)",
                    report.checked
                )?;
            } else {
                writeln!(io.out, "audit log intact: {} rows verified", report.checked)?;
            }
            if report.first_broken.is_some() {
                return Ok(2);
            }
            Ok(0)
        }
        Command::Keys(cmd) => keys_cmd(&config, cmd, cli.json, io),
        Command::Clients(cmd) => clients_cmd(&config, cmd, cli.json, io),
        Command::Authz(cmd) => authz_cmd(&config, cmd, cli.json, io),
        Command::Sp(cmd) => sp_cmd(&config, cmd, cli.json, io),
        Command::Bookings(cmd) => bookings_cmd(&config, cmd, cli.json, io),
        Command::Directory(DirectoryCommand::ImportServices { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let db = open_migrated(&config)?;
            let n = kuntalaistili_services::directory::catalogue::import(
                &mut *db.conn()?,
                &text,
                kuntalaistili_schema::now_utc(),
            )?;
            io.report(
                cli.json,
                serde_json::json!({ "services": n }),
                format_args!("imported {n} services"),
            )?;
            Ok(0)
        }
        Command::Directory(DirectoryCommand::ExportServices) => {
            let db = open_migrated(&config)?;
            let cat = kuntalaistili_services::directory::catalogue::export(&mut *db.conn()?)?;
            writeln!(io.out, "{}", serde_json::to_string_pretty(&cat)?)?;
            Ok(0)
        }
        Command::Directory(DirectoryCommand::Import { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let db = open_migrated(&config)?;
            let (regions, municipalities) =
                kuntalaistili_services::directory::classification::import(&mut *db.conn()?, &text)?;
            io.report(
                cli.json,
                serde_json::json!({ "seutukunnat": regions, "municipalities": municipalities }),
                format_args!("imported {regions} seutukunnat with {municipalities} municipalities"),
            )?;
            Ok(0)
        }
        Command::Audit(AuditCommand::Prune { before, export }) => {
            let db = open_migrated(&config)?;
            let mut conn = db.conn()?;
            let cutoff = before.and_hms_opt(0, 0, 0).unwrap_or_default();
            let through = kuntalaistili_schema::audit::last_seq_before(&mut conn, cutoff)?;
            let (anchor, _) = kuntalaistili_schema::audit::anchor(&mut conn)?;
            if through <= anchor {
                io.report(
                    cli.json,
                    serde_json::json!({ "pruned": 0 }),
                    format_args!("nothing to prune before {before}"),
                )?;
                return Ok(0);
            }
            // The archive first, durably; only then the delete.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&export)
                .with_context(|| format!("creating {}", export.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let mut last = anchor;
            let mut written = 0usize;
            while last < through {
                let batch = kuntalaistili_schema::audit::after(&mut conn, last, 1000)?;
                let Some(tail) = batch.last() else { break };
                last = tail.seq;
                for e in batch.iter().filter(|e| e.seq <= through) {
                    writeln!(w, "{}", serde_json::to_string(e)?)?;
                    written += 1;
                }
            }
            let file = w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("writing the archive: {e}"))?;
            file.sync_all().context("syncing the archive")?;
            let n = kuntalaistili_schema::audit::prune_through(
                &mut conn,
                through,
                "cli",
                kuntalaistili_schema::now_utc(),
            )?;
            io.report(
                cli.json,
                serde_json::json!({ "pruned": n, "archived": written, "anchor_seq": through, "archive": export }),
                format_args!("archived {written} events to {} and pruned {n}; the chain continues from row {through}", export.display()),
            )?;
            Ok(0)
        }
        Command::Audit(AuditCommand::Export { after_seq }) => {
            let db = open_migrated(&config)?;
            let mut conn = db.conn()?;
            let mut last = after_seq;
            loop {
                let batch = kuntalaistili_schema::audit::after(&mut conn, last, 1000)?;
                let Some(tail) = batch.last() else { break };
                last = tail.seq;
                for e in &batch {
                    writeln!(io.out, "{}", serde_json::to_string(e)?)?;
                }
            }
            io.out.flush()?;
            Ok(0)
        }
        Command::Argon2Bench { seconds, threads } => {
            argon2_bench(&config, seconds, threads, cli.json, io)
        }
    }
}

fn serve(config: &Config, demo_user: bool, io: &mut Io<'_>) -> anyhow::Result<i32> {
    let started = Instant::now();
    let state = crate::prepare(config)?;
    if demo_user && demo::seed(&state)? {
        writeln!(
            io.out,
            "demo resident created: username {} password {}",
            demo::DEMO_USERNAME,
            demo::DEMO_PASSWORD
        )?;
    }
    if demo_user && demo::seed_bookings(&state)? {
        writeln!(
            io.out,
            "demo unit created: bookable facilities at /services/reservations/, appointments at /services/appointments/"
        )?;
    }
    let public = state.settings.public_url.clone();
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let bound = crate::bind(config, state)?;
        for a in &bound.addrs {
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            writeln!(
                io.out,
                "Kuntalaistili listening on {scheme}://{a} (public URL {public}), ready in {} ms",
                started.elapsed().as_millis()
            )?;
        }
        io.out.flush()?;
        bound.server.await.context("server stopped with an error")?;
        Ok(0)
    })
}

fn serve_only(
    config: &Config,
    name: &str,
    issuer: Option<String>,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    let mut config = config.clone();
    if issuer.is_some() {
        config.service.issuer = issuer;
    }
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let bound = crate::bind_service(&config, name)?;
        for a in &bound.addrs {
            writeln!(
                io.out,
                "Kuntalaistili service {name} listening on http://{a} (public URL {})",
                config.public_url()
            )?;
        }
        io.out.flush()?;
        bound.server.await.context("server stopped with an error")?;
        Ok(0)
    })
}

fn users_cmd(
    config: &Config,
    cmd: UsersCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    let db = open_migrated(config)?;
    let mut conn = db.conn()?;
    let now = kuntalaistili_schema::now_utc();
    match cmd {
        UsersCommand::Add(a) => {
            let keys = crate::load_master_key(config)?;
            let hasher = PasswordHasher::new(config.password)?;
            let password = if a.password_stdin {
                Some(read_password_stdin(io)?)
            } else {
                None
            };
            let role = match (a.admin, a.role) {
                (true, Some(r)) if r != "admin" => bail!("--admin contradicts --role {r}"),
                (true, _) => "admin".to_owned(),
                (false, r) => r.unwrap_or_else(|| "resident".to_owned()),
            };
            let person = NewPerson {
                username: a.username,
                password,
                role,
                given_name: a.given_name,
                family_name: a.family_name,
                email: a.email,
                phone: a.phone,
                home_municipality: a.municipality,
                preferred_language: a.language,
                national_id: a.national_id,
                message_channels: a.channels,
                ..NewPerson::default()
            };
            let user = customers::add(&mut conn, &keys, &hasher, person, "cli", now)?;
            io.report(
                json,
                customers::public_json(&user),
                format_args!("created {} ({}, {})", user.username, user.role, user.id),
            )?;
        }
        UsersCommand::List => {
            let all = users::list(&mut conn)?;
            if json {
                let v: Vec<_> = all.iter().map(customers::public_json).collect();
                writeln!(io.out, "{}", serde_json::Value::Array(v))?;
            } else {
                writeln!(
                    io.out,
                    "{:<24} {:<9} {:<9} NAME",
                    "USERNAME", "ROLE", "STATUS"
                )?;
                for u in &all {
                    let status = if u.disabled { "disabled" } else { "active" };
                    writeln!(
                        io.out,
                        "{:<24} {:<9} {:<9} {}",
                        u.username,
                        u.role,
                        status,
                        u.display_name()
                    )?;
                }
            }
        }
        UsersCommand::SetPassword { username, .. } => {
            let hasher = PasswordHasher::new(config.password)?;
            let pw = read_password_stdin(io)?;
            customers::set_password(&mut conn, &hasher, &username, &pw, "cli", now)?;
            let name = username.trim().to_lowercase();
            let value = serde_json::json!({ "username": name, "password_set": true });
            io.report(json, value, format_args!("password set for {name}"))?;
        }
        UsersCommand::Disable { username } => {
            let ended = customers::disable(&mut conn, &username, "cli", now)?.sessions_ended;
            let name = username.trim().to_lowercase();
            let value =
                serde_json::json!({ "username": name, "disabled": true, "sessions_ended": ended });
            io.report(
                json,
                value,
                format_args!("disabled {name}; {ended} session(s) ended"),
            )?;
        }
    }
    Ok(0)
}

fn argon2_bench(
    config: &Config,
    seconds: u64,
    threads: Option<usize>,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    let hasher = PasswordHasher::new(config.password)?;
    let stored = hasher.hash("benchmark password")?;
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let deadline = Instant::now() + Duration::from_secs(seconds.max(1));
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (h, st) = (&hasher, &stored);
                s.spawn(move || {
                    // The same code path as the server's hashing threads: reused Argon2 memory.
                    let mut blocks = Vec::new();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        if h.verify_with(Some(st), "benchmark password", &mut blocks) {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let p = config.password;
    let value = serde_json::json!({
        "hashes": total,
        "threads": threads,
        "seconds": started.elapsed().as_secs_f64(),
        "hashes_per_second": rate,
        "memory_kib": p.memory_kib,
        "iterations": p.iterations,
        "parallelism": p.parallelism,
    });
    let (m, t, par) = (p.memory_kib, p.iterations, p.parallelism);
    io.report(
        json,
        value,
        format_args!(
            "argon2id m={m} t={t} p={par}: {rate:.1} verifications/s on {threads} threads"
        ),
    )?;
    Ok(0)
}

/// Opens the configured database and applies pending migrations (every command works on an
/// up-to-date schema).
fn open_migrated(config: &Config) -> anyhow::Result<kuntalaistili_schema::Db> {
    let db = crate::open_db(config)?;
    db.migrate()?;
    Ok(db)
}

/// An error with its causes, each said once: a cause whose text its parent already shows (errors
/// that wrap another and print it) is not repeated ("the metadata expired at T", not "… at T: the
/// metadata expired at T").
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod error_text_tests {
    /// An error that prints its source inside its own message (as `#[error("{0}")]` does).
    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn expired() -> Wrapper {
        Wrapper(std::io::Error::other("the metadata expired at T"))
    }

    #[test]
    fn causes_are_said_once() {
        let e = anyhow::Error::from(expired());
        assert_eq!(super::error_text(&e), "the metadata expired at T");
        let e = anyhow::Error::from(expired()).context("adding the SP");
        assert_eq!(
            super::error_text(&e),
            "adding the SP: the metadata expired at T"
        );
    }
}
