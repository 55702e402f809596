//! Typed configuration, assembled in layers (SPEC §9):
//! embedded defaults <- TOML file <- `SEALBOX_SECTION__KEY` environment <- `*_FILE` files
//! <- command-line flags (applied by the caller).
//!
//! Every key has a concrete default (no `Option`s), so the serialized defaults are the
//! complete list of keys: anything else in a file or the environment is an error that names
//! the key and where it came from. `config.example.toml` is checked against
//! `Config::default()` by a test, so the documented defaults cannot drift from the code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

pub mod billing;
pub mod plans;
pub mod sso;
pub use plans::{BillingConfig, Feature, PlanConfig, PlanLimitsConfig};
pub mod storage;
pub use sso::{GithubConfig, GoogleConfig, OidcProviderConfig, ProviderKind, SsoProvider};

/// Prefix of every environment variable that configures sealbox.
pub const ENV_PREFIX: &str = "SEALBOX_";
/// An IPv4 or IPv6 address or CIDR (`10.0.0.0/8`, `::1`); a bare address is a network of
/// one. Host bits are cleared.
pub fn parse_network(entry: &str) -> Option<ipnet::IpNet> {
    let entry = entry.trim();
    entry
        .parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| {
            entry
                .parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
        })
        .map(|net| net.trunc())
}

/// The longest an invite may stay valid: 30 days.
pub const MAX_INVITE_TTL_HOURS: u32 = 30 * 24;
/// The longest a webhook delivery attempt may be allowed to take: 5 minutes.
pub const MAX_WEBHOOK_TIMEOUT_SECS: u64 = 300;
/// Bounds of `limits.download_token_ttl_secs`: a few seconds (tests exercise renewal)
/// up to a day.
pub const MIN_DOWNLOAD_TOKEN_TTL_SECS: u32 = 2;
pub const MAX_DOWNLOAD_TOKEN_TTL_SECS: u32 = 24 * 60 * 60;

/// The documented short spelling of `SEALBOX_STORAGE__MASTER_KEY_FILE` (SPEC §5).
pub const MASTER_KEY_FILE_ENV: &str = "SEALBOX_MASTER_KEY_FILE";
/// Config file of a system install (the `.deb` installs it).
pub const SYSTEM_CONFIG_PATH: &str = "/etc/sealbox/config.toml";

/// The config file read when `--config` is not given (if it exists): the system file for
/// root, the platform config directory (`~/.config/sealbox/config.toml`) for anyone else.
pub fn default_config_path() -> Option<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Some(PathBuf::from(SYSTEM_CONFIG_PATH));
    }
    directories::ProjectDirs::from("", "", "sealbox").map(|d| d.config_dir().join("config.toml"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub rate_limits: RateLimitsConfig,
    pub audit: AuditConfig,
    pub vault: VaultConfig,
    pub smtp: SmtpConfig,
    pub limits: LimitsConfig,
    pub webhooks: WebhooksConfig,
    pub conversions: ConversionsConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    /// `[[plans]]`: none is the implicit unlimited plan (config/plans.rs).
    pub plans: Vec<PlanConfig>,
    pub billing: BillingConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// Public base URL used in printed and mailed links; empty derives it from `listen`.
    pub public_url: String,
    /// Seconds that shutdown waits for in-flight requests before closing connections.
    pub shutdown_timeout_secs: u64,
    /// Reverse proxies (addresses or CIDRs) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client may take to send a whole request head (request line and headers),
    /// counted from when the connection waits for one; also how long an idle keep-alive
    /// connection stays open.
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may send nothing while the server waits for it. Idle time,
    /// not total: a slow upload that keeps sending bytes is never cut off.
    pub body_idle_timeout_secs: u64,
    /// Connections served at once; further ones wait to be accepted until one closes.
    pub max_connections: u32,
    /// Argon2id runs (passwords, user secrets, transfer passwords; 19 MiB each) at once,
    /// over the whole process. 0: the number of CPU cores.
    pub argon2_concurrency: u32,
    /// Milliseconds a request waits for an Argon2id slot before it is refused with 503
    /// and `Retry-After`.
    pub argon2_queue_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8443".into(),
            public_url: String::new(),
            shutdown_timeout_secs: 30,
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: 30,
            body_idle_timeout_secs: 60,
            max_connections: 512,
            argon2_concurrency: 0,
            argon2_queue_timeout_ms: 10_000,
        }
    }
}

