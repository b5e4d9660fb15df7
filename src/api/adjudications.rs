//! `POST /v1/adjudications`: adjudicate one candidate match. Stateless by default: the two faces
//! given in the body and their edge make a graph of their own, judged by the current rules. With
//! `?store=true`, or when the body names only two stored faces, the match is recorded in the graph,
//! the graph is re-adjudicated (neighbourhood rules included) and the stored verdict is returned.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authorized, IngestRole};
use super::error::Fields;
use super::extract::{ApiJson, ApiQuery};
use super::wire::{AgeRangeJson, GenderJson, MatchOut, PoseJson, QualityJson, ReasonOut};
use super::{ApiError, AppState};
use crate::model::{
    AgeRange, Confidence, FaceAttributes, FaceId, Gender, GenderValue, ImageId, Judgement, Pose,
    Quality, Similarity, SubjectId,
};
use crate::service::{Candidate, CandidateFace};

/// The route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(adjudicate))
}

/// A candidate match: two faces and how similar the engine found them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "similarity": 97.99,
    "face_a": {"face_id": "aaaaaaaa-0000-4000-8000-000000000004", "gender": {"value": "Male", "confidence": 96.0}},
    "face_b": {"face_id": "aaaaaaaa-0000-4000-8000-000000000005", "gender": {"value": "Female", "confidence": 100.0}}
}))]
pub struct AdjudicationRequest {
    /// Similarity, 0-100.
    pub similarity: f64,
    /// One face.
    pub face_a: FaceIn,
    /// The other face.
    pub face_b: FaceIn,
}

/// A face of a candidate match. Only `face_id` is required; absent attributes make no rule fire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaceIn {
    /// The face's id: a lowercase UUID. It need not be stored, except with `store=true`.
    pub face_id: String,
    /// Predicted gender.
    pub gender: Option<GenderJson>,
    /// Estimated age range.
    pub age_range: Option<AgeRangeJson>,
    /// The face's image: any id up to 255 characters. Two faces with the same image id are two
    /// people (`same_image`). Absent: each face gets an image of its own.
    pub image_id: Option<String>,
    /// The subject (customer) behind the face. Two faces of one subject are a self-match
    /// (`same_subject`).
    pub subject_id: Option<String>,
    /// Brightness and sharpness, 0-100.
    pub quality: Option<QualityJson>,
    /// Head pose in degrees.
    pub pose: Option<PoseJson>,
}

impl FaceIn {
    fn bare(&self) -> bool {
        self.gender.is_none()
            && self.age_range.is_none()
            && self.image_id.is_none()
            && self.subject_id.is_none()
            && self.quality.is_none()
            && self.pose.is_none()
    }
}

/// Options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdjudicationQuery {
    /// Record the match in the graph and return the stored verdict (both faces must be stored).
    #[serde(default)]
    pub store: bool,
}

/// A verdict with its reasons.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdjudicationOut {
    /// `confirmed`, `review` or `rejected`.
    #[schema(example = "review")]
    pub verdict: &'static str,
    /// Ranking score, 0-100: the similarity less the rules' penalties.
    pub score: f64,
    /// Version of the rule set that judged.
    pub rule_set: String,
    /// Why, the similarity band first.
    pub reasons: Vec<ReasonOut>,
    /// Whether the match was recorded in the graph.
    pub stored: bool,
    /// The stored match, when recorded.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    #[schema(rename = "match")]
    pub stored_match: Option<MatchOut>,
}

impl AdjudicationOut {
    fn new(j: &Judgement, stored_match: Option<MatchOut>) -> Self {
        Self {
            verdict: j.verdict.as_str(),
            score: j.score,
            rule_set: j.rule_set.clone(),
            reasons: j.reasons.iter().map(ReasonOut::from).collect(),
            stored: stored_match.is_some(),
            stored_match,
        }
    }
}

