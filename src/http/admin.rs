//! `/admin/...`: the instance-admin routes of the proxy reference, unversioned as there.

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::api_keys::ApiKeyView;
use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::organizations::{MemberView, OrganizationView};
use super::{ApiTags, path_id, request_context};
use crate::ids::{OrgId, UserId};
use crate::service::admin::NewAccount;
use crate::service::organizations::OrgWithRole;
use crate::service::{AdminService, ApiKeyService, PasswordResetService};

pub struct AdminApi {
    pub admin: AdminService,
    pub password_reset: PasswordResetService,
    pub keys: ApiKeyService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminOrganizationView {
    #[oai(flatten)]
    pub organization: OrganizationView,
    /// Active members.
    pub member_count: i64,
}

#[derive(Object, Deserialize)]
pub struct AdminCreateOrganizationRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    #[oai(validator(min_length = 2, max_length = 63))]
    pub slug: Option<String>,
}

/// A new account in the organization.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AdminCreateUserRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: String,
    /// Without one, the answer carries a single-use link (valid 72 h) to choose it.
    #[oai(validator(min_length = 10, max_length = 1024))]
    pub password: Option<String>,
    /// A built-in role or a custom role's id; `member` when absent.
    pub role: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminCreatedUser {
    pub user: MemberView,
    pub organization_id: String,
    /// Single-use link to choose a password, when the account was created without one.
    /// Shown once.
    pub set_password_url: Option<String>,
}

// Not derived: the set-password link is a credential until it is used.
impl std::fmt::Debug for AdminCreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCreatedUser")
            .field("user", &self.user)
            .field("organization_id", &self.organization_id)
            .field(
                "set_password_url",
                &self.set_password_url.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(ApiResponse)]
pub enum AdminOrganizationsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<AdminOrganizationView>>),
}

#[derive(ApiResponse)]
pub enum AdminCreatedOrganizationResponse {
    #[oai(status = 201)]
    Created(Json<OrganizationView>),
}

#[derive(ApiResponse)]
pub enum AdminUsersResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<MemberView>>),
}

#[derive(ApiResponse)]
pub enum AdminRotatedKeyResponse {
    /// The new key, shown once.
    #[oai(status = 201)]
    Created(Json<ApiKeyView>),
}

/// A password-reset link for an existing account, shown once.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AdminPasswordResetLink {
    /// Single-use link to choose a new password: the same kind forgot-password mails.
    /// Redeeming it signs the account out everywhere.
    pub reset_url: String,
    /// When the link stops working (RFC 3339), 1 hour after it was issued.
    pub expires_at: String,
    /// Whether it was also mailed to the account (mail is configured and the SMTP server
    /// accepted it). Hand the link over yourself when it was not.
    pub mailed: bool,
}

// Not derived: the link is a credential until it is used.
impl std::fmt::Debug for AdminPasswordResetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminPasswordResetLink")
            .field("expires_at", &self.expires_at)
            .field("mailed", &self.mailed)
            .finish_non_exhaustive()
    }
}

#[derive(ApiResponse)]
pub enum AdminPasswordResetResponse {
    /// A new link; earlier unused ones keep working until they expire.
    #[oai(status = 201)]
    Created(Json<AdminPasswordResetLink>),
}

