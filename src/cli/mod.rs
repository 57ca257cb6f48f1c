//! The `kuntalaistili` command line: serve, migrate, manage users, verify the audit log. Lives in
//! the library so tests can run commands in-process with their own input and output.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::config::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};

mod audit;
mod authz;
mod bookings;
mod clients;
mod directory;
mod keys;
mod serve;
mod sp;
mod users;
use audit::{audit_cmd, AuditCommand};
use authz::{authz_cmd, AuthzCommand};
use bookings::{bookings_cmd, BookingsCommand};
use clients::{clients_cmd, ClientsCommand};
use directory::{directory_cmd, DirectoryCommand};
use keys::{keys_cmd, KeysCommand};
use serve::{serve, serve_only};
use sp::{sp_cmd, SpCommand};
use users::{argon2_bench, users_cmd, UsersCommand};

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
        Command::Audit(cmd) => audit_cmd(&config, cmd, cli.json, io),
        Command::Directory(cmd) => directory_cmd(&config, cmd, cli.json, io),
        Command::Keys(cmd) => keys_cmd(&config, cmd, cli.json, io),
        Command::Clients(cmd) => clients_cmd(&config, cmd, cli.json, io),
        Command::Authz(cmd) => authz_cmd(&config, cmd, cli.json, io),
        Command::Sp(cmd) => sp_cmd(&config, cmd, cli.json, io),
        Command::Bookings(cmd) => bookings_cmd(&config, cmd, cli.json, io),
        Command::Argon2Bench { seconds, threads } => {
            argon2_bench(&config, seconds, threads, cli.json, io)
        }
    }
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
