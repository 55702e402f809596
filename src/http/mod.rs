//! The HTTP surface: one `#[OpenApi]` struct per resource (combined into one document),
//! the error envelope, middleware, the web UI and the API reference.

pub mod admin;
pub mod allow;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod authn;
pub mod billing;
pub mod client_ip;
pub mod connections;
pub mod conversions;
pub mod error;
pub mod file_shares;
pub mod files;
pub mod groups;
pub mod idempotency;
pub mod invites;
pub mod json_body;
pub mod keys;
pub mod kv;
pub mod messaging;
pub mod metrics;
pub mod middleware;
pub mod notifications;
pub mod organizations;
pub mod pagination;
pub mod password_reset;
pub mod plans;
pub mod rate_limit;
pub mod recovery;
pub mod request_id;
pub mod roles;
pub mod sessions;
pub mod sso;
pub mod system;
pub mod tls;
pub mod tls_acceptor;
pub mod transfers;
pub mod ui;
pub mod upload_media;
pub mod uploads;
pub mod users;
pub mod vault;
pub mod webhooks;

use std::sync::Arc;

use poem::http::header;
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, IntoResponse, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::service::{
    AdminService, ApiKeyService, AuditService, FileService, FileShareService, GroupService,
    IdempotencyService, IdentityService, InviteService, KeyService, KvService, NotificationService,
    OrgService, RecoveryService, RequestContext, SystemService, TransferService, UserService,
    WebhookService,
};
use error::ApiError;
use middleware::{BodyIdleTimeout, Conventions, JsonBodyLimit, RouteTemplates};

pub const OPENAPI_PATH: &str = "/v1/openapi.json";
pub const DOCS_PATH: &str = "/docs";

/// Groups of operations in the OpenAPI document.
#[derive(Tags)]
pub enum ApiTags {
    /// Health and server information
    System,
    /// First-run setup, sign-in, token refresh, sign-out and password reset
    Auth,
    /// The caller's signed-in sessions
    Sessions,
    /// The caller's profile and finding colleagues
    Users,
    /// Organizations (tenants), their members, suspension and invites
    Organizations,
    /// Custom roles and the permissions they bind
    Roles,
    /// Teams and departments: groups of an organization's members
    Teams,
    /// Instance administration (instance admins only)
    Admin,
    /// API keys: credentials for scripts and integrations
    ApiKeys,
    /// The organization's tamper-evident audit log
    Audit,
    /// Your X-Wing key pair: generate, status, rekey
    Keys,
    /// KV secrets, sealed to your key, and their read-only shares
    Kv,
    /// Recovery material left with trustees, and restoring your private key from it
    Recovery,
    /// Encrypted files: small ones whole, any size through presigned uploads
    Files,
    /// File conversions: the formats, conversion jobs (single and bulk), their status
    Conversions,
    /// Transfers: files sent to anyone with a link, server-sealed or end-to-end encrypted
    Transfers,
    /// Webhooks: signed event deliveries, their secrets, tests, replays and delivery log
    Webhooks,
    /// The caller's in-app notifications
    Notifications,
    /// End-to-end encrypted messaging: devices and key bundles, chats, messages with
    /// per-device envelopes, and each device's real-time event stream
    Messaging,
    /// Plans and payment: the organization's subscription (plan, limits, features, usage),
    /// hosted checkouts, invoices, and the payment processors' inbound webhooks
    Billing,
}

