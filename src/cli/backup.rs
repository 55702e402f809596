//! `sealbox backup DEST` (an online snapshot of the installation into the backup directory
//! DEST) and `sealbox backup verify SRC` (check a backup without restoring it). The work is
//! `service::backup`; see `docs/operations.md`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::ProgressBar;

use super::{CliResult, ConfigArgs};
use crate::data_dir::DataDir;
use crate::service::backup::{self, BackupSource, Progress};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// Backup directory (created if missing); successive backups into the same directory
    /// share its blob store, so each copies only blobs the earlier ones did not
    #[arg(value_name = "DEST", required = true)]
    dest: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Also copy the master key into the backup. Whoever can read the backup can then
    /// open every server-sealed secret in it: keep such a backup as safe as the server
    #[arg(long)]
    include_master_key: bool,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Check a backup without restoring it: manifests, database, every file and blob
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// A backup directory (every snapshot in it is checked) or one snapshot directory
    #[arg(value_name = "SRC")]
    src: PathBuf,
}

pub fn run(args: BackupArgs) -> CliResult {
    match (args.command, args.dest) {
        (Some(BackupCommand::Verify(verify_args)), _) => verify(verify_args),
        (None, Some(dest)) => take(dest, &args.config, args.include_master_key),
        (None, None) => Err("a backup directory (DEST) is required".into()),
    }
}

fn take(dest: PathBuf, config_args: &ConfigArgs, include_master_key: bool) -> CliResult {
    let config = config_args.load()?;
    let data = DataDir::from_config(&config)?;
    if config.storage.backend == crate::config::storage::BlobBackend::S3 {
        return Err(crate::config::storage::S3_BACKUP_UNSUPPORTED.into());
    }
    let master_key_file = if config.storage.master_key_file.as_os_str().is_empty() {
        data.master_key()
    } else {
        config.storage.master_key_file.clone()
    };
    let config_file = config_args
        .config
        .clone()
        .or_else(|| crate::config::default_config_path().filter(|p| p.is_file()));
    let source = BackupSource {
        data,
        config_file,
        master_key_file,
        include_master_key,
    };
    let summary = backup::backup(&source, &dest, &TerminalProgress::default())?;
    let manifest = &summary.manifest;
    println!("snapshot {}", summary.snapshot.display());
    println!(
        "  schema version {}, {} file blob(s) ({} bytes): {} copied ({} bytes), {} already in the backup",
        manifest.schema_version,
        manifest.counts.blobs,
        manifest.counts.blob_bytes,
        summary.blobs_copied,
        summary.bytes_copied,
        manifest.blobs.len().saturating_sub(summary.blobs_copied),
    );
    if manifest.master_key_included {
        println!(
            "  WARNING: this backup holds the master key ({}): anyone who can read it can open \
             every server-sealed secret; store it encrypted and offline",
            manifest.master_key_id.as_deref().unwrap_or("?")
        );
    } else {
        println!(
            "  the master key ({}) is not in this backup: keep a copy of it apart, a restore \
             needs it",
            manifest.master_key_id.as_deref().unwrap_or("not found")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> CliResult {
    let snapshots = backup::snapshots(&args.src)?;
    let progress = TerminalProgress::default();
    let mut seen = HashSet::new();
    let mut failed = 0usize;
    for snapshot in &snapshots {
        let problems = match backup::check_snapshot(snapshot) {
            Ok(checked) => {
                let mut problems = checked.audit_problems.clone();
                problems.extend(backup::verify_blobs(&checked, &mut seen, &progress));
                if problems.is_empty() {
                    println!(
                        "ok       snapshot {}: schema version {}, {} blob(s), {} bytes; every \
                         BLAKE3 matches",
                        snapshot.name,
                        checked.manifest.schema_version,
                        checked.manifest.counts.blobs,
                        checked.manifest.counts.blob_bytes
                    );
                }
                problems
            }
            Err(e) => vec![e.to_string()],
        };
        for problem in &problems {
            println!("PROBLEM  snapshot {}: {problem}", snapshot.name);
        }
        failed += usize::from(!problems.is_empty());
    }
    if failed == 0 {
        println!("{} snapshot(s) verified", snapshots.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{failed} of {} snapshot(s) failed verification",
            snapshots.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Stages and a byte bar on stderr, only when stderr is a terminal (stdout is the result).
#[derive(Default)]
pub(super) struct TerminalProgress {
    bar: RefCell<Option<ProgressBar>>,
}

impl Progress for TerminalProgress {
    fn stage(&self, what: &str) {
        if std::io::stderr().is_terminal() {
            eprintln!("{what}");
        }
    }
    fn blobs(&self, count: usize, bytes: u64) {
        if count > 0 {
            let label = format!("{count} blob(s)");
            *self.bar.borrow_mut() = Some(crate::client::progress::bytes_bar(bytes, &label));
        }
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = &*self.bar.borrow() {
            bar.inc(bytes);
        }
    }
    fn done(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}
