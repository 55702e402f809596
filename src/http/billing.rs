//! Payment processors over HTTP (the communication reference's "Subscriptions & billing"
//! and "Payment webhooks"): `POST /v1/subscriptions/{organizationId}/checkout`,
//! `GET /v1/billing/{organizationId}/invoices`, and the unauthenticated inbound webhooks
//! `POST /v1/webhooks/stripe`, `/v1/webhooks/paystack`, `/v1/webhooks/flutterwave`, whose
//! literal paths win over `/v1/webhooks/{id}`.

use poem::{Request, RequestBody};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
};
use serde::Deserialize;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::pagination::next_link;
use super::{ApiTags, path_id, request_context};
use crate::config::billing::Processor;
use crate::ids::OrgId;
use crate::service::billing::{
    BillingService, CheckoutInput, Receipt, Signatures, flutterwave, paystack, stripe,
};
use crate::service::page::PageRequest;
use crate::store::billing::Invoice;

/// The inbound webhook paths, which take a larger body than other unauthenticated
/// requests (`http::middleware::JsonBodyLimit::signed`).
pub const INBOUND_WEBHOOK_PATHS: [&str; 3] = [
    "/v1/webhooks/stripe",
    "/v1/webhooks/paystack",
    "/v1/webhooks/flutterwave",
];

pub struct BillingApi {
    pub billing: BillingService,
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequest {
    /// The plan to buy: a `[[plans]]` id sold through the provider.
    #[oai(validator(max_length = 64))]
    pub plan: String,
    /// `stripe`, `paystack` or `flutterwave`; it must be configured on this instance.
    #[oai(validator(max_length = 32))]
    pub provider: String,
    /// Where the processor sends the payer back to: an http(s) URL.
    #[oai(validator(max_length = 2048))]
    pub success_url: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CheckoutView {
    /// The processor's hosted checkout page: send the payer there.
    pub checkout_url: String,
}

/// An invoice (or, for Paystack and Flutterwave, a charge) the processor reported.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InvoiceView {
    pub id: String,
    pub organization_id: String,
    /// `stripe`, `paystack` or `flutterwave`.
    pub provider: String,
    /// The processor's id of the invoice or charge.
    pub provider_invoice_id: String,
    pub plan: Option<String>,
    /// `paid` or `failed`.
    pub status: String,
    /// In the currency's smallest unit (cents, kobo).
    pub amount: Option<i64>,
    /// ISO 4217, upper case.
    pub currency: Option<String>,
    /// The processor's page for the invoice, when it has one.
    pub url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> Self {
        Self {
            id: i.id,
            organization_id: i.org_id.to_string(),
            provider: i.provider,
            provider_invoice_id: i.provider_invoice_id,
            plan: i.plan_id,
            status: i.status,
            amount: i.amount,
            currency: i.currency.map(|c| c.to_ascii_uppercase()),
            url: i.hosted_url,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// The answer to a processor's delivery.
#[derive(Debug, Object)]
pub struct ReceivedView {
    pub received: bool,
    /// This event was applied before; nothing changed.
    pub duplicate: bool,
}

#[derive(ApiResponse)]
pub enum CheckoutResponse {
    /// The hosted checkout was created.
    #[oai(status = 201)]
    Created(Json<CheckoutView>),
}

#[derive(ApiResponse)]
pub enum InvoicesResponse {
    /// Newest first. `Link` points at the next (older) page when there is one.
    #[oai(status = 200)]
    Ok(
        Json<Vec<InvoiceView>>,
        #[oai(header = "Link")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum ReceivedResponse {
    /// Verified and applied, or verified and already applied before.
    #[oai(status = 200)]
    Ok(Json<ReceivedView>),
}

/// A JSON request body kept as its raw bytes: an inbound webhook's signature covers the
/// bytes exactly as sent, so nothing parses them before they are verified.
pub struct RawJson(pub Vec<u8>);

impl Payload for RawJson {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        super::json_body::JsonBody::<serde_json::Value>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        <serde_json::Value as Type>::schema_ref()
    }

    fn register(registry: &mut Registry) {
        <serde_json::Value as Type>::register(registry);
    }
}

impl<'a> ApiExtractor<'a> for RawJson {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The processor's event, exactly as it signed it."),
            content: vec![MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // Any content type: the signature decides, and a refusal is audited.
        <Self as ParsePayload>::from_request(request, body).await
    }
}

impl ParsePayload for RawJson {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        // `JsonBodyLimit` has bounded the body already (`signed` routes).
        Ok(RawJson(
            <Vec<u8> as poem::FromRequest>::from_request(request, body).await?,
        ))
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl BillingApi {
    async fn receive(
        &self,
        req: &Request,
        processor: Processor,
        signature_header: &str,
        body: RawJson,
    ) -> Result<ReceivedResponse, ApiError> {
        let signatures = Signatures {
            signature: header(req, signature_header),
            hash: (processor == Processor::Flutterwave)
                .then(|| header(req, flutterwave::HASH_HEADER))
                .flatten(),
        };
        let receipt = self
            .billing
            .receive(processor, signatures, body.0, request_context(req))
            .await?;
        Ok(ReceivedResponse::Ok(Json(ReceivedView {
            received: true,
            duplicate: receipt == Receipt::Duplicate,
        })))
    }
}

#[OpenApi(tag = "ApiTags::Billing")]
impl BillingApi {
    /// Create a hosted checkout
    ///
    /// Starts a checkout of `plan` with `provider` and answers the processor's hosted
    /// page. The organization moves to the plan when the processor's webhook confirms
    /// the payment. Owners and roles with `billing:manage` only; `422` names every
    /// problem, including what a processor that is not configured is missing.
    #[oai(
        path = "/v1/subscriptions/:organization_id/checkout",
        method = "post",
        operation_id = "createCheckout"
    )]
    async fn checkout(
        &self,
        req: &Request,
        auth: Authenticated,
        organization_id: Path<String>,
        body: JsonBody<CheckoutRequest>,
    ) -> Result<CheckoutResponse, ApiError> {
        let org: OrgId = path_id(&organization_id.0, "organization")?;
        let body = body.0;
        let url = self
            .billing
            .checkout(
                &auth.0,
                org,
                CheckoutInput {
                    plan: body.plan,
                    provider: body.provider,
                    success_url: body.success_url,
                },
                request_context(req),
            )
            .await?;
        Ok(CheckoutResponse::Created(Json(CheckoutView {
            checkout_url: url,
        })))
    }

    /// List invoices
    ///
    /// The organization's invoices as its payment processor reported them, newest first.
    /// Owners and roles with `billing:read` only.
    #[oai(
        path = "/v1/billing/:organization_id/invoices",
        method = "get",
        operation_id = "listInvoices"
    )]
    async fn invoices(
        &self,
        req: &Request,
        auth: Authenticated,
        organization_id: Path<String>,
        /// Page size: 1 to 200, default 50.
        limit: Query<Option<i64>>,
        /// The id of the last invoice seen: continue with older ones.
        before: Query<Option<String>>,
        /// An invoice id: list newer ones.
        after: Query<Option<String>>,
    ) -> Result<InvoicesResponse, ApiError> {
        let org: OrgId = path_id(&organization_id.0, "organization")?;
        let page = PageRequest::parse(limit.0, before.0, after.0)?;
        let page = self.billing.invoices(&auth.0, org, page).await?;
        let link = next_link(req, page.next.as_ref());
        Ok(InvoicesResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }

    /// Receive a Stripe event
    ///
    /// Verified before anything else: `Stripe-Signature` (`t=` and one or more `v1=`, the
    /// HMAC-SHA256 of `{t}.{raw body}` with the endpoint secret), at most 300 s old.
    /// Unsigned, wrongly signed or stale: 401; unreadable, unknown or unrelated events:
    /// 400; each refusal is audited and changes nothing. A redelivered event: 200,
    /// applied once.
    #[oai(
        path = "/v1/webhooks/stripe",
        method = "post",
        operation_id = "stripeWebhook"
    )]
    async fn stripe(&self, req: &Request, body: RawJson) -> Result<ReceivedResponse, ApiError> {
        self.receive(req, Processor::Stripe, stripe::SIGNATURE_HEADER, body)
            .await
    }

