//! `sealbox admin ...`: instance administration on the local data directory, for the
//! operator at the console (no server round trip, no login).
//!
//! `admin reset-password --email ADDRESS` prints a single-use link that lets the account
//! choose a new password: how a reset works when mail is off, or is not arriving.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CliResult, ConfigArgs, runtime};
use crate::app::public_base_url;
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::service::password_reset::RESET_LINK_TTL;
use crate::service::{PasswordResetService, RequestContext, ServiceError};
use crate::store::password_resets::Purpose;
use crate::store::{Store, StoreOptions};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Print a single-use link (valid 1 hour) that lets an account choose a new password
    ResetPassword(ResetPasswordArgs),
}

#[derive(Debug, Args)]
pub struct ResetPasswordArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The account's email address
    #[arg(long, value_name = "ADDRESS")]
    email: String,
}

pub fn run(args: AdminArgs) -> CliResult {
    match args.command {
        AdminCommand::ResetPassword(args) => reset_password(args),
    }
}

fn reset_password(args: ResetPasswordArgs) -> CliResult {
    let config = args.config.load()?;
    config.validate()?;
    let store = open_store(&config)?;
    let service = PasswordResetService::new(
        store.clone(),
        None,
        &public_base_url(&config, config.listen_addr()?),
    );
    let email = args.email;
    runtime()?.block_on(async move {
        let ctx = RequestContext {
            user_agent: Some("sealbox admin reset-password".into()),
            ..RequestContext::default()
        };
        let issued = service
            .issue_link(email.clone(), Purpose::Reset, RESET_LINK_TTL, ctx)
            .await;
        store.close().await?;
        match issued {
            Ok(link) => {
                println!("{}", link.as_str());
                eprintln!(
                    "single-use link for {email}, valid {} minutes; opening it signs the account out everywhere",
                    RESET_LINK_TTL.as_secs() / 60
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(ServiceError::NotFound(_)) => Err(format!("no account has the email address {email}").into()),
            Err(ServiceError::Invalid(problems)) => Err(problems
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>()
                .join("; ")
                .into()),
            Err(e) => Err(e.into()),
        }
    })
}

/// Opens the database of an existing installation (migrating it, as `serve` would); an
/// installation that does not exist yet is an error rather than created here.
fn open_store(config: &Config) -> Result<Store, Box<dyn std::error::Error>> {
    let data = DataDir::from_config(config)?;
    let path = data.database();
    if !path.exists() {
        return Err(format!(
            "no database at {}; run `sealbox init`, or point --data-dir at the installation",
            path.display()
        )
        .into());
    }
    Ok(Store::open(
        &path,
        &StoreOptions {
            max_connections: config.database.max_connections,
            busy_timeout: std::time::Duration::from_millis(config.database.busy_timeout_ms),
        },
    )?)
}
