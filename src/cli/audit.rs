//! `kuntalaistili audit …`: verify the hash chain, export events, prune old ones to an archive.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{open_migrated, Io};
use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
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

pub(super) fn audit_cmd(
    config: &Config,
    cmd: AuditCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify => {
            let db = open_migrated(config)?;
            let mut conn = db.conn()?;
            let report = kuntalaistili_schema::audit::verify(&mut conn)?;
            if json {
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
        AuditCommand::Prune { before, export } => {
            let db = open_migrated(config)?;
            let mut conn = db.conn()?;
            let cutoff = before.and_hms_opt(0, 0, 0).unwrap_or_default();
            let through = kuntalaistili_schema::audit::last_seq_before(&mut conn, cutoff)?;
            let (anchor, _) = kuntalaistili_schema::audit::anchor(&mut conn)?;
            if through <= anchor {
                io.report(
                    json,
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
                json,
                serde_json::json!({ "pruned": n, "archived": written, "anchor_seq": through, "archive": export }),
                format_args!("archived {written} events to {} and pruned {n}; the chain continues from row {through}", export.display()),
            )?;
            Ok(0)
        }
        AuditCommand::Export { after_seq } => {
            let db = open_migrated(config)?;
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
    }
}
