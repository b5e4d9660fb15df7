//! Extractors that answer every rejection with the API's error body: JSON bodies (content type,
//! size limit, field paths of type errors), query strings, and raw bodies under a limit.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};

/// The media type of a request, lowercase, without parameters; `None` when absent.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = v.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// Reads a body of at most `limit` bytes: a declared `Content-Length` above it is refused before
/// anything is read, and a body that grows past it while streaming is refused too.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(e) => Err(ApiError::field(
            "body",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Parses JSON, naming the path of the first field that does not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        ApiError::field(field, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ApiError::field("body", e.to_string()))?;
    Ok(value)
}

/// A JSON body: `Content-Type: application/json`, at most the JSON limit, fields checked by serde.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        match media_type(&parts.headers).as_deref() {
            Some("application/json") => {}
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body must be JSON (Content-Type: application/json), not {}",
                    other.unwrap_or("untyped")
                )))
            }
        }
        let bytes = read_body(&parts.headers, body, state.config().json_limit).await?;
        parse_json(&bytes).map(Self)
    }
}

/// Query parameters, with a field-level 400 when they do not parse.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| Self(q))
            .map_err(|e| ApiError::field("query", e.body_text()))
    }
}

/// The default page size of lists.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page size of lists.
pub const MAX_LIMIT: usize = 500;

/// Checks a page size: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field(
            "limit",
            format!("must be from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// An opaque cursor: the position after which the next page starts, as hex of its JSON, so that
/// clients treat it as a token and the server may change its content.
pub fn encode_cursor<T: serde::Serialize>(position: &T) -> String {
    hex::encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Reads a cursor made by [`encode_cursor`].
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    let bad = || ApiError::field("cursor", "is not a cursor this server issued");
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}