/// Adjudicate one candidate match.
///
/// Stateless unless `store=true` or the body names only two face ids that are both stored. Face
/// attributes in the body are used only when stateless; stored faces keep their own.
#[utoipa::path(post, path = "/v1/adjudications", tag = "adjudication",
    params(AdjudicationQuery),
    request_body = AdjudicationRequest,
    responses(
        (status = 200, description = "The verdict", body = AdjudicationOut),
        (status = 400, description = "Invalid fields, named in details", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the ingest role", body = super::ErrorBody),
        (status = 404, description = "store=true and a face is not stored", body = super::ErrorBody),
        (status = 413, description = "Body over 1 MB", body = super::ErrorBody),
        (status = 415, description = "Body is not JSON", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn adjudicate(
    _caller: Authorized<IngestRole>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AdjudicationQuery>,
    ApiJson(body): ApiJson<AdjudicationRequest>,
) -> Result<Json<AdjudicationOut>, ApiError> {
    let bare = body.face_a.bare() && body.face_b.bare();
    let candidate = parse(&body)?;
    let store = query.store
        || (bare && {
            let ids = [
                candidate.face_a.face_id.clone(),
                candidate.face_b.face_id.clone(),
            ];
            state
                .blocking(move |app| app.stored_faces(&ids))
                .await?
                .len()
                == 2
        });
    if store {
        let (a, b, sim) = (
            candidate.face_a.face_id,
            candidate.face_b.face_id,
            candidate.similarity,
        );
        let recorded = state
            .blocking(move |app| app.record_match(&a, &b, sim))
            .await?;
        let m = state.metrics();
        m.changes(
            recorded
                .adjudication
                .changes
                .iter()
                .map(|c| &c.after.verdict),
        );
        let j = recorded
            .view
            .judgement
            .as_ref()
            .ok_or_else(|| ApiError::Internal("the recorded match has no verdict".into()))?;
        m.verdict(j.verdict, "stored");
        Ok(Json(AdjudicationOut::new(
            j,
            Some(MatchOut::from(&recorded.view)),
        )))
    } else {
        // Pure computation on two faces: cheap enough to run on the async runtime.
        let j = state.app().adjudicate_candidate(&candidate)?;
        state.metrics().verdict(j.verdict, "stateless");
        Ok(Json(AdjudicationOut::new(&j, None)))
    }
}

/// Turns the body into a candidate, naming every invalid field.
fn parse(body: &AdjudicationRequest) -> Result<Candidate, ApiError> {
    let mut f = Fields::default();
    let similarity = f.check("similarity", Similarity::new(body.similarity));
    let a = face(&mut f, "face_a", &body.face_a);
    let b = face(&mut f, "face_b", &body.face_b);
    if let (Some(a), Some(b)) = (&a, &b) {
        if a.face_id == b.face_id {
            f.push("face_b.face_id", "must differ from face_a.face_id");
        }
    }
    f.finish()?;
    match (similarity, a, b) {
        (Some(similarity), Some(face_a), Some(face_b)) => Ok(Candidate {
            face_a,
            face_b,
            similarity,
        }),
        _ => Err(ApiError::field("body", "invalid candidate")),
    }
}

fn face(f: &mut Fields, name: &str, face: &FaceIn) -> Option<CandidateFace> {
    let field = |s: &str| format!("{name}.{s}");
    let face_id = f.check(&field("face_id"), FaceId::parse(&face.face_id));
    let mut attributes = FaceAttributes::default();
    if let Some(g) = &face.gender {
        let value = GenderValue::parse(&g.value);
        if value.is_none() {
            f.push(&field("gender.value"), "must be Male or Female");
        }
        let confidence = f.check(&field("gender.confidence"), Confidence::new(g.confidence));
        if let (Some(value), Some(confidence)) = (value, confidence) {
            attributes.gender = Some(Gender { value, confidence });
        }
    }
    if let Some(r) = &face.age_range {
        match AgeRange::new(r.low, r.high) {
            Ok(age) => attributes.age = Some(age),
            Err(e) => f.push(&field("age_range"), e.rule),
        }
    }
    if let Some(q) = &face.quality {
        let parts = [("brightness", q.brightness), ("sharpness", q.sharpness)];
        let bad: Vec<_> = parts
            .iter()
            .filter_map(|&(k, v)| Quality::check(k, v).err())
            .collect();
        for e in &bad {
            f.push(&field(&format!("quality.{}", e.what)), e.rule.clone());
        }
        if bad.is_empty() {
            attributes.quality = Quality::new(q.brightness, q.sharpness).ok();
        }
    }
    if let Some(p) = &face.pose {
        let parts = [("yaw", p.yaw), ("pitch", p.pitch), ("roll", p.roll)];
        let bad: Vec<_> = parts
            .iter()
            .filter_map(|&(k, v)| Pose::check(k, v).err())
            .collect();
        for e in &bad {
            f.push(&field(&format!("pose.{}", e.what)), e.rule.clone());
        }
        if bad.is_empty() {
            attributes.pose = Pose::new(p.yaw, p.pitch, p.roll).ok();
        }
    }
    let image_id = match face.image_id.as_deref() {
        None => None,
        Some(s) if s.is_empty() || s.chars().count() > 255 || s.chars().any(char::is_control) => {
            f.push(
                &field("image_id"),
                "must be 1 to 255 characters without control characters",
            );
            None
        }
        // A real image id is kept as it is; any other name stands for an image by its hash, so that
        // equal names still make one image.
        Some(s) => Some(
            ImageId::parse(s)
                .unwrap_or_else(|_| ImageId::of_bytes(format!("api-image:{s}").as_bytes())),
        ),
    };
    let subject = match face.subject_id.as_deref() {
        None => None,
        Some(s) => f.check(&field("subject_id"), SubjectId::parse(s)),
    };
    Some(CandidateFace {
        face_id: face_id?,
        attributes,
        image_id,
        subject,
    })
}