    /// Receive a Paystack event
    ///
    /// Verified before anything else: `x-paystack-signature`, the hex HMAC-SHA512 of the
    /// raw body with the secret key. Refusals as for Stripe.
    #[oai(
        path = "/v1/webhooks/paystack",
        method = "post",
        operation_id = "paystackWebhook"
    )]
    async fn paystack(&self, req: &Request, body: RawJson) -> Result<ReceivedResponse, ApiError> {
        self.receive(req, Processor::Paystack, paystack::SIGNATURE_HEADER, body)
            .await
    }

    /// Receive a Flutterwave event
    ///
    /// Verified before anything else: `verif-hash` equal to the configured secret hash,
    /// and, where `billing.flutterwave.require_signature_header` is on,
    /// `flutterwave-signature` (base64 HMAC-SHA256 of the raw body). Refusals as for
    /// Stripe.
    #[oai(
        path = "/v1/webhooks/flutterwave",
        method = "post",
        operation_id = "flutterwaveWebhook"
    )]
    async fn flutterwave(
        &self,
        req: &Request,
        body: RawJson,
    ) -> Result<ReceivedResponse, ApiError> {
        self.receive(
            req,
            Processor::Flutterwave,
            flutterwave::SIGNATURE_HEADER,
            body,
        )
        .await
    }
}
