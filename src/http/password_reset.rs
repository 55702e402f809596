//! `/v1/auth/forgot-password` and `/v1/auth/reset-password`: a single-use link by mail,
//! and redeeming it for a new password.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::request_context;
use crate::service::PasswordResetService;

pub struct PasswordResetApi {
    pub password_reset: PasswordResetService,
}

#[derive(Object, Deserialize)]
pub struct ForgotPasswordRequest {
    /// The account's email address.
    #[oai(validator(max_length = 254))]
    pub email: String,
}

#[derive(Object, Deserialize)]
pub struct ResetPasswordRequest {
    /// The `token` parameter of the link.
    #[oai(validator(max_length = 256))]
    pub token: String,
    /// The new password: at least 10 characters, not a common password.
    #[oai(validator(min_length = 10, max_length = 1024))]
    pub password: String,
}

/// `{"status": "accepted"}`.
#[derive(Debug, Object)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum ForgotPasswordResponse {
    /// Accepted. Said for every address, whether or not it has an account.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
}

#[derive(ApiResponse)]
pub enum ResetPasswordResponse {
    /// The password is changed and every session of the account is revoked.
    #[oai(status = 204)]
    Reset,
}

#[OpenApi]
impl PasswordResetApi {
    /// Ask for a password-reset link
    ///
    /// Always answers 202, whether or not the address has an account. When it has one
    /// and mail is configured, a link valid for 1 hour is mailed to it; without mail, an
    /// admin issues the link (`sealbox admin reset-password`).
    #[oai(
        path = "/v1/auth/forgot-password",
        method = "post",
        operation_id = "forgotPassword",
        tag = "ApiTags::Auth"
    )]
    async fn forgot_password(
        &self,
        req: &Request,
        body: JsonBody<ForgotPasswordRequest>,
    ) -> Result<ForgotPasswordResponse, ApiError> {
        self.password_reset
            .forgot(body.0.email, request_context(req))
            .await?;
        Ok(ForgotPasswordResponse::Accepted(Json(Accepted {
            status: "accepted".into(),
        })))
    }

    /// Set a new password with a reset link's token
    ///
    /// The token works once and expires. Success signs the account out everywhere: every
    /// session, its refresh tokens and access tokens, stops working.
    #[oai(
        path = "/v1/auth/reset-password",
        method = "post",
        operation_id = "resetPassword",
        tag = "ApiTags::Auth"
    )]
    async fn reset_password(
        &self,
        req: &Request,
        body: JsonBody<ResetPasswordRequest>,
    ) -> Result<ResetPasswordResponse, ApiError> {
        let body = body.0;
        self.password_reset
            .reset(body.token, body.password, request_context(req))
            .await?;
        Ok(ResetPasswordResponse::Reset)
    }
}
