//! Face collections: `GET /v1/collections` and `GET /v1/collections/{collection_id}` (each with
//! its routing: a routed id's family, a member's route) for the `analyst` and `ingest` roles;
//! `POST /v1/collections` and `DELETE /v1/collections/{collection_id}` for `admin`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminRole, AnalystOrIngest, Authorized};
use super::extract::ApiJson;
use super::wire::CollectionOut;
use super::{ApiError, AppState};
use crate::engine::FaceEngine;
use crate::model::CollectionId;
use crate::service;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_collections, create_collection))
        .routes(routes!(get_collection, delete_collection))
}

/// Every collection of the face engine.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionsOut {
    /// The collections, in id order.
    pub collections: Vec<CollectionOut>,
}

/// A collection to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    /// 1-255 of `[a-zA-Z0-9_.-]`. A routed id (`[[routes]]` in the settings) is created as its
    /// anchor; its family opens as faces arrive.
    pub collection_id: String,
}

/// The engine, or 503 when the server runs without one.
pub(super) fn engine(state: &AppState) -> Result<Arc<dyn FaceEngine>, ApiError> {
    state.engine().cloned().ok_or_else(|| {
        ApiError::unavailable(
            "no face engine is configured on this server: its collections cannot be read",
            None,
        )
    })
}

fn collection_id(s: &str) -> Result<CollectionId, ApiError> {
    CollectionId::parse(s).map_err(|e| ApiError::field("collection_id", e.rule))
}

/// The face engine's collections, each with its face count and routing.
#[utoipa::path(get, path = "/v1/collections", tag = "collections",
    responses(
        (status = 200, description = "The collections", body = CollectionsOut),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key has neither the analyst nor the ingest role", body = super::ErrorBody),
        (status = 503, description = "No face engine is configured", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn list_collections(
    _caller: Authorized<AnalystOrIngest>,
    State(state): State<AppState>,
) -> Result<Json<CollectionsOut>, ApiError> {
    let engine = engine(&state)?;
    let routes = state.routes().clone();
    let views = state
        .blocking(move |_| service::list_collections(engine.as_ref(), &routes))
        .await?;
    Ok(Json(CollectionsOut {
        collections: views.iter().map(CollectionOut::from).collect(),
    }))
}

/// Create a collection.
#[utoipa::path(post, path = "/v1/collections", tag = "collections",
    request_body = NewCollection,
    responses(
        (status = 201, description = "Created", body = CollectionOut),
        (status = 400, description = "Invalid collection id", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the admin role", body = super::ErrorBody),
        (status = 409, description = "The collection exists", body = super::ErrorBody),
        (status = 503, description = "No face engine is configured", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn create_collection(
    _caller: Authorized<AdminRole>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewCollection>,
) -> Result<(StatusCode, Json<CollectionOut>), ApiError> {
    let id = collection_id(&body.collection_id)?;
    let engine = engine(&state)?;
    let routes = state.routes().clone();
    let view = state
        .blocking(move |_| service::create_collection(engine.as_ref(), &routes, &id))
        .await?;
    Ok((StatusCode::CREATED, Json(CollectionOut::from(&view))))
}

/// One collection: its faces, face model version, creation time and routing.
#[utoipa::path(get, path = "/v1/collections/{collection_id}", tag = "collections",
    params(("collection_id" = String, Path, description = "1-255 of [a-zA-Z0-9_.-]")),
    responses(
        (status = 200, description = "The collection", body = CollectionOut),
        (status = 400, description = "Invalid collection id", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key has neither the analyst nor the ingest role", body = super::ErrorBody),
        (status = 404, description = "No such collection", body = super::ErrorBody),
        (status = 503, description = "No face engine is configured", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn get_collection(
    _caller: Authorized<AnalystOrIngest>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CollectionOut>, ApiError> {
    let id = collection_id(&id)?;
    let engine = engine(&state)?;
    let routes = state.routes().clone();
    let view = state
        .blocking(move |_| service::describe_collection(engine.as_ref(), &routes, &id))
        .await?;
    Ok(Json(CollectionOut::from(&view)))
}

/// Delete a collection and its faces in the engine (a routed id: its whole family). The graph
/// keeps the faces' matches and decisions.
#[utoipa::path(delete, path = "/v1/collections/{collection_id}", tag = "collections",
    params(("collection_id" = String, Path, description = "1-255 of [a-zA-Z0-9_.-]")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid collection id", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the admin role", body = super::ErrorBody),
        (status = 404, description = "No such collection", body = super::ErrorBody),
        (status = 503, description = "No face engine is configured", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn delete_collection(
    _caller: Authorized<AdminRole>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = collection_id(&id)?;
    let engine = engine(&state)?;
    state
        .blocking(move |_| service::delete_collection(engine.as_ref(), &id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
