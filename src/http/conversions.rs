//! `/v1/formats` and `/v1/conversions`: what converts to what, and conversion jobs
//! (docs/conversions.md). Creating answers 202: the job is queued and runs in the
//! background; `GET /v1/conversions/{id}` follows it.

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::pagination::next_link;
use super::vault::{SecretHeader, optional_secret};
use super::{ApiTags, request_context};
use crate::service::conversions::{ConversionService, NewConversion, formats};
use crate::service::page::PageRequest;
use crate::store::conversions::Conversion;

pub struct ConversionsApi {
    pub conversions: ConversionService,
}

/// One option of a conversion.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FormatOptionView {
    pub name: String,
    /// `integer`, `string` or `boolean`.
    #[oai(rename = "type")]
    pub kind: String,
    pub description: String,
}

/// One conversion the server has.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FormatView {
    pub from: String,
    pub to: String,
    /// The content type of a result.
    pub content_type: String,
    pub options: Vec<FormatOptionView>,
}

/// One conversion to make.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ConversionRequest {
    /// One of your files that sealbox encrypted (not an end-to-end one).
    pub file_id: String,
    /// The target format (`GET /v1/formats`).
    pub to: String,
    /// The source format; absent: from the file's content type.
    pub from: Option<String>,
    /// The conversion's options (`GET /v1/formats` lists each conversion's).
    pub options: Option<serde_json::Value>,
}

/// Several conversions, made all or none.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct BulkConversionRequest {
    /// 1 to `conversions.bulk_max` (default 100) conversions.
    pub items: Vec<ConversionRequest>,
}

/// A conversion job.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ConversionView {
    pub id: String,
    /// The source file.
    pub file_id: String,
    pub from: String,
    pub to: String,
    pub options: serde_json::Value,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// 0 to 100.
    pub progress: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The converted file, once succeeded: one of your files, like an upload.
    pub result_file_id: Option<String>,
    pub created_utc: String,
    pub updated_utc: String,
    pub finished_utc: Option<String>,
}

impl From<Conversion> for ConversionView {
    fn from(c: Conversion) -> Self {
        Self {
            id: c.id.to_string(),
            file_id: c.source_file_id.to_string(),
            from: c.source_format,
            to: c.target_format,
            options: serde_json::from_str(&c.options).unwrap_or_default(),
            status: c.status.as_str().to_owned(),
            progress: c.progress,
            error: c.error,
            result_file_id: c.result_file_id.map(|id| id.to_string()),
            created_utc: c.created_at,
            updated_utc: c.updated_at,
            finished_utc: c.finished_at,
        }
    }
}

/// The jobs a bulk request queued, in the order of its items.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct BulkConversionView {
    pub items: Vec<ConversionView>,
}

#[derive(ApiResponse)]
pub enum FormatsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<FormatView>>),
}

#[derive(ApiResponse)]
pub enum QueuedResponse {
    /// Queued; follow it with `GET /v1/conversions/{id}`.
    #[oai(status = 202)]
    Accepted(Json<ConversionView>),
}

#[derive(ApiResponse)]
pub enum BulkQueuedResponse {
    /// All queued.
    #[oai(status = 202)]
    Accepted(Json<BulkConversionView>),
}

#[derive(ApiResponse)]
pub enum ConversionResponse {
    #[oai(status = 200)]
    Ok(Json<ConversionView>),
}

#[derive(ApiResponse)]
pub enum ConversionsResponse {
    /// Newest first. `Link` points at the next (older) page when there is one.
    #[oai(status = 200)]
    Ok(
        Json<Vec<ConversionView>>,
        #[oai(header = "Link")] Option<String>,
    ),
}

fn new_conversion(r: ConversionRequest) -> NewConversion {
    NewConversion {
        file_id: r.file_id,
        to: r.to,
        from: r.from,
        options: r.options,
    }
}

