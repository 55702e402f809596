//! Builds the running system from a [`Config`]: data directory, master key, store, blobs,
//! services and routes; binds the listener; serves until shutdown.
//!
//! `sealbox serve` and the integration tests go through exactly these functions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, AcceptorExt, BoxAcceptor, Listener, TcpListener};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::auth::AccessTokens;
use crate::blob::{BlobError, BlobStore, LocalBlobStore, S3BlobStore};
use crate::config::storage::BlobBackend;
use crate::config::{Config, ConfigError, TlsMode};
use crate::crypto::MasterKey;
use crate::data_dir::{DataDir, SECRET_FILE_MODE, mode_of, write_atomic};
use crate::http::tls_acceptor::TlsAcceptor;
use crate::http::{self, HttpState, tls};
use crate::mail::{MailError, Mailer};
use crate::service::FileService;
use crate::service::files::FileLimits;
use crate::service::transfers::{TransferLimits, TransferService};
use crate::service::unlock_cache::UnlockCache;
use crate::service::webhook_queue::DeliveryQueue;
use crate::service::webhook_targets::TargetPolicy;
use crate::service::{
    AdminService, ApiKeyService, AuditService, FileShareService, GroupService, IdempotencyService,
    IdentityService, InviteService, KeyService, KvService, NotificationService, OrgService,
    PasswordResetService, RecoveryService, SsoService, SystemService, UserService, WebhookService,
};
use crate::store::{Store, StoreError, StoreOptions, instance::Instance};
use crate::worker::webhook_sender::WebhookSender;
use crate::worker::webhooks::{DeliverySettings, DeliveryWorker};

