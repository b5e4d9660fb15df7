//! A Rekognition-compatible endpoint in front of any [`FaceEngine`]: Rekognition's own wire
//! protocol (AWS JSON 1.1: `POST /` with `X-Amz-Target: RekognitionService.<Operation>`), requests
//! signed with SigV4 and checked against the configured access keys, and the collection
//! operations (create, describe, list, delete; IndexFaces, SearchFaces, SearchFacesByImage,
//! ListFaces, DeleteFaces) checked against the API model. Any AWS SDK can then use facegraph's
//! engine, and the Rekognition adapter has a real server to be tested against.
//!
//! It lives under `api/` because it is an HTTP front of the same kind as the REST API: it is served
//! by the same connection loop (`server.rs`), with the same header, idle and connection bounds for
//! slow clients, and it keeps the engine behind `spawn_blocking` as the REST handlers do.
//!
//! What differs from Rekognition: images come as bytes only (an S3 object is refused with
//! `InvalidS3ObjectException`), collections keep no tags, there are no users (ListFaces does not
//! filter by `UserId` or `FaceIds`), search matches carry the face's ids and similarity but not its
//! bounding box, image ids are UUIDs derived from facegraph's upload ids, and `MaxFaces` keeps the
//! largest faces, as the port does.

mod error;
mod ops;
mod shapes;
pub mod sigv4;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tower_http::timeout::TimeoutLayer;

pub use error::RekognitionError;
pub use ops::{Operation, TARGET_PREFIX};
pub use sigv4::{AccessKeys, AuthError, Caller};

use super::ApiConfig;
use crate::engine::FaceEngine;
use crate::model::CollectionId;

/// The largest request body: an image of 5 MB in base64 and the rest of the request.
pub const BODY_LIMIT: usize = 7 * 1024 * 1024 + 64 * 1024;

/// The clock skew SigV4 allows between a request's date and the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Which throttling error [`EndpointConfig::throttle_first`] answers with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThrottleError {
    /// `ThrottlingException` (HTTP 500).
    #[default]
    Throttling,
    /// `ProvisionedThroughputExceededException` (HTTP 400).
    ProvisionedThroughputExceeded,
}

/// How the endpoint runs.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// The access keys whose signatures are accepted.
    pub access_keys: AccessKeys,
    /// The HTTP bounds: request timeout, header read and keep-alive timeouts, connection cap,
    /// shutdown deadline (the REST API's).
    pub http: ApiConfig,
    /// The clock skew allowed between a request's signature date and the server's clock.
    pub max_clock_skew: Duration,
    /// For tests of clients' retries: the first this many signed requests are answered with
    /// `throttle_error` instead of being served. 0 in production.
    pub throttle_first: u32,
    /// The error of `throttle_first`.
    pub throttle_error: ThrottleError,
}

impl EndpointConfig {
    /// The defaults with these keys: the REST API's HTTP bounds, 15 minutes of clock skew, no
    /// throttling.
    pub fn new(access_keys: AccessKeys) -> Self {
        Self {
            access_keys,
            http: ApiConfig::default(),
            max_clock_skew: MAX_CLOCK_SKEW,
            throttle_first: 0,
            throttle_error: ThrottleError::default(),
        }
    }
}

/// The handlers' state: the engine, the keys, and the face model version of each collection seen.
#[derive(Clone, Debug)]
struct EndpointState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    engine: Arc<dyn FaceEngine>,
    config: EndpointConfig,
    versions: Versions,
    throttled: AtomicU32,
}

/// The face model version of each collection, asked of the engine once: every search and page of
/// faces answers with it, and it never changes for a collection.
#[derive(Debug, Default)]
pub struct Versions(Mutex<HashMap<CollectionId, String>>);

impl Versions {
    fn get(&self, id: &CollectionId) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn remember(&self, id: &CollectionId, version: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), version.to_owned());
    }
}

/// The endpoint's router: `POST /` for every operation, anything else answered with Rekognition's
/// error shape.
pub fn router(engine: Arc<dyn FaceEngine>, config: EndpointConfig) -> Router {
    let timeout = config.http.request_timeout;
    let state = EndpointState(Arc::new(Shared {
        engine,
        config,
        versions: Versions::default(),
        throttled: AtomicU32::new(0),
    }));
    Router::new()
        .route("/", post(handle))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(timeout_body))
        .with_state(state)
}

/// Serves the endpoint on `listener` until `shutdown` resolves, with the slow-client bounds and
/// shutdown deadline of `config.http`.
pub async fn run(
    listener: tokio::net::TcpListener,
    engine: Arc<dyn FaceEngine>,
    config: EndpointConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = config.http.clone();
    super::server::serve(listener, router(engine, config), &http, shutdown).await;
    Ok(())
}

/// One request: authenticate, find the operation, run it on the blocking pool, answer.
async fn handle(State(state): State<EndpointState>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = match serve(&state, request).await {
        Ok(body) => (StatusCode::OK, json_body(body)).into_response(),
        Err(e) => {
            tracing::debug!(kind = e.kind, status = %e.status, message = %e.message, "refused");
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    response
}

async fn serve(state: &EndpointState, request: Request) -> Result<String, RekognitionError> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| RekognitionError::too_large(BODY_LIMIT))?;
    let shared = &state.0;
    let caller = sigv4::verify(
        &sigv4::SignedRequest {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body: &body,
        },
        &shared.config.access_keys,
        SystemTime::now(),
        shared.config.max_clock_skew,
    )?;
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = Operation::from_target(target)
        .ok_or_else(|| RekognitionError::unknown_operation(target))?;
    if shared.throttled.fetch_add(1, Ordering::Relaxed) < shared.config.throttle_first {
        return Err(match shared.config.throttle_error {
            ThrottleError::Throttling => RekognitionError::throttling(),
            ThrottleError::ProvisionedThroughputExceeded => {
                RekognitionError::provisioned_throughput_exceeded()
            }
        });
    }
    tracing::debug!(?operation, access_key_id = %caller.access_key_id, "serving");
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let shared = &state.0;
        operation.run(shared.engine.as_ref(), &shared.versions, &body, &caller)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "an operation panicked");
        RekognitionError::internal()
    })?
}

/// A JSON body with AWS JSON 1.1's content type.
fn json_body(json: String) -> Response {
    let mut response = Body::from(json).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

async fn not_found() -> RekognitionError {
    RekognitionError::unknown_operation("(not POST /)")
}

/// The timeout layer answers with a bare 408; give it Rekognition's error shape.
async fn timeout_body(response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        RekognitionError::timeout().into_response()
    } else {
        response
    }
}
