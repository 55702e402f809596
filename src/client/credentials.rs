//! `credentials.toml`: the server, its pinned certificate and the CLI's API key, in
//! `$XDG_CONFIG_HOME/sealbox/` (`~/.config/sealbox/` by default). Written by `sealbox
//! login` to a new file created with mode 0600 and renamed into place, so it is never
//! readable by others, not even for a moment, and never half-written.
//!
//! `SEALBOX_API_KEY`, `SEALBOX_SERVER` and `--server`/`--pin` win over the file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ClientError;

/// The file's name in the sealbox config directory.
pub const FILE_NAME: &str = "credentials.toml";

/// An API key: never printed by `Debug`, zeroized on drop.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl Serialize for ApiKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl ApiKey {
    pub fn new(key: String) -> Self {
        Self(Zeroizing::new(key))
    }

    /// The key, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// What `sealbox login` saves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The server's base URL.
    pub server: String,
    /// The pinned certificate fingerprint, when the server was reached with `--pin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// The account and organization, so `sealbox logout` can sign in to revoke the key.
    pub email: String,
    pub organization_id: String,
    /// The API key's id, so `sealbox logout` can revoke it.
    pub api_key_id: String,
    pub api_key: ApiKey,
}

/// `$XDG_CONFIG_HOME/sealbox/credentials.toml` (or the platform's config directory).
pub fn path() -> Result<PathBuf, ClientError> {
    let dirs = directories::BaseDirs::new().ok_or_else(|| {
        ClientError::Local("no home directory: cannot locate the credentials file".into())
    })?;
    Ok(dirs.config_dir().join("sealbox").join(FILE_NAME))
}

/// The saved credentials, or `None` when there are none.
pub fn load(path: &Path) -> Result<Option<Credentials>, ClientError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClientError::local(path.display(), e)),
    };
    // The parser's error could quote the key: say only where.
    toml::from_str(&text).map(Some).map_err(|_| {
        ClientError::Local(format!(
            "{} is not a valid credentials file: run `sealbox login` again",
            path.display()
        ))
    })
}

/// Writes `credentials` to `path` atomically, mode 0600 from creation on.
pub fn save(path: &Path, credentials: &Credentials) -> Result<(), ClientError> {
    let dir = path
        .parent()
        .ok_or_else(|| ClientError::Local(format!("{} has no directory", path.display())))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ClientError::local(dir.display(), e))?;
    let text = Zeroizing::new(
        toml::to_string(credentials)
            .map_err(|_| ClientError::Local("cannot encode the credentials".into()))?,
    );
    let temp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        ClientError::local(path.display(), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_with_mode_0600_and_read_back_and_debug_hides_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealbox").join(FILE_NAME);
        let credentials = Credentials {
            server: "https://box.lan:8443/".into(),
            pin: Some("AB:CD".into()),
            email: "ada@example.com".into(),
            organization_id: "0191".into(),
            api_key_id: "0190".into(),
            api_key: ApiKey::new("sbx_live_secretsecret".into()),
        };
        save(&path, &credentials).unwrap();
        save(&path, &credentials).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(loaded.api_key.expose(), "sbx_live_secretsecret");
        assert!(!format!("{loaded:?}").contains("secret"));
        assert!(load(&dir.path().join("none")).unwrap().is_none());
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