/// Why the appliance could not start. Each message tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key {path}: {message}")]
    MasterKey { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Webhooks(#[from] crate::worker::webhook_sender::SenderError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::InstallError),
}

/// The assembled appliance, ready to bind.
pub struct App {
    config: Config,
    data: DataDir,
    store: Store,
    blobs: Arc<dyn BlobStore>,
    master_key: MasterKey,
    instance: Instance,
    identity: IdentityService,
    /// Sign-in with identity providers: its sign-ins in progress live as long as the app.
    sso: SsoService,
    api_keys: ApiKeyService,
    audit: AuditService,
    idempotency: IdempotencyService,
    keys: KeyService,
    files: FileService,
    /// File conversions: the service and the queue its worker takes from.
    conversions: crate::service::conversions::ConversionService,
    webhooks: WebhookService,
    transfers: TransferService,
    /// Messaging: its hub of open streams lives as long as the app.
    messaging: crate::service::messaging::MessagingService,
    /// The HTTP client of webhook deliveries (built at open: it loads the CA store).
    webhook_sender: WebhookSender,
    rate_limits: http::rate_limit::RateLimits,
    /// `None` when mail is off (`smtp.host` empty).
    mailer: Option<Mailer>,
    setup_token: Option<Zeroizing<String>>,
    /// The Prometheus recorder's handle, when `metrics.enabled`.
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Plans (`[[plans]]`), their clock and the API-key gate.
    plans: crate::service::plans::PlanService,
    /// Payment processors: checkouts, invoices, inbound webhooks (one HTTP client).
    billing: crate::service::billing::BillingService,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("data", &self.data)
            .field("store", &self.store)
            .field("master_key", &self.master_key)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Prepares everything the server needs: creates the data directory and the master
    /// key on first start, opens and migrates the database, opens blob storage.
    pub async fn open(config: Config) -> Result<Self, AppError> {
        config.validate()?;
        let metrics = if config.metrics.enabled {
            Some(crate::metrics::install()?)
        } else {
            None
        };
        crate::service::argon2_pool::configure(
            config.server.argon2_slots(),
            Duration::from_millis(config.server.argon2_queue_timeout_ms),
        );
        let data = DataDir::from_config(&config).map_err(|source| AppError::DataDir {
            path: config.storage.data_dir.clone(),
            source,
        })?;
        let prepared = {
            let (config, data) = (config.clone(), data.clone());
            tokio::task::spawn_blocking(move || prepare_storage(&config, &data))
                .await
                .map_err(|e| AppError::Serve(std::io::Error::other(e)))??
        };
        let (store, master_key, instance) = prepared;
        let blobs: Arc<dyn BlobStore> = match config.storage.backend {
            BlobBackend::Local => Arc::new(LocalBlobStore::open(data.blobs()).await?),
            BlobBackend::S3 => Arc::new(S3BlobStore::open(&config.storage.s3, data.root()).await?),
        };
        let mailer = Mailer::from_config(&config.smtp)?;
        let plan_rules = crate::service::plans::PlanRules::new(
            &config.plans,
            &config.billing,
            crate::service::plans::Clock::default(),
        );
        let plans = crate::service::plans::PlanService::new(store.clone(), plan_rules.clone());
        let billing = crate::service::billing::BillingService::new(
            store.clone(),
            config.payment_processors()?,
            plan_rules.clone(),
            Some(config.billing.default_plan.clone()).filter(|id| !id.is_empty()),
        )
        .map_err(|e| AppError::Serve(std::io::Error::other(e)))?;
        let api_keys = ApiKeyService::new(store.clone());
        let audit = AuditService::new(store.clone());
        let unlock_cache = UnlockCache::new(Duration::from_secs(config.vault.unlock_cache_secs));
        let keys = KeyService::new(store.clone(), unlock_cache.clone());
        let idempotency = IdempotencyService::new(store.clone(), master_key.clone());
        // Claims left running by a process that stopped can never finish: free them.
        idempotency
            .sweep(true)
            .await
            .map_err(|e| AppError::Serve(std::io::Error::other(e)))?;
        let rate_limits = http::rate_limit::RateLimits::new(&config.rate_limits);
        tokio::fs::create_dir_all(data.uploads())
            .await
            .map_err(|source| AppError::DataDir {
                path: data.uploads(),
                source,
            })?;
        let files = {
            let budget = rate_limits.clone();
            FileService::new(
                store.clone(),
                blobs.clone(),
                data.uploads(),
                master_key.clone(),
                keys.clone(),
                FileLimits {
                    max_file_bytes: config.limits.max_file_bytes,
                    org_quota_bytes: config.limits.org_quota_bytes,
                    json_file_bytes: config.limits.json_file_bytes,
                },
            )
            .with_upload_budget({
                let budget = budget.clone();
                move |org| budget.count_org_upload(org)
            })
            .with_media_budget(move |org| budget.count_org_media_upload(org))
            .with_plans(plan_rules.clone())
        };
        let conversions = crate::service::conversions::ConversionService::new(
            store.clone(),
            files.clone(),
            keys.clone(),
            master_key.clone(),
            conversion_settings(&config.conversions),
        )
        .with_plans(plan_rules.clone());
        let transfers = TransferService::new(
            store.clone(),
            files.clone(),
            master_key.clone(),
            mailer.clone(),
            TransferLimits {
                max_hours: i64::from(config.limits.transfer_max_hours),
            },
        )
        .with_download_token_ttl(std::time::Duration::from_secs(u64::from(
            config.limits.download_token_ttl_secs,
        )))
        .with_plans(plan_rules.clone());
        let webhook_sender = WebhookSender::from_config(&config.webhooks)?;
        let webhooks = WebhookService::new(
            store.clone(),
            master_key.clone(),
            TargetPolicy::new(config.webhooks.allowed_networks()),
        )
        .with_plans(plan_rules.clone());
        let identity = IdentityService::new(store.clone(), AccessTokens::new(&master_key))
            .with_registration(config.auth.registration)
            .with_sso_only(config.auth.sso_only)
            .with_unlock_cache(unlock_cache)
            .with_plans(plan_rules.clone());
        let sso = SsoService::new(store.clone(), identity.clone(), config.sso_providers()?)
            .map_err(|e| AppError::Serve(std::io::Error::other(e)))?
            .with_plans(plan_rules.clone());
        {
            let sso = sso.clone();
            for warning in tokio::task::spawn_blocking(move || sso.missing_organizations())
                .await
                .map_err(|e| AppError::Serve(std::io::Error::other(e)))??
            {
                tracing::warn!("{warning}");
            }
        }
        let setup_token = {
            let identity = identity.clone();
            tokio::task::spawn_blocking(move || identity.issue_setup_token_if_needed())
                .await
                .map_err(|e| AppError::Serve(std::io::Error::other(e)))??
        };
        let messaging = crate::service::messaging::MessagingService::new(store.clone());
        Ok(Self {
            messaging,
            sso,
            config,
            data,
            store,
            blobs,
            master_key,
            instance,
            identity,
            api_keys,
            audit,
            idempotency,
            keys,
            files,
            conversions,
            webhooks,
            transfers,
            webhook_sender,
            rate_limits,
            mailer,
            setup_token,
            metrics,
            plans,
            billing,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }
    pub fn store(&self) -> &Store {
        &self.store
    }
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }
    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }
    pub fn instance(&self) -> &Instance {
        &self.instance
    }
    /// The webhook service; `webhooks().queue()` is the delivery worker's handle.
    pub fn webhooks(&self) -> &WebhookService {
        &self.webhooks
    }

    /// The plans' clock, for tests that move the day forward; the server never moves it.
    #[doc(hidden)]
    pub fn plan_clock(&self) -> crate::service::plans::Clock {
        self.plans.rules().clock().clone()
    }

    /// While no user exists: the one-time token for `POST /v1/setup`, new at every start
    /// (the previous one stops working).
    pub fn setup_token(&self) -> Option<&str> {
        self.setup_token.as_ref().map(|t| t.as_str())
    }

    /// What `GET /admin/status` reads besides the database.
    fn status_sources(&self) -> crate::service::admin::StatusSources {
        let (tls_mode, cert_file) = match self.config.tls.mode {
            TlsMode::Off => ("off", None),
            TlsMode::SelfSigned => ("self-signed", Some(self.data.self_signed_cert())),
            TlsMode::Files => ("files", Some(self.config.tls.cert_file.clone())),
        };
        crate::service::admin::StatusSources {
            data: self.data.clone(),
            tls_mode,
            cert_file,
        }
    }

    /// The complete HTTP endpoint; `public_url` is the base of the links it mails
    /// (see [`public_base_url`]).
    pub fn endpoint(&self, public_url: &str) -> impl poem::Endpoint + use<> {
        http::routes(&HttpState {
            conversions: self.conversions.clone(),
            system: {
                let system = SystemService::new(
                    self.store.clone(),
                    self.instance.clone(),
                    self.data.clone(),
                );
                match self.config.storage.backend {
                    BlobBackend::Local => system,
                    BlobBackend::S3 => system.without_local_blobs(),
                }
            },
            identity: self.identity.clone(),
            sso: self.sso.clone().with_public_url(public_url),
            sso_only: self.config.auth.sso_only,
            password_reset: PasswordResetService::new(
                self.store.clone(),
                self.mailer.clone(),
                public_url,
            ),
            users: UserService::new(self.store.clone()),
            orgs: OrgService::new(self.store.clone()).with_plans(self.plans.rules().clone()),
            groups: GroupService::new(self.store.clone()),
            invites: InviteService::new(
                self.store.clone(),
                self.config.auth.invite_ttl_hours,
                self.mailer.clone(),
                public_url,
            )
            .with_plans(self.plans.rules().clone()),
            admin: AdminService::new(self.store.clone())
                .with_status(self.status_sources())
                .with_plans(self.plans.rules().clone()),
            api_keys: self.api_keys.clone(),
            audit: self.audit.clone(),
            idempotency: self.idempotency.clone(),
            keys: self.keys.clone(),
            kv: KvService::new(
                self.store.clone(),
                self.keys.clone(),
                self.config.limits.kv_value_bytes,
            ),
            recovery: RecoveryService::new(self.store.clone(), self.keys.clone()),
            files: self.files.clone(),
            file_shares: FileShareService::new(
                self.store.clone(),
                self.keys.clone(),
                self.files.clone(),
            ),
            webhooks: self.webhooks.clone(),
            notifications: NotificationService::new(self.store.clone()),
            transfers: self.transfers.clone().with_public_url(public_url),
            messaging: self.messaging.clone(),
            plans: self.plans.clone(),
            billing: self.billing.clone(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            json_file_limit: self.config.limits.json_file_bytes,
            kv_value_limit: self.config.limits.kv_value_bytes,
            rate_limits: self.rate_limits.clone(),
            trusted_proxies: http::client_ip::TrustedProxies(Arc::new(
                self.config
                    .server
                    .trusted_proxies
                    .iter()
                    .filter_map(|entry| crate::config::parse_network(entry))
                    .collect(),
            )),
            json_body_limit: self.config.limits.json_body_bytes,
            body_idle_timeout: Duration::from_secs(self.config.server.body_idle_timeout_secs),
            metrics: self
                .metrics_endpoint()
                .filter(|_| self.config.metrics.listen.trim().is_empty()),
        })
    }

    /// The `/metrics` endpoint, when metrics are on.
    fn metrics_endpoint(&self) -> Option<http::metrics::Metrics> {
        let handle = self.metrics.clone()?;
        Some(http::metrics::Metrics::new(
            handle,
            self.config.metrics.bearer_token.expose(),
            self.webhooks.queue(),
            vec![
                ("data", self.data.root().to_owned()),
                ("uploads", self.data.uploads()),
                ("blobs", self.data.blobs()),
            ],
        ))
    }

    /// Binds the configured address (port 0 picks a free port) with the configured TLS.
    pub async fn bind(&self) -> Result<Bound, AppError> {
        let addr = self.config.listen_addr()?;
        let tcp = TcpListener::bind(addr)
            .into_acceptor()
            .await
            .map_err(|source| AppError::Bind { addr, source })?;
        let local = tcp
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .unwrap_or(addr);

        let material = match self.config.tls.mode {
            TlsMode::Off => None,
            TlsMode::SelfSigned => {
                let data = self.data.clone();
                let hostnames = self.config.tls.hostnames.clone();
                let (material, generated) =
                    tokio::task::spawn_blocking(move || tls::ensure_self_signed(&data, &hostnames))
                        .await
                        .map_err(|e| AppError::Serve(std::io::Error::other(e)))??;
                if generated {
                    tracing::info!(fingerprint = %material.summary.fingerprint, "generated a self-signed TLS certificate");
                }
                Some(material)
            }
            TlsMode::Files => Some(tls::load_files(
                &self.config.tls.cert_file,
                &self.config.tls.key_file,
            )?),
        };
        let metrics = self.bind_metrics().await?;
        let Some(material) = material else {
            return Ok(Bound {
                acceptor: tcp.boxed(),
                addr: local,
                scheme: "http",
                certificate: None,
                metrics,
            });
        };
        let (sender, receiver) = watch::channel(material.server_config()?);
        if self.config.tls.mode == TlsMode::Files {
            reload_on_sighup(
                self.config.tls.cert_file.clone(),
                self.config.tls.key_file.clone(),
                sender,
            );
        }
        Ok(Bound {
            acceptor: TlsAcceptor::new(tcp, receiver).boxed(),
            addr: local,
            scheme: "https",
            certificate: Some(material.summary),
            metrics,
        })
    }

    /// Binds `metrics.listen` (plain HTTP) when metrics are on and it is set.
    async fn bind_metrics(&self) -> Result<Option<(BoxAcceptor, SocketAddr)>, AppError> {
        let Some(addr) = self
            .config
            .metrics
            .listen_addr()?
            .filter(|_| self.metrics.is_some())
        else {
            return Ok(None);
        };
        let tcp = TcpListener::bind(addr)
            .into_acceptor()
            .await
            .map_err(|source| AppError::Bind { addr, source })?;
        let local = tcp
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .unwrap_or(addr);
        Ok(Some((tcp.boxed(), local)))
    }

    /// Serves on `bound` until `shutdown` resolves, then shuts down within
    /// `server.shutdown_timeout_secs`: stops accepting connections and leasing webhook
    /// deliveries at once; lets requests in flight (uploads included) and webhook sends in
    /// flight finish meanwhile; cuts off upload bodies still arriving near the end so they
    /// record a durable offset (see [`http::connections`]); drops what still runs at the
    /// timeout (a dropped webhook send stays leased in the database and is sent again,
    /// with the same `webhook-id`, once its lease runs out after the restart); records
    /// API keys' last use and closes the database.
    pub async fn serve(
        self,
        bound: Bound,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), AppError> {
        let timeout = Duration::from_secs(self.config.server.shutdown_timeout_secs);
        // When the shutdown signal came: the deadline everything below shares.
        let signalled = std::sync::OnceLock::new();
        let endpoint = self.endpoint(&public_base_url(&self.config, bound.addr));
        let flusher = tokio::spawn(
            Housekeeping {
                keys: self.api_keys.clone(),
                rate_limits: self.rate_limits.clone(),
                audit: self.audit.clone(),
                audit_retention: retention(self.config.audit.retention_days),
                webhooks: self.webhooks.queue(),
                webhook_retention: retention(self.config.webhooks.retention_days),
                idempotency: self.idempotency.clone(),
                unlocked: self.keys.cache().clone(),
                files: self.files.clone(),
                transfers: self.transfers.clone(),
                plans: self.plans.clone(),
            }
            .run(),
        );
        // Self-destructing messages are deleted within a second of their time.
        let sweeper = tokio::spawn(self.messaging.clone().run_sweeper());
        // Event streams never end by themselves: end them when shutdown begins, so
        // in-flight requests can finish within the timeout.
        let hub = self.messaging.hub().clone();
        let shutdown = async move {
            shutdown.await;
            hub.close_all();
        };
        let (stop_deliveries, deliveries_stopped) = watch::channel(false);
        // Conversions stop with the webhook sends: no new job once shutdown begins; jobs
        // in flight finish, and any cut off are recovered at the next start.
        let mut converting = tokio::spawn(
            crate::worker::conversions::ConversionWorker::new(self.conversions.queue())
                .run(deliveries_stopped.clone()),
        );
        let mut deliveries = tokio::spawn(
            DeliveryWorker::new(
                self.webhooks.queue(),
                self.webhook_sender.clone(),
                DeliverySettings {
                    concurrency: self.config.webhooks.max_concurrency as usize,
                    timeout: self.config.webhooks.timeout(),
                    time_scale: self.config.webhooks.time_scale,
                },
            )
            .run(deliveries_stopped),
        );
        // The separate metrics listener serves until the main one is done; a scrape in
        // flight at shutdown is simply cut.
        let metrics_listener =
            bound
                .metrics
                .zip(self.metrics_endpoint())
                .map(|((acceptor, _), scrape)| {
                    tokio::spawn(http::connections::serve(
                        acceptor,
                        http::metrics::separate_routes(scrape),
                        http::connections::ConnectionLimits {
                            header_read_timeout: Duration::from_secs(
                                self.config.server.header_read_timeout_secs,
                            ),
                            max_connections: METRICS_MAX_CONNECTIONS,
                        },
                        std::future::pending::<()>(),
                        Duration::ZERO,
                    ))
                });
        let served = http::connections::serve(
            bound.acceptor,
            endpoint,
            http::connections::ConnectionLimits {
                header_read_timeout: Duration::from_secs(
                    self.config.server.header_read_timeout_secs,
                ),
                max_connections: self.config.server.max_connections as usize,
            },
            async {
                shutdown.await;
                let _ = signalled.set(Instant::now());
                // Webhook sends in flight finish alongside the requests, not after them.
                let _ = stop_deliveries.send(true);
            },
            timeout,
        )
        .await;
        flusher.abort();
        if let Some(listener) = metrics_listener {
            listener.abort();
        }
        sweeper.abort();
        let _ = stop_deliveries.send(true);
        // Deliveries in flight finish (each within the webhook timeout) and are recorded
        // before the store closes, within what is left of the shutdown timeout.
        let left = signalled
            .get()
            .map_or(timeout, |at| timeout.saturating_sub(at.elapsed()));
        match tokio::time::timeout(left, &mut deliveries).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the webhook delivery loop failed"),
            Err(_) => {
                deliveries.abort();
                tracing::warn!(
                    "webhook sends still in flight at the shutdown timeout were dropped; \
                     they stay leased and are sent again when their lease runs out"
                );
            }
        }
        let left = signalled
            .get()
            .map_or(timeout, |at| timeout.saturating_sub(at.elapsed()));
        if tokio::time::timeout(left, &mut converting).await.is_err() {
            converting.abort();
            tracing::warn!(
                "conversions still running at the shutdown timeout were dropped; they are \
                 queued again at the next start"
            );
        }
        if let Err(e) = self.api_keys.flush_last_use().await {
            tracing::warn!(error = %e, "could not record the last use of API keys");
        }
        if let Err(e) = self.plans.flush_usage().await {
            tracing::warn!(error = %e, "could not record today's API request counts");
        }
        let closed = self.store.close().await;
        served.map_err(AppError::Serve)?;
        closed?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Background upkeep while serving. Every second: writes the API requests counted against
/// plan quotas. Every few seconds: writes API keys' last use (so
/// using a key costs no write of its own) and forgets rate budgets that are whole again.
/// Every few minutes: drops expired idempotency keys; hourly: prunes the audit log, and
/// finished webhook deliveries with the outbox events behind them, past their retention.
struct Housekeeping {
    keys: ApiKeyService,
    rate_limits: http::rate_limit::RateLimits,
    audit: AuditService,
    audit_retention: Option<Duration>,
    webhooks: DeliveryQueue,
    webhook_retention: Option<Duration>,
    idempotency: IdempotencyService,
    unlocked: UnlockCache,
    files: FileService,
    transfers: TransferService,
    plans: crate::service::plans::PlanService,
}

impl Housekeeping {
    async fn run(self) {
        let mut often = tokio::time::interval(KEY_USE_FLUSH_INTERVAL);
        let mut sweeps = tokio::time::interval(IDEMPOTENCY_SWEEP_INTERVAL);
        let mut pruning = tokio::time::interval(AUDIT_PRUNE_INTERVAL);
        let mut counts = tokio::time::interval(USAGE_FLUSH_INTERVAL);
        for timer in [&mut often, &mut sweeps, &mut pruning, &mut counts] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = often.tick() => {
                    if let Err(e) = self.keys.flush_last_use().await {
                        tracing::warn!(error = %e, "could not record the last use of API keys");
                    }
                    self.rate_limits.forget_idle();
                    self.unlocked.evict_expired();
                    // Expired transfers lose their bytes within this interval.
                    match self.transfers.sweep_expired().await {
                        Ok(0) => {}
                        Ok(ended) => tracing::info!(ended, "ended expired transfers and deleted their bytes"),
                        Err(e) => tracing::warn!(error = %e, "could not sweep expired transfers"),
                    }
                }
                _ = counts.tick() => {
                    if let Err(e) = self.plans.flush_usage().await {
                        tracing::warn!(error = %e, "could not record today's API request counts");
                    }
                }
                _ = sweeps.tick() => {
                    if let Err(e) = self.idempotency.sweep(false).await {
                        tracing::warn!(error = %e, "could not remove expired idempotency keys");
                    }
                    match self.files.sweep_uploads().await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "removed expired uploads"),
                        Err(e) => tracing::warn!(error = %e, "could not remove expired uploads"),
                    }
                    if let Err(e) = self.plans.forget_old_usage().await {
                        tracing::warn!(error = %e, "could not forget past days' plan counters");
                    }
                }
                _ = pruning.tick() => {
                    if let Some(retention) = self.audit_retention {
                        match self.audit.prune(retention).await {
                            Ok(0) => {}
                            Ok(removed) => tracing::info!(removed, "pruned audit entries past retention"),
                            Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
                        }
                    }
                    if let Some(retention) = self.webhook_retention {
                        match self.webhooks.prune(retention).await {
                            Ok((0, 0)) => {}
                            Ok((deliveries, events)) => tracing::info!(deliveries, events, "pruned webhook deliveries and events past retention"),
                            Err(e) => tracing::warn!(error = %e, "could not prune webhook deliveries"),
                        }
                    }
                }
            }
        }
    }
}