impl ServerConfig {
    /// `argon2_concurrency`, with 0 resolved to the number of CPU cores.
    pub fn argon2_slots(&self) -> usize {
        match self.argon2_concurrency {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n as usize,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory; empty means the platform default (see `DataDir::default_root`).
    pub data_dir: PathBuf,
    /// Master key file; empty means `<data_dir>/master.key`, created at first start.
    pub master_key_file: PathBuf,
    /// Where finalized blobs go (docs/storage.md); `s3` reads `[storage.s3]`.
    pub backend: storage::BlobBackend,
    pub s3: storage::S3Config,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Database threads, each with its own SQLite connection: how many queries run at once.
    pub max_connections: u32,
    /// Milliseconds a statement waits for a lock before failing with "busy".
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A certificate generated at first start for `tls.hostnames`, kept in `<data>/tls/`.
    #[default]
    SelfSigned,
    /// PEM files given by `tls.cert_file` and `tls.key_file`, reloaded on SIGHUP.
    Files,
    /// Plain HTTP, for use behind a TLS-terminating reverse proxy.
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Names and addresses the self-signed certificate is valid for.
    pub hostnames: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::SelfSigned,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            hostnames: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

/// Who may create an account with `POST /v1/auth/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Nobody: accounts come from setup, invites accepted by existing users, or admins.
    Closed,
    /// Only with an invite token, for the invited email address.
    #[default]
    Invite,
    /// Anyone; an invite token, if given, also joins its organization.
    Open,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub registration: Registration,
    /// Hours an organization invite stays valid unless the inviter says otherwise.
    pub invite_ttl_hours: u32,
    /// Password sign-in off for everyone but instance admins (the break-glass accounts):
    /// people sign in with an identity provider.
    pub sso_only: bool,
    /// OpenID Connect providers (`[[auth.oidc]]`), in the order of the sign-in page.
    pub oidc: Vec<OidcProviderConfig>,
    pub google: GoogleConfig,
    pub github: GithubConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            registration: Registration::Invite,
            invite_ttl_hours: 168,
            sso_only: false,
            oidc: Vec::new(),
            google: GoogleConfig::default(),
            github: GithubConfig::default(),
        }
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required: nothing is sent if the
    /// server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption; for a relay on this machine or a trusted network only.
    None,
}

/// Outgoing mail. An empty `host` turns mail off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// SMTP AUTH user name; empty means no authentication.
    pub username: String,
    pub password: Secret,
    /// The sender, as a mailbox (`Name <address>` or `address`).
    pub from: String,
    /// Seconds to wait for the server at each step.
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: "sealbox <sealbox@localhost>".into(),
            timeout_secs: 15,
        }
    }
}

impl SmtpConfig {
    /// Whether mail is configured at all.
    pub fn enabled(&self) -> bool {
        !self.host.trim().is_empty()
    }
}

/// A configured secret (a password): its `Debug` never shows the value, and the value is
/// zeroized when dropped. Read it with [`Secret::expose`] where it is used, nowhere else.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(empty)"
        } else {
            "Secret([redacted])"
        })
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Request budgets (SPEC §3). Each is a sustained rate that also allows a burst of its
/// whole size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    pub per_ip_per_minute: u32,
    pub per_token_per_minute: u32,
    pub per_api_key_per_minute: u32,
    pub org_uploads_per_hour: u32,
    /// `POST /v1/upload-media` requests an hour per organization (its own budget).
    pub org_media_uploads_per_hour: u32,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 120,
            per_token_per_minute: 120,
            per_api_key_per_minute: 100,
            org_uploads_per_hour: 50,
            org_media_uploads_per_hour: 50,
        }
    }
}

/// The secrets vault (SPEC §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// Seconds an unlocked key pair stays in memory after the user secret opened it
    /// (deriving the key from the secret takes ~80 ms by design). 0: never cached.
    pub unlock_cache_secs: u64,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            unlock_cache_secs: 300,
        }
    }
}

