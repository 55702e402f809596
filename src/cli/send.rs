//! `sealbox send FILE|DIR...`: an end-to-end transfer. The files are encrypted here (SBX1
//! under a fresh transfer key) as they stream to the server, which never sees the key;
//! their names, and the message, are sealed under the same key. A directory is sent with
//! every regular file under it, each named by its path from the directory's parent
//! (`photos/2026/a.jpg`), so `sealbox receive` recreates the tree. The link, with the
//! server's link secret and the key in its fragment (`#s=...&k=...`), is the only thing
//! printed on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::login::{ServerArgs, connect, secret};
use super::{CliResult, runtime};
use crate::client::ClientError;
use crate::client::http::expect_json;
use crate::client::link::with_key;
use crate::client::progress::bytes_bar;
use crate::client::tus::{Encryption, SourceFile, upload};
use crate::crypto::sbx1::{Header, Layout};
use crate::crypto::transfer_e2e::{
    MAX_MESSAGE_BYTES, MAX_NAME_BYTES, check_relative_path, generate_key, new_file_id,
    seal_message, seal_name,
};

/// The longest expiry the server accepts by default (`limits.transfer_max_hours`).
pub const MAX_EXPIRY_HOURS: u64 = 720;
/// The environment variable that gives a transfer's password to scripts.
pub const PASSWORD_ENV: &str = "SEALBOX_TRANSFER_PASSWORD";

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The files to send; a directory sends every regular file under it, with its path
    /// (symbolic links inside it are skipped)
    #[arg(required = true, value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    /// A recipient's email address (repeat for several); anyone with the link can download
    #[arg(long = "to", value_name = "EMAIL")]
    to: Vec<String>,
    /// The transfer's name, stored unencrypted (default: "1 file" or "N files")
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A message for the recipients, sealed here under the transfer key (the server
    /// cannot read it)
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
    /// How long the link works: Nd or Nh, 1h to 30d (default: the server's, 7 days)
    #[arg(long, value_name = "DURATION", value_parser = parse_expiry)]
    expires: Option<u64>,
    /// How many downloads the link allows
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_downloads: Option<u64>,
    /// Require a password to download (prompted twice; or SEALBOX_TRANSFER_PASSWORD)
    #[arg(long)]
    password: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// `Nd` or `Nh` as whole hours, within 1..=720.
pub fn parse_expiry(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration: use Nd or Nh, such as 7d or 12h");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let number: u64 = number.parse().map_err(|_| bad())?;
    let hours = match unit {
        "d" | "D" => number.checked_mul(24).ok_or_else(bad)?,
        "h" | "H" => number,
        _ => return Err(bad()),
    };
    if !(1..=MAX_EXPIRY_HOURS).contains(&hours) {
        return Err(format!(
            "{text:?} is out of range: a link can work from 1h to {}d ({MAX_EXPIRY_HOURS}h)",
            MAX_EXPIRY_HOURS / 24
        ));
    }
    Ok(hours)
}

/// A file to send, checked before anything is uploaded.
struct Outgoing {
    source: Arc<SourceFile>,
    name: String,
}

/// The files to send, in order: each named path's file, or every regular file under a
/// named directory (sorted, depth first) with its path from the directory's parent.
fn check_files(paths: Vec<PathBuf>) -> Result<Vec<Outgoing>, ClientError> {
    let mut found = Vec::new();
    for path in paths {
        // `.` or `..` have no name of their own: the directory's real name is used.
        let name = match path.file_name() {
            Some(_) => utf8_name(&path)?,
            None => utf8_name(
                &path
                    .canonicalize()
                    .map_err(|e| ClientError::local(path.display(), e))?,
            )?,
        };
        let meta = std::fs::metadata(&path).map_err(|e| ClientError::local(path.display(), e))?;
        if meta.is_dir() {
            walk_dir(&path, &name, &mut found)?;
        } else {
            found.push((path, name));
        }
    }
    if found.is_empty() {
        return Err(ClientError::Usage(
            "nothing to send: the directories hold no regular files".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    found
        .into_iter()
        .map(|(path, name)| {
            check_relative_path(&name)
                .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
            if name.len() > MAX_NAME_BYTES {
                return Err(ClientError::Usage(format!(
                    "{}: the file's name (with its folders) is longer than {MAX_NAME_BYTES} bytes",
                    path.display()
                )));
            }
            if !seen.insert(name.clone()) {
                return Err(ClientError::Usage(format!(
                    "two files would arrive as {name}: send them in separate transfers"
                )));
            }
            Ok(Outgoing {
                source: Arc::new(SourceFile::stat(path)?),
                name,
            })
        })
        .collect()
}

/// A path's last component as UTF-8 (the name it is sent under).
fn utf8_name(path: &std::path::Path) -> Result<String, ClientError> {
    let name = path
        .file_name()
        .ok_or_else(|| ClientError::Usage(format!("{} has no file name", path.display())))?;
    name.to_str().map(str::to_owned).ok_or_else(|| {
        ClientError::Usage(format!("{}: the name is not valid UTF-8", path.display()))
    })
}

/// Adds every regular file under `dir` (named `prefix`) to `found`, sorted by name.
/// Symbolic links are skipped, not followed: a link out of the tree would send what the
/// user did not pick, and a loop would never end.
fn walk_dir(
    dir: &std::path::Path,
    prefix: &str,
    found: &mut Vec<(PathBuf, String)>,
) -> Result<(), ClientError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| ClientError::local(dir.display(), e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::local(dir.display(), e))?;
    entries.sort();
    for path in entries {
        let name = format!("{prefix}/{}", utf8_name(&path)?);
        let kind = path
            .symlink_metadata()
            .map_err(|e| ClientError::local(path.display(), e))?
            .file_type();
        if kind.is_dir() {
            walk_dir(&path, &name, found)?;
        } else if kind.is_file() {
            found.push((path, name));
        } else {
            eprintln!("skipped {} (not a regular file)", path.display());
        }
    }
    Ok(())
}

fn transfer_password(asked: bool) -> Result<Option<Zeroizing<String>>, ClientError> {
    if let Ok(value) = std::env::var(PASSWORD_ENV)
        && !value.is_empty()
    {
        return Ok(Some(Zeroizing::new(value)));
    }
    if !asked {
        return Ok(None);
    }
    let first = secret(PASSWORD_ENV, "Transfer password: ")?;
    let again = secret(PASSWORD_ENV, "Transfer password (again): ")?;
    if first != again {
        return Err(ClientError::Usage("the passwords differ".into()));
    }
    Ok(Some(first))
}

pub fn run(args: SendArgs) -> CliResult {
    let files = check_files(args.files)?;
    let api = connect(&args.server, true)?;
    let password = transfer_password(args.password)?;
    // The transfer's name is stored as sent, so the default names no file: the file
    // names themselves go up encrypted.
    let name = args.name.unwrap_or_else(|| match files.len() {
        1 => "1 file".to_owned(),
        many => format!("{many} files"),
    });
    if let Some(message) = &args.message
        && message.len() > MAX_MESSAGE_BYTES
    {
        return Err(ClientError::Usage(format!(
            "the message is longer than {MAX_MESSAGE_BYTES} bytes"
        ))
        .into());
    }
    let mut body = json!({"name": name, "e2e": true});
    if !args.to.is_empty() {
        body["recipients"] = args
            .to
            .iter()
            .map(|email| json!({"email": email}))
            .collect();
    }
    if let Some(hours) = args.expires {
        body["expiresInHours"] = json!(hours);
    }
    if let Some(max) = args.max_downloads {
        body["maxDownloads"] = json!(max);
    }
    if let Some(password) = &password {
        body["password"] = json!(password.as_str());
    }
    let key = Arc::new(generate_key());
    runtime()?.block_on(async {
        let created = api
            .send(
                api.request(Method::POST, api.url("v1/transfers")?)
                    .json(&body),
            )
            .await?;
        let created = expect_json(created, StatusCode::CREATED, "creating the transfer").await?;
        // The transfer's fields, flattened, with `uploadToken` and `uploadUrl`.
        let transfer = &created;
        let (Some(id), Some(link), Some(upload_url)) = (
            transfer["id"].as_str(),
            transfer["link"].as_str(),
            created["uploadUrl"].as_str(),
        ) else {
            return Err(ClientError::Api(
                "the server's transfer answer is incomplete".into(),
            ));
        };
        let transfer_id = Uuid::parse_str(id)
            .map_err(|_| ClientError::Api("the server's transfer id is not a UUID".into()))?;
        let upload_url = api.url(upload_url)?;
        // The message is sealed under the transfer key and bound to the transfer's id,
        // so it goes up once the transfer exists.
        if let Some(message) = &args.message {
            let sealed = api
                .send(
                    api.request(
                        Method::PUT,
                        api.url(&format!("v1/transfers/{id}/sealed-message"))?,
                    )
                    .json(&json!({"sealedMessage": seal_message(&key, transfer_id, message)})),
                )
                .await?;
            expect_json(sealed, StatusCode::OK, "setting the sealed message").await?;
        }
        for file in &files {
            let header = Header::generate();
            let file_id = new_file_id();
            let total = Layout::from_plaintext_len(&header, file.source.len)
                .map_err(|e| ClientError::local(file.source.path.display(), e))?
                .ciphertext_len();
            let bar = bytes_bar(total, &file.name);
            upload(
                &api,
                &upload_url,
                file.source.clone(),
                Encryption {
                    key: key.clone(),
                    file_id,
                    header,
                },
                &seal_name(&key, transfer_id, file_id, &file.name),
                &bar,
            )
            .await?;
            bar.finish_and_clear();
            eprintln!("sent {}", file.source.path.display());
        }
        let finalized = api
            .send(api.request(
                Method::POST,
                api.url(&format!("v1/transfers/{id}/finalize"))?,
            ))
            .await?;
        expect_json(finalized, StatusCode::OK, "finalizing the transfer").await?;
        if !args.to.is_empty() {
            eprintln!(
                "The link holds the key, which the server never sees, so it mails nobody: \
                 pass the link on yourself."
            );
        }
        println!("{}", with_key(&absolute(&api, link)?, &key));
        Ok::<_, ClientError>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The server's link, made absolute against the server's URL if it is a path.
fn absolute(api: &crate::client::http::Api, link: &str) -> Result<String, ClientError> {
    Ok(api.url(link)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_whole_hours_within_the_servers_range() {
        assert_eq!(parse_expiry("7d"), Ok(168));
        assert_eq!(parse_expiry("1h"), Ok(1));
        assert_eq!(parse_expiry("30d"), Ok(720));
        for bad in [
            "0h", "0d", "721h", "31d", "1000d", "7", "d", "1.5d", "-1h", "7w", "",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }
}
