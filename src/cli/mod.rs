//! The command line: one file per subcommand. `main.rs` calls [`run`] and nothing else.

mod admin;
mod audit;
mod backup;
mod doctor;
mod download_token;
mod init;
mod login;
mod migrate;
mod receive;
mod restore;
mod send;
mod serve;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Sources};

#[derive(Debug, Parser)]
#[command(
    name = "sealbox",
    version,
    about = "Self-hosted encrypted file transfers, files and secrets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance (creates the data directory, keys and certificate on first start)
    Serve(serve::ServeArgs),
    /// Create the config file, data directory, master key and certificate, then exit
    Init(init::InitArgs),
    /// Check the data directory, database, keys and certificate; exit non-zero on problems
    Doctor(doctor::DoctorArgs),
    /// Administer accounts on this installation (password-reset links)
    Admin(admin::AdminArgs),
    /// Check the tamper-evident audit log (offline, read-only)
    Audit(audit::AuditArgs),
    /// Snapshot the installation into a backup directory while it serves; `backup verify`
    /// checks a backup
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty (or, with --force, replaced) data directory
    Restore(restore::RestoreArgs),
    /// Apply the database's pending migrations and exit (--dry-run lists them)
    Migrate(migrate::MigrateArgs),
    /// Print the version, API version and database schema version
    Version,
    /// Sign in to a server and save an API key for send and receive
    Login(login::LoginArgs),
    /// Revoke the saved API key and delete the saved credentials
    Logout(login::LogoutArgs),
    /// Send files end to end encrypted; prints the link (with its key) on stdout
    Send(send::SendArgs),
    /// Download a transfer's files from its link
    Receive(receive::ReceiveArgs),
}

/// Options every subcommand that reads the configuration accepts.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Config file (default: /etc/sealbox/config.toml for root, else
    /// ~/.config/sealbox/config.toml, when present)
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory; wins over the config file and SEALBOX_STORAGE__DATA_DIR
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    /// Loads the layered configuration, then applies the flags, which win over everything.
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        let mut config = Config::load(&Sources::from_process(self.config.clone()))?;
        if let Some(dir) = &self.data_dir {
            config.storage.data_dir = dir.clone();
        }
        Ok(config)
    }
}

/// A subcommand's failure: printed as `error: ...` with exit status 1.
pub type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// Parses the command line and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Init(args) => init::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Version => version::run(),
        Command::Login(args) => login::run_login(args),
        Command::Logout(args) => login::run_logout(args),
        Command::Send(args) => send::run(args),
        Command::Receive(args) => receive::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-threaded runtime for subcommands that need async.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