/// The audit log (SPEC §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Days entries are kept; older ones are pruned hourly, the chain staying verifiable
    /// from the last pruned entry's hash. 0 keeps every entry.
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted by the JSON API, in bytes.
    pub json_body_bytes: u64,
    /// Largest KV secret value, in bytes (decoded). Its base64 request may exceed
    /// `json_body_bytes` accordingly.
    pub kv_value_bytes: u64,
    /// Largest file sent whole as JSON (`POST /v1/files`), in bytes (decoded).
    pub json_file_bytes: u64,
    /// Largest file of any upload, in bytes.
    pub max_file_bytes: u64,
    /// Bytes an organization may store (files and uploads in progress); 0: no quota.
    pub org_quota_bytes: u64,
    /// Longest expiry of a transfer, in hours.
    pub transfer_max_hours: u32,
    /// How long a transfer's download token (from unlock, or renewed) works, in seconds.
    pub download_token_ttl_secs: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            json_body_bytes: 1024 * 1024,
            kv_value_bytes: 1024 * 1024,
            json_file_bytes: 16 * 1024 * 1024,
            max_file_bytes: 50 * 1024 * 1024 * 1024,
            org_quota_bytes: 0,
            transfer_max_hours: 720,
            download_token_ttl_secs: 900,
        }
    }
}

/// Webhook delivery (SPEC §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Networks (addresses or CIDRs) webhooks may reach although they are loopback,
    /// link-local, private, CGNAT or reserved. Cloud metadata, unspecified, broadcast and
    /// multicast addresses stay refused whatever is listed.
    pub allowed_networks: Vec<String>,
    /// Seconds one delivery attempt may take, from connecting to the end of the response.
    pub timeout_secs: u64,
    /// Deliveries in flight at once, over all webhooks.
    pub max_concurrency: u32,
    /// Multiplies every retry delay; for tests only (at 0.001 the first retry comes after
    /// 60 ms instead of 60 s). Must be greater than 0 and at most 1.
    pub time_scale: f64,
    /// Days finished deliveries and fanned-out outbox events are kept; 0 keeps them.
    pub retention_days: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allowed_networks: Vec::new(),
            timeout_secs: 15,
            max_concurrency: 16,
            time_scale: 1.0,
            retention_days: 30,
        }
    }
}

impl WebhooksConfig {
    /// The parsed `allowed_networks`. [`Config::validate`] refuses entries that do not
    /// parse; any that slipped through are left out, which only refuses more.
    pub fn allowed_networks(&self) -> Vec<ipnet::IpNet> {
        self.allowed_networks
            .iter()
            .filter_map(|entry| parse_network(entry))
            .collect()
    }

    /// `webhooks.timeout_secs` as a duration.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }
}

/// File conversions (docs/conversions.md): the queue's concurrency and the limits every
/// converter runs within.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversionsConfig {
    /// Conversions running at once (each on a blocking thread); 0 leaves queued jobs
    /// waiting (maintenance).
    pub concurrency: u32,
    /// Largest file converted, in bytes.
    pub max_input_bytes: u64,
    /// Largest result, in bytes.
    pub max_output_bytes: u64,
    /// Most pixels (width x height) of an image, read from its header before decoding.
    pub max_pixels: u64,
    /// Longest side of an image, in pixels, read and written.
    pub max_dimension: u32,
    /// Most memory an image decoder may allocate, and most bytes a spreadsheet may
    /// unpack to.
    pub max_decode_bytes: u64,
    /// Items of one `POST /v1/conversions/bulk`.
    pub bulk_max: u32,
    /// Unfinished conversions one member may have at once.
    pub max_unfinished_per_user: u32,
}

