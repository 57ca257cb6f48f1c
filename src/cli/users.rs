//! `kuntalaistili users …`: register people, list them, set passwords, disable accounts; and
//! `kuntalaistili argon2-bench`, the hash rate of the configured password parameters.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use kuntalaistili_idp::customers::{self, NewPerson};
use kuntalaistili_idp::password::PasswordHasher;
use kuntalaistili_schema::users;

use super::{open_migrated, Io};
use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum UsersCommand {
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
pub(super) struct AddUser {
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

/// Sends back-channel logout for grants the CLI just revoked (as the server does for the same
/// change made on its pages), so the services end their sessions too. The IdP state is built as
/// `serve` builds it (keys, clients), without serving anything.
fn tell_services(
    config: &Config,
    username: &str,
    grants: Vec<kuntalaistili_schema::oidc_flows::Grant>,
) -> anyhow::Result<()> {
    let Some(user_id) = grants.first().map(|g| g.user_id.clone()) else {
        return Ok(());
    };
    let state = crate::startup::prepare(config)?;
    let told = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            kuntalaistili_idp::session::logout::grants_revoked(&state, &user_id, grants).await;
        })
    })
    .join();
    if told.is_err() {
        anyhow::bail!("telling the services that {username}'s sessions ended failed");
    }
    Ok(())
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

pub(super) fn users_cmd(
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
            let grants = customers::set_password(&mut conn, &hasher, &username, &pw, "cli", now)?;
            tell_services(config, &username, grants)?;
            let name = username.trim().to_lowercase();
            let value = serde_json::json!({ "username": name, "password_set": true });
            io.report(json, value, format_args!("password set for {name}"))?;
        }
        UsersCommand::Disable { username } => {
            let done = customers::disable(&mut conn, &username, "cli", now)?;
            let ended = done.sessions_ended;
            tell_services(config, &username, done.grants)?;
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

pub(super) fn argon2_bench(
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
