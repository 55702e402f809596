//! `sealbox doctor`: inspect an installation without changing it. Prints one line per
//! check and exits non-zero if any check found a problem, saying what to do about it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use super::{CliResult, ConfigArgs};
use crate::config::{Config, TlsMode};
use crate::crypto::master_key::MASTER_KEY_LEN;
use crate::data_dir::{DataDir, mode_of};
use crate::http::tls;
use crate::store::{LATEST_SCHEMA_VERSION, schema_version};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Collects check results and prints them as they come.
#[derive(Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&mut self, check: &str, detail: impl AsRef<str>) {
        println!("ok       {check}: {}", detail.as_ref());
    }
    fn warn(&mut self, check: &str, detail: impl AsRef<str>) {
        println!("warning  {check}: {}", detail.as_ref());
    }
    fn problem(&mut self, check: &str, detail: impl AsRef<str>) {
        self.problems += 1;
        println!("PROBLEM  {check}: {}", detail.as_ref());
    }
}

pub fn run(args: DoctorArgs) -> CliResult {
    let config = args.config.load()?;
    let data = DataDir::from_config(&config)?;
    let mut report = Report::default();

    if check_data_dir(&mut report, &data) {
        check_master_key(&mut report, &config, &data);
        check_database(&mut report, &data.database());
        check_owned_dir(&mut report, "blob storage", &data.blobs());
        check_tls(&mut report, &config, &data);
    }

    if report.problems == 0 {
        println!("no problems found");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s) found", report.problems);
        Ok(ExitCode::FAILURE)
    }
}

/// Returns false when there is no data directory to inspect further.
fn check_data_dir(report: &mut Report, data: &DataDir) -> bool {
    let root = data.root();
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {
            check_owned_dir(report, "data directory", root);
            true
        }
        Ok(_) => {
            report.problem(
                "data directory",
                format!("{} is not a directory", root.display()),
            );
            false
        }
        Err(e) => {
            report.problem(
                "data directory",
                format!(
                    "{}: {e}; run `sealbox init` or point --data-dir at it",
                    root.display()
                ),
            );
            false
        }
    }
}

fn check_owned_dir(report: &mut Report, check: &str, dir: &Path) {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) => return report.problem(check, format!("{}: {e}", dir.display())),
    };
    let euid = rustix::process::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    if meta.uid() != euid {
        report.problem(
            check,
            format!(
                "{} is owned by uid {}, but sealbox runs as uid {euid}; chown it to the service user",
                dir.display(),
                meta.uid()
            ),
        );
    } else if mode & 0o022 != 0 {
        report.problem(
            check,
            format!(
                "{} is writable by other users (mode {mode:o}); chmod 700 it",
                dir.display()
            ),
        );
    } else if mode & 0o007 != 0 {
        report.problem(
            check,
            format!(
                "{} is open to all users (mode {mode:o}); chmod 700 it",
                dir.display()
            ),
        );
    } else {
        report.ok(check, format!("{} (mode {mode:o})", dir.display()));
    }
}

fn check_master_key(report: &mut Report, config: &Config, data: &DataDir) {
    let path = if config.storage.master_key_file.as_os_str().is_empty() {
        data.master_key()
    } else {
        config.storage.master_key_file.clone()
    };
    let check = "master key";
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() != MASTER_KEY_LEN => report.problem(
            check,
            format!(
                "{} holds {} bytes instead of {MASTER_KEY_LEN}; restore it from a backup",
                path.display(),
                bytes.len()
            ),
        ),
        Ok(_) => match mode_of(&path) {
            Ok(mode) if mode & 0o077 != 0 => report.problem(
                check,
                format!(
                    "{} is readable by other users (mode {mode:o}); chmod 600 it",
                    path.display()
                ),
            ),
            Ok(mode) => report.ok(check, format!("{} (mode {mode:o})", path.display())),
            Err(e) => report.problem(check, format!("{}: {e}", path.display())),
        },
        Err(e) => report.problem(
            check,
            format!(
                "{}: {e}; without it sealed data cannot be read, restore it from a backup",
                path.display()
            ),
        ),
    }
}

fn check_database(report: &mut Report, path: &Path) {
    let check = "database";
    if !path.exists() {
        return report.problem(
            check,
            format!("{} does not exist; run `sealbox init`", path.display()),
        );
    }
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(conn) => conn,
        Err(e) => {
            return report.problem(check, format!("{} cannot be opened: {e}", path.display()));
        }
    };
    match schema_version(&conn) {
        Ok(v) if v > LATEST_SCHEMA_VERSION => report.problem(
            check,
            format!("schema version {v} is newer than this sealbox ({LATEST_SCHEMA_VERSION}); run the newer release"),
        ),
        Ok(v) if v < LATEST_SCHEMA_VERSION => report.warn(
            check,
            format!("schema version {v}; the next start migrates it to {LATEST_SCHEMA_VERSION}"),
        ),
        Ok(_) => {}
        Err(e) => return report.problem(check, format!("{} is not a readable database: {e}", path.display())),
    }
    let messages: Result<Vec<String>, _> = conn
        .prepare("PRAGMA integrity_check(20)")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect());
    match messages {
        Ok(lines) if lines == ["ok"] => report.ok(
            check,
            format!("{} passes the integrity check", path.display()),
        ),
        Ok(lines) => report.problem(
            check,
            format!(
                "{} is corrupted ({}); restore it from a backup",
                path.display(),
                lines.join("; ")
            ),
        ),
        Err(e) => report.problem(
            check,
            format!(
                "{} failed the integrity check: {e}; restore it from a backup",
                path.display()
            ),
        ),
    }
}

fn check_tls(report: &mut Report, config: &Config, data: &DataDir) {
    let check = "TLS certificate";
    let (cert, key) = match config.tls.mode {
        TlsMode::Off => return report.ok(check, "TLS is off (tls.mode = \"off\")"),
        TlsMode::SelfSigned => (data.self_signed_cert(), data.self_signed_key()),
        TlsMode::Files => (config.tls.cert_file.clone(), config.tls.key_file.clone()),
    };
    if config.tls.mode == TlsMode::SelfSigned && !cert.exists() {
        return report.warn(
            check,
            "no self-signed certificate yet; the next start generates one",
        );
    }
    let material = match tls::load_files(&cert, &key) {
        Ok(material) => material,
        Err(e) => return report.problem(check, e.to_string()),
    };
    if let Ok(mode) = mode_of(&key)
        && mode & 0o077 != 0
    {
        report.problem(
            "TLS key",
            format!(
                "{} is readable by other users (mode {mode:o}); chmod 600 it",
                key.display()
            ),
        );
    }
    let remaining = material.summary.not_after - OffsetDateTime::now_utc();
    let expiry = material.summary.not_after.date();
    if remaining.is_negative() {
        report.problem(check, format!("{} expired on {expiry}", cert.display()));
    } else if remaining.whole_days() < tls::RENEW_BEFORE_DAYS {
        let action = if config.tls.mode == TlsMode::SelfSigned {
            "the next start renews it"
        } else {
            "replace it soon"
        };
        report.warn(
            check,
            format!("{} expires on {expiry}; {action}", cert.display()),
        );
    } else {
        report.ok(
            check,
            format!(
                "{} valid until {expiry}, SHA-256 {}",
                cert.display(),
                material.summary.fingerprint
            ),
        );
    }
}
