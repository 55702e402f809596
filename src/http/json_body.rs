//! `JsonBody<T>`: the JSON request payload of every API operation.
//!
//! poem-openapi's own `Json<T>` reports parse failures as one string without the field
//! they concern. This payload parses with serde through `serde_path_to_error`, so a
//! client learns exactly which field is wrong:
//! - not JSON at all (syntax error, truncated, empty): 400 `BAD_REQUEST`;
//! - JSON of the wrong shape (missing field, wrong type): 422 `VALIDATION` with
//!   `details: [{"path": "members[0].email", "message": ...}]`.
//!
//! Unknown fields are ignored, as the OpenAPI schemas allow, so newer clients keep
//! working against older servers.
//!
//! `T` derives both `poem_openapi::Object` (for the document) and `serde::Deserialize`
//! (for parsing) with the same field names.

use poem::{Request, RequestBody};
use poem_openapi::error::ContentTypeError;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime)
            if mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

// poem-openapi implements this for its own payloads with an internal macro; this is the
// same: the body is a request object, its content type is checked first.
impl<'a, T: Type + DeserializeOwned + Send> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
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
        match request.content_type() {
            Some(content_type) if Self::check_content_type(content_type) => {
                <Self as ParsePayload>::from_request(request, body).await
            }
            Some(content_type) => Err(ContentTypeError::NotSupported {
                content_type: content_type.to_owned(),
            }
            .into()),
            None => Err(ContentTypeError::ExpectContentType.into()),
        }
    }
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = <Vec<u8> as poem::FromRequest>::from_request(request, body).await?;
        parse(&bytes).map(JsonBody).map_err(Into::into)
    }
}

/// Parses `bytes` as a `T`, classifying failures as SPEC §3 asks.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            let path = if path == "." { String::new() } else { path };
            ApiError::validation("the request body does not match the expected shape")
                .with_detail(path, inner.to_string())
        } else {
            ApiError::bad_request(format!("the request body is not valid JSON: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Sample {
        display_name: String,
        members: Vec<Member>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Member {
        email: String,
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422_with_a_path() {
        for malformed in [
            &b"{"[..],
            b"not json",
            b"",
            b"  ",
            b"{\"displayName\": \"a\", \"members\": []} trailing",
        ] {
            let err = parse::<Sample>(malformed).unwrap_err();
            assert_eq!(
                err.status.as_u16(),
                400,
                "{:?}",
                String::from_utf8_lossy(malformed)
            );
        }
        let err =
            parse::<Sample>(br#"{"displayName": "a", "members": [{"email": 5}]}"#).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        assert_eq!(err.details[0].path, "members[0].email");

        let err = parse::<Sample>(br#"{"members": []}"#).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        assert!(
            err.details[0].message.contains("displayName"),
            "{:?}",
            err.details
        );

        assert!(parse::<Sample>(br#"{"displayName": "a", "members": [], "extra": 1}"#).is_ok());
    }
}
