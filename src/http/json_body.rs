//! `JsonBody<T>`: the JSON request payload of every API operation.
//!
//! poem-openapi's own `Json<T>` reports parse failures as one string without the field
//! they concern. This payload parses with serde through `serde_path_to_error`, so a
//! client learns exactly which field is wrong:
//! - not JSON at all (syntax error, truncated, empty): 400 `BAD_REQUEST`;
//! - JSON of the wrong shape (missing field, wrong type): 422 `VALIDATION` with
//!   `details: [{"path": "members[0].email", "message": ...}]`.
//!
//! - a body that is not a JSON object, or `null` for a field the schema does not mark
//!   nullable: 422 (leave an optional field out instead);
//!
//! The schema's constraints (lengths, patterns) document rules the services enforce with
//! field paths in `details`, after the checks that must come first (a setup or invite
//! token is checked before anything about the request is judged).
//!
//! Unknown fields are ignored, as the OpenAPI schemas allow, so newer clients keep
//! working against older servers.
//!
//! `T` derives both `poem_openapi::Object` (for the document) and `serde::Deserialize`
//! (for parsing) with the same field names.

use poem::{Request, RequestBody};
use poem_openapi::error::ContentTypeError;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::MetaSchema;
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
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
impl<'a, T: ParseFromJSON + DeserializeOwned + Send> ApiExtractor<'a> for JsonBody<T> {
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

impl<T: ParseFromJSON + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = <Vec<u8> as poem::FromRequest>::from_request(request, body).await?;
        parse(&bytes).map(JsonBody).map_err(Into::into)
    }
}

/// Parses `bytes` as a `T`, classifying failures as SPEC §3 asks.
pub fn parse<T: DeserializeOwned + Type>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(fields) = &value else {
        return Err(
            ApiError::validation("the request body must be a JSON object")
                .with_detail("", "expected an object"),
        );
    };
    let not_nullable = non_nullable_fields::<T>();
    let nulls: Vec<&String> = fields
        .iter()
        .filter(|(name, v)| v.is_null() && not_nullable.contains(&name.as_str()))
        .map(|(name, _)| name)
        .collect();
    if !nulls.is_empty() {
        return Err(nulls.into_iter().fold(
            ApiError::validation("the request body does not match the expected shape"),
            |e, name| {
                e.with_detail(
                    name.clone(),
                    "must not be null; leave the field out instead",
                )
            },
        ));
    }
    let parsed: T = serde_path_to_error::deserialize(&value).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ApiError::validation("the request body does not match the expected shape")
            .with_detail(path, err.into_inner().to_string())
    })?;
    Ok(parsed)
}

/// The top-level fields of `T`'s schema that may not be `null` (unknown fields, ignored
/// anyway, are not among them).
fn non_nullable_fields<T: Type>() -> Vec<&'static str> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema: Option<&MetaSchema> = match T::schema_ref() {
        MetaSchemaRef::Reference(name) => registry.schemas.get(&name),
        MetaSchemaRef::Inline(_) => None,
    };
    schema
        .map(|schema| {
            schema
                .properties
                .iter()
                .filter(|(_, property)| {
                    !matches!(property, MetaSchemaRef::Inline(inline) if inline.nullable)
                })
                .map(|(name, _)| *name)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, poem_openapi::Object)]
    #[serde(rename_all = "camelCase")]
    #[oai(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Sample {
        display_name: String,
        members: Vec<Member>,
        note: Option<String>,
        #[oai(nullable)]
        #[serde(default)]
        avatar: poem_openapi::types::MaybeUndefined<String>,
    }

    #[derive(Debug, serde::Deserialize, poem_openapi::Object)]
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

    #[test]
    fn only_objects_and_declared_nulls_pass() {
        let err = parse::<Sample>(br#"["a", []]"#).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        let err =
            parse::<Sample>(br#"{"displayName": "a", "members": [], "note": null}"#).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.details[0].path.as_str()),
            (422, "note")
        );
        let ok = parse::<Sample>(
            br#"{"displayName": "a", "members": [], "avatar": null, "unknown": null}"#,
        )
        .unwrap();
        assert!(ok.avatar.is_null());
    }
}
