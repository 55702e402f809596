//! `sealbox doctor`: inspect an installation without changing it. Prints one line per
//! check and exits non-zero if any check found a problem, saying what to do about it.
//! `--scrub` also reads every stored blob back (see `service::scrub`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use super::{CliResult, ConfigArgs};
use crate::blob::S3BlobStore;
use crate::config::storage::BlobBackend;
use crate::config::{Config, TlsMode};
use crate::crypto::master_key::MASTER_KEY_LEN;
use crate::data_dir::{DataDir, mode_of};
use crate::http::tls;
use crate::service::scrub::s3::scrub_s3;
use crate::service::scrub::{Finding, scrub};
use crate::store::{LATEST_SCHEMA_VERSION, schema_version};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also read every stored blob back and check its size and BLAKE3, and look for blobs
    /// and upload parts that belong to nothing (reads every stored byte)
    #[arg(long)]
    scrub: bool,
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
        let database = check_database(&mut report, &data.database());
        let s3 = match config.storage.backend {
            BlobBackend::Local => {
                check_owned_dir(&mut report, "blob storage", &data.blobs());
                None
            }
            BlobBackend::S3 => check_s3(&mut report, &config, &data),
        };
        check_tls(&mut report, &config, &data);
        if args.scrub {
            match (database, config.storage.backend, s3) {
                (Some(conn), BlobBackend::S3, Some((store, runtime))) => {
                    let scrubbed = scrub_s3(&conn, &data, &store, runtime.handle());
                    report_scrub(&mut report, scrubbed);
                }
                (Some(_), BlobBackend::S3, None) => report.warn(
                    "scrub",
                    "skipped: the object store must pass its check first",
                ),
                (Some(conn), BlobBackend::Local, _) => check_scrub(&mut report, &conn, &data),
                (None, _, _) => report.warn(
                    "scrub",
                    "skipped: the database must pass its checks, at this release's schema",
                ),
            }
        }
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

/// Returns the (read-only) connection when the database is sound and at this binary's
/// schema, so later checks can read it.
fn check_database(report: &mut Report, path: &Path) -> Option<Connection> {
    let check = "database";
    if !path.exists() {
        report.problem(
            check,
            format!("{} does not exist; run `sealbox init`", path.display()),
        );
        return None;
    }
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(conn) => conn,
        Err(e) => {
            report.problem(check, format!("{} cannot be opened: {e}", path.display()));
            return None;
        }
    };
    let current = match schema_version(&conn) {
        Ok(v) if v > LATEST_SCHEMA_VERSION => {
            report.problem(
                check,
                format!("schema version {v} is newer than this sealbox ({LATEST_SCHEMA_VERSION}); run the newer release"),
            );
            false
        }
        Ok(v) if v < LATEST_SCHEMA_VERSION => {
            report.warn(
                check,
                format!(
                    "schema version {v}; the next start migrates it to {LATEST_SCHEMA_VERSION}"
                ),
            );
            false
        }
        Ok(_) => true,
        Err(e) => {
            report.problem(
                check,
                format!("{} is not a readable database: {e}", path.display()),
            );
            return None;
        }
    };
    let messages: Result<Vec<String>, _> = conn
        .prepare("PRAGMA integrity_check(20)")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect());
    match messages {
        Ok(lines) if lines == ["ok"] => {
            report.ok(
                check,
                format!("{} passes the integrity check", path.display()),
            );
            return current.then_some(conn);
        }
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
    None
}

/// Reads every blob back and reports each one that changed, is missing or belongs to
/// nothing.
fn check_scrub(report: &mut Report, conn: &Connection, data: &DataDir) {
    report_scrub(report, scrub(conn, data));
}

