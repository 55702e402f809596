//! `[storage] backend` and `[storage.s3]`: where file ciphertext is stored (docs/storage.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, read_secret};

/// The smallest multipart part S3 accepts (every part but the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest multipart part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Why `sealbox backup` and `restore` refuse an S3 backend (docs/storage.md).
pub const S3_BACKUP_UNSUPPORTED: &str = "storage.backend = \"s3\": sealbox backup and restore \
     cover blobs in <data_dir>/blobs only, not an S3 store yet (docs/storage.md)";

/// Where finalized blobs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    /// Files under `<data_dir>/blobs/`.
    #[default]
    Local,
    /// Objects in an S3-compatible bucket (`[storage.s3]`).
    S3,
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, B2, R2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Base URL of the service (`https://s3.example.com:9000`); empty: AWS S3 in `region`.
    /// An `http://` URL is allowed (plain HTTP, for a store on loopback or a private link).
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Key prefix inside the bucket (`sealbox/blobs`); empty: the bucket's root.
    pub prefix: String,
    pub access_key_id: String,
    /// Or `secret_access_key_file` (also `SEALBOX_STORAGE__S3__SECRET_ACCESS_KEY_FILE`).
    pub secret_access_key: Secret,
    /// A file holding the secret access key (one trailing newline removed); not both.
    pub secret_access_key_file: PathBuf,
    /// `true`: `https://<bucket>.<endpoint host>/<key>`; `false`: path-style,
    /// `https://<endpoint host>/<bucket>/<key>` (what most self-hosted stores expect).
    pub virtual_hosted_style: bool,
    /// Bytes per multipart part, held in memory while it is sent (5 MiB to 5 GiB). Blobs
    /// smaller than one part are sent with one PUT.
    pub part_size_bytes: u64,
    /// Seconds one request to the store may take.
    pub request_timeout_secs: u64,
    /// Retries of a request that failed with a server error or a broken connection.
    pub max_retries: u32,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            secret_access_key_file: PathBuf::new(),
            virtual_hosted_style: false,
            part_size_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 60,
            max_retries: 3,
        }
    }
}

impl S3Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::InvalidValue {
            key: format!("storage.s3.{key}"),
            origin: "configuration".into(),
            message,
        };
        if self.bucket.trim().is_empty() {
            return Err(invalid(
                "bucket",
                "storage.backend = \"s3\" needs a bucket".into(),
            ));
        }
        if self.region.trim().is_empty() {
            return Err(invalid("region", "a region is required".into()));
        }
        let endpoint = self.endpoint.trim();
        if !endpoint.is_empty() {
            match url::Url::parse(endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return Err(invalid(
                        "endpoint",
                        format!("`{endpoint}` is not an http:// or https:// URL"),
                    ));
                }
            }
        }
        if self.access_key_id.is_empty() || self.secret()?.is_empty() {
            return Err(invalid(
                "access_key_id",
                "access_key_id and secret_access_key are both required".into(),
            ));
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size_bytes) {
            return Err(invalid(
                "part_size_bytes",
                format!("must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} (S3's limits)"),
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid("request_timeout_secs", "must be at least 1".into()));
        }
        if self
            .prefix
            .split('/')
            .any(|part| part == "." || part == "..")
        {
            return Err(invalid(
                "prefix",
                "cannot contain `.` or `..` segments".into(),
            ));
        }
        Ok(())
    }

    /// The secret access key, inline or from `secret_access_key_file`.
    pub fn secret(&self) -> Result<Secret, ConfigError> {
        read_secret(
            "storage.s3",
            "secret_access_key",
            &self.secret_access_key,
            &self.secret_access_key_file,
        )
    }

    /// Where the store is, for messages: never the credentials.
    pub fn describe(&self) -> String {
        let endpoint = if self.endpoint.trim().is_empty() {
            format!("AWS S3 ({})", self.region)
        } else {
            self.endpoint.trim().to_owned()
        };
        let prefix = self.prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("bucket {} at {endpoint}", self.bucket)
        } else {
            format!("bucket {}, prefix {prefix}/, at {endpoint}", self.bucket)
        }
    }
}
