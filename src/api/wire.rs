//! The JSON shapes of matches, faces, verdict changes, clusters and explanations, with their OpenAPI
//! schemas: the REST API's bodies and the CLI's JSON lines are these same types, so the two cannot
//! drift. Domain types stay free of serde; these are built from them at the edge.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::{Decision, Evidence, Judgement, Reason};
use crate::service::{
    ClusterView, CollectionView, Explanation, MatchView, SearchReport, VerdictChange,
};
use crate::store::FaceRecord;

/// One reason behind a verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonOut {
    /// The rule's stable code, e.g. `gender_contradiction`.
    #[schema(example = "gender_contradiction")]
    pub code: &'static str,
    /// A sentence an analyst can read.
    pub message: String,
    /// The numbers and names the rule used.
    #[schema(value_type = Object)]
    pub evidence: Map<String, Value>,
}

impl From<&Reason> for ReasonOut {
    fn from(r: &Reason) -> Self {
        Self {
            code: r.code.as_str(),
            message: r.message.clone(),
            evidence: evidence_json(r),
        }
    }
}

/// A reason's evidence as a JSON object: numbers as numbers (null if not finite), names as strings.
fn evidence_json(r: &Reason) -> Map<String, Value> {
    r.evidence
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Evidence::Number(n) => {
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                }
                Evidence::Text(t) => Value::String(t.clone()),
            };
            (k.to_string(), v)
        })
        .collect()
}

fn reasons(j: &Judgement) -> Vec<ReasonOut> {
    j.reasons.iter().map(ReasonOut::from).collect()
}

/// A face's predicted gender.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenderJson {
    /// `Male` or `Female`.
    #[schema(example = "Male")]
    pub value: String,
    /// The classifier's confidence, 0-100.
    #[schema(example = 96.0)]
    pub confidence: f64,
}

/// A face's estimated age range in years.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgeRangeJson {
    /// Lowest age.
    pub low: u32,
    /// Highest age, at least `low`.
    pub high: u32,
}

/// Image quality of the face region, 0-100.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityJson {
    /// 0 (dark) to 100 (bright).
    pub brightness: f64,
    /// 0 (blurred) to 100 (sharp).
    pub sharpness: f64,
}

/// Head pose in degrees, -180 to 180.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoseJson {
    /// Turn left or right.
    pub yaw: f64,
    /// Nod up or down.
    pub pitch: f64,
    /// Tilt.
    pub roll: f64,
}

/// A stored face.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceOut {
    /// The face's id.
    pub face_id: String,
    /// Its image: the engine's id or the SHA-256 of the bytes.
    pub image_id: String,
    /// The caller's name for the image.
    pub external_image_id: Option<String>,
    /// The subject behind the image.
    pub subject_id: Option<String>,
    /// The collection.
    pub collection_id: String,
    /// Predicted gender.
    pub gender: Option<GenderJson>,
    /// Estimated age.
    pub age_range: Option<AgeRangeJson>,
    /// Quality.
    pub quality: Option<QualityJson>,
    /// Pose.
    pub pose: Option<PoseJson>,
    /// Whether it was the largest face of its image.
    pub is_largest: bool,
    /// When it was indexed (RFC 3339).
    pub indexed_at: String,
}

impl From<&FaceRecord> for FaceOut {
    fn from(f: &FaceRecord) -> Self {
        let a = &f.face.attributes;
        Self {
            face_id: f.face.face_id.to_string(),
            image_id: f.face.image_id.to_string(),
            external_image_id: f.face.external_image_id.as_ref().map(ToString::to_string),
            subject_id: f.subject.as_ref().map(ToString::to_string),
            collection_id: f.face.collection_id.to_string(),
            gender: a.gender.map(|g| GenderJson {
                value: g.value.as_str().to_owned(),
                confidence: g.confidence.get(),
            }),
            age_range: a.age.map(|r| AgeRangeJson {
                low: r.low(),
                high: r.high(),
            }),
            quality: a.quality.map(|q| QualityJson {
                brightness: f64::from(q.brightness()),
                sharpness: f64::from(q.sharpness()),
            }),
            pose: a.pose.map(|p| PoseJson {
                yaw: f64::from(p.yaw()),
                pitch: f64::from(p.pitch()),
                roll: f64::from(p.roll()),
            }),
            is_largest: f.face.is_largest,
            indexed_at: f.face.indexed_at.to_string(),
        }
    }
}

