//! Match clusters: `GET /v1/clusters?min_subjects=&limit=&cursor=` (largest first, paged with an
//! opaque cursor) and `GET /v1/clusters/{cluster_id}` (faces, subjects, links, every edge between
//! members with its verdict, cut edges and conflicts).

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AnalystRole, Authorized};
use super::extract::{decode_cursor, encode_cursor, page_limit, ApiQuery};
use super::wire::{pair_out, ClusterLink, ClusterSummary, FaceOut, MatchOut, PairOut};
use super::{ApiError, AppState};

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clusters))
        .routes(routes!(get_cluster))
}

/// Which clusters, and which page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClustersQuery {
    /// Only clusters with at least this many distinct subjects (2: fraud leads). Default 0.
    pub min_subjects: Option<usize>,
    /// Page size, 1-500, default 50.
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of clusters.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClustersPage {
    /// Clusters, largest first, then by id.
    pub clusters: Vec<ClusterSummary>,
    /// The cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One cluster in detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterOut {
    /// Stable id.
    pub cluster_id: String,
    /// Two or more subjects: a fraud lead.
    pub fraud_lead: bool,
    /// Distinct subjects.
    pub subjects: Vec<String>,
    /// Member faces.
    pub faces: Vec<FaceOut>,
    /// The confirmed edges and must-links that hold it together.
    pub links: Vec<ClusterLink>,
    /// Every stored edge between two members, whatever its verdict.
    pub edges: Vec<MatchOut>,
    /// Confirmed edges cut to honour an analyst's "different people".
    pub cut: Vec<PairOut>,
    /// "Different people" decisions that must-links alone contradict.
    pub conflicts: Vec<PairOut>,
}

/// Where a page of clusters ends: clusters are ordered by size descending, then id.
#[derive(Debug, Serialize, Deserialize)]
struct ClusterCursor {
    size: usize,
    id: String,
}

/// Match clusters, largest first.
#[utoipa::path(get, path = "/v1/clusters", tag = "clusters",
    params(ClustersQuery),
    responses(
        (status = 200, description = "A page of clusters", body = ClustersPage),
        (status = 400, description = "Invalid limit or cursor", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the analyst role", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn list_clusters(
    _caller: Authorized<AnalystRole>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ClustersQuery>,
) -> Result<Json<ClustersPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let after: Option<ClusterCursor> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let min = q.min_subjects.unwrap_or(0);
    let mut all = state.blocking(move |app| app.clusters(min)).await?;
    let key = |c: &crate::service::ClusterView| {
        (
            std::cmp::Reverse(c.cluster.faces.len()),
            c.cluster.id.clone(),
        )
    };
    all.sort_by_key(key);
    let start = after.map_or(0, |a| {
        let k = (std::cmp::Reverse(a.size), a.id);
        all.partition_point(|c| key(c) <= k)
    });
    let page: Vec<_> = all.iter().skip(start).take(limit).collect();
    let next_cursor = (start + page.len() < all.len())
        .then(|| page.last())
        .flatten()
        .map(|c| {
            encode_cursor(&ClusterCursor {
                size: c.cluster.faces.len(),
                id: c.cluster.id.clone(),
            })
        });
    Ok(Json(ClustersPage {
        clusters: page.into_iter().map(ClusterSummary::from).collect(),
        next_cursor,
    }))
}

/// One cluster with its faces, links, edges and conflicts.
#[utoipa::path(get, path = "/v1/clusters/{cluster_id}", tag = "clusters",
    params(("cluster_id" = String, Path, description = "The cluster's id, `cl-` and 16 hex digits")),
    responses(
        (status = 200, description = "The cluster", body = ClusterOut),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the analyst role", body = super::ErrorBody),
        (status = 404, description = "No current cluster has this id", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn get_cluster(
    _caller: Authorized<AnalystRole>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ClusterOut>, ApiError> {
    let wanted = id.clone();
    let detail = state
        .blocking(move |app| app.cluster(&wanted))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no current cluster has the id {id}; cluster ids change when membership does"
            ))
        })?;
    let c = &detail.view.cluster;
    Ok(Json(ClusterOut {
        cluster_id: c.id.clone(),
        fraud_lead: detail.view.subjects.len() >= 2,
        subjects: detail
            .view
            .subjects
            .iter()
            .map(ToString::to_string)
            .collect(),
        faces: detail.faces.iter().map(FaceOut::from).collect(),
        links: c.edges.iter().map(ClusterLink::from).collect(),
        edges: detail.edges.iter().map(MatchOut::from).collect(),
        cut: c.cut.iter().map(pair_out).collect(),
        conflicts: c.conflicts.iter().map(pair_out).collect(),
    }))
}