/// What the HTTP layer needs from the running app.
#[derive(Clone)]
pub struct HttpState {
    pub system: SystemService,
    pub conversions: crate::service::conversions::ConversionService,
    pub identity: IdentityService,
    pub sso: crate::service::SsoService,
    /// `auth.sso_only`.
    pub sso_only: bool,
    pub password_reset: crate::service::PasswordResetService,
    pub users: UserService,
    pub orgs: OrgService,
    pub groups: GroupService,
    pub invites: InviteService,
    pub admin: AdminService,
    pub api_keys: ApiKeyService,
    pub audit: AuditService,
    pub idempotency: IdempotencyService,
    pub keys: KeyService,
    pub kv: KvService,
    pub recovery: RecoveryService,
    pub files: FileService,
    pub file_shares: FileShareService,
    pub webhooks: WebhookService,
    pub notifications: NotificationService,
    pub transfers: TransferService,
    pub messaging: crate::service::messaging::MessagingService,
    /// Plans: the API-key gate, the subscription view, assignments (docs/billing.md).
    pub plans: crate::service::plans::PlanService,
    pub billing: crate::service::billing::BillingService,
    /// The public base URL that upload and download links are built on.
    pub public_url: String,
    /// Largest file sent whole as JSON, in bytes: its route accepts a body to fit.
    pub json_file_limit: u64,
    /// Largest KV value in bytes: its route accepts a JSON body big enough for it.
    pub kv_value_limit: u64,
    pub trusted_proxies: client_ip::TrustedProxies,
    pub rate_limits: rate_limit::RateLimits,
    pub json_body_limit: u64,
    /// How long a request body may send nothing (`server.body_idle_timeout_secs`).
    pub body_idle_timeout: std::time::Duration,
    /// `/metrics` on this listener (metrics on, without a separate `metrics.listen`).
    pub metrics: Option<metrics::Metrics>,
}

/// Every API struct, one per resource.
type Apis = (
    system::SystemApi,
    (auth::AuthApi, sso::SsoApi),
    password_reset::PasswordResetApi,
    sessions::SessionsApi,
    users::UsersApi,
    organizations::OrganizationsApi,
    invites::InvitesApi,
    roles::RolesApi,
    groups::TeamsApi,
    groups::DepartmentsApi,
    admin::AdminApi,
    api_keys::ApiKeysApi,
    audit::AuditApi,
    // poem-openapi implements `OpenApi` for tuples of up to 16: the data APIs nest.
    (
        keys::KeysApi,
        kv::KvApi,
        recovery::RecoveryApi,
        files::FilesApi,
        file_shares::FileSharesApi,
        conversions::ConversionsApi,
    ),
    (
        webhooks::WebhooksApi,
        notifications::NotificationsApi,
        transfers::TransfersApi,
        plans::PlansApi,
        billing::BillingApi,
    ),
    (
        messaging::devices::DevicesApi,
        messaging::chats::ChatsApi,
        messaging::messages::MessagesApi,
        messaging::stream::StreamApi,
    ),
);

/// The OpenAPI service: every operation, with the document generated from the code.
pub fn api_service(state: &HttpState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            system::SystemApi {
                system: state.system.clone(),
            },
            (
                auth::AuthApi {
                    identity: state.identity.clone(),
                },
                sso::SsoApi {
                    sso: state.sso.clone(),
                    sso_only: state.sso_only,
                },
            ),
            password_reset::PasswordResetApi {
                password_reset: state.password_reset.clone(),
            },
            sessions::SessionsApi {
                identity: state.identity.clone(),
            },
            users::UsersApi {
                identity: state.identity.clone(),
                users: state.users.clone(),
            },
            organizations::OrganizationsApi {
                orgs: state.orgs.clone(),
            },
            invites::InvitesApi {
                invites: state.invites.clone(),
            },
            roles::RolesApi {
                orgs: state.orgs.clone(),
            },
            groups::TeamsApi {
                groups: state.groups.clone(),
            },
            groups::DepartmentsApi {
                groups: state.groups.clone(),
            },
            admin::AdminApi {
                admin: state.admin.clone(),
                password_reset: state.password_reset.clone(),
                keys: state.api_keys.clone(),
            },
            api_keys::ApiKeysApi {
                keys: state.api_keys.clone(),
            },
            audit::AuditApi {
                audit: state.audit.clone(),
            },
            (
                keys::KeysApi {
                    keys: state.keys.clone(),
                },
                kv::KvApi {
                    kv: state.kv.clone(),
                },
                recovery::RecoveryApi {
                    recovery: state.recovery.clone(),
                },
                files::FilesApi {
                    files: state.files.clone(),
                    public_url: state.public_url.clone(),
                },
                file_shares::FileSharesApi {
                    shares: state.file_shares.clone(),
                    public_url: state.public_url.clone(),
                },
                conversions::ConversionsApi {
                    conversions: state.conversions.clone(),
                },
            ),
            (
                webhooks::WebhooksApi {
                    webhooks: state.webhooks.clone(),
                },
                notifications::NotificationsApi {
                    notifications: state.notifications.clone(),
                },
                transfers::TransfersApi {
                    transfers: state.transfers.clone(),
                    public_url: state.public_url.clone(),
                },
                plans::PlansApi {
                    plans: state.plans.clone(),
                    offers: state.billing.offers(),
                },
                billing::BillingApi {
                    billing: state.billing.clone(),
                },
            ),
            (
                messaging::devices::DevicesApi {
                    messaging: state.messaging.clone(),
                },
                messaging::chats::ChatsApi {
                    messaging: state.messaging.clone(),
                },
                messaging::messages::MessagesApi {
                    messaging: state.messaging.clone(),
                },
                messaging::stream::StreamApi {
                    messaging: state.messaging.clone(),
                },
            ),
        ),
        "sealbox",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Self-hosted end-to-end encrypted file transfers, files and secrets. Every error \
         answers with the envelope `{\"error\": {\"code\", \"message\", \"details\", \
         \"requestId\"}}`.\n\nAn authenticated call acts in the organization named by the \
         `X-Organization-Id` header, or else in the caller's default organization. Objects \
         of organizations the caller is not an active member of answer 404; a suspended \
         organization answers 403 with code `ORG_SUSPENDED`.",
    )
}

