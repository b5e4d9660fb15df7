//! Probes and documents: `/healthz` (the process answers), `/readyz` (the store and the engine
//! answer), `/metrics` (Prometheus text) and `/openapi.json`. The first three are open to all.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AnyKey, Authorized};
use super::{ApiError, AppState};

/// The probes' and documents' routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// What the readiness probe checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    /// The store adapter that answered (`sqlite`, `neo4j`).
    pub store: &'static str,
    /// The engine that answered, or `none` when no engine is configured.
    pub engine: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The store answers a query, and so does the face engine when one is configured.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "The store or the engine does not answer", body = super::ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let store = state
        .blocking(|app| Ok(app.store().stats().map(|_| app.store().kind())))
        .await?
        .map_err(|e| ApiError::unavailable("the graph store does not answer", Some(Box::new(e))))?;
    let engine = match state.engine().cloned() {
        None => "none",
        Some(engine) => {
            tokio::task::spawn_blocking(move || engine.list_collections().map(|_| engine.name()))
                .await?
                .map_err(|e| {
                    ApiError::unavailable("the face engine does not answer", Some(Box::new(e)))
                })?
        }
    };
    Ok(Json(Readiness {
        status: "ready",
        store,
        engine,
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics().render(),
    )
}

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object),
        (status = 401, description = "No valid key", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn openapi(_caller: Authorized<AnyKey>, State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        state.0.openapi.get().cloned().unwrap_or_default(),
    )
}
