//! The analysts' side: `GET /v1/review?limit=&cursor=` (the review queue after band retention, paged)
//! and `POST /v1/decisions` (an analyst's "same" or "different", recorded under the key's name and
//! never overwritten; answers with the verdicts it changed).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AnalystRole, Authorized};
use super::error::Fields;
use super::extract::{decode_cursor, encode_cursor, page_limit, ApiJson, ApiQuery};
use super::wire::{ChangeOut, MatchOut};
use super::{ApiError, AppState};
use crate::model::{DecisionKind, FaceId, FacePair};
use crate::service::MatchView;
use crate::store::QueuePosition;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(review_queue))
        .routes(routes!(decide))
}

/// Which page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-500, default 50.
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the review queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPage {
    /// Matches to review, highest score first.
    pub matches: Vec<MatchOut>,
    /// The cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An analyst's decision on a pair.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    /// One face.
    pub face_a: String,
    /// The other face.
    pub face_b: String,
    /// `same` (one person) or `different` (two people).
    #[schema(example = "different")]
    pub decision: String,
    /// Why.
    pub note: Option<String>,
}

/// What a decision changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionOut {
    /// Who decided: the API key's name.
    pub analyst: String,
    /// `same` or `different`.
    pub decision: &'static str,
    /// The verdicts that changed, this pair's and any the decision implies elsewhere.
    pub changed: Vec<ChangeOut>,
    /// Clusters afterwards.
    pub clusters: usize,
    /// Clusters with two or more subjects afterwards.
    pub fraud_leads: usize,
}

/// Where a page of the queue ends: the queue is ordered by score descending, then pair.
#[derive(Debug, Serialize, Deserialize)]
struct ReviewCursor {
    score: f64,
    face_a: String,
    face_b: String,
}

fn score(m: &MatchView) -> f64 {
    m.judgement.as_ref().map_or(0.0, |j| j.score)
}

impl ReviewCursor {
    /// Where the page after this cursor starts; a cursor naming no valid pair is refused.
    fn position(&self) -> Result<QueuePosition, ApiError> {
        let bad = || ApiError::field("cursor", "is not a cursor this server issued");
        let a = FaceId::parse(&self.face_a).map_err(|_| bad())?;
        let b = FaceId::parse(&self.face_b).map_err(|_| bad())?;
        let pair = FacePair::new(a, b).ok_or_else(bad)?;
        Ok(QueuePosition {
            score: self.score,
            pair,
        })
    }
}

/// The review queue: doubtful matches that band retention kept, self-matches left out.
#[utoipa::path(get, path = "/v1/review", tag = "review",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the queue", body = ReviewPage),
        (status = 400, description = "Invalid limit or cursor", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the analyst role", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn review_queue(
    _caller: Authorized<AnalystRole>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ReviewPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let after: Option<ReviewCursor> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let after = after.as_ref().map(ReviewCursor::position).transpose()?;
    // One more than the page, to know whether another follows; read from the stored verdicts.
    let mut queue = state
        .blocking(move |app| app.review_page(after.as_ref(), limit + 1))
        .await?;
    let more = queue.len() > limit;
    queue.truncate(limit);
    let page: Vec<&MatchView> = queue.iter().collect();
    let next_cursor = more.then(|| page.last()).flatten().map(|m| {
        encode_cursor(&ReviewCursor {
            score: score(m),
            face_a: m.edge.pair.a().to_string(),
            face_b: m.edge.pair.b().to_string(),
        })
    });
    Ok(Json(ReviewPage {
        matches: page.into_iter().map(MatchOut::from).collect(),
        next_cursor,
    }))
}

/// Record an analyst's decision on a pair, re-adjudicate, and return the verdicts that changed.
///
/// The analyst is the API key's name. Decisions are appended: a later one supersedes, both stay.
#[utoipa::path(post, path = "/v1/decisions", tag = "review",
    request_body = DecisionIn,
    responses(
        (status = 200, description = "Recorded; the verdicts it changed", body = DecisionOut),
        (status = 400, description = "Invalid fields", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the analyst role", body = super::ErrorBody),
        (status = 404, description = "A face is not stored", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn decide(
    Authorized(caller, _): Authorized<AnalystRole>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DecisionIn>,
) -> Result<Json<DecisionOut>, ApiError> {
    let mut f = Fields::default();
    let a = f.check("face_a", FaceId::parse(&body.face_a));
    let b = f.check("face_b", FaceId::parse(&body.face_b));
    let kind = DecisionKind::parse(&body.decision);
    if kind.is_none() {
        f.push("decision", "must be same or different");
    }
    if body.note.as_ref().is_some_and(|n| n.len() > 4096) {
        f.push("note", "must be at most 4096 bytes");
    }
    if let (Some(a), Some(b)) = (&a, &b) {
        if a == b {
            f.push("face_b", "must differ from face_a");
        }
    }
    f.finish()?;
    let (Some(a), Some(b), Some(kind)) = (a, b, kind) else {
        return Err(ApiError::field("body", "invalid decision"));
    };
    let analyst = caller.name.clone();
    let note = body.note;
    let result = state
        .blocking(move |app| app.decide(&a, &b, kind, &analyst, note))
        .await?;
    state
        .metrics()
        .changes(result.changes.iter().map(|c| &c.after.verdict));
    Ok(Json(DecisionOut {
        analyst: caller.name,
        decision: kind.as_str(),
        changed: result.changes.iter().map(ChangeOut::from).collect(),
        clusters: result.clusters,
        fraud_leads: result.fraud_leads,
    }))
}
