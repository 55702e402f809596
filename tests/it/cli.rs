//! The `sealbox` binary as an operator runs it: serve, signals, flags, init, doctor.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::SEALBOX_BIN as BIN;

/// A command with a clean environment: no inherited SEALBOX_* variables, no config file
/// from the developer's home.
fn sealbox(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// A running `sealbox serve`, the URL it printed, and the rest of its standard output.
struct Served {
    child: Child,
    url: String,
    stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Served {
    /// The next banner line containing `needle`.
    fn banner_line(&mut self, needle: &str) -> String {
        self.stdout
            .by_ref()
            .map(Result::unwrap)
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no banner line with {needle:?}"))
    }
}

fn serve(cmd: &mut Command) -> Served {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().expect("a banner").unwrap();
    assert!(
        first.starts_with("sealbox ") && first.contains(" serving "),
        "{first}"
    );
    let url = first.split_whitespace().last().unwrap().to_owned();
    Served { child, url, stdout }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sealbox did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn serve_prints_url_and_fingerprint_and_stops_cleanly_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let mut served = serve(sealbox(home.path()).args([
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let fingerprint_line = served.banner_line("TLS SHA-256");
    let printed = fingerprint_line.split_whitespace().last().unwrap();

    let cert_pem = std::fs::read(data.join("tls/cert.pem")).unwrap();
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(&cert_pem).unwrap();
    assert_eq!(printed, sealbox::http::tls::fingerprint(&der));

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&cert_pem).unwrap())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/health", served.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(client);

    let status = tokio::task::spawn_blocking(move || terminate(&mut served.child))
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        std::fs::metadata(data.join("sealbox.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0)
            == 0,
        "database closed cleanly"
    );
}

#[test]
fn flags_win_over_environment_and_tls_can_be_switched_off() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("from-flag");
    let mut served = serve(
        sealbox(home.path())
            .env("SEALBOX_TLS__MODE", "off")
            .env("SEALBOX_SERVER__LISTEN", "not-an-address")
            .env("SEALBOX_STORAGE__DATA_DIR", home.path().join("from-env"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data.to_str().unwrap(),
            ]),
    );
    assert!(
        served.url.starts_with("http://127.0.0.1:"),
        "{}",
        served.url
    );
    assert!(data.join("sealbox.db").exists());
    assert!(!home.path().join("from-env").exists());
    assert!(terminate(&mut served.child).success());
}

#[test]
fn unknown_configuration_keys_stop_the_server_with_their_name() {
    let home = tempfile::tempdir().unwrap();
    let output = sealbox(home.path())
        .env("SEALBOX_SERVER__LISEN", "127.0.0.1:0")
        .args([
            "serve",
            "--data-dir",
            home.path().join("d").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = output_text(&output);
    assert!(
        text.contains("server.lisen") && text.contains("SEALBOX_SERVER__LISEN"),
        "{text}"
    );

    let config = home.path().join("c.toml");
    std::fs::write(&config, "[tls]\nmodee = \"off\"\n").unwrap();
    let output = sealbox(home.path())
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains("tls.modee"),
        "{}",
        output_text(&output)
    );
}

#[test]
fn init_creates_a_working_installation_that_doctor_approves() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("etc/sealbox.toml");
    let data = home.path().join("var/sealbox");
    let output = sealbox(home.path())
        .args([
            "init",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
    for path in ["master.key", "sealbox.db", "tls/cert.pem", "tls/key.pem"] {
        assert!(data.join(path).exists(), "{path}");
    }
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains(&format!("data_dir = \"{}\"", data.display())),
        "{written}"
    );

    // The written config is complete on its own: doctor and serve need no flags.
    let output = sealbox(home.path())
        .args(["doctor", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(output_text(&output).contains("no problems found"));

    // Running init again keeps everything.
    let key = std::fs::read(data.join("master.key")).unwrap();
    let output = sealbox(home.path())
        .args(["init", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(output_text(&output).contains("(kept)"));
    assert_eq!(key, std::fs::read(data.join("master.key")).unwrap());
}

fn init(home: &Path, data: &Path) {
    let output = sealbox(home)
        .args([
            "init",
            "--config",
            home.join("c.toml").to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
}

fn doctor(home: &Path, data: &Path) -> Output {
    sealbox(home)
        .args(["doctor", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn doctor_explains_a_corrupted_database() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    init(home.path(), &data);
    assert!(doctor(home.path(), &data).status.success());

    // Overwrite the second page (the `instance` table) with garbage.
    use std::io::{Seek, SeekFrom, Write};
    let mut db = std::fs::OpenOptions::new()
        .write(true)
        .open(data.join("sealbox.db"))
        .unwrap();
    db.seek(SeekFrom::Start(4096)).unwrap();
    db.write_all(&[0x5A; 4096]).unwrap();
    drop(db);

    let output = doctor(home.path(), &data);
    assert!(!output.status.success());
    let text = output_text(&output);
    assert!(text.contains("PROBLEM  database"), "{text}");
    assert!(text.contains("restore it from a backup"), "{text}");
}

#[test]
fn doctor_explains_unsafe_permissions_and_missing_files() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    init(home.path(), &data);

    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::remove_file(data.join("tls/key.pem")).unwrap();
    let output = doctor(home.path(), &data);
    assert!(!output.status.success());
    let text = output_text(&output);
    assert!(
        text.contains("master.key is readable by other users"),
        "{text}"
    );
    assert!(text.contains("writable by other users"), "{text}");
    assert!(text.contains("key.pem"), "{text}");
    assert!(text.contains("3 problem(s) found"), "{text}");

    let output = doctor(home.path(), &home.path().join("missing"));
    assert!(!output.status.success());
    assert!(output_text(&output).contains("sealbox init"));
}

#[test]
fn version_names_the_binary_api_and_schema() {
    let home = tempfile::tempdir().unwrap();
    let output = sealbox(home.path()).arg("version").output().unwrap();
    assert!(output.status.success());
    let text = output_text(&output);
    assert!(text.contains(env!("CARGO_PKG_VERSION")));
    assert!(text.contains(sealbox::http::middleware::API_VERSION));
    assert!(text.contains(&format!(
        "schema version {}",
        sealbox::store::LATEST_SCHEMA_VERSION
    )));
}

fn pinned(cert_pem: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn generate_cert() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn sighup_reloads_certificate_files_and_keeps_the_old_one_on_a_bad_reload() {
    let home = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = generate_cert();
    let (cert_path, key_path) = (home.path().join("cert.pem"), home.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();
    let mut served = serve(
        sealbox(home.path())
            .env("SEALBOX_TLS__MODE", "files")
            .env("SEALBOX_TLS__CERT_FILE", &cert_path)
            .env("SEALBOX_TLS__KEY_FILE", &key_path)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(home.path().join("data")),
    );
    let health = format!("{}/health", served.url);
    assert_eq!(pinned(&cert_a).get(&health).send().unwrap().status(), 200);

    let (cert_b, key_b) = generate_cert();
    std::fs::write(&cert_path, &cert_b).unwrap();
    std::fs::write(&key_path, &key_b).unwrap();
    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        )
    };
    hup(served.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while pinned(&cert_b).get(&health).send().is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not loaded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        pinned(&cert_a).get(&health).send().is_err(),
        "the old certificate is gone"
    );

    // A broken file on reload: the server keeps serving the last good certificate.
    std::fs::write(&key_path, "garbage").unwrap();
    hup(served.child.id());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pinned(&cert_b).get(&health).send().unwrap().status(), 200);
    assert!(terminate(&mut served.child).success());
}
