//! The endpoint's errors in Rekognition's shape: the error's name in `__type` and in the
//! `x-amzn-ErrorType` header (which the SDKs read first), its message, and the HTTP status AWS
//! answers it with. The service's own exceptions carry `Code` and `Message` as Rekognition writes
//! them; the front door's (signature, unknown operation, malformed body) carry `message`, as AWS's
//! request layer writes them.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::sigv4::AuthError;
use crate::engine::{EngineError, ImageError};

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekognitionError {
    /// The error's name, such as `InvalidParameterException`.
    pub kind: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
    /// Whether the request layer answers it (`message`) rather than the service (`Message`).
    front_door: bool,
}

impl RekognitionError {
    fn service(kind: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            message: message.into(),
            front_door: false,
        }
    }

    fn front_door(kind: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            message: message.into(),
            front_door: true,
        }
    }

    /// A parameter breaks the API model's constraints, or the operation's.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::service(
            "InvalidParameterException",
            StatusCode::BAD_REQUEST,
            message,
        )
    }

    /// The body is not the operation's JSON.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::front_door("SerializationException", StatusCode::BAD_REQUEST, message)
    }

    /// The `X-Amz-Target` names no operation of this endpoint.
    pub fn unknown_operation(target: &str) -> Self {
        Self::front_door(
            "UnknownOperationException",
            StatusCode::BAD_REQUEST,
            format!("The operation {target:?} is not one this endpoint serves."),
        )
    }

    /// The body is larger than any request of the API model.
    pub fn too_large(limit: usize) -> Self {
        Self::front_door(
            "RequestEntityTooLargeException",
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {limit} bytes."),
        )
    }

    /// The request took longer than the server allows.
    pub fn timeout() -> Self {
        Self::front_door(
            "RequestTimeoutException",
            StatusCode::REQUEST_TIMEOUT,
            "The request took too long.",
        )
    }

    /// The service is busy: the request may be sent again.
    pub fn throttling() -> Self {
        Self::service(
            "ThrottlingException",
            StatusCode::INTERNAL_SERVER_ERROR,
            "Amazon Rekognition is temporarily unable to process the request. Try your call again.",
        )
    }

    /// The caller sent more than its throughput.
    pub fn provisioned_throughput_exceeded() -> Self {
        Self::service(
            "ProvisionedThroughputExceededException",
            StatusCode::BAD_REQUEST,
            "The number of requests exceeded your throughput limit.",
        )
    }

    /// An S3 object was named: this endpoint reads only image bytes.
    pub fn s3_unsupported() -> Self {
        Self::service(
            "InvalidS3ObjectException",
            StatusCode::BAD_REQUEST,
            "This endpoint cannot read S3 objects: send the image's bytes in Image.Bytes.",
        )
    }

    /// A pagination token this endpoint did not hand out.
    pub fn invalid_token() -> Self {
        Self::service(
            "InvalidPaginationTokenException",
            StatusCode::BAD_REQUEST,
            "Invalid Token",
        )
    }

    /// Something failed behind the endpoint; the details go to the log, not the client.
    pub fn internal() -> Self {
        Self::service(
            "InternalServerError",
            StatusCode::INTERNAL_SERVER_ERROR,
            "Amazon Rekognition experienced a service issue. Try your call again.",
        )
    }
}

impl From<AuthError> for RekognitionError {
    fn from(e: AuthError) -> Self {
        let kind = match e {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::Invalid(_) => "InvalidSignatureException",
        };
        Self::front_door(kind, StatusCode::FORBIDDEN, e.to_string())
    }
}

impl From<EngineError> for RekognitionError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::CollectionNotFound(id) => Self::service(
                "ResourceNotFoundException",
                StatusCode::BAD_REQUEST,
                format!("The collection id: {id} does not exist"),
            ),
            EngineError::CollectionExists(id) => Self::service(
                "ResourceAlreadyExistsException",
                StatusCode::BAD_REQUEST,
                format!("The collection id: {id} already exists"),
            ),
            EngineError::FaceNotFound {
                collection_id,
                face_id,
            } => Self::invalid_parameter(format!(
                "The face id: {face_id} does not exist in the collection id: {collection_id}"
            )),
            EngineError::NoFaceInImage => {
                Self::invalid_parameter("There are no faces in the image. Should be at least 1.")
            }
            EngineError::InvalidImage(
                ImageError::TooManyBytes { .. }
                | ImageError::TooManyPixels { .. }
                | ImageError::TooManyDecodedBytes { .. },
            ) => Self::service(
                "ImageTooLargeException",
                StatusCode::BAD_REQUEST,
                format!("{e}"),
            ),
            EngineError::InvalidImage(_) => Self::service(
                "InvalidImageFormatException",
                StatusCode::BAD_REQUEST,
                "Request has invalid image format",
            ),
            EngineError::InvalidParameter(m) => Self::invalid_parameter(m),
            EngineError::InvalidPaginationToken(_) => Self::invalid_token(),
            e @ (EngineError::ModelsMissing { .. } | EngineError::Backend { .. }) => {
                tracing::error!(error = %crate::errors::Chain(&e), "the face engine failed");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for RekognitionError {
    fn into_response(self) -> Response {
        let body = if self.front_door {
            serde_json::json!({"__type": self.kind, "message": self.message})
        } else {
            serde_json::json!({"__type": self.kind, "Code": self.kind, "Message": self.message})
        };
        let mut response = (self.status, super::json_body(body.to_string())).into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        response
    }
}
