//! HTTPS with a generated self-signed certificate (pinned by a real TLS client), its reuse
//! across restarts, and operator-provided PEM files.

use sealbox::app::AppError;
use sealbox::config::TlsMode;
use sealbox::http::tls::{TlsError, fingerprint};

use crate::support::TestApp;

/// A client that trusts exactly one certificate: the pinned one.
fn pinned_client(cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .build()
        .unwrap()
}

fn der_of(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem).unwrap().to_vec()
}

#[tokio::test]
async fn self_signed_certificate_serves_https_to_a_pinning_client() {
    let app = TestApp::spawn_with(|c| c.tls.mode = TlsMode::SelfSigned).await;
    assert!(app.base.starts_with("https://"));
    let cert_pem = std::fs::read(app.data_dir.join("tls/cert.pem")).unwrap();
    assert_eq!(
        app.certificate_fingerprint.as_deref(),
        Some(fingerprint(&der_of(&cert_pem)).as_str())
    );
    assert_eq!(
        sealbox::data_dir::mode_of(&app.data_dir.join("tls/key.pem")).unwrap(),
        0o600
    );

    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/health", app.addr.port());
        let response = pinned_client(&cert_pem).get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }

    // A client that does not pin the certificate refuses the connection.
    let stranger = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(stranger.get(app.url("/health")).send().await.is_err());
}

#[tokio::test]
async fn the_certificate_is_kept_across_restarts_and_replaced_when_names_change() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestApp::spawn_in(dir.path(), |c| c.tls.mode = TlsMode::SelfSigned)
        .await
        .unwrap();
    let fp1 = first.certificate_fingerprint.clone().unwrap();
    first.shutdown().await.unwrap();

    let second = TestApp::spawn_in(dir.path(), |c| c.tls.mode = TlsMode::SelfSigned)
        .await
        .unwrap();
    assert_eq!(
        second.certificate_fingerprint.as_deref(),
        Some(fp1.as_str()),
        "reused"
    );
    second.shutdown().await.unwrap();

    let third = TestApp::spawn_in(dir.path(), |c| {
        c.tls.mode = TlsMode::SelfSigned;
        c.tls.hostnames = vec!["sealbox.lan".into(), "127.0.0.1".into()];
    })
    .await
    .unwrap();
    let fp3 = third.certificate_fingerprint.clone().unwrap();
    assert_ne!(fp3, fp1, "regenerated for the new host names");
    let cert_pem = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
    let summary =
        sealbox::http::tls::summarize(std::path::Path::new("cert.pem"), &der_of(&cert_pem))
            .unwrap();
    assert!(summary.names.contains(&"sealbox.lan".to_string()));
    third.shutdown().await.unwrap();
}

/// Points the config at `c.pem` and `k.pem` in `dir`.
fn use_pem_files(config: &mut sealbox::config::Config, dir: &std::path::Path) {
    config.tls.mode = TlsMode::Files;
    config.tls.cert_file = dir.join("c.pem");
    config.tls.key_file = dir.join("k.pem");
}

fn generate(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn operator_pem_files_are_served() {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = generate(&["127.0.0.1"]);
    std::fs::write(files.path().join("c.pem"), &cert).unwrap();
    std::fs::write(files.path().join("k.pem"), &key).unwrap();
    let app = TestApp::spawn_with(|c| use_pem_files(c, files.path())).await;
    let response = pinned_client(cert.as_bytes())
        .get(app.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !app.data_dir.join("tls/cert.pem").exists(),
        "no self-signed certificate made"
    );
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_is_refused_at_start() {
    let files = tempfile::tempdir().unwrap();
    let (cert, _) = generate(&["127.0.0.1"]);
    let (_, other_key) = generate(&["127.0.0.1"]);
    std::fs::write(files.path().join("c.pem"), &cert).unwrap();
    std::fs::write(files.path().join("k.pem"), &other_key).unwrap();
    let data = tempfile::tempdir().unwrap();
    let err = TestApp::spawn_in(data.path(), |c| use_pem_files(c, files.path()))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, AppError::Tls(TlsError::KeyMismatch)), "{err}");

    std::fs::write(files.path().join("k.pem"), "not a key").unwrap();
    let err = TestApp::spawn_in(data.path(), |c| use_pem_files(c, files.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, AppError::Tls(TlsError::NoKey { .. })),
        "{err}"
    );
}