/// The complete route tree with SPEC §3 conventions applied to every route.
pub fn routes(state: &HttpState) -> impl Endpoint + use<> {
    let api = api_service(state);
    let document =
        allow::OpenApiPaths::parse(&api.spec()).expect("poem-openapi renders valid JSON");
    let mut allow = allow::AllowIndex::from_openapi(&document);
    for static_route in [OPENAPI_PATH, "/assets/*", "/docs/*"] {
        allow.add(static_route, &["GET"]);
    }
    for (page, _) in ui::PAGES {
        allow.add(page, &["GET"]);
    }
    allow.add(ui::TRANSFER_PAGE_TEMPLATE, &["GET"]);
    allow.add(ui::APP_PAGES_TEMPLATE, &["GET"]);
    allow.add(upload_media::UPLOAD_MEDIA_PATH, &["POST"]);
    if state.metrics.is_some() {
        allow.add(metrics::METRICS_PATH, &["GET"]);
    }
    // The template of every route served below, for the request log and the metrics: the
    // API's from its document, the rest as they are routed.
    let uploads_token = format!("{}/:token", files::UPLOADS_PATH);
    let downloads_token = format!("{}/:token", files::DOWNLOADS_PATH);
    let transfer_uploads_token = format!("{}/:token", transfers::TRANSFER_UPLOADS_PATH);
    let public_transfer_file = format!("{}/:id/files/:file", transfers::PUBLIC_TRANSFERS_PATH);
    let templates = RouteTemplates::new(
        document
            .paths
            .keys()
            .cloned()
            .chain(ui::PAGES.iter().map(|(page, _)| (*page).to_owned()))
            .chain(
                [
                    ui::TRANSFER_PAGE_ROUTE,
                    ui::APP_PAGES_ROUTE,
                    OPENAPI_PATH,
                    ui::DOCS_FILES_ROUTE,
                    files::UPLOADS_PATH,
                    upload_media::UPLOAD_MEDIA_PATH,
                    uploads_token.as_str(),
                    downloads_token.as_str(),
                    transfer_uploads_token.as_str(),
                    public_transfer_file.as_str(),
                    "/assets/*path",
                ]
                .map(str::to_owned),
            )
            .chain(
                state
                    .metrics
                    .as_ref()
                    .map(|_| metrics::METRICS_PATH.to_owned()),
            ),
    );
    let spec = api.spec_endpoint();
    let api = Arc::new(
        api.with(idempotency::Idempotency(state.idempotency.clone()))
            .with(JsonBodyLimit {
                limit: state.json_body_limit,
                // The two operations whose JSON carries a payload with its own limit, and
                // only they; base64 takes 4 bytes for 3, plus the JSON around it.
                larger: Arc::new(vec![
                    (
                        poem::http::Method::PUT,
                        "/v1/kv/:key",
                        state.kv_value_limit / 3 * 4 + 8192,
                    ),
                    (
                        poem::http::Method::POST,
                        "/v1/files",
                        state.json_file_limit / 3 * 4 + 8192,
                    ),
                ]),
                signed: Arc::new(
                    billing::INBOUND_WEBHOOK_PATHS
                        .map(|path| (path, crate::service::billing::MAX_WEBHOOK_BODY_BYTES))
                        .to_vec(),
                ),
            }),
    );
    // Budgets apply to the API and the byte routes; /health stays free for probes and
    // load balancers.
    let budgets = rate_limit::RateLimited(state.rate_limits.clone());
    // Inside the budgets: what a spent budget refuses is not counted against the plan.
    let gate = plans::PlanGate(state.plans.clone());
    let limited = Arc::new(api.clone().with(gate.clone()).with(budgets.clone()));

    let tree = ui::PAGES
        .iter()
        .fold(Route::new(), |route, (page, _)| route.at(*page, ui::WebUi))
        .at(ui::TRANSFER_PAGE_ROUTE, ui::WebUi)
        .at(ui::APP_PAGES_ROUTE, ui::WebUi)
        .at(OPENAPI_PATH, poem::get(spec))
        .at(ui::DOCS_FILES_ROUTE, ui::WebUi)
        .at(
            files::UPLOADS_PATH,
            poem::post(uploads::tus_create)
                .options(uploads::tus_options)
                .with(gate.clone())
                .with(budgets.clone()),
        )
        .at(
            upload_media::UPLOAD_MEDIA_PATH,
            poem::post(upload_media::upload_media)
                .with(gate.clone())
                .with(budgets.clone()),
        )
        .at(
            &uploads_token,
            poem::put(uploads::put_whole)
                .patch(uploads::tus_patch)
                .head(uploads::tus_head)
                .delete(uploads::tus_delete)
                .with(budgets.clone()),
        )
        .at(
            &downloads_token,
            poem::get(uploads::download)
                .head(uploads::download)
                .with(budgets.clone()),
        )
        .at(
            &transfer_uploads_token,
            poem::post(uploads::transfer_tus_create)
                .options(uploads::tus_options)
                .with(budgets.clone()),
        )
        .at(
            &public_transfer_file,
            poem::get(uploads::transfer_download)
                .head(uploads::transfer_download)
                .with(budgets.clone()),
        )
        .nest_no_strip("/v1", limited.clone())
        .nest_no_strip("/admin", limited)
        .at("/health", api.clone())
        .at("/ready", api)
        .at("/assets/*path", ui::WebUi);
    // Budgets apply: the token is a secret worth guessing.
    let tree = match &state.metrics {
        Some(scrape) => tree.at(
            metrics::METRICS_PATH,
            poem::get(scrape.clone()).with(budgets),
        ),
        None => tree,
    };
    tree.data(uploads::ByteRoutes {
        files: state.files.clone(),
        transfers: state.transfers.clone(),
        public_url: state.public_url.clone(),
    })
    .data(state.identity.clone())
    .data(state.api_keys.clone())
    .data(state.trusted_proxies.clone())
    .with(CatchPanic::new().with_handler(|_panic| {
        tracing::error!("handler panicked");
        poem::error::ResponseError::as_response(&ApiError::internal()).into_response()
    }))
    .with(BodyIdleTimeout(state.body_idle_timeout))
    .with(Conventions {
        allow: Arc::new(allow),
        templates: Arc::new(templates),
    })
}

/// A PATCH field: absent (leave it), `null` (clear it) or a value (set it).
pub fn patch_field<T>(value: poem_openapi::types::MaybeUndefined<T>) -> Option<Option<T>> {
    use poem_openapi::types::MaybeUndefined;
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Parses an id from a path; a malformed id names nothing, so it is `404 what not found`.
pub fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("{what} not found")))
}

/// Who sent a request, for the audit log; the address as [`client_ip::client_ip`] finds it.
pub fn request_context(req: &poem::Request) -> RequestContext {
    const MAX_USER_AGENT: usize = 512;
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    RequestContext {
        ip: client_ip::client_ip(req).map(|ip| ip.to_string()),
        user_agent,
        request_id: req
            .extensions()
            .get::<request_id::RequestId>()
            .map(|id| id.as_str().to_owned()),
    }
}
