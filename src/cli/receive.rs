//! `sealbox receive LINK`: downloads a transfer's files into a directory. A link's `s=`
//! (its secret) is sent as `X-Transfer-Secret`; end-to-end links also carry the key as
//! `k=`: names and contents are decrypted and verified here, segment by segment.
//! Server-mode links (no `k=`) get the files as the server decrypts them.
//! A file sent from a folder has a relative path (`photos/2026/a.jpg`): the tree is
//! recreated under the output directory. A name that could land anywhere else (`..`, an
//! absolute path, a drive letter, a backslash, or a directory that is a symbolic link) is
//! refused before anything is written. The sender's message (end-to-end: opened with the
//! link's key) is printed on stderr; the saved paths on stdout, one per line.
//! One download token (from unlock) serves every file, renewed while the download runs
//! ([`super::download_token`]), so a download that outlives it is still one download.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::download_token::{DownloadToken, TRANSFER_SECRET_HEADER};
use super::login::{connect_public, secret};
use super::send::PASSWORD_ENV;
use super::{CliResult, runtime};
use crate::client::ClientError;
use crate::client::download::{Contents, download, part_path};
use crate::client::http::{Api, error_message};
use crate::client::link::{TransferLink, parse};
use crate::client::progress::bytes_bar;
use crate::crypto::transfer_e2e::{check_relative_path, open_message, open_name};

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// The transfer's link, including the part after # for an end-to-end transfer
    #[arg(value_name = "LINK")]
    link: String,
    /// The directory to save the files in (default: the current directory)
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Replace files that already exist
    #[arg(long)]
    force: bool,
    /// SHA-256 fingerprint of the server's certificate, for a self-signed server
    #[arg(long, value_name = "SHA256")]
    pin: Option<String>,
}

/// A file name from a transfer made safe to create in the output directory: no path
/// separators, no `..`, no control characters, not empty, not hidden.
pub fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "file".into()
    } else {
        trimmed.chars().take(200).collect()
    }
}

/// A transfer's file name (a relative path from a folder send, or a plain name) as the
/// path to create under the output directory, with `/` separators: refused unless it is
/// a safe relative path (`transfer_e2e::check_relative_path`), then each segment made
/// safe as [`sanitize`] does (control characters, leading dots).
pub fn safe_relative_path(name: &str) -> Result<String, ClientError> {
    let segments = check_relative_path(name).map_err(|e| {
        ClientError::Api(format!(
            "refused: {e}; a transfer may only create files inside the output directory, \
             so nothing was written"
        ))
    })?;
    Ok(segments
        .into_iter()
        .map(sanitize)
        .collect::<Vec<_>>()
        .join("/"))
}

/// Creates the directories of `relative` under `dir` and returns the file's path. A
/// directory on the way that exists as anything but a real directory (a symbolic link
/// could point out of `dir`) is refused, and the result must resolve inside `dir`.
fn make_parents(dir: &Path, relative: &str) -> Result<PathBuf, ClientError> {
    let segments: Vec<&str> = relative.split('/').collect();
    let (file, parents) = segments.split_last().expect("a checked path has a segment");
    let mut at = dir.to_path_buf();
    for segment in parents {
        at.push(segment);
        match at.symlink_metadata() {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(ClientError::Usage(format!(
                    "{} exists and is not a directory (a symbolic link is not followed)",
                    at.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|e| ClientError::local(at.display(), e))?;
            }
            Err(e) => return Err(ClientError::local(at.display(), e)),
        }
    }
    let root = dir
        .canonicalize()
        .map_err(|e| ClientError::local(dir.display(), e))?;
    let parent = at
        .canonicalize()
        .map_err(|e| ClientError::local(at.display(), e))?;
    if !parent.starts_with(&root) {
        return Err(ClientError::Usage(format!(
            "{relative} would be written outside {}: refused",
            dir.display()
        )));
    }
    Ok(at.join(file))
}

/// `name`, or `name (2)`, `name (3)`... (before the extension of its last segment) if
/// taken in `used`.
pub fn unique(name: &str, used: &mut HashSet<String>) -> String {
    let base = name.rfind('/').map_or(0, |slash| slash + 1);
    let (stem, ext) = match name[base..].rfind('.') {
        Some(dot) if dot > 0 => (&name[..base + dot], &name[base + dot..]),
        _ => (name, ""),
    };
    let mut candidate = name.to_owned();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{stem} ({n}){ext}");
        n += 1;
    }
    candidate
}

/// The message for a public-transfer answer that is not a success.
async fn public_error(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let retry = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ClientError::Api(match status {
        StatusCode::NOT_FOUND => {
            "no such transfer: check the link, all of it, with its #s= part (a transfer is \
             only visible once its sender finished uploading)"
                .into()
        }
        StatusCode::GONE => {
            "the transfer is gone: it expired, was revoked, or has no downloads left".into()
        }
        StatusCode::UNAUTHORIZED => "wrong password for this transfer".into(),
        StatusCode::TOO_MANY_REQUESTS => format!(
            "too many wrong passwords: try again in {} seconds",
            retry.as_deref().unwrap_or("a few")
        ),
        _ => error_message(response).await,
    })
}

