//! The REST API: one axum router per resource module, bearer-key authentication ([`auth`]), one
//! error body ([`ApiError`]), Prometheus metrics, the OpenAPI document generated from the handlers,
//! and [`run`], which serves until a shutdown signal and lets in-flight requests finish within a
//! deadline, with timeouts and a connection cap that bound slow clients (`server.rs`).
//!
//! The store and the application are synchronous; handlers reach them only through
//! [`AppState::blocking`], which runs the call on tokio's blocking pool.

mod adjudications;
pub mod auth;
mod clusters;
mod collections;
mod error;
mod extract;
mod faces;
mod health;
mod images;
pub mod metrics;
pub mod rekognition;
mod review;
mod rulesets;
mod search;
mod server;
pub mod wire;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::Modify;
use utoipa_axum::router::OpenApiRouter;

pub use auth::{hash_key, parse_env_keys, ApiKey, ApiKeys, KeyError, Role};
pub use error::{ApiError, ErrorBody, FieldError};
pub use metrics::Metrics;

use crate::adjudication::Adjudicator;
use crate::engine::routing::Routes;
use crate::engine::FaceEngine;
use crate::service::{Facegraph, ServiceError};
use crate::store::GraphStore;

/// Limits and defaults of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The largest image body accepted, in bytes (15 MB, Rekognition's own limit).
    pub image_limit: usize,
    /// The largest JSON or TOML body accepted, in bytes.
    pub json_limit: usize,
    /// How long a request may take, from its complete header to its response, before it is
    /// answered with 408.
    pub request_timeout: Duration,
    /// How long a client may take to send a request's header, counted from when the server waits
    /// for it (a new connection, or a kept-alive one that has just answered); then the connection
    /// is closed. This is what frees a connection held by a client that sends half a header.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may stay without a request in flight before it is closed.
    /// The header read timeout also runs while a connection waits, so the shorter of the two wins.
    pub keep_alive_timeout: Duration,
    /// Connections open at once. More wait in the kernel's listen backlog until one closes, so
    /// that slow clients cannot use up the process's file descriptors.
    pub max_connections: usize,
    /// How long shutdown lets the requests in flight finish before it closes the connections still
    /// open and returns.
    pub shutdown_deadline: Duration,
}

impl Default for ApiConfig {
    /// 15 MB images, 1 MB JSON, 30 s per request, 10 s to send a header, 5 s idle on keep-alive,
    /// 256 connections, 20 s to drain at shutdown (under the 30 s that service managers commonly
    /// wait before they kill).
    fn default() -> Self {
        Self {
            image_limit: 15 * 1024 * 1024,
            json_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: 256,
            shutdown_deadline: Duration::from_secs(20),
        }
    }
}

/// The handlers' shared state: a cheap cloneable handle.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    app: Facegraph,
    engine: Option<Arc<dyn FaceEngine>>,
    keys: ApiKeys,
    metrics: Metrics,
    config: ApiConfig,
    routes: Routes,
    openapi: OnceLock<String>,
}

impl AppState {
    /// The state over a store, rules, an optional face engine, the accepted keys and the routed
    /// collections (which the collection views describe). The store and the engine are wrapped so
    /// that every call is timed in the metrics.
    pub fn new(
        store: Arc<dyn GraphStore>,
        adjudicator: Adjudicator,
        engine: Option<Arc<dyn FaceEngine>>,
        keys: ApiKeys,
        config: ApiConfig,
        routes: Routes,
    ) -> Result<Self, prometheus::Error> {
        let metrics = Metrics::new()?;
        let app = Facegraph::new(metrics.timed_store(store), adjudicator);
        let engine = engine.map(|e| metrics.timed_engine(e));
        Ok(Self(Arc::new(Shared {
            app,
            engine,
            keys,
            metrics,
            config,
            routes,
            openapi: OnceLock::new(),
        })))
    }

    /// The routed collections of the settings.
    pub fn routes(&self) -> &Routes {
        &self.0.routes
    }

    /// The application (for work that needs no store, such as stateless adjudication).
    pub fn app(&self) -> &Facegraph {
        &self.0.app
    }

    /// The face engine, when one is configured.
    pub fn engine(&self) -> Option<&Arc<dyn FaceEngine>> {
        self.0.engine.as_ref()
    }

    /// The accepted keys.
    pub fn keys(&self) -> &ApiKeys {
        &self.0.keys
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The limits.
    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    /// Runs a synchronous use case on the blocking pool, so that store and engine I/O never stalls
    /// the async runtime.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Facegraph) -> Result<T, ServiceError> + Send + 'static,
    {
        let app = self.0.app.clone();
        Ok(tokio::task::spawn_blocking(move || f(&app)).await??)
    }
}

/// Adds the bearer scheme that every protected operation names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "facegraph",
        description = "Graph-augmented face-match adjudication: candidate matches, verdicts with reasons, clusters, analyst decisions."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The routes and the OpenAPI document generated from the same registrations.
pub fn routes() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(adjudications::router())
        .merge(images::router())
        .merge(collections::router())
        .merge(search::router())
        .merge(faces::router())
        .merge(clusters::router())
        .merge(review::router())
        .merge(rulesets::router())
}

/// The application's router: every route, the fallbacks, the timeout and the metrics.
pub fn router(state: AppState) -> Router {
    let (router, openapi) = routes().split_for_parts();
    let spec = openapi
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"the OpenAPI document failed: {e}\"}}"));
    // Set once per state; a second router over the same state serves the same document.
    let _ = state.0.openapi.set(spec);
    let timeout = state.config().request_timeout;
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(timeout_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The timeout layer answers with a bare 408; give it the error body every other error has.
async fn timeout_body(response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        ApiError::Timeout.into_response()
    } else {
        response
    }
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting connections, lets the
/// requests in flight finish for up to the configured shutdown deadline, closes the connections
/// still open and returns. The header read and keep-alive timeouts and the connection cap of the
/// state's [`ApiConfig`] bound what slow clients can hold.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.config().clone();
    server::serve(listener, router(state), &config, shutdown).await;
    Ok(())
}

/// Serves any router (the stream's metrics) on `listener` with the same bounds on slow clients
/// as [`run`], until `shutdown` resolves.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    config: &ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    server::serve(listener, router, config, shutdown).await;
}
