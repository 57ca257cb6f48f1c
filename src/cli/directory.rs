//! `kuntalaistili directory …`: the seutukunta classification and the service catalogue.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{open_migrated, Io};
use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum DirectoryCommand {
    /// Replace the seutukunta classification with a Statistics Finland JSON file (the shape of
    /// services/data/seutukunnat-2025.json); all or nothing.
    Import { file: PathBuf },
    /// Add or replace services from a JSON file (`{"services": [...]}`, the export format);
    /// all or nothing.
    ImportServices { file: PathBuf },
    /// Print every service in the exchange format.
    ExportServices,
}

pub(super) fn directory_cmd(
    config: &Config,
    cmd: DirectoryCommand,
    json: bool,
    io: &mut Io<'_>,
) -> anyhow::Result<i32> {
    match cmd {
        DirectoryCommand::ImportServices { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let db = open_migrated(config)?;
            let n = kuntalaistili_services::directory::catalogue::import(
                &mut *db.conn()?,
                &text,
                kuntalaistili_schema::now_utc(),
            )?;
            io.report(
                json,
                serde_json::json!({ "services": n }),
                format_args!("imported {n} services"),
            )?;
            Ok(0)
        }
        DirectoryCommand::ExportServices => {
            let db = open_migrated(config)?;
            let cat = kuntalaistili_services::directory::catalogue::export(&mut *db.conn()?)?;
            writeln!(io.out, "{}", serde_json::to_string_pretty(&cat)?)?;
            Ok(0)
        }
        DirectoryCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let db = open_migrated(config)?;
            let (regions, municipalities) =
                kuntalaistili_services::directory::classification::import(&mut *db.conn()?, &text)?;
            io.report(
                json,
                serde_json::json!({ "seutukunnat": regions, "municipalities": municipalities }),
                format_args!("imported {regions} seutukunnat with {municipalities} municipalities"),
            )?;
            Ok(0)
        }
    }
}