/// A candidate match with its verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchOut {
    /// First face id (the smaller).
    pub face_a: String,
    /// Second face id.
    pub face_b: String,
    /// The similarity judged: the higher of the two search directions.
    pub similarity: f64,
    /// Similarity observed searching `face_a`.
    pub similarity_ab: Option<f64>,
    /// Similarity observed searching `face_b`.
    pub similarity_ba: Option<f64>,
    /// `confirmed`, `review` or `rejected`; null when not yet adjudicated.
    #[schema(example = "review")]
    pub verdict: Option<&'static str>,
    /// Ranking score, 0-100.
    pub score: Option<f64>,
    /// Version of the rule set behind the verdict.
    pub rule_set: Option<String>,
    /// Why, the similarity band first.
    pub reasons: Vec<ReasonOut>,
    /// Whether it is in the analysts' review queue.
    pub in_review_queue: bool,
    /// Subject of face a.
    pub subject_a: Option<String>,
    /// Subject of face b.
    pub subject_b: Option<String>,
    /// External image id of face a.
    pub external_image_id_a: Option<String>,
    /// External image id of face b.
    pub external_image_id_b: Option<String>,
    /// Image of face a.
    pub image_id_a: Option<String>,
    /// Image of face b.
    pub image_id_b: Option<String>,
}

impl From<&MatchView> for MatchOut {
    fn from(m: &MatchView) -> Self {
        let j = m.judgement.as_ref();
        let subject = |f: &Option<FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.subject.as_ref())
                .map(ToString::to_string)
        };
        let ext = |f: &Option<FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.face.external_image_id.as_ref())
                .map(ToString::to_string)
        };
        let image = |f: &Option<FaceRecord>| f.as_ref().map(|f| f.face.image_id.to_string());
        Self {
            face_a: m.edge.pair.a().to_string(),
            face_b: m.edge.pair.b().to_string(),
            similarity: m.edge.similarity().get(),
            similarity_ab: m.edge.similarity_ab.map(|s| s.get()),
            similarity_ba: m.edge.similarity_ba.map(|s| s.get()),
            verdict: j.map(|j| j.verdict.as_str()),
            score: j.map(|j| j.score),
            rule_set: j.map(|j| j.rule_set.clone()),
            reasons: j.map(reasons).unwrap_or_default(),
            in_review_queue: j.is_some_and(crate::adjudication::in_review_queue),
            subject_a: subject(&m.face_a),
            subject_b: subject(&m.face_b),
            external_image_id_a: ext(&m.face_a),
            external_image_id_b: ext(&m.face_b),
            image_id_a: image(&m.face_a),
            image_id_b: image(&m.face_b),
        }
    }
}

/// A verdict that changed or would change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeOut {
    /// First face.
    pub face_a: String,
    /// Second face.
    pub face_b: String,
    /// The verdict before; null when never adjudicated.
    pub before: Option<&'static str>,
    /// The verdict after.
    pub after: &'static str,
    /// Score after.
    pub score: f64,
    /// Rule set after.
    pub rule_set: String,
    /// Reasons after.
    pub reasons: Vec<ReasonOut>,
}

impl From<&VerdictChange> for ChangeOut {
    fn from(c: &VerdictChange) -> Self {
        Self {
            face_a: c.pair.a().to_string(),
            face_b: c.pair.b().to_string(),
            before: c.before.map(|v| v.as_str()),
            after: c.after.verdict.as_str(),
            score: c.after.score,
            rule_set: c.after.rule_set.clone(),
            reasons: reasons(&c.after),
        }
    }
}

/// A cluster in a list (the CLI's `clusters --json` lines and `GET /v1/clusters`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterSummary {
    /// Stable id; changes when and only when membership changes.
    pub cluster_id: String,
    /// Member face ids.
    pub faces: Vec<String>,
    /// Distinct subjects.
    pub subjects: Vec<String>,
    /// Two or more subjects: a fraud lead.
    pub fraud_lead: bool,
    /// The confirmed edges and must-links that hold it together.
    pub edges: Vec<ClusterLink>,
    /// Confirmed edges cut to honour an analyst's "different people".
    pub cut: Vec<PairOut>,
    /// "Different people" decisions that must-links alone contradict.
    pub conflicts: Vec<PairOut>,
}