impl Default for ConversionsConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            max_input_bytes: 64 * 1024 * 1024,
            max_output_bytes: 256 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_dimension: 16_384,
            max_decode_bytes: 512 * 1024 * 1024,
            bulk_max: 100,
            max_unfinished_per_user: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `sealbox=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Prometheus metrics at `/metrics` (docs/operations.md). Off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// A separate plain-HTTP address (`127.0.0.1:9090`) serving only `/metrics`; empty
    /// serves `/metrics` on the main listener, behind `bearer_token`.
    pub listen: String,
    /// The token a scraper sends as `Authorization: Bearer <token>`. Required on the main
    /// listener; on a separate one, required too when set.
    pub bearer_token: Secret,
}

/// The shortest `metrics.bearer_token` accepted: a guessable token would publish the
/// instance's traffic figures.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

impl MetricsConfig {
    /// The separate listener's address, when one is configured.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::InvalidValue {
                key: "metrics.listen".into(),
                origin: "configuration".into(),
                message: format!("`{listen}` is not an address such as 127.0.0.1:9090"),
            })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let separate = self.listen_addr()?.is_some();
        let token = self.bearer_token.expose();
        if self.enabled && !separate && token.is_empty() {
            return Err(ConfigError::Invalid(
                "metrics.enabled serves /metrics on the main listener, which needs \
                 metrics.bearer_token (or set metrics.listen to a separate address such as \
                 127.0.0.1:9090)"
                    .into(),
            ));
        }
        if !token.is_empty() && token.chars().count() < MIN_METRICS_TOKEN_LEN {
            return Err(ConfigError::Invalid(format!(
                "metrics.bearer_token must be at least {MIN_METRICS_TOKEN_LEN} characters"
            )));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::Invalid(
                "metrics.bearer_token cannot contain spaces or control characters".into(),
            ));
        }
        Ok(())
    }
}

/// Why a configuration could not be assembled. Each message names the key and its source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown configuration key `{key}` (from {origin})")]
    UnknownKey { key: String, origin: String },
    #[error("invalid value for `{key}` (from {origin}): {message}")]
    InvalidValue {
        key: String,
        origin: String,
        message: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where configuration comes from, other than the embedded defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The config file; if set, it must exist.
    pub file: Option<PathBuf>,
    /// Environment variables; only `SEALBOX_*` ones are read.
    pub env: Vec<(String, String)>,
}

impl Sources {
    /// The process's own sources: `--config` if given, otherwise the default file if it
    /// exists, and the process environment.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            file: file.or_else(|| default_config_path().filter(|p| p.is_file())),
            env: std::env::vars().collect(),
        }
    }
}

impl Config {
    /// Assembles the configuration from defaults, the file and the environment. Call
    /// [`Config::validate`] once command-line flags have been applied on top.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let defaults = Table::try_from(Config::default()).expect("defaults serialize to TOML");
        let mut merged = defaults.clone();

        if let Some(path) = &sources.file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                path: path.clone(),
                source,
            })?;
            let table: Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.message().to_owned(),
            })?;
            let origin = format!("config file {}", path.display());
            check_known_keys(&defaults, &table, "", &origin)?;
            merge(&mut merged, table);
        }

        for (name, raw) in sources
            .env
            .iter()
            .filter(|(n, _)| n.starts_with(ENV_PREFIX))
        {
            let (key, value) = env_entry(&defaults, name, raw)?;
            set_path(&mut merged, &key, value);
        }

        Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))
    }

    /// Checks the rules that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.tls.mode == TlsMode::Files
            && (self.tls.cert_file.as_os_str().is_empty()
                || self.tls.key_file.as_os_str().is_empty())
        {
            return Err(ConfigError::Invalid(
                "tls.mode = \"files\" needs tls.cert_file and tls.key_file".into(),
            ));
        }
        if self.tls.mode == TlsMode::SelfSigned && self.tls.hostnames.is_empty() {
            return Err(ConfigError::Invalid(
                "tls.mode = \"self-signed\" needs at least one entry in tls.hostnames".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if !(1..=MAX_INVITE_TTL_HOURS).contains(&self.auth.invite_ttl_hours) {
            return Err(ConfigError::Invalid(format!(
                "auth.invite_ttl_hours must be between 1 and {MAX_INVITE_TTL_HOURS}"
            )));
        }
        let budgets = &self.rate_limits;
        for (key, value) in [
            ("per_ip_per_minute", budgets.per_ip_per_minute),
            ("per_token_per_minute", budgets.per_token_per_minute),
            ("per_api_key_per_minute", budgets.per_api_key_per_minute),
            ("org_uploads_per_hour", budgets.org_uploads_per_hour),
            (
                "org_media_uploads_per_hour",
                budgets.org_media_uploads_per_hour,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "rate_limits.{key} must be at least 1"
                )));
            }
        }
        let server = &self.server;
        for (key, value) in [
            ("header_read_timeout_secs", server.header_read_timeout_secs),
            ("body_idle_timeout_secs", server.body_idle_timeout_secs),
            ("max_connections", u64::from(server.max_connections)),
            ("argon2_queue_timeout_ms", server.argon2_queue_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "server.{key} must be at least 1"
                )));
            }
        }
        if self.limits.json_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "limits.json_body_bytes must be at least 1".into(),
            ));
        }
        if !(MIN_DOWNLOAD_TOKEN_TTL_SECS..=MAX_DOWNLOAD_TOKEN_TTL_SECS)
            .contains(&self.limits.download_token_ttl_secs)
        {
            return Err(ConfigError::Invalid(format!(
                "limits.download_token_ttl_secs must be between {MIN_DOWNLOAD_TOKEN_TTL_SECS} and {MAX_DOWNLOAD_TOKEN_TTL_SECS}"
            )));
        }
        self.validate_smtp()?;
        self.validate_webhooks()?;
        self.sso_providers()?;
        self.payment_processors()?;
        self.metrics.validate()?;
        plans::validate(&self.plans, &self.billing)?;
        if self.storage.backend == storage::BlobBackend::S3 {
            self.storage.s3.validate()?;
        }
        for entry in &self.server.trusted_proxies {
            if parse_network(entry).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "server.trusted_proxies: `{entry}` is not an address or CIDR such as 10.0.0.0/8"
                )));
            }
        }
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid(
                "server.public_url must start with https:// or http://".into(),
            ));
        }
        Ok(())
    }

    fn validate_smtp(&self) -> Result<(), ConfigError> {
        let smtp = &self.smtp;
        if smtp.port == 0 {
            return Err(ConfigError::Invalid(
                "smtp.port must be between 1 and 65535".into(),
            ));
        }
        if smtp.timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "smtp.timeout_secs must be at least 1".into(),
            ));
        }
        if smtp.enabled() && smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "smtp.from `{}` is not a mailbox such as \"sealbox <sealbox@example.com>\"",
                smtp.from
            )));
        }
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let webhooks = &self.webhooks;
        for entry in &webhooks.allowed_networks {
            if parse_network(entry).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "webhooks.allowed_networks: `{entry}` is not an address or CIDR such as 192.168.0.0/16"
                )));
            }
        }
        if !(1..=MAX_WEBHOOK_TIMEOUT_SECS).contains(&webhooks.timeout_secs) {
            return Err(ConfigError::Invalid(format!(
                "webhooks.timeout_secs must be between 1 and {MAX_WEBHOOK_TIMEOUT_SECS}"
            )));
        }
        if webhooks.max_concurrency == 0 {
            return Err(ConfigError::Invalid(
                "webhooks.max_concurrency must be at least 1".into(),
            ));
        }
        let scale = webhooks.time_scale;
        if !(scale.is_finite() && scale > 0.0 && scale <= 1.0) {
            return Err(ConfigError::Invalid(format!(
                "webhooks.time_scale must be greater than 0 and at most 1 (it shortens retry \
                 delays for tests), not {scale}"
            )));
        }
        Ok(())
    }

    /// The configured identity providers, checked, with their secrets read.
    pub fn sso_providers(&self) -> Result<Vec<SsoProvider>, ConfigError> {
        sso::resolve(&self.auth)
    }

    /// The payment processors, checked, with their secrets read.
    pub fn payment_processors(&self) -> Result<Vec<billing::ProcessorAccount>, ConfigError> {
        let plans: Vec<&str> = self.plans.iter().map(|p| p.id.as_str()).collect();
        billing::resolve(&self.billing, &plans)
    }

    /// The socket address in `server.listen`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|_| ConfigError::InvalidValue {
                key: "server.listen".into(),
                origin: "configuration".into(),
                message: format!(
                    "`{}` is not an address such as 0.0.0.0:8443",
                    self.server.listen
                ),
            })
    }
}

/// Turns one `SEALBOX_*` variable into a key path and a typed value.
///
/// `SEALBOX_A__B=v` sets `a.b`. `SEALBOX_A__B_FILE=path` sets `a.b` to the file's contents
/// (one trailing newline removed), unless `a.b_file` is itself a key (`tls.cert_file`),
/// which it then sets directly.
fn env_entry(defaults: &Table, name: &str, raw: &str) -> Result<(Vec<String>, Value), ConfigError> {
    let origin = format!("environment variable {name}");
    let rest = if name == MASTER_KEY_FILE_ENV {
        "STORAGE__MASTER_KEY_FILE"
    } else {
        &name[ENV_PREFIX.len()..]
    };
    let key: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();

    if let Some(default) = lookup(defaults, &key) {
        return Ok((key.clone(), coerce(default, raw, &key.join("."), &origin)?));
    }
    if let Some(stem) = key.last().and_then(|last| last.strip_suffix("_file")) {
        let mut target = key.clone();
        *target.last_mut().expect("non-empty") = stem.to_owned();
        if let Some(default) = lookup(defaults, &target) {
            let dotted = target.join(".");
            let contents = std::fs::read_to_string(raw).map_err(|e| ConfigError::InvalidValue {
                key: dotted.clone(),
                origin: origin.clone(),
                message: format!("cannot read {raw}: {e}"),
            })?;
            let contents = contents
                .strip_suffix("\r\n")
                .or_else(|| contents.strip_suffix('\n'))
                .unwrap_or(&contents);
            return Ok((target, coerce(default, contents, &dotted, &origin)?));
        }
    }
    Err(ConfigError::UnknownKey {
        key: key.join("."),
        origin,
    })
}

/// Parses a string from the environment into the type of the key's default value.
fn coerce(default: &Value, raw: &str, key: &str, origin: &str) -> Result<Value, ConfigError> {
    let invalid = |message: String| ConfigError::InvalidValue {
        key: key.to_owned(),
        origin: origin.to_owned(),
        message,
    };
    match default {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| invalid(format!("expected an integer, got `{raw}`"))),
        Value::Boolean(_) => raw
            .trim()
            .parse::<bool>()
            .map(Value::Boolean)
            .map_err(|_| invalid(format!("expected true or false, got `{raw}`"))),
        Value::Float(_) => raw
            .trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| invalid(format!("expected a number, got `{raw}`"))),
        Value::Array(_) => {
            let wrapped: Table = toml::from_str(&format!("v = {raw}")).map_err(|_| {
                invalid(format!(
                    "expected a TOML array such as '[\"a\", \"b\"]', got `{raw}`"
                ))
            })?;
            match wrapped.get("v") {
                Some(v @ Value::Array(_)) => Ok(v.clone()),
                _ => Err(invalid(format!(
                    "expected a TOML array such as '[\"a\", \"b\"]', got `{raw}`"
                ))),
            }
        }
        Value::Table(_) | Value::Datetime(_) => Err(invalid(
            "this key is a section; set its keys one by one".into(),
        )),
    }
}

fn lookup<'a>(table: &'a Table, key: &[String]) -> Option<&'a Value> {
    let (first, rest) = key.split_first()?;
    let value = table.get(first)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        Value::Table(inner) => lookup(inner, rest),
        _ => None,
    }
}

fn set_path(table: &mut Table, key: &[String], value: Value) {
    let (first, rest) = key.split_first().expect("non-empty key");
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return;
    }
    let entry = table
        .entry(first.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(inner) = entry {
        set_path(inner, rest, value);
    }
}

/// Every key of `given` must exist in `known` (the defaults), recursively.
fn check_known_keys(
    known: &Table,
    given: &Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (name, value) in given {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match (known.get(name), value) {
            (None, _) => {
                return Err(ConfigError::UnknownKey {
                    key,
                    origin: origin.to_owned(),
                });
            }
            (Some(Value::Table(known_inner)), Value::Table(given_inner)) => {
                check_known_keys(known_inner, given_inner, &key, origin)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Overlays `top` onto `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut Table, top: Table) {
    for (name, value) in top {
        match (base.get_mut(&name), value) {
            (Some(Value::Table(base_inner)), Value::Table(top_inner)) => {
                merge(base_inner, top_inner)
            }
            (_, value) => {
                base.insert(name, value);
            }
        }
    }
}

