//! The shapes facegraph prints: JSON lines for scripts, aligned tables for people, CSV for
//! spreadsheets. These wire types are the only serialised form of matches and clusters; the domain
//! types stay free of serde.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Evidence, Judgement, Reason};
use crate::service::{ClusterView, MatchView, VerdictChange};

/// One reason as JSON.
#[derive(Debug, Serialize)]
pub struct ReasonJson<'a> {
    /// Stable code.
    pub code: &'static str,
    /// The sentence.
    pub message: &'a str,
    /// The numbers and names used.
    pub evidence: Map<String, Value>,
}

impl<'a> From<&'a Reason> for ReasonJson<'a> {
    fn from(r: &'a Reason) -> Self {
        Self {
            code: r.code.as_str(),
            message: &r.message,
            evidence: evidence_json(r),
        }
    }
}

/// A reason's evidence as a JSON object: numbers as numbers (null if not finite), names as strings.
/// The CLI's JSON lines and the REST API share it, so both spell evidence alike.
pub fn evidence_json(r: &Reason) -> Map<String, Value> {
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

/// One match as a JSON line.
#[derive(Debug, Serialize)]
pub struct MatchJson<'a> {
    /// First face id.
    pub face_a: &'a str,
    /// Second face id.
    pub face_b: &'a str,
    /// The similarity the rules judged (the higher of the two directions).
    pub similarity: f64,
    /// Similarity observed searching `face_a`.
    pub similarity_ab: Option<f64>,
    /// Similarity observed searching `face_b`.
    pub similarity_ba: Option<f64>,
    /// `confirmed`, `review` or `rejected`; null when not yet adjudicated.
    pub verdict: Option<&'static str>,
    /// Ranking score.
    pub score: Option<f64>,
    /// Rule-set version of the verdict.
    pub rule_set: Option<&'a str>,
    /// Reasons.
    pub reasons: Vec<ReasonJson<'a>>,
    /// Whether the match is in the analysts' review queue.
    pub in_review_queue: bool,
    /// External image id of face a.
    pub external_image_id_a: Option<&'a str>,
    /// External image id of face b.
    pub external_image_id_b: Option<&'a str>,
    /// Subject of face a.
    pub subject_a: Option<&'a str>,
    /// Subject of face b.
    pub subject_b: Option<&'a str>,
    /// Image id of face a.
    pub image_id_a: Option<&'a str>,
    /// Image id of face b.
    pub image_id_b: Option<&'a str>,
}

impl<'a> From<&'a MatchView> for MatchJson<'a> {
    fn from(m: &'a MatchView) -> Self {
        let j = m.judgement.as_ref();
        let ext = |f: &'a Option<crate::store::FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.face.external_image_id.as_ref())
                .map(|e| e.as_str())
        };
        let subject = |f: &'a Option<crate::store::FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.subject.as_ref())
                .map(|s| s.as_str())
        };
        let image =
            |f: &'a Option<crate::store::FaceRecord>| f.as_ref().map(|f| f.face.image_id.as_str());
        Self {
            face_a: m.edge.pair.a().as_str(),
            face_b: m.edge.pair.b().as_str(),
            similarity: m.edge.similarity().get(),
            similarity_ab: m.edge.similarity_ab.map(|s| s.get()),
            similarity_ba: m.edge.similarity_ba.map(|s| s.get()),
            verdict: j.map(|j| j.verdict.as_str()),
            score: j.map(|j| j.score),
            rule_set: j.map(|j| j.rule_set.as_str()),
            reasons: j
                .map(|j| j.reasons.iter().map(ReasonJson::from).collect())
                .unwrap_or_default(),
            in_review_queue: j.is_some_and(crate::adjudication::in_review_queue),
            external_image_id_a: ext(&m.face_a),
            external_image_id_b: ext(&m.face_b),
            subject_a: subject(&m.face_a),
            subject_b: subject(&m.face_b),
            image_id_a: image(&m.face_a),
            image_id_b: image(&m.face_b),
        }
    }
}

/// One link of a cluster as JSON.
#[derive(Debug, Serialize)]
pub struct ClusterEdgeJson<'a> {
    /// First face.
    pub face_a: &'a str,
    /// Second face.
    pub face_b: &'a str,
    /// Similarity, null for a must-link without an edge.
    pub similarity: Option<f64>,
    /// Whether an analyst linked the pair.
    pub must_link: bool,
}

/// One cluster as a JSON line.
#[derive(Debug, Serialize)]
pub struct ClusterJson<'a> {
    /// Stable id.
    pub cluster_id: &'a str,
    /// Member faces.
    pub faces: Vec<&'a str>,
    /// Distinct subjects.
    pub subjects: Vec<&'a str>,
    /// Whether two or more subjects make it a fraud lead.
    pub fraud_lead: bool,
    /// Links.
    pub edges: Vec<ClusterEdgeJson<'a>>,
    /// Edges cut to honour cannot-links.
    pub cut: Vec<[&'a str; 2]>,
    /// Cannot-links that must-links contradict.
    pub conflicts: Vec<[&'a str; 2]>,
}

impl<'a> From<&'a ClusterView> for ClusterJson<'a> {
    fn from(c: &'a ClusterView) -> Self {
        let pair = |p: &'a crate::model::FacePair| [p.a().as_str(), p.b().as_str()];
        Self {
            cluster_id: &c.cluster.id,
            faces: c.cluster.faces.iter().map(|f| f.as_str()).collect(),
            subjects: c.subjects.iter().map(|s| s.as_str()).collect(),
            fraud_lead: c.subjects.len() >= 2,
            edges: c
                .cluster
                .edges
                .iter()
                .map(|e| ClusterEdgeJson {
                    face_a: e.pair.a().as_str(),
                    face_b: e.pair.b().as_str(),
                    similarity: e.similarity,
                    must_link: e.must_link,
                })
                .collect(),
            cut: c.cluster.cut.iter().map(pair).collect(),
            conflicts: c.cluster.conflicts.iter().map(pair).collect(),
        }
    }
}

/// A verdict change as a JSON line.
#[derive(Debug, Serialize)]
pub struct ChangeJson<'a> {
    /// First face.
    pub face_a: &'a str,
    /// Second face.
    pub face_b: &'a str,
    /// The verdict before (null when never adjudicated).
    pub before: Option<&'static str>,
    /// The verdict after.
    pub after: &'static str,
    /// Score after.
    pub score: f64,
    /// Rule set after.
    pub rule_set: &'a str,
    /// Reasons after.
    pub reasons: Vec<ReasonJson<'a>>,
}

impl<'a> From<&'a VerdictChange> for ChangeJson<'a> {
    fn from(c: &'a VerdictChange) -> Self {
        Self {
            face_a: c.pair.a().as_str(),
            face_b: c.pair.b().as_str(),
            before: c.before.map(|v| v.as_str()),
            after: c.after.verdict.as_str(),
            score: c.after.score,
            rule_set: &c.after.rule_set,
            reasons: c.after.reasons.iter().map(ReasonJson::from).collect(),
        }
    }
}

/// The reason codes of a judgement, joined by commas, the similarity band left out.
pub fn codes(j: &Judgement) -> String {
    let codes: Vec<&str> = j
        .reasons
        .iter()
        .map(|r| r.code.as_str())
        .filter(|c| *c != "similarity_band")
        .collect();
    if codes.is_empty() {
        "-".to_owned()
    } else {
        codes.join(",")
    }
}

/// Renders rows as a left-aligned table with a header and a rule under it.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