/// `audit.retention_days` as a duration; `None` (keep everything) for 0.
fn retention(days: u32) -> Option<Duration> {
    (days > 0).then(|| Duration::from_secs(u64::from(days) * 24 * 60 * 60))
}

const IDEMPOTENCY_SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);
const AUDIT_PRUNE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// How stale `lastUsedAt` in the database may be; listings overlay the newer value.
const KEY_USE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// How often the API requests counted against plan quotas are written: what a crash can
/// lose of them (docs/billing.md).
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Connections the separate metrics listener serves at once: scrapers, not clients.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// A bound listener, not yet serving.
pub struct Bound {
    acceptor: BoxAcceptor,
    addr: SocketAddr,
    scheme: &'static str,
    certificate: Option<tls::CertSummary>,
    /// The separate metrics listener (`metrics.listen`) and its bound address.
    metrics: Option<(BoxAcceptor, SocketAddr)>,
}

impl Bound {
    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A URL a local client can use: unspecified addresses become loopback.
    pub fn url(&self) -> String {
        local_url(self.scheme, self.addr)
    }

    /// The URL of `/metrics` on the separate metrics listener, when there is one.
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics.as_ref().map(|(_, addr)| {
            format!(
                "{}{}",
                local_url("http", *addr),
                http::metrics::METRICS_PATH
            )
        })
    }

    /// The served certificate, when TLS is on.
    pub fn certificate(&self) -> Option<&tls::CertSummary> {
        self.certificate.as_ref()
    }
}

