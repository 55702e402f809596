//! `sealbox migrate`: applies the database's pending migrations and exits (`--dry-run`
//! lists them and changes nothing). `sealbox serve` migrates at start as well; this is
//! for upgrades done by hand, after a backup. A database newer than this binary is
//! refused.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{CliResult, ConfigArgs};
use crate::data_dir::DataDir;
use crate::store::{self, LATEST_SCHEMA_VERSION, StoreOptions};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// List the pending migrations without applying them
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: MigrateArgs) -> CliResult {
    let config = args.config.load()?;
    let path = DataDir::from_config(&config)?.database();
    if !path.is_file() {
        return Err(format!(
            "{} does not exist; run `sealbox init` or point --data-dir at the data directory",
            path.display()
        )
        .into());
    }
    let migrations = if args.dry_run {
        store::pending_migrations(&path)?
    } else {
        store::migrate(
            &path,
            &StoreOptions {
                max_connections: 1,
                busy_timeout: Duration::from_millis(config.database.busy_timeout_ms),
            },
        )?
    };
    let verb = if args.dry_run { "pending" } else { "applied" };
    for migration in &migrations {
        println!("{verb}  {:04} {}", migration.version, migration.name);
    }
    if migrations.is_empty() {
        println!("the database is at schema version {LATEST_SCHEMA_VERSION}: nothing to do");
    } else if args.dry_run {
        println!(
            "{} migration(s) pending; `sealbox migrate` applies them (take a backup first)",
            migrations.len()
        );
    } else {
        println!(
            "{} migration(s) applied; schema version {LATEST_SCHEMA_VERSION}",
            migrations.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