impl From<&ClusterView> for ClusterSummary {
    fn from(c: &ClusterView) -> Self {
        Self {
            cluster_id: c.cluster.id.clone(),
            faces: c.cluster.faces.iter().map(ToString::to_string).collect(),
            subjects: c.subjects.iter().map(ToString::to_string).collect(),
            fraud_lead: c.subjects.len() >= 2,
            edges: c.cluster.edges.iter().map(ClusterLink::from).collect(),
            cut: c.cluster.cut.iter().map(pair_out).collect(),
            conflicts: c.cluster.conflicts.iter().map(pair_out).collect(),
        }
    }
}

/// A pair as the list of its two ids.
pub fn pair_out(p: &crate::model::FacePair) -> PairOut {
    vec![p.a().to_string(), p.b().to_string()]
}

/// A link holding a cluster together.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterLink {
    /// One face.
    pub face_a: String,
    /// The other.
    pub face_b: String,
    /// The confirmed edge's similarity; null for an analyst's must-link without an edge.
    pub similarity: Option<f64>,
    /// Whether an analyst decided the two are one person.
    pub must_link: bool,
}

impl From<&crate::cluster::ClusterEdge> for ClusterLink {
    fn from(e: &crate::cluster::ClusterEdge) -> Self {
        Self {
            face_a: e.pair.a().to_string(),
            face_b: e.pair.b().to_string(),
            similarity: e.similarity,
            must_link: e.must_link,
        }
    }
}

/// A pair of faces, as a list of the two ids.
pub type PairOut = Vec<String>;

/// A judgement: verdict, score, rule set and reasons.
#[derive(Debug, Serialize, ToSchema)]
pub struct JudgementOut {
    /// `confirmed`, `review` or `rejected`.
    pub verdict: &'static str,
    /// Ranking score, 0-100.
    pub score: f64,
    /// Version of the rule set behind it.
    pub rule_set: String,
    /// Why, the similarity band first.
    pub reasons: Vec<ReasonOut>,
}

impl From<&Judgement> for JudgementOut {
    fn from(j: &Judgement) -> Self {
        Self {
            verdict: j.verdict.as_str(),
            score: j.score,
            rule_set: j.rule_set.clone(),
            reasons: reasons(j),
        }
    }
}

/// An analyst's decision on a pair, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionRecordOut {
    /// `same` or `different`.
    pub decision: &'static str,
    /// Who decided.
    pub analyst: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why, if said.
    pub note: Option<String>,
}

impl From<&Decision> for DecisionRecordOut {
    fn from(d: &Decision) -> Self {
        Self {
            decision: d.kind.as_str(),
            analyst: d.analyst.clone(),
            at: d.at.to_string(),
            note: d.note.clone(),
        }
    }
}

/// Everything known of a pair (`facegraph explain --json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationOut {
    /// The first face.
    pub face_a: FaceOut,
    /// The second face.
    pub face_b: FaceOut,
    /// The stored match; null when no search found the pair similar.
    #[serde(rename = "match")]
    pub stored: Option<MatchOut>,
    /// What the current rule set says now, when there is a match.
    pub current: Option<JudgementOut>,
    /// Analyst decisions on the pair, oldest first.
    pub decisions: Vec<DecisionRecordOut>,
}

impl From<&Explanation> for ExplanationOut {
    fn from(ex: &Explanation) -> Self {
        Self {
            face_a: FaceOut::from(&ex.face_a),
            face_b: FaceOut::from(&ex.face_b),
            stored: ex.stored.as_ref().map(MatchOut::from),
            current: ex.current.as_ref().map(JudgementOut::from),
            decisions: ex.decisions.iter().map(DecisionRecordOut::from).collect(),
        }
    }
}

