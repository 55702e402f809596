//! `sealbox login` and `sealbox logout`, and how every client command finds its server.
//!
//! `login` signs in with email and password (prompted without echo, or
//! `SEALBOX_PASSWORD`), creates an API key scoped to transfers only, and saves server, pin
//! and key to `credentials.toml` (mode 0600). The password is not stored. `logout` revokes
//! that key and deletes the file.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::json;
use url::Url;
use zeroize::Zeroizing;

use super::{CliResult, runtime};
use crate::client::ClientError;
use crate::client::credentials::{self, ApiKey, Credentials};
use crate::client::http::{Api, Pin, error_message, expect_json, origin, parse_server};

/// The scopes of the key `login` creates: transfers only (never `admin`: an instance
/// admin's CLI key has no instance-admin power).
pub const CLI_KEY_SCOPES: [&str; 2] = ["transfers:read", "transfers:write"];

/// Where a client command connects.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's URL (default: SEALBOX_SERVER, else the one `sealbox login` saved)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// SHA-256 fingerprint of the server's certificate (AB:CD:... as `sealbox serve`
    /// prints it, or plain hex): trust exactly that certificate, for a self-signed server
    #[arg(long, value_name = "SHA256")]
    pub pin: Option<String>,
}

/// The server, pin and API key a command uses: flags and `SEALBOX_SERVER` /
/// `SEALBOX_API_KEY` win; the saved credentials fill in the rest, but their key and pin
/// are only ever used for the server they were saved for.
pub fn connect(args: &ServerArgs, need_key: bool) -> Result<Api, ClientError> {
    let saved = credentials::load(&credentials::path()?)?;
    let chosen = args.server.clone().or_else(|| {
        std::env::var("SEALBOX_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
    });
    let server = match (&chosen, &saved) {
        (Some(server), _) => parse_server(server)?,
        (None, Some(saved)) => parse_server(&saved.server)?,
        (None, None) => {
            return Err(ClientError::Usage(
                "no server: pass --server URL, set SEALBOX_SERVER, or run `sealbox login`".into(),
            ));
        }
    };
    let same_server = saved
        .as_ref()
        .and_then(|s| parse_server(&s.server).ok())
        .is_some_and(|s| s == server);
    let saved = saved.filter(|_| same_server);
    let pin = match (&args.pin, saved.as_ref().and_then(|s| s.pin.as_ref())) {
        (Some(pin), _) | (None, Some(pin)) => Some(Pin::parse(pin)?),
        (None, None) => None,
    };
    let key = match std::env::var("SEALBOX_API_KEY") {
        Ok(key) if !key.is_empty() => Some(ApiKey::new(key)),
        _ => saved.map(|s| s.api_key),
    };
    if need_key && key.is_none() {
        return Err(ClientError::Usage(format!(
            "not logged in to {}: run `sealbox login --server {}` (or set SEALBOX_API_KEY)",
            origin(&server),
            origin(&server)
        )));
    }
    Api::new(server, pin, key)
}

/// A public client for `server` (a link's server), with the saved pin when it is the
/// saved server, or `--pin`.
pub fn connect_public(server: Url, pin: Option<&str>) -> Result<Api, ClientError> {
    let saved = credentials::load(&credentials::path()?)?
        .filter(|s| parse_server(&s.server).is_ok_and(|s| s == server));
    let pin = match (pin, saved.as_ref().and_then(|s| s.pin.as_deref())) {
        (Some(pin), _) | (None, Some(pin)) => Some(Pin::parse(pin)?),
        (None, None) => None,
    };
    Api::new(server, pin, None)
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Your account's email address (prompted for when left out)
    #[arg(long, value_name = "EMAIL")]
    email: Option<String>,
    /// The organization the key works in (default: your default organization)
    #[arg(long, value_name = "ID")]
    org: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {}

/// A secret from `env`, else prompted for without echo.
pub fn secret(env: &str, prompt: &str) -> Result<Zeroizing<String>, ClientError> {
    if let Ok(value) = std::env::var(env)
        && !value.is_empty()
    {
        return Ok(Zeroizing::new(value));
    }
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        return Err(ClientError::Usage(format!(
            "no terminal to ask for the password: set {env}"
        )));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| ClientError::local("reading the password", e))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this computer".into())
}

pub fn run_login(args: LoginArgs) -> CliResult {
    let Some(server) = args.server.server.clone().or_else(|| {
        std::env::var("SEALBOX_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
    }) else {
        return Err(ClientError::Usage("pass --server URL (or set SEALBOX_SERVER)".into()).into());
    };
    let server = parse_server(&server)?;
    // A pin saved for this server is reused; an unreadable old file is about to be replaced.
    let saved_pin = credentials::load(&credentials::path()?)
        .ok()
        .flatten()
        .filter(|s| parse_server(&s.server).is_ok_and(|s| s == server))
        .and_then(|s| s.pin);
    let pin = args
        .server
        .pin
        .as_deref()
        .or(saved_pin.as_deref())
        .map(Pin::parse)
        .transpose()?;
    let api = Api::new(server, pin, None)?;
    let email = match args.email {
        Some(email) => email,
        None => {
            eprint!("Email: ");
            std::io::stderr().flush().ok();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| ClientError::local("reading the email", e))?;
            line.trim().to_owned()
        }
    };
    let password = secret("SEALBOX_PASSWORD", "Password: ")?;
    runtime()?.block_on(async {
        let signed_in = api
            .send(
                api.request(Method::POST, api.url("v1/auth/login")?)
                    .json(&json!({"email": email, "password": password.as_str()})),
            )
            .await?;
        if signed_in.status() == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Api("wrong email or password".into()).into());
        }
        let pair = expect_json(signed_in, StatusCode::OK, "signing in").await?;
        let access = Zeroizing::new(pair["accessToken"].as_str().unwrap_or_default().to_owned());
        let org = args
            .org
            .or_else(|| {
                pair["user"]["defaultOrganizationId"]
                    .as_str()
                    .map(str::to_owned)
            })
            .or_else(|| {
                pair["user"]["organizations"][0]["id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .ok_or_else(|| ClientError::Api("your account is in no organization".into()))?;
        let created = api
            .send(
                api.client
                    .post(api.url("v1/api-keys")?)
                    .bearer_auth(access.as_str())
                    .header("X-Organization-Id", &org)
                    .json(&json!({
                        "name": format!("sealbox CLI on {}", hostname()),
                        "scopes": CLI_KEY_SCOPES,
                    })),
            )
            .await?;
        let created = expect_json(created, StatusCode::CREATED, "creating an API key").await?;
        let (Some(id), Some(key)) = (created["id"].as_str(), created["key"].as_str()) else {
            return Err(
                ClientError::Api("the server's API key answer is incomplete".into()).into(),
            );
        };
        // The saved key must carry exactly what was asked for: never `admin` (an instance
        // admin's power) nor anything else a server might add.
        let granted: Vec<&str> = created["scopes"]
            .as_array()
            .map(|scopes| scopes.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        if granted.iter().any(|scope| !CLI_KEY_SCOPES.contains(scope)) {
            let url = api.url(&format!("v1/api-keys/{id}"))?;
            let revoked = api
                .send(
                    api.client
                        .delete(url)
                        .bearer_auth(access.as_str())
                        .header("X-Organization-Id", &org),
                )
                .await;
            let note = match revoked {
                Ok(r) if r.status() == StatusCode::NO_CONTENT => "it was revoked",
                _ => "revoke it under API keys in the web app",
            };
            return Err(ClientError::Api(format!(
                "the server gave the CLI's key more than it asked for ({}); nothing was \
                 saved and {note}",
                granted.join(" ")
            ))
            .into());
        }
        let path = credentials::path()?;
        credentials::save(
            &path,
            &Credentials {
                server: api.base.to_string(),
                // The pin this login verified: --pin, or the one saved for this server.
                pin: api.pin.map(|p| p.to_colon_hex()),
                email: email.clone(),
                organization_id: org.clone(),
                api_key_id: id.to_owned(),
                api_key: ApiKey::new(key.to_owned()),
            },
        )?;
        eprintln!(
            "Logged in to {} as {email}; an API key for transfers is saved in {}",
            origin(&api.base),
            path.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run_logout(_args: LogoutArgs) -> CliResult {
    let path = credentials::path()?;
    let Some(saved) = credentials::load(&path)? else {
        eprintln!("Not logged in (no {}).", path.display());
        return Ok(ExitCode::SUCCESS);
    };
    let api = Api::new(
        parse_server(&saved.server)?,
        saved.pin.as_deref().map(Pin::parse).transpose()?,
        Some(saved.api_key.clone()),
    )?;
    let revoked = runtime()?.block_on(revoke(&api, &saved))?;
    std::fs::remove_file(&path).map_err(|e| ClientError::local(path.display(), e))?;
    match revoked {
        Ok(()) => {
            eprintln!(
                "Logged out: the API key is revoked and {} deleted.",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => Err(ClientError::Api(format!(
            "{} is deleted, but the server did not revoke the key ({message}): revoke \"sealbox \
             CLI on {}\" under API keys in the web app",
            path.display(),
            hostname()
        ))
        .into()),
    }
}

/// Revokes the saved key with the key itself (a key may always revoke itself).
async fn revoke(api: &Api, saved: &Credentials) -> Result<Result<(), String>, ClientError> {
    let url = api.url(&format!("v1/api-keys/{}", saved.api_key_id))?;
    let response = api.send(api.request(Method::DELETE, url)).await?;
    Ok(match response.status() {
        // Revoked now, or the key no longer works (revoked or expired) anyway.
        StatusCode::NO_CONTENT | StatusCode::UNAUTHORIZED => Ok(()),
        _ => Err(error_message(response).await),
    })
}
