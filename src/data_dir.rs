//! The layout of the data directory (SPEC §9) and its creation with safe permissions.
//!
//! ```text
//! <data>/sealbox.db      SQLite database (WAL mode: also sealbox.db-wal, sealbox.db-shm)
//! <data>/master.key      32 random bytes, mode 0600
//! <data>/blobs/          ciphertext, sharded; blobs/.tmp/ holds writes in progress
//! <data>/uploads/        resumable uploads in progress
//! <data>/tls/            self-signed certificate and key
//! ```

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;

/// Directory mode: the service user only.
pub const DIR_MODE: u32 = 0o700;
/// File mode for secrets (master key, TLS private key).
pub const SECRET_FILE_MODE: u32 = 0o600;

/// Paths inside one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The configured directory, or the platform default when `storage.data_dir` is empty.
    pub fn from_config(config: &Config) -> io::Result<Self> {
        if config.storage.data_dir.as_os_str().is_empty() {
            Self::default_root().map(Self::new)
        } else {
            Ok(Self::new(&config.storage.data_dir))
        }
    }

    /// The platform data directory (for example `~/.local/share/sealbox`). Packages set
    /// `storage.data_dir = "/var/lib/sealbox"` in `/etc/sealbox/config.toml` instead.
    pub fn default_root() -> io::Result<PathBuf> {
        directories::ProjectDirs::from("", "", "sealbox")
            .map(|dirs| dirs.data_dir().to_owned())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no home directory to derive a data directory from; set storage.data_dir",
                )
            })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("sealbox.db")
    }
    pub fn master_key(&self) -> PathBuf {
        self.root.join("master.key")
    }
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }
    pub fn self_signed_cert(&self) -> PathBuf {
        self.tls().join("cert.pem")
    }
    pub fn self_signed_key(&self) -> PathBuf {
        self.tls().join("key.pem")
    }

    /// Creates the directory tree (mode 0700) where missing; existing modes are left alone
    /// (an operator may have chosen 0750 for a backup group), `sealbox doctor` reports them.
    pub fn create(&self) -> io::Result<()> {
        for dir in [self.root.clone(), self.blobs(), self.uploads(), self.tls()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(&dir)?;
        }
        Ok(())
    }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory with
/// `mode`, fsynced, renamed over the target, then the directory fsynced. A crash leaves
/// either no file or the complete file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        uuid::Uuid::now_v7().simple()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or create inside `dir` durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The permission bits of a path (the low 12 bits of its mode).
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o7777)
}
