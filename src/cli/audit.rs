//! `sealbox audit verify`: checks every audit hash chain in the data directory's database,
//! offline and read-only (the server may keep running). Exit status 0 when every chain
//! holds, 1 when one is broken or the database cannot be read.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use rusqlite::{Connection, OpenFlags};

use super::{CliResult, ConfigArgs};
use crate::data_dir::DataDir;
use crate::service::audit::{ChainReport, verify_all};
use crate::store::{LATEST_SCHEMA_VERSION, schema_version};

/// The first schema version with the hash chain.
const CHAINED_SCHEMA_VERSION: i64 = 7;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute every audit entry's hash and report edited, deleted or reordered entries
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: AuditArgs) -> CliResult {
    match args.command {
        AuditCommand::Verify(args) => verify(args),
    }
}

fn verify(args: VerifyArgs) -> CliResult {
    let config = args.config.load()?;
    let path = DataDir::new(&config.storage.data_dir).database();
    if !path.exists() {
        return Err(format!("{} does not exist; is --data-dir right?", path.display()).into());
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let version = schema_version(&conn)?;
    if version > LATEST_SCHEMA_VERSION {
        return Err(format!(
            "{} has schema version {version}, newer than this sealbox ({LATEST_SCHEMA_VERSION}); \
             use the release that wrote it",
            path.display()
        )
        .into());
    }
    if version < CHAINED_SCHEMA_VERSION {
        return Err(format!(
            "{} predates the audit hash chain (schema version {version}); start `sealbox \
             serve` once to migrate it",
            path.display()
        )
        .into());
    }
    // One read transaction: a snapshot, so entries the running server appends meanwhile
    // cannot make a chain's head and its rows disagree.
    let snapshot = conn.unchecked_transaction()?;
    let reports = verify_all(&snapshot)?;
    drop(snapshot);
    let valid = reports.iter().all(ChainReport::is_valid);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_report(&reports, valid))?
        );
    } else {
        print_report(&reports, valid);
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn chain_name(report: &ChainReport) -> String {
    match &report.org_id {
        Some(org) => format!("organization {org}"),
        None => "instance".to_owned(),
    }
}

fn print_report(reports: &[ChainReport], valid: bool) {
    for report in reports {
        match &report.problem {
            None => println!(
                "ok        {}: {} entries, head {}",
                chain_name(report),
                report.entries,
                report.head_hash
            ),
            Some(problem) => println!(
                "TAMPERED  {}: after {} good entries, {}{}",
                chain_name(report),
                report.entries,
                problem
                    .entry_id
                    .as_ref()
                    .map(|id| format!("at entry {id}: "))
                    .unwrap_or_default(),
                problem.reason
            ),
        }
    }
    let entries: u64 = reports.iter().map(|r| r.entries).sum();
    if valid {
        println!(
            "audit log intact: {} chains, {entries} entries",
            reports.len()
        );
    } else {
        println!("audit log TAMPERED: see the chains marked above");
    }
}

fn json_report(reports: &[ChainReport], valid: bool) -> serde_json::Value {
    serde_json::json!({
        "valid": valid,
        "chains": reports.iter().map(|r| serde_json::json!({
            "organizationId": r.org_id,
            "valid": r.is_valid(),
            "entries": r.entries,
            "anchorHash": r.anchor_hash,
            "headHash": r.head_hash,
            "brokenAt": r.problem.as_ref().and_then(|p| p.entry_id.clone()),
            "problem": r.problem.as_ref().map(|p| p.reason.clone()),
        })).collect::<Vec<_>>(),
    })
}
