//! `sealbox admin ...`: instance administration on the local data directory, for the
//! operator at the console (no server round trip, no login).
//!
//! `admin create-user --email ADDRESS [--admin]` creates an account (and, unless told to
//! join an existing organization, a new organization it owns); the password is prompted
//! for without echo, or read from standard input when that is not a terminal, and never
//! taken from the command line, where other users and shell history would see it.
//!
//! `admin set-plan --org ORG_ID --plan PLAN [--until TIME]` assigns an organization's
//! plan (docs/billing.md); a running server applies it on the organization's next request.
//!
//! `admin reset-password --email ADDRESS` prints a single-use link that lets the account
//! choose a new password: how a reset works when mail is off, or is not arriving.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CliResult, ConfigArgs, runtime};
use crate::app::public_base_url;
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::ids::OrgId;
use crate::service::admin::{NewAccount, Placement};
use crate::service::password_reset::RESET_LINK_TTL;
use crate::service::plans::{Clock, PlanRules, PlanService};
use crate::service::{AdminService, PasswordResetService, RequestContext, ServiceError};
use crate::store::password_resets::Purpose;
use crate::store::{Store, StoreOptions};
use zeroize::Zeroizing;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an account; with --admin, an instance admin (the first one, for instance)
    CreateUser(CreateUserArgs),
    /// Print a single-use link (valid 1 hour) that lets an account choose a new password
    ResetPassword(ResetPasswordArgs),
    /// Assign an organization's plan ([[plans]]), optionally until a time
    SetPlan(SetPlanArgs),
}

#[derive(Debug, Args)]
pub struct SetPlanArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The organization's id
    #[arg(long, value_name = "ORG_ID")]
    org: OrgId,
    /// A configured plan's id
    #[arg(long, value_name = "PLAN")]
    plan: String,
    /// When the plan ends and the default plan applies again (RFC 3339, such as
    /// 2027-01-31T00:00:00Z)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResetPasswordArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The account's email address
    #[arg(long, value_name = "ADDRESS")]
    email: String,
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The account's email address
    #[arg(long, value_name = "ADDRESS")]
    email: String,
    /// Display name (default: the part of the email before the @)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Make the account an instance admin
    #[arg(long)]
    admin: bool,
    /// Name of a new organization the account will own
    #[arg(
        long,
        value_name = "NAME",
        default_value = "Default",
        conflicts_with = "join"
    )]
    organization: String,
    /// Join this existing organization (its id) instead of creating one
    #[arg(long, value_name = "ORG_ID")]
    join: Option<OrgId>,
    /// Role in the organization given by --join
    #[arg(long, value_name = "ROLE", default_value = "member", requires = "join")]
    role: String,
}

pub fn run(args: AdminArgs) -> CliResult {
    match args.command {
        AdminCommand::CreateUser(args) => create_user(args),
        AdminCommand::ResetPassword(args) => reset_password(args),
        AdminCommand::SetPlan(args) => set_plan(args),
    }
}

fn set_plan(args: SetPlanArgs) -> CliResult {
    let config = args.config.load()?;
    config.validate()?;
    let store = open_store(&config)?;
    let rules = PlanRules::new(&config.plans, &config.billing, Clock::default());
    let service = PlanService::new(store.clone(), rules);
    runtime()?.block_on(async move {
        let ctx = RequestContext {
            user_agent: Some("sealbox admin set-plan".into()),
            ..RequestContext::default()
        };
        let changed = service
            .assign_from_console(args.org, args.plan, args.until, ctx)
            .await;
        store.close().await?;
        let change = changed.map_err(|e| -> Box<dyn std::error::Error> {
            match e {
                ServiceError::NotFound(what) => format!("{what} not found").into(),
                ServiceError::Invalid(problems) => problems
                    .into_iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
                    .into(),
                other => other.into(),
            }
        })?;
        println!("{}", change.to);
        eprintln!(
            "organization {} now has the plan {} (was {}){}",
            change.org,
            change.to,
            change.from,
            change
                .ends_at
                .map(|at| format!(" until {at}"))
                .unwrap_or_default()
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn create_user(args: CreateUserArgs) -> CliResult {
    let config = args.config.load()?;
    config.validate()?;
    let store = open_store(&config)?;
    let password = read_new_password()?;
    let display_name = args
        .name
        .unwrap_or_else(|| args.email.split('@').next().unwrap_or_default().to_owned());
    let placement = match args.join {
        Some(org) => Placement::Organization {
            org,
            role: Some(args.role),
        },
        None => Placement::NewOrganization(args.organization),
    };
    let account = NewAccount {
        email: args.email.clone(),
        display_name,
        password: Some(password),
        is_instance_admin: args.admin,
    };
    runtime()?.block_on(async move {
        let ctx = RequestContext {
            user_agent: Some("sealbox admin create-user".into()),
            ..RequestContext::default()
        };
        let created = AdminService::new(store.clone())
            .with_plans(PlanRules::new(
                &config.plans,
                &config.billing,
                Clock::default(),
            ))
            .create_account(None, account, placement, ctx)
            .await;
        store.close().await?;
        let created = created.map_err(|e| service_error_message(e, &args.email))?;
        println!("{}", created.user.id);
        eprintln!(
            "created {}{} as {} of organization {}",
            created.user.email,
            if args.admin { " (instance admin)" } else { "" },
            created.role,
            created.org_id
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The new account's password: prompted twice without echo on a terminal, else the first
/// line of standard input.
fn read_new_password() -> Result<Zeroizing<String>, Box<dyn std::error::Error>> {
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
        let again = Zeroizing::new(rpassword::prompt_password("Password (again): ")?);
        if first != again {
            return Err("the passwords do not match".into());
        }
        Ok(first)
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().read_line(&mut line)?;
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            return Err("no password on standard input".into());
        }
        Ok(Zeroizing::new(trimmed.to_owned()))
    }
}

/// A service refusal as one line for the console.
fn service_error_message(err: ServiceError, email: &str) -> Box<dyn std::error::Error> {
    match err {
        ServiceError::NotFound(what) => format!("{what} not found").into(),
        ServiceError::Conflict(_) => {
            format!("an account with the email address {email} exists").into()
        }
        ServiceError::Invalid(problems) => problems
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect::<Vec<_>>()
            .join("; ")
            .into(),
        other => other.into(),
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