#[derive(ApiResponse)]
pub enum AdminCreatedUserResponse {
    #[oai(status = 201)]
    Created(Json<AdminCreatedUser>),
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Create an organization
    ///
    /// Instance admins only. The organization starts without members; add its owner with
    /// `POST /admin/orgs/{orgId}/users` and `role: owner`.
    #[oai(
        path = "/admin/orgs",
        method = "post",
        operation_id = "adminCreateOrganization"
    )]
    async fn create_org(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<AdminCreateOrganizationRequest>,
    ) -> Result<AdminCreatedOrganizationResponse, ApiError> {
        let body = body.0;
        let org = self
            .admin
            .create_org(&auth.0, body.name, body.slug, request_context(req))
            .await?;
        Ok(AdminCreatedOrganizationResponse::Created(Json(
            OrgWithRole { org, role: None }.into(),
        )))
    }

    /// List every organization
    #[oai(
        path = "/admin/orgs",
        method = "get",
        operation_id = "adminListOrganizations"
    )]
    async fn list_orgs(&self, auth: Authenticated) -> Result<AdminOrganizationsResponse, ApiError> {
        let orgs = self.admin.orgs(&auth.0).await?;
        Ok(AdminOrganizationsResponse::Ok(Json(
            orgs.into_iter()
                .map(|(org, member_count)| AdminOrganizationView {
                    organization: OrgWithRole { org, role: None }.into(),
                    member_count,
                })
                .collect(),
        )))
    }

    /// Create an account in an organization
    #[oai(
        path = "/admin/orgs/:org_id/users",
        method = "post",
        operation_id = "adminCreateUser"
    )]
    async fn create_user(
        &self,
        req: &Request,
        auth: Authenticated,
        org_id: Path<String>,
        body: JsonBody<AdminCreateUserRequest>,
    ) -> Result<AdminCreatedUserResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let body = body.0;
        let account = NewAccount {
            email: body.email,
            display_name: body.display_name,
            password: body.password.map(Zeroizing::new),
            is_instance_admin: false,
        };
        let created = self
            .admin
            .add_user(&auth.0, org, account, body.role, request_context(req))
            .await?;
        let user = created.user;
        Ok(AdminCreatedUserResponse::Created(Json(AdminCreatedUser {
            user: MemberView {
                user_id: user.id.to_string(),
                email: user.email,
                display_name: user.display_name,
                avatar_url: user.avatar_url,
                role: created.role,
                status: "active".into(),
                joined_at: user.created_at,
            },
            organization_id: created.org_id.to_string(),
            set_password_url: created
                .set_password_token
                .map(|token| self.password_reset.link(&token).to_string()),
        })))
    }

    /// Rotate a user's API key
    ///
    /// Rotates the user's newest key in the organization (the old value keeps working for
    /// `gracePeriodHours`, default 24, at most 168), or issues their first key there.
    /// The answer carries the new key, once.
    #[oai(
        path = "/admin/orgs/:org_id/users/:user_id/apikey/rotate",
        method = "post",
        operation_id = "adminRotateUserApiKey"
    )]
    async fn rotate_user_key(
        &self,
        req: &Request,
        auth: Authenticated,
        org_id: Path<String>,
        user_id: Path<String>,
        #[oai(name = "gracePeriodHours", validator(maximum(value = "168")))]
        grace_period_hours: Query<Option<u32>>,
    ) -> Result<AdminRotatedKeyResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let user: UserId = path_id(&user_id.0, "member")?;
        let issued = self
            .keys
            .admin_rotate(
                &auth.0,
                org,
                user,
                grace_period_hours.0,
                request_context(req),
            )
            .await?;
        Ok(AdminRotatedKeyResponse::Created(Json(issued.into())))
    }

    /// Issue a password-reset link for an account
    ///
    /// For a member of the organization who cannot sign in: a single-use link valid for
    /// 1 hour, the same as forgot-password mails. With mail configured it is mailed to the
    /// account as well; the answer carries it either way (`mailed` says whether the mail
    /// went), once. Instance admins only; an account outside the organization is 404.
    #[oai(
        path = "/admin/orgs/:org_id/users/:user_id/password-reset",
        method = "post",
        operation_id = "adminIssuePasswordReset"
    )]
    async fn issue_password_reset(
        &self,
        req: &Request,
        auth: Authenticated,
        org_id: Path<String>,
        user_id: Path<String>,
    ) -> Result<AdminPasswordResetResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let user: UserId = path_id(&user_id.0, "member")?;
        let issued = self
            .password_reset
            .admin_issue(&auth.0, org, user, request_context(req))
            .await?;
        Ok(AdminPasswordResetResponse::Created(Json(
            AdminPasswordResetLink {
                reset_url: issued.url.to_string(),
                expires_at: issued.expires_at,
                mailed: issued.mailed,
            },
        )))
    }

    /// List the members of any organization
    #[oai(
        path = "/admin/orgs/:org_id/users",
        method = "get",
        operation_id = "adminListUsers"
    )]
    async fn list_users(
        &self,
        auth: Authenticated,
        org_id: Path<String>,
    ) -> Result<AdminUsersResponse, ApiError> {
        let org: OrgId = path_id(&org_id.0, "organization")?;
        let members = self.admin.org_users(&auth.0, org).await?;
        Ok(AdminUsersResponse::Ok(Json(
            members.into_iter().map(Into::into).collect(),
        )))
    }

    /// Instance status
    ///
    /// What the status page of the admin console shows: the version, the database schema
    /// version, free space where the data directory lives, the served certificate's
    /// expiry, and the webhook delivery queue. Instance admins only.
    #[oai(path = "/admin/status", method = "get", operation_id = "adminStatus")]
    async fn status(&self, auth: Authenticated) -> Result<AdminStatusResponse, ApiError> {
        let status = self.admin.status(&auth.0).await?;
        let certificate = match status.cert_file.clone() {
            None => None,
            // A small file read and parse: off the async runtime.
            Some(path) => Some(
                tokio::task::spawn_blocking(move || certificate_view(&path))
                    .await
                    .unwrap_or_else(|_| CertificateStatusView::unreadable("the read failed")),
            ),
        };
        Ok(AdminStatusResponse::Ok(Json(AdminStatusView {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: super::middleware::API_VERSION.to_owned(),
            schema_version: status.schema_version,
            latest_schema_version: status.latest_schema_version,
            disk: status.disk.map(|d| DiskSpaceView {
                available_bytes: d.available,
                total_bytes: d.total,
            }),
            tls: status.tls_mode.to_owned(),
            certificate,
            organizations: status.organizations,
            users: status.users,
            webhook_queue: WebhookQueueView {
                pending: status.webhook_pending,
                due: status.webhook_due,
                oldest_pending_at: status.webhook_oldest_pending,
            },
            checked_at: now_rfc3339(),
        })))
    }
}