/// Checks the S3-compatible store (`storage.backend = "s3"`): reachable with the
/// configured credentials, writable (a probe object written, read back and deleted), and
/// the clock skew between this machine and the store. Returns the store and a runtime for
/// the scrub when the store passed.
fn check_s3(
    report: &mut Report,
    config: &Config,
    data: &DataDir,
) -> Option<(S3BlobStore, tokio::runtime::Runtime)> {
    let check = "blob storage";
    // A worker thread, not a current-thread runtime: the scrub drives the store through
    // `Handle::block_on`, which on a current-thread runtime polls no I/O and would wait
    // forever for the first response.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report.problem(check, format!("cannot start a runtime: {e}"));
            return None;
        }
    };
    let store = match S3BlobStore::connect(&config.storage.s3, data.root()) {
        Ok(store) => store,
        Err(e) => {
            report.problem(check, e.to_string());
            return None;
        }
    };
    let probed = match runtime.block_on(store.probe()) {
        Ok(probed) => probed,
        Err(e) => {
            report.problem(
                check,
                format!(
                    "S3 {}: {e}; check storage.s3.endpoint, bucket, region and credentials, \
                     and that they may write, read and delete objects under the prefix",
                    store.describe()
                ),
            );
            return None;
        }
    };
    report.ok(
        check,
        format!(
            "S3 {}: reachable, a probe object was written, read back and deleted",
            store.describe()
        ),
    );
    match probed.clock_skew {
        Some(skew) if skew.abs() > SKEW_LIMIT => report.problem(
            "store clock",
            format!(
                "this machine's clock is {:.0} s off the store's; S3 refuses signed requests \
                 more than 15 minutes off: fix the time (NTP)",
                skew.as_seconds_f64().abs()
            ),
        ),
        Some(skew) if skew.abs() > SKEW_WARNING => report.warn(
            "store clock",
            format!(
                "this machine's clock is {:.0} s off the store's (S3 refuses signed requests \
                 past 15 minutes): check NTP",
                skew.as_seconds_f64().abs()
            ),
        ),
        Some(skew) => report.ok(
            "store clock",
            format!(
                "within {:.0} s of the store's Date header",
                skew.as_seconds_f64().abs().ceil()
            ),
        ),
        None => report.warn("store clock", "the store's answer had no Date header"),
    }
    Some((store, runtime))
}

/// S3 refuses signed requests this far off its clock.
const SKEW_LIMIT: time::Duration = time::Duration::minutes(15);
/// Past this, `doctor` warns before the limit is near.
const SKEW_WARNING: time::Duration = time::Duration::minutes(1);

fn report_scrub(
    report: &mut Report,
    scrubbed: Result<crate::service::scrub::ScrubReport, crate::service::scrub::ScrubError>,
) {
    let check = "scrub";
    let scrubbed = match scrubbed {
        Ok(scrubbed) => scrubbed,
        Err(e) => return report.problem(check, format!("could not finish: {e}")),
    };
    for finding in &scrubbed.findings {
        report.problem(check, describe(finding));
    }
    if scrubbed.findings.is_empty() {
        report.ok(
            check,
            format!(
                "{} blob(s), {} bytes read: every size and BLAKE3 matches, nothing orphaned",
                scrubbed.blobs_checked, scrubbed.bytes_read
            ),
        );
    }
}

fn describe(finding: &Finding) -> String {
    const RESTORE: &str = "restore it from a backup (downloads of this file fail meanwhile)";
    match finding {
        Finding::Missing {
            file_id,
            blob_key,
            path,
        } => format!(
            "file {file_id}: blob {blob_key} is missing ({}); {RESTORE}",
            path.display()
        ),
        Finding::SizeMismatch {
            file_id,
            blob_key,
            path,
            expected,
            actual,
        } => format!(
            "file {file_id}: blob {blob_key} has {actual} bytes, expected {expected} ({}); {RESTORE}",
            path.display()
        ),
        Finding::HashMismatch {
            file_id,
            blob_key,
            path,
            expected,
            actual,
        } => format!(
            "file {file_id}: blob {blob_key} has BLAKE3 {actual}, expected {expected} ({}); \
             its bytes changed on disk, {RESTORE}",
            path.display()
        ),
        Finding::Unreadable {
            file_id,
            blob_key,
            error,
        } => format!("file {file_id}: blob {blob_key} cannot be read: {error}"),
        Finding::OrphanBlob { path, size } => format!(
            "orphan blob {} ({size} bytes): no file refers to it; move it away once you are \
             sure it is not needed",
            path.display()
        ),
        Finding::OrphanUpload { path, size } => format!(
            "orphan upload part {} ({size} bytes): no upload refers to it; remove it",
            path.display()
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
