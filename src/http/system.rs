//! `GET /health`, `GET /ready` and `GET /v1/welcome`.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiError;
use super::middleware::API_VERSION;
use crate::service::SystemService;

pub struct SystemApi {
    pub system: SystemService,
}

#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok`; an unhealthy server answers 503 with the error envelope.
    pub status: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Welcome {
    pub name: String,
    /// Version of the sealbox binary.
    pub version: String,
    /// Date-based API version, also sent as `X-Sealbox-Api-Version`.
    pub api_version: String,
    /// Id of this installation.
    pub instance_id: String,
    /// Interactive API reference.
    pub docs_url: String,
    /// OpenAPI document.
    pub openapi_url: String,
}

#[OpenApi(tag = "ApiTags::System")]
impl SystemApi {
    /// Liveness
    ///
    /// Answers `{"status":"ok"}` once the database has answered a query.
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn health(&self) -> Result<Json<Health>, ApiError> {
        self.system.health().await?;
        Ok(Json(Health {
            status: "ok".into(),
        }))
    }

    /// Readiness
    ///
    /// Answers `{"status":"ok"}` when the database answers a query and the data
    /// directory takes a durable write; otherwise 503 with the error envelope saying
    /// which failed. For load balancers and orchestration: a server can be alive
    /// (`/health`) but unable to accept uploads (a full or read-only disk).
    #[oai(path = "/ready", method = "get", operation_id = "getReady")]
    async fn ready(&self) -> Result<Json<Health>, ApiError> {
        self.system.ready().await?;
        Ok(Json(Health {
            status: "ok".into(),
        }))
    }

    /// What this server is
    #[oai(path = "/v1/welcome", method = "get", operation_id = "getWelcome")]
    async fn welcome(&self) -> Result<Json<Welcome>, ApiError> {
        Ok(Json(Welcome {
            name: "sealbox".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: API_VERSION.into(),
            instance_id: self.system.instance().id.clone(),
            docs_url: super::DOCS_PATH.into(),
            openapi_url: super::OPENAPI_PATH.into(),
        }))
    }
}
