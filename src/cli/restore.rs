//! `sealbox restore SRC --data-dir DIR`: verifies a backup, then builds the data directory
//! from it beside DIR and moves it into place in one rename (`--force` swaps it with a
//! non-empty DIR). A failed restore leaves DIR as it was. See `docs/operations.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::backup::TerminalProgress;
use super::{CliResult, ConfigArgs};
use crate::data_dir::DataDir;
use crate::service::backup::{self, RestoreTarget};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup directory (its newest snapshot is restored) or one snapshot directory
    #[arg(value_name = "SRC")]
    src: PathBuf,
    /// The data directory to restore into (default: the configured one); it must be empty
    /// or missing unless --force
    #[command(flatten)]
    config: ConfigArgs,
    /// The snapshot to restore, by name (see `ls SRC/snapshots`); default the newest
    #[arg(long, value_name = "NAME")]
    snapshot: Option<String>,
    /// Replace a non-empty data directory (atomically; its old contents are deleted).
    /// Stop the server first
    #[arg(long)]
    force: bool,
    /// The master key to install when the backup does not hold it (checked against the
    /// key id the backup recorded)
    #[arg(long, value_name = "PATH")]
    master_key_file: Option<PathBuf>,
}

pub fn run(args: RestoreArgs) -> CliResult {
    let config = args.config.load()?;
    let data = DataDir::from_config(&config)?;
    if config.storage.backend == crate::config::storage::BlobBackend::S3 {
        return Err(crate::config::storage::S3_BACKUP_UNSUPPORTED.into());
    }
    let snapshot = backup::pick(&args.src, args.snapshot.as_deref())?;
    let target = RestoreTarget {
        data_dir: data.root().to_owned(),
        force: args.force,
        master_key_file: args.master_key_file,
    };
    let summary = backup::restore(&snapshot, &target, &TerminalProgress::default())?;
    let manifest = &summary.manifest;
    println!(
        "restored snapshot {} into {}{}",
        snapshot.name,
        data.root().display(),
        if summary.replaced {
            " (replacing its previous contents)"
        } else {
            ""
        }
    );
    println!(
        "  schema version {}, {} file blob(s), {} bytes",
        manifest.schema_version, manifest.counts.blobs, manifest.counts.blob_bytes
    );
    for problem in &summary.audit_problems {
        println!("  WARNING: the backup's {problem}; it was so when the backup was taken");
    }
    if let Some(config) = &summary.config {
        println!(
            "  the backed-up configuration is in {}: compare it with your config file",
            config.display()
        );
    }
    if !summary.master_key_installed {
        println!(
            "  NOTE: this backup holds no master key. Supply the same master key ({}) as the \
             backed-up instance: copy it to {} (mode 0600) or set storage.master_key_file; \
             the server will not start without it",
            manifest.master_key_id.as_deref().unwrap_or("id unknown"),
            data.master_key().display()
        );
    }
    println!(
        "  next: sealbox doctor --scrub --data-dir {}",
        data.root().display()
    );
    Ok(ExitCode::SUCCESS)
}