/// A request to a public transfer route, with the link's secret when it has one.
fn public_request(
    api: &Api,
    method: Method,
    url: url::Url,
    link: &TransferLink,
) -> reqwest::RequestBuilder {
    let request = api.request(method, url);
    match &link.secret {
        Some(secret) => request.header(TRANSFER_SECRET_HEADER, secret.as_str()),
        None => request,
    }
}

async fn get_public(
    api: &Api,
    link: &TransferLink,
    token: Option<&str>,
) -> Result<Value, ClientError> {
    let mut url = api.url(&format!("v1/public/transfers/{}", link.transfer_id))?;
    if let Some(token) = token {
        url.query_pairs_mut().append_pair("token", token);
    }
    let response = api
        .send(public_request(api, Method::GET, url, link))
        .await?;
    if response.status() != StatusCode::OK {
        return Err(public_error(response).await);
    }
    response
        .json()
        .await
        .map_err(|e| ClientError::Api(format!("the server's answer is not JSON: {e}")))
}

/// One file to fetch.
struct Incoming {
    id: String,
    size: u64,
    destination: PathBuf,
    /// The client file id of an end-to-end file.
    file_id: Option<Uuid>,
}

pub fn run(args: ReceiveArgs) -> CliResult {
    let link = parse(&args.link)?;
    let api = connect_public(link.server.clone(), args.pin.as_deref())?;
    let dir = &args.output;
    if !dir.is_dir() {
        return Err(ClientError::Usage(format!("{} is not a directory", dir.display())).into());
    }
    let saved = runtime()?.block_on(async {
        let public = get_public(&api, &link, None).await?;
        let e2e = public["e2e"].as_bool().unwrap_or(false);
        if e2e && link.key.is_none() {
            return Err(ClientError::Usage(
                "this is an end-to-end transfer and the link has no key: use the whole link, \
                 including its k= part"
                    .into(),
            ));
        }
        let password = if public["passwordRequired"].as_bool().unwrap_or(false) {
            secret(PASSWORD_ENV, "Transfer password: ")?
        } else {
            Default::default()
        };
        // One token for the whole download: the server counts a download per token.
        let unlocked = api
            .send(
                public_request(
                    &api,
                    Method::POST,
                    api.url(&format!("v1/public/transfers/{}/unlock", link.transfer_id))?,
                    &link,
                )
                .json(&json!({"password": password.as_str()})),
            )
            .await?;
        if unlocked.status() != StatusCode::OK {
            return Err(public_error(unlocked).await);
        }
        let unlocked: Value = unlocked
            .json()
            .await
            .map_err(|e| ClientError::Api(format!("the unlock answer is not JSON: {e}")))?;
        let token = Zeroizing::new(
            unlocked["downloadToken"]
                .as_str()
                .ok_or_else(|| ClientError::Api("the unlock answer has no downloadToken".into()))?
                .to_owned(),
        );
        let tokens = DownloadToken::start(
            api.clone(),
            api.url(&format!("v1/public/transfers/{}/renew", link.transfer_id))?,
            link.secret.clone(),
            token,
            unlocked["expiresIn"].as_u64().unwrap_or(1),
        );
        // The server opens server-sealed names, and shows a password-protected
        // transfer's message, once it holds the token.
        let public = if e2e && !public["passwordRequired"].as_bool().unwrap_or(false) {
            public
        } else {
            get_public(&api, &link, Some(&tokens.current().await?)).await?
        };
        let message = match (&link.key, public["sealedMessage"].as_str()) {
            (Some(key), Some(sealed)) if e2e => {
                Some(open_message(key, link.transfer_id, sealed).map_err(|e| {
                    ClientError::Api(format!(
                        "{e}: the link is incomplete or wrong, so nothing was downloaded"
                    ))
                })?)
            }
            _ => public["message"].as_str().map(str::to_owned),
        };
        let files = plan(&public, &link, dir, args.force)?;
        if let Some(message) = message {
            eprintln!("Message from the sender:\n{message}\n");
        }
        let mut saved = Vec::new();
        for file in files {
            let base = api.url(&format!(
                "v1/public/transfers/{}/files/{}",
                link.transfer_id, file.id
            ))?;
            // Under the token of the moment; once more renewed if that one is refused.
            let url = async |refused: bool| -> Result<url::Url, ClientError> {
                let token = if refused {
                    tokens.renewed().await?
                } else {
                    tokens.current().await?
                };
                let mut url = base.clone();
                url.query_pairs_mut().append_pair("token", &token);
                Ok(url)
            };
            let label = file
                .destination
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bar = bytes_bar(file.size, &label);
            let contents = match (&link.key, file.file_id) {
                (Some(key), Some(file_id)) => Contents::Sbx1 { key, file_id },
                _ => Contents::Plain,
            };
            download(
                &api,
                url,
                file.size,
                contents,
                &file.destination,
                args.force,
                &bar,
            )
            .await
            .map_err(|e| match e {
                ClientError::Local(m) => ClientError::Local(m),
                other => ClientError::Api(format!("{}: {other}", label)),
            })?;
            bar.finish_and_clear();
            println!("{}", file.destination.display());
            saved.push(file.destination);
        }
        Ok(saved)
    })?;
    eprintln!("received {} file(s)", saved.len());
    Ok(ExitCode::SUCCESS)
}