/// The leaf of the PEM chain at `path`, summarized, or why it cannot be.
fn certificate_view(path: &std::path::Path) -> CertificateStatusView {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(_) => return CertificateStatusView::unreadable("the certificate file cannot be read"),
    };
    let Some(Ok(leaf)) = CertificateDer::pem_slice_iter(&pem).next() else {
        return CertificateStatusView::unreadable("the certificate file holds no certificate");
    };
    match super::tls::summarize(path, &leaf) {
        Ok(summary) => {
            let now = time::OffsetDateTime::now_utc();
            CertificateStatusView {
                not_after: summary
                    .not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok(),
                days_left: Some((summary.not_after - now).whole_days()),
                fingerprint: Some(summary.fingerprint),
                names: summary.names,
                problem: None,
            }
        }
        Err(_) => CertificateStatusView::unreadable("the certificate cannot be parsed"),
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `GET /admin/status`.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminStatusView {
    pub version: String,
    pub api_version: String,
    /// The database's schema version (SQLite `user_version`).
    pub schema_version: i64,
    /// The newest schema version this binary knows.
    pub latest_schema_version: i64,
    /// Space on the file system of the data directory; absent when it cannot be read.
    pub disk: Option<DiskSpaceView>,
    /// `off`, `self-signed` or `files`.
    pub tls: String,
    /// The served certificate; absent with TLS off.
    pub certificate: Option<CertificateStatusView>,
    pub organizations: i64,
    pub users: i64,
    pub webhook_queue: WebhookQueueView,
    pub checked_at: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DiskSpaceView {
    /// Bytes sealbox may still write.
    pub available_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CertificateStatusView {
    /// Expiry (RFC 3339).
    pub not_after: Option<String>,
    /// Whole days until expiry; negative once expired.
    pub days_left: Option<i64>,
    /// SHA-256 of the certificate, colon-separated hex.
    pub fingerprint: Option<String>,
    /// DNS names and addresses it is valid for.
    pub names: Vec<String>,
    /// Why the certificate file could not be read, when it could not.
    pub problem: Option<String>,
}

impl CertificateStatusView {
    fn unreadable(problem: &str) -> Self {
        Self {
            not_after: None,
            days_left: None,
            fingerprint: None,
            names: Vec::new(),
            problem: Some(problem.to_owned()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookQueueView {
    /// Deliveries waiting for an attempt.
    pub pending: i64,
    /// Of those, the ones due now.
    pub due: i64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<String>,
}

#[derive(ApiResponse)]
pub enum AdminStatusResponse {
    #[oai(status = 200)]
    Ok(Json<AdminStatusView>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_users_debug_hides_the_set_password_link() {
        let created = AdminCreatedUser {
            user: MemberView {
                user_id: "u".to_owned(),
                email: "a@example.com".to_owned(),
                display_name: "A".to_owned(),
                avatar_url: None,
                role: "member".to_owned(),
                status: "active".to_owned(),
                joined_at: "2026-01-01T00:00:00Z".to_owned(),
            },
            organization_id: "o".to_owned(),
            set_password_url: Some("https://box/reset?token=SECRET-TOKEN".to_owned()),
        };
        let shown = format!("{created:?}");
        assert!(!shown.contains("SECRET-TOKEN"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