#[OpenApi(tag = "ApiTags::Conversions")]
impl ConversionsApi {
    /// List the supported conversions
    ///
    /// Every conversion this server's converters make: source and target format, the
    /// result's content type and the options it takes. Any valid credential.
    #[oai(path = "/v1/formats", method = "get", operation_id = "listFormats")]
    async fn formats(&self, _auth: Authenticated) -> Result<FormatsResponse, ApiError> {
        Ok(FormatsResponse::Ok(Json(
            formats::all()
                .into_iter()
                .map(|(from, to, options)| FormatView {
                    from: from.key().to_owned(),
                    to: to.key().to_owned(),
                    content_type: to.content_type().to_owned(),
                    options: options
                        .iter()
                        .map(|o| FormatOptionView {
                            name: o.name.to_owned(),
                            kind: o.kind.to_owned(),
                            description: o.description.to_owned(),
                        })
                        .collect(),
                })
                .collect(),
        )))
    }

    /// Convert a file
    ///
    /// Queues the conversion of one of your server-encrypted files (`convert:write`);
    /// `X-User-Secret` unlocks it. The result becomes a new file of yours. An end-to-end
    /// encrypted file cannot be converted (422). The plan needs the `conversions` feature
    /// (403 `PLAN_REQUIRED`) and counts the conversion against its daily quota (429
    /// `QUOTA_EXCEEDED`).
    #[oai(
        path = "/v1/conversions",
        method = "post",
        operation_id = "createConversion"
    )]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
        body: JsonBody<ConversionRequest>,
    ) -> Result<QueuedResponse, ApiError> {
        let secret = optional_secret(secret.0);
        let mut jobs = self
            .conversions
            .create(
                &auth.0,
                secret.as_ref(),
                vec![new_conversion(body.0)],
                false,
                request_context(req),
            )
            .await?;
        let job = jobs.pop().ok_or_else(ApiError::internal)?;
        Ok(QueuedResponse::Accepted(Json(job.into())))
    }

    /// Convert several files
    ///
    /// As `POST /v1/conversions` for each item, all or none: one refused item refuses the
    /// request, with each problem under `items[n]`. At most `conversions.bulk_max` items.
    #[oai(
        path = "/v1/conversions/bulk",
        method = "post",
        operation_id = "createConversions"
    )]
    async fn bulk(
        &self,
        req: &Request,
        auth: Authenticated,
        #[oai(name = "X-User-Secret")] secret: SecretHeader,
        body: JsonBody<BulkConversionRequest>,
    ) -> Result<BulkQueuedResponse, ApiError> {
        let secret = optional_secret(secret.0);
        let jobs = self
            .conversions
            .create(
                &auth.0,
                secret.as_ref(),
                body.0.items.into_iter().map(new_conversion).collect(),
                true,
                request_context(req),
            )
            .await?;
        Ok(BulkQueuedResponse::Accepted(Json(BulkConversionView {
            items: jobs.into_iter().map(Into::into).collect(),
        })))
    }

    /// List your conversions
    #[oai(
        path = "/v1/conversions",
        method = "get",
        operation_id = "listConversions"
    )]
    async fn list(
        &self,
        req: &Request,
        auth: Authenticated,
        /// Page size: 1 to 200, default 50.
        limit: Query<Option<i64>>,
        /// The id of the last conversion seen: continue with older ones.
        before: Query<Option<String>>,
        /// A conversion id: list newer ones.
        after: Query<Option<String>>,
    ) -> Result<ConversionsResponse, ApiError> {
        let page = PageRequest::parse(limit.0, before.0, after.0)?;
        let page = self.conversions.list(&auth.0, page).await?;
        let link = next_link(req, page.next.as_ref());
        Ok(ConversionsResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }

    /// Get a conversion
    ///
    /// Status, progress, error and the result's `fileId`. Any valid credential may read
    /// its own conversions; no scope is needed.
    #[oai(
        path = "/v1/conversions/:id",
        method = "get",
        operation_id = "getConversion"
    )]
    async fn get(
        &self,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<ConversionResponse, ApiError> {
        let job = self.conversions.get(&auth.0, &id.0).await?;
        Ok(ConversionResponse::Ok(Json(job.into())))
    }

    /// Cancel a conversion
    ///
    /// A queued or running conversion becomes `cancelled` (a running one's result is
    /// discarded); a finished one is 409 (`convert:write`).
    #[oai(
        path = "/v1/conversions/:id",
        method = "delete",
        operation_id = "cancelConversion"
    )]
    async fn cancel(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<ConversionResponse, ApiError> {
        let job = self
            .conversions
            .cancel(&auth.0, &id.0, request_context(req))
            .await?;
        Ok(ConversionResponse::Ok(Json(job.into())))
    }
}
