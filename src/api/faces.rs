//! Faces and subjects: `GET /v1/faces/{face_id}`, `GET /v1/faces/{face_id}/matches?verdict=` and
//! `GET /v1/subjects/{subject_id}/matches`.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AnalystRole, Authorized};
use super::extract::ApiQuery;
use super::wire::{FaceOut, MatchOut};
use super::{ApiError, AppState};
use crate::model::{FaceId, SubjectId, Verdict};

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_face))
        .routes(routes!(face_matches))
        .routes(routes!(subject_matches))
}

/// A face's matches.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceMatches {
    /// The face.
    pub face: FaceOut,
    /// Its matches, strongest verdict first, then by score.
    pub matches: Vec<MatchOut>,
}

/// A subject's faces and their matches.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectMatches {
    /// The subject.
    pub subject_id: String,
    /// Its faces.
    pub faces: Vec<FaceOut>,
    /// Every match of any of them, strongest verdict first, then by score.
    pub matches: Vec<MatchOut>,
}

/// Filter by verdict.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerdictQuery {
    /// Only matches with this verdict: `confirmed`, `review` or `rejected`.
    pub verdict: Option<String>,
}

fn face_id(s: &str) -> Result<FaceId, ApiError> {
    FaceId::parse(s).map_err(|e| ApiError::field("face_id", e.rule))
}

/// One stored face with its attributes and subject.
#[utoipa::path(get, path = "/v1/faces/{face_id}", tag = "faces",
    params(("face_id" = String, Path, description = "The face's id, a lowercase UUID")),
    responses(
        (status = 200, description = "The face", body = FaceOut),
        (status = 400, description = "Not a face id", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the analyst role", body = super::ErrorBody),
        (status = 404, description = "Not stored", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn get_face(
    _caller: Authorized<AnalystRole>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<FaceOut>, ApiError> {
    let id = face_id(&id)?;
    let face = state.blocking(move |app| app.face(&id)).await?;
    Ok(Json(FaceOut::from(&face)))
}

/// A face's matches with their verdicts.
#[utoipa::path(get, path = "/v1/faces/{face_id}/matches", tag = "faces",
    params(("face_id" = String, Path, description = "The face's id"), VerdictQuery),
    responses(
        (status = 200, description = "The face and its matches", body = FaceMatches),
        (status = 400, description = "Not a face id, or an unknown verdict", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the analyst role", body = super::ErrorBody),
        (status = 404, description = "Not stored", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn face_matches(
    _caller: Authorized<AnalystRole>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<VerdictQuery>,
) -> Result<Json<FaceMatches>, ApiError> {
    let id = face_id(&id)?;
    let verdict =
        match query.verdict.as_deref() {
            None => None,
            Some(v) => Some(Verdict::parse(v).ok_or_else(|| {
                ApiError::field("verdict", "must be confirmed, review or rejected")
            })?),
        };
    let (face, matches) = state
        .blocking(move |app| Ok((app.face(&id)?, app.face_matches(&id, verdict)?)))
        .await?;
    Ok(Json(FaceMatches {
        face: FaceOut::from(&face),
        matches: matches.iter().map(MatchOut::from).collect(),
    }))
}

/// A subject's faces and every match of any of them.
#[utoipa::path(get, path = "/v1/subjects/{subject_id}/matches", tag = "faces",
    params(("subject_id" = String, Path, description = "The subject (customer) id")),
    responses(
        (status = 200, description = "The subject's faces and matches", body = SubjectMatches),
        (status = 400, description = "Not a subject id", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the analyst role", body = super::ErrorBody),
        (status = 404, description = "No face of this subject is stored", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn subject_matches(
    _caller: Authorized<AnalystRole>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SubjectMatches>, ApiError> {
    let subject = SubjectId::parse(&id).map_err(|e| ApiError::field("subject_id", e.rule))?;
    let s = subject.clone();
    let (faces, matches) = state.blocking(move |app| app.subject_matches(&s)).await?;
    if faces.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no face of subject {subject} is in the graph"
        )));
    }
    Ok(Json(SubjectMatches {
        subject_id: subject.to_string(),
        faces: faces.iter().map(FaceOut::from).collect(),
        matches: matches.iter().map(MatchOut::from).collect(),
    }))
}
