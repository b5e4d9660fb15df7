//! The API's one error type: every failure becomes `{"error": {"code", "message", "details"}}` with
//! a stable code. Server-side failures are logged with their cause chain and answered with a generic
//! message, so that no internal detail reaches a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::{EngineError, ImageError};
use crate::model::ParseError;
use crate::service::ServiceError;
use crate::store::StoreError;

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code for programs: `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `payload_too_large`, `unsupported_media_type`, `timeout`, `unavailable`, `internal`, ...
    #[schema(example = "invalid_request")]
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// Field-level problems of invalid input; empty otherwise.
    pub details: Vec<FieldError>,
}

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where: a JSON path such as `face_a.gender.confidence`, or a query parameter's name.
    #[schema(example = "face_a.gender.confidence")]
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An API failure, mapped to a status code and the error body in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Invalid input; the details name the fields.
    #[error("{message}")]
    BadRequest {
        /// A summary.
        message: String,
        /// The fields.
        details: Vec<FieldError>,
    },
    /// No key, or an unknown key.
    #[error("a valid API key is required")]
    Unauthorized,
    /// A key without the role the endpoint needs.
    #[error("the API key {name} lacks the {role} role")]
    Forbidden {
        /// The key's name.
        name: String,
        /// The role needed.
        role: &'static str,
    },
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A state conflict.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body's media type is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request took longer than the server allows.
    #[error("the request took longer than the server allows")]
    Timeout,
    /// A component is missing or down; the message says which, the cause is logged.
    #[error("{message}")]
    Unavailable {
        /// For the client.
        message: String,
        /// For the log.
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The face engine failed; logged, hidden.
    #[error("the face engine failed")]
    BadGateway(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else; logged, hidden.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 400 about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let details = vec![FieldError {
            field: field.into(),
            message: message.into(),
        }];
        Self::invalid(details)
    }

    /// A 400 about several fields.
    pub fn invalid(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", details.len()),
        };
        Self::BadRequest { message, details }
    }

    /// A 503 with a message for the client and a cause for the log.
    pub fn unavailable(
        message: impl Into<String>,
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            message: message.into(),
            cause,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Timeout => "timeout",
            Self::Unavailable { .. } => "unavailable",
            Self::BadGateway(_) => "engine_failed",
            Self::Internal(_) => "internal",
        }
    }

    /// The error body this error answers with.
    pub fn body(&self) -> ErrorBody {
        let details = match self {
            Self::BadRequest { details, .. } => details.clone(),
            _ => Vec::new(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                details,
            },
        }
    }
}

/// The error and its causes, for the log.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::errors::chain(err)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The client gets the generic message; operators get the whole chain.
            tracing::error!(code = self.code(), error = %chain(&self), "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::UnknownFace(id) => {
                Self::NotFound(format!("face {id} is not in the graph"))
            }
            ServiceError::SamePair(id) => Self::field(
                "face_b",
                format!("a face cannot be matched against itself ({id})"),
            ),
            ServiceError::Invalid(message) => Self::BadRequest {
                message,
                details: Vec::new(),
            },
            ServiceError::Engine(e) => e.into(),
            // A face that contradicts the stored one is the input's fault, not the server's.
            ServiceError::Store(e @ StoreError::Conflict { .. }) => Self::Conflict(e.to_string()),
            e @ (ServiceError::Store(_) | ServiceError::Inconsistent(_)) => {
                Self::Internal(Box::new(e))
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidImage(ImageError::UnsupportedFormat { found }) => {
                Self::UnsupportedMediaType(format!(
                    "the image is not JPEG or PNG by its content (found: {found})"
                ))
            }
            EngineError::InvalidImage(ImageError::TooManyBytes { limit, .. }) => {
                Self::PayloadTooLarge { limit }
            }
            EngineError::InvalidImage(e) => Self::field("image", e.to_string()),
            EngineError::NoFaceInImage => Self::field("image", e.to_string()),
            EngineError::InvalidParameter(m) => Self::BadRequest {
                message: m,
                details: Vec::new(),
            },
            EngineError::InvalidPaginationToken(_) => Self::BadRequest {
                message: e.to_string(),
                details: Vec::new(),
            },
            EngineError::CollectionNotFound(_) | EngineError::FaceNotFound { .. } => {
                Self::NotFound(e.to_string())
            }
            EngineError::CollectionExists(_) => Self::Conflict(e.to_string()),
            EngineError::ModelsMissing { .. } => Self::unavailable(
                "the face engine is not ready: its models are missing",
                Some(Box::new(e)),
            ),
            EngineError::Backend { .. } => Self::BadGateway(Box::new(e)),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(Box::new(e))
    }
}

/// Collects field errors while a request is turned into domain values, so that one response names
/// every invalid field.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Records a parse failure of `field`; returns the value when it parsed.
    pub fn check<T>(&mut self, field: &str, r: Result<T, ParseError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(FieldError {
                    field: field.to_owned(),
                    message: e.rule,
                });
                None
            }
        }
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// `Ok` when no field was invalid, else a 400 naming them all.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::fixtures::face_id;
    use crate::store::FaceField;

    #[test]
    fn a_face_in_conflict_with_the_store_is_a_409_naming_it() {
        let e = ApiError::from(ServiceError::Store(StoreError::Conflict {
            face_id: face_id(1),
            field: FaceField::Gender,
            stored: "Female (99.5)".to_owned(),
            incoming: "Male (99.5)".to_owned(),
        }));
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert!(e.to_string().contains("gender differs"), "{e}");
    }
}