/// Names, sizes and destinations of every file, checked before the first byte is fetched.
fn plan(
    public: &Value,
    link: &crate::client::link::TransferLink,
    dir: &Path,
    force: bool,
) -> Result<Vec<Incoming>, ClientError> {
    let files = public["files"]
        .as_array()
        .ok_or_else(|| ClientError::Api("the transfer lists no files".into()))?;
    let mut used = HashSet::new();
    let mut named = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let id = file["id"]
            .as_str()
            .ok_or_else(|| ClientError::Api("a file has no id".into()))?
            .to_owned();
        let size = file["size"]
            .as_u64()
            .ok_or_else(|| ClientError::Api("a file has no size".into()))?;
        let listed = file["name"].as_str();
        let (name, file_id) = match &link.key {
            Some(key) if public["e2e"].as_bool() == Some(true) => {
                let (file_id, name) = open_name(key, link.transfer_id, listed.unwrap_or(""))
                    .map_err(|e| ClientError::Api(format!("file {}: {e}", index + 1)))?;
                (name, Some(file_id))
            }
            _ => (
                listed
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("file-{}", index + 1)),
                None,
            ),
        };
        let relative = safe_relative_path(&name)
            .map_err(|e| ClientError::Api(format!("file {}: {e}", index + 1)))?;
        named.push((id, size, unique(&relative, &mut used), file_id));
    }
    // Every name was checked before the first directory is made.
    let mut planned = Vec::new();
    for (id, size, relative, file_id) in named {
        let destination = make_parents(dir, &relative)?;
        if !force && destination.exists() {
            return Err(ClientError::Usage(format!(
                "{} exists: remove it, choose another directory with -o, or pass --force",
                destination.display()
            )));
        }
        if part_path(&destination).exists() {
            std::fs::remove_file(part_path(&destination))
                .map_err(|e| ClientError::local(destination.display(), e))?;
        }
        planned.push(Incoming {
            id,
            size,
            destination,
            file_id,
        });
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize("report.pdf"), "report.pdf");
        assert_eq!(sanitize("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize(".."), "file");
        assert_eq!(sanitize(""), "file");
        assert_eq!(sanitize(".bashrc"), "bashrc");
        assert_eq!(sanitize("a\\b\nc\u{7}"), "a_b_c_");
        assert_eq!(sanitize("C:\\x"), "C:_x");
    }

    #[test]
    fn relative_paths_are_kept_and_unsafe_ones_refused() {
        assert_eq!(safe_relative_path("a/b/c.txt").unwrap(), "a/b/c.txt");
        assert_eq!(safe_relative_path("a/.hidden").unwrap(), "a/hidden");
        assert_eq!(safe_relative_path("dir/x\ty").unwrap(), "dir/x_y");
        for bad in [
            "../evil",
            "/etc/passwd",
            "a/../../b",
            "C:/x",
            "a\\b",
            "a//b",
            "",
        ] {
            assert!(safe_relative_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parents_are_made_inside_the_directory_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = make_parents(dir.path(), "a/b/c.txt").unwrap();
        assert_eq!(path, dir.path().join("a/b/c.txt"));
        assert!(dir.path().join("a/b").is_dir());
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        assert!(make_parents(dir.path(), "link/x.txt").is_err());
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        assert!(make_parents(dir.path(), "file/x.txt").is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn duplicates_get_a_number_before_the_extension() {
        let mut used = HashSet::new();
        assert_eq!(unique("a.txt", &mut used), "a.txt");
        assert_eq!(unique("a.txt", &mut used), "a (2).txt");
        assert_eq!(unique("a.txt", &mut used), "a (3).txt");
        assert_eq!(unique("README", &mut used), "README");
        assert_eq!(unique("README", &mut used), "README (2)");
        assert_eq!(unique("v1.2/README", &mut used), "v1.2/README");
        assert_eq!(unique("v1.2/README", &mut used), "v1.2/README (2)");
        assert_eq!(unique("a/b.txt", &mut used), "a/b.txt");
        assert_eq!(unique("a/b.txt", &mut used), "a/b (2).txt");
    }
}
