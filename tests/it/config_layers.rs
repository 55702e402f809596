//! Configuration layering: defaults <- file <- SEALBOX_* env <- *_FILE <- flags, and loud
//! failures for unknown keys and bad values.

use std::path::PathBuf;

use sealbox::config::{Config, ConfigError, LogFormat, Sources, TlsMode, default_keys};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn example_config_documents_every_key_with_its_default() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    // Sections and their subsections (`[auth.google]`), every key dotted.
    fn walk(
        table: &toml::Table,
        prefix: &str,
        out: &mut std::collections::BTreeMap<String, toml::Value>,
    ) {
        for (key, value) in table {
            let dotted = format!("{prefix}.{key}");
            match value {
                toml::Value::Table(inner) => walk(inner, &dotted, out),
                other => {
                    out.insert(dotted, other.clone());
                }
            }
        }
    }
    let mut documented = std::collections::BTreeMap::new();
    for (section, keys) in &parsed {
        match keys.as_table() {
            Some(keys) => walk(keys, section, &mut documented),
            // A top-level list of tables (`plans = []`, written as [[plans]]).
            None => {
                documented.insert(section.clone(), keys.clone());
            }
        }
    }
    assert_eq!(
        documented,
        default_keys(),
        "config.example.toml and Config::default() disagree"
    );
}

#[test]
fn no_sources_gives_the_defaults() {
    let config = Config::load(&Sources::default()).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.server.listen, "0.0.0.0:8443");
    assert_eq!(config.tls.mode, TlsMode::SelfSigned);
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    let (_dir, path) = write_config(
        r#"
        [server]
        listen = "127.0.0.1:9000"
        public_url = "https://box.example"
        [log]
        format = "json"
        "#,
    );
    let config = Config::load(&Sources {
        file: Some(path),
        env: env(&[
            ("SEALBOX_SERVER__LISTEN", "127.0.0.1:9100"),
            ("SEALBOX_TLS__MODE", "off"),
            ("SEALBOX_TLS__HOSTNAMES", r#"["a.lan", "10.0.0.2"]"#),
            ("SEALBOX_DATABASE__MAX_CONNECTIONS", "3"),
            ("UNRELATED", "ignored"),
        ]),
    })
    .unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:9100", "env wins over file");
    assert_eq!(
        config.server.public_url, "https://box.example",
        "file wins over defaults"
    );
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.tls.mode, TlsMode::Off);
    assert_eq!(config.tls.hostnames, vec!["a.lan", "10.0.0.2"]);
    assert_eq!(config.database.max_connections, 3);
    assert_eq!(
        config.database.busy_timeout_ms, 5000,
        "untouched keys keep defaults"
    );
}

#[test]
fn file_suffix_reads_a_value_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("public_url");
    std::fs::write(&secret, "https://from-file.example\n").unwrap();
    let config = Config::load(&Sources {
        file: None,
        env: env(&[
            ("SEALBOX_SERVER__PUBLIC_URL", "https://from-env.example"),
            ("SEALBOX_SERVER__PUBLIC_URL_FILE", secret.to_str().unwrap()),
        ]),
    })
    .unwrap();
    assert_eq!(
        config.server.public_url, "https://from-file.example",
        "one trailing newline trimmed"
    );
}

#[test]
fn keys_named_file_are_set_directly_not_read() {
    let config = Config::load(&Sources {
        file: None,
        env: env(&[
            ("SEALBOX_TLS__MODE", "files"),
            ("SEALBOX_TLS__CERT_FILE", "/etc/ssl/sealbox.crt"),
            ("SEALBOX_TLS__KEY_FILE", "/etc/ssl/sealbox.key"),
            ("SEALBOX_MASTER_KEY_FILE", "/run/credentials/master.key"),
        ]),
    })
    .unwrap();
    assert_eq!(config.tls.cert_file, PathBuf::from("/etc/ssl/sealbox.crt"));
    assert_eq!(config.tls.key_file, PathBuf::from("/etc/ssl/sealbox.key"));
    assert_eq!(
        config.storage.master_key_file,
        PathBuf::from("/run/credentials/master.key")
    );
}

#[test]
fn unknown_keys_in_the_file_are_errors_naming_key_and_file() {
    let (_dir, path) = write_config("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
    let err = Config::load(&Sources {
        file: Some(path.clone()),
        env: vec![],
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }));
    let message = err.to_string();
    assert!(message.contains("server.lisen"), "{message}");
    assert!(message.contains(path.to_str().unwrap()), "{message}");

    let (_dir, path) = write_config("[nosuchsection]\nx = 1\n");
    let message = Config::load(&Sources {
        file: Some(path),
        env: vec![],
    })
    .unwrap_err()
    .to_string();
    assert!(message.contains("nosuchsection"), "{message}");
}

#[test]
fn unknown_keys_in_the_environment_are_errors_naming_the_variable() {
    for name in [
        "SEALBOX_SERVER__LISEN",
        "SEALBOX_NOPE",
        "SEALBOX_SERVER__LISTEN_FILE_X",
    ] {
        let err = Config::load(&Sources {
            file: None,
            env: env(&[(name, "x")]),
        })
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnknownKey { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn wrongly_typed_values_are_errors() {
    let cases = [
        ("SEALBOX_DATABASE__MAX_CONNECTIONS", "many"),
        ("SEALBOX_TLS__HOSTNAMES", "not-an-array"),
        ("SEALBOX_TLS__MODE", "sometimes"),
        ("SEALBOX_SERVER__LISTEN", "localhost"),
        ("SEALBOX_DATABASE__MAX_CONNECTIONS", "0"),
    ];
    for (name, value) in cases {
        let result = Config::load(&Sources {
            file: None,
            env: env(&[(name, value)]),
        })
        .and_then(|config| config.validate());
        assert!(result.is_err(), "{name}={value} was accepted");
    }
    let (_dir, path) = write_config("[server]\nshutdown_timeout_secs = \"soon\"\n");
    assert!(
        Config::load(&Sources {
            file: Some(path),
            env: vec![]
        })
        .is_err()
    );
}

#[test]
fn a_missing_or_malformed_file_is_an_error() {
    let err = Config::load(&Sources {
        file: Some("/nonexistent/sealbox.toml".into()),
        env: vec![],
    })
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/sealbox.toml"));
    let (_dir, path) = write_config("[server\nlisten=");
    assert!(matches!(
        Config::load(&Sources {
            file: Some(path),
            env: vec![]
        }),
        Err(ConfigError::Parse { .. })
    ));
}

#[test]
fn files_mode_needs_both_paths() {
    let config = Config::load(&Sources {
        file: None,
        env: env(&[("SEALBOX_TLS__MODE", "files")]),
    })
    .unwrap();
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("tls.cert_file"), "{err}");
}