/// The URL of `addr` for a client on this machine: unspecified addresses become loopback.
fn local_url(scheme: &str, addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// The base of the links sealbox prints and mails (no trailing slash): `server.public_url`
/// when set, otherwise the URL of `addr` (the bound address, or `server.listen` outside
/// the server), as the `serve` banner shows it.
pub fn public_base_url(config: &Config, addr: SocketAddr) -> String {
    let configured = config.server.public_url.trim().trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let scheme = match config.tls.mode {
        TlsMode::Off => "http",
        TlsMode::SelfSigned | TlsMode::Files => "https",
    };
    local_url(scheme, addr)
}

/// Blocking part of start-up: directories, master key, database.
fn prepare_storage(
    config: &Config,
    data: &DataDir,
) -> Result<(Store, MasterKey, Instance), AppError> {
    data.create().map_err(|source| AppError::DataDir {
        path: data.root().to_owned(),
        source,
    })?;
    let master_key = load_or_create_master_key(config, data)?;
    let store = Store::open(
        &data.database(),
        &StoreOptions {
            max_connections: config.database.max_connections,
            busy_timeout: Duration::from_millis(config.database.busy_timeout_ms),
        },
    )?;
    let instance = store.call_blocking(|conn| crate::store::instance::get(conn))?;
    Ok((store, master_key, instance))
}

/// Reads the master key, or creates it at first start. A missing key is only created at
/// the default path and only for a new database: generating a fresh key beside existing
/// data would make everything it sealed unreadable.
pub fn load_or_create_master_key(config: &Config, data: &DataDir) -> Result<MasterKey, AppError> {
    let configured = !config.storage.master_key_file.as_os_str().is_empty();
    let path = if configured {
        config.storage.master_key_file.clone()
    } else {
        data.master_key()
    };
    let err = |message: String| AppError::MasterKey {
        path: path.clone(),
        message,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let key = MasterKey::from_file_bytes(&bytes)
                .ok_or_else(|| err(format!("must hold exactly 32 bytes, holds {}", bytes.len())))?;
            if let Ok(mode) = mode_of(&path)
                && mode & 0o077 != 0
            {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "master key is readable by other users; chmod 600 it");
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if configured {
                return Err(err(
                    "file not found (storage.master_key_file is set, so it is not generated)"
                        .into(),
                ));
            }
            if data.database().exists() {
                return Err(err(
                    "missing, but the database already exists: restore master.key from your backup \
                     (a new key could not read existing data)"
                        .into(),
                ));
            }
            let key = MasterKey::generate();
            write_atomic(&path, key.expose_bytes(), SECRET_FILE_MODE)
                .map_err(|e| err(format!("cannot create: {e}")))?;
            tracing::info!(path = %path.display(), key_id = key.id(), "created master key");
            Ok(key)
        }
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

/// Reloads the certificate files on every SIGHUP until the listener is gone; a reload
/// that fails is logged and the current certificate stays in use.
fn reload_on_sighup(cert: PathBuf, key: PathBuf, sender: watch::Sender<Arc<rustls::ServerConfig>>) {
    use tokio::signal::unix::{SignalKind, signal};

    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; certificate reload is off");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() && !sender.is_closed() {
            match tls::load_files(&cert, &key).and_then(|m| Ok((m.server_config()?, m.summary))) {
                Ok((config, summary)) => {
                    sender.send_replace(config);
                    tracing::info!(fingerprint = %summary.fingerprint, "reloaded TLS certificate");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the current certificate")
                }
            }
        }
    });
}

/// The conversion queue's settings from `[conversions]`.
fn conversion_settings(
    config: &crate::config::ConversionsConfig,
) -> crate::service::conversions::ConversionSettings {
    crate::service::conversions::ConversionSettings {
        limits: crate::service::conversions::Limits {
            max_input_bytes: config.max_input_bytes,
            max_output_bytes: config.max_output_bytes,
            max_pixels: config.max_pixels,
            max_dimension: config.max_dimension.max(1),
            max_decode_bytes: config.max_decode_bytes,
        },
        concurrency: config.concurrency as usize,
        bulk_max: config.bulk_max.max(1) as usize,
        max_unfinished_per_user: i64::from(config.max_unfinished_per_user),
        ..Default::default()
    }
}