/// All keys with their default values, dotted; used by tests and `sealbox init`.
pub fn default_keys() -> BTreeMap<String, Value> {
    fn walk(table: &Table, prefix: &str, out: &mut BTreeMap<String, Value>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                Value::Table(inner) => walk(inner, &key, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Table::try_from(Config::default()).expect("defaults serialize to TOML"),
        "",
        &mut out,
    );
    out
}

/// A secret given inline (`{key}`) or in a file (`{key}_file`, one trailing newline
/// removed), not both; `section` names the table in errors.
fn read_secret(
    section: &str,
    key: &str,
    inline: &Secret,
    file: &Path,
) -> Result<Secret, ConfigError> {
    if file.as_os_str().is_empty() {
        return Ok(inline.clone());
    }
    if !inline.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "{section}: give {key} or {key}_file, not both"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError::Invalid(format!(
            "{section}.{key}_file: cannot read {}: {e}",
            file.display()
        ))
    })?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smtp_password_never_shows_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp-password");
        std::fs::write(&file, "correct-horse-battery\n").unwrap();
        let sources = Sources {
            file: None,
            env: vec![(
                "SEALBOX_SMTP__PASSWORD_FILE".into(),
                file.to_str().unwrap().into(),
            )],
        };
        let config = Config::load(&sources).unwrap();
        assert_eq!(config.smtp.password.expose(), "correct-horse-battery");
        for rendered in [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{:?}", config.smtp),
        ] {
            assert!(!rendered.contains("correct-horse"), "{rendered}");
            assert!(rendered.contains("Secret([redacted])"), "{rendered}");
        }
    }

    #[test]
    fn webhook_settings_are_checked_at_load() {
        let refusal = |config: &Config| config.validate().unwrap_err().to_string();
        let mut config = Config::default();
        assert_eq!(
            config.webhooks.timeout(),
            std::time::Duration::from_secs(15)
        );
        config.webhooks.allowed_networks = vec!["127.0.0.0/8".into(), "::1".into()];
        assert!(config.validate().is_ok());
        assert_eq!(config.webhooks.allowed_networks().len(), 2);
        config.webhooks.allowed_networks.push("10.0.0.0/33".into());
        assert!(
            refusal(&config).contains("`10.0.0.0/33`"),
            "{}",
            refusal(&config)
        );
        config.webhooks.allowed_networks.pop();
        for bad in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY] {
            config.webhooks.time_scale = bad;
            assert!(refusal(&config).contains("webhooks.time_scale"), "{bad}");
        }
        config.webhooks.time_scale = 0.001;
        assert!(config.validate().is_ok());
        config.webhooks.timeout_secs = 0;
        assert!(refusal(&config).contains("webhooks.timeout_secs"));
        config.webhooks.timeout_secs = 15;
        config.webhooks.max_concurrency = 0;
        assert!(refusal(&config).contains("webhooks.max_concurrency"));

        let sources = Sources {
            file: None,
            env: vec![
                (
                    "SEALBOX_WEBHOOKS__ALLOWED_NETWORKS".into(),
                    r#"["127.0.0.0/8"]"#.into(),
                ),
                ("SEALBOX_WEBHOOKS__TIME_SCALE".into(), "0.01".into()),
            ],
        };
        let config = Config::load(&sources).unwrap();
        assert_eq!(config.webhooks.allowed_networks, vec!["127.0.0.0/8"]);
        assert_eq!(config.webhooks.time_scale, 0.01);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn smtp_settings_are_checked_only_as_far_as_they_matter() {
        let refusal = |config: &Config| config.validate().unwrap_err().to_string();
        let mut config = Config::default();
        config.smtp.from = "not a mailbox".into();
        assert!(config.validate().is_ok(), "mail is off: `from` is unused");
        config.smtp.host = "mail.example.com".into();
        assert!(refusal(&config).contains("smtp.from"));
        config.smtp.from = "Sealbox <sealbox@example.com>".into();
        assert!(config.validate().is_ok());
        config.smtp.port = 0;
        assert!(refusal(&config).contains("smtp.port"));
    }
}