/// A face collection (`GET /v1/collections`, `facegraph collections list --json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionOut {
    /// The collection's id.
    pub collection_id: String,
    /// Faces it holds; for a routed id, its whole family's.
    pub face_count: u64,
    /// The engine's face model version.
    pub face_model_version: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// For a routed id: how it is routed, and its family.
    pub route: Option<RouteOut>,
    /// For a collection of a route's family: the routed id it belongs to.
    pub routed_by: Option<String>,
    /// For a collection of a route's family: its key there (a tenant, a month).
    pub route_key: Option<String>,
}

/// How a routed collection id is routed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteOut {
    /// `tenant` or `month`.
    #[schema(example = "tenant")]
    pub key: &'static str,
    /// A collection of the family takes faces until it holds this many.
    pub max_faces: u64,
    /// `route` (the face's own family) or `all` (every family): what a search of a face covers.
    pub search: &'static str,
    /// The family's collections, in id order.
    pub collections: Vec<RouteMemberOut>,
}

/// A collection of a route's family.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteMemberOut {
    /// Its id: the routed id, the key and its number, such as `customers.acme.0002`.
    pub collection_id: String,
    /// Faces it holds.
    pub face_count: u64,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl From<&CollectionView> for CollectionOut {
    fn from(v: &CollectionView) -> Self {
        Self {
            collection_id: v.info.collection_id.to_string(),
            face_count: v.info.face_count,
            face_model_version: v.info.face_model_version.clone(),
            created_at: v.info.created_at.to_string(),
            route: v.route.as_ref().map(|r| RouteOut {
                key: r.key,
                max_faces: r.max_faces,
                search: r.search,
                collections: r
                    .collections
                    .iter()
                    .map(|c| RouteMemberOut {
                        collection_id: c.collection_id.to_string(),
                        face_count: c.face_count,
                        created_at: c.created_at.to_string(),
                    })
                    .collect(),
            }),
            routed_by: v.member_of.as_ref().map(|(r, _)| r.to_string()),
            route_key: v.member_of.as_ref().map(|(_, k)| k.clone()),
        }
    }
}

/// A bounding box as ratios of the image's width and height.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoundingBoxJson {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// What a search found (`POST /v1/search`, `facegraph search --json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchOut {
    /// The collection searched; a routed id's family was searched.
    pub collection_id: String,
    /// The face searched, for a search by face.
    pub searched_face_id: Option<String>,
    /// Where the face searched is, for a search by image (its largest face).
    pub searched_bounding_box: Option<BoundingBoxJson>,
    /// The detector's confidence in that face, 0-100.
    pub searched_confidence: Option<f64>,
    /// The faces found, most similar first.
    pub matches: Vec<SearchHitOut>,
}

/// A face found by a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitOut {
    /// The face.
    pub face_id: String,
    /// How similar, 0-100.
    pub similarity: f64,
    /// Its image.
    pub image_id: String,
    /// The caller's name for its image.
    pub external_image_id: Option<String>,
    /// Whether the graph holds the face (false: indexed outside facegraph).
    pub in_graph: bool,
    /// The collection that holds it, as the graph recorded it.
    pub collection_id: Option<String>,
    /// The subject behind its image, as the graph recorded it.
    pub subject_id: Option<String>,
}

impl From<&SearchReport> for SearchOut {
    fn from(r: &SearchReport) -> Self {
        Self {
            collection_id: r.collection_id.to_string(),
            searched_face_id: r.searched_face.as_ref().map(ToString::to_string),
            searched_bounding_box: r.searched_bbox.map(|b| BoundingBoxJson {
                left: f64::from(b.left),
                top: f64::from(b.top),
                width: f64::from(b.width),
                height: f64::from(b.height),
            }),
            searched_confidence: r.searched_confidence.map(|c| c.get()),
            matches: r
                .hits
                .iter()
                .map(|h| SearchHitOut {
                    face_id: h.found.face_id.to_string(),
                    similarity: h.found.similarity.get(),
                    image_id: h.found.image_id.to_string(),
                    external_image_id: h.found.external_image_id.as_ref().map(ToString::to_string),
                    in_graph: h.face.is_some(),
                    collection_id: h.face.as_ref().map(|f| f.face.collection_id.to_string()),
                    subject_id: h
                        .face
                        .as_ref()
                        .and_then(|f| f.subject.as_ref())
                        .map(ToString::to_string),
                })
                .collect(),
        }
    }
}
