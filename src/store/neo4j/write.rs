//! The Neo4j store's writes other than ingest: judgements on edges (each also kept as a
//! `(:Judgement)` node), analyst decisions (relationships only ever added) and cluster membership
//! (properties of the faces, replaced whole); and the lookups that writes share.

use std::collections::{HashMap, HashSet};

use neo4rs::{query, BoltType, Txn};

use super::decode::{get, text};
use super::driver::{ids, numbered, take_numbers, unwind, unwind_rows, Map, Work};
use super::InvalidWrite;
use crate::model::{Decision, DecisionKind, FaceId, FacePair};
use crate::store::codec::reasons_to_json;
use crate::store::{ClusterMembership, StoreError, VerdictUpdate};

/// The stored faces among `wanted`, each with whether it has a `SIMILAR` edge already (asked only
/// with `links`; `false` otherwise).
pub(super) async fn stored_faces(
    tx: &mut Txn,
    wanted: &HashSet<&FaceId>,
    links: bool,
) -> Work<HashMap<String, bool>> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let cypher = if links {
        "UNWIND $rows AS id MATCH (f:Face {face_id: id})
         RETURN f.face_id AS id, EXISTS { (f)-[:SIMILAR]-() } AS linked"
    } else {
        "UNWIND $rows AS id MATCH (f:Face {face_id: id}) RETURN f.face_id AS id, false AS linked"
    };
    let found = unwind_rows(tx, cypher, ids(wanted.iter().copied())).await?;
    let mut faces = HashMap::with_capacity(found.len());
    for row in &found {
        faces.insert(text(row, "face", "id")?, get(row, "face", "linked")?);
    }
    Ok(faces)
}

/// Fails with [`StoreError::UnknownFace`] naming the first of `faces` that is not stored.
async fn require_faces(tx: &mut Txn, faces: &[&FaceId]) -> Work<()> {
    let wanted: HashSet<&FaceId> = faces.iter().copied().collect();
    let stored = stored_faces(tx, &wanted, false).await?;
    match faces.iter().find(|f| !stored.contains_key(f.as_str())) {
        Some(f) => Err(StoreError::UnknownFace((*f).clone()).into()),
        None => Ok(()),
    }
}

/// The current judgement of one edge, as stored.
#[derive(PartialEq)]
struct StoredJudgement {
    verdict: Option<String>,
    score: Option<f64>,
    rule_set: Option<String>,
    reasons: Option<String>,
}

/// A pair's faces' ids, the key of the judgements read back.
type PairKey = (String, String);

/// Records each judgement whose edge holds another; returns how many changed.
pub(super) async fn record_verdicts(tx: &mut Txn, updates: &[VerdictUpdate]) -> Work<usize> {
    let mut pairs: Vec<&FacePair> = updates.iter().map(|u| &u.pair).collect();
    pairs.sort();
    pairs.dedup();
    let faces: HashSet<&FaceId> = pairs.iter().flat_map(|p| [p.a(), p.b()]).collect();
    let stored = stored_faces(tx, &faces, false).await?;
    let mut current = current_judgements(tx, &pairs).await?;
    let writes = changed_judgements(updates, &stored, &mut current)?;
    let changed = writes.len();
    if !writes.is_empty() {
        write_judgements(tx, writes).await?;
    }
    Ok(changed)
}

/// The judgements the edges of `pairs` hold; a pair without an edge is left out.
async fn current_judgements(
    tx: &mut Txn,
    pairs: &[&FacePair],
) -> Work<HashMap<PairKey, StoredJudgement>> {
    let pair_rows: Vec<BoltType> = pairs
        .iter()
        .map(|p| {
            Map::default()
                .with("a", p.a().as_str())
                .with("b", p.b().as_str())
                .into()
        })
        .collect();
    let found = unwind_rows(
        tx,
        "UNWIND $rows AS p
         MATCH (a:Face {face_id: p.a})-[e:SIMILAR]->(b:Face {face_id: p.b})
         RETURN p.a AS a, p.b AS b, e.verdict AS verdict, e.score AS score,
                e.rule_set AS rule_set, e.reasons AS reasons",
        pair_rows,
    )
    .await?;
    let mut current = HashMap::with_capacity(found.len());
    for row in &found {
        current.insert(
            (text(row, "edge", "a")?, text(row, "edge", "b")?),
            StoredJudgement {
                verdict: get(row, "edge", "verdict")?,
                score: get(row, "edge", "score")?,
                rule_set: get(row, "edge", "rule_set")?,
                reasons: get(row, "edge", "reasons")?,
            },
        );
    }
    Ok(current)
}

/// The rows to write for the updates that change their edge's judgement, in order; `current` is
/// kept up to date so that a later update of the same pair compares with the earlier one. Fails on
/// an unknown face, a pair without an edge, or a score that is not a number.
fn changed_judgements(
    updates: &[VerdictUpdate],
    stored: &HashMap<String, bool>,
    current: &mut HashMap<PairKey, StoredJudgement>,
) -> Result<Vec<BoltType>, StoreError> {
    const OP: &str = "record verdicts";
    let invalid = |message: String| StoreError::Backend {
        operation: OP,
        source: Box::new(InvalidWrite(message)),
    };
    let mut writes: Vec<BoltType> = Vec::new();
    for u in updates {
        let (a, b) = (u.pair.a().as_str(), u.pair.b().as_str());
        let j = &u.judgement;
        if j.score.is_nan() {
            return Err(invalid(format!(
                "the judgement of {a} - {b} has a score that is not a number"
            )));
        }
        if let Some(id) = [u.pair.a(), u.pair.b()]
            .into_iter()
            .find(|id| !stored.contains_key(id.as_str()))
        {
            return Err(StoreError::UnknownFace(id.clone()));
        }
        let Some(now) = current.get_mut(&(a.to_owned(), b.to_owned())) else {
            return Err(invalid(format!(
                "no SIMILAR edge between faces {a} and {b}: only observed pairs are judged"
            )));
        };
        let next = StoredJudgement {
            verdict: Some(j.verdict.as_str().to_owned()),
            score: Some(j.score),
            rule_set: Some(j.rule_set.clone()),
            reasons: Some(reasons_to_json(&j.reasons)?),
        };
        if *now == next {
            continue;
        }
        writes.push(
            Map::default()
                .with("a", a)
                .with("b", b)
                .with("verdict", j.verdict.as_str())
                .with("score", j.score)
                .with("rule_set", j.rule_set.as_str())
                .with("reasons", next.reasons.clone())
                // The codes alone, for Browser's captions and for queries that look for a rule.
                .with(
                    "codes",
                    j.reasons
                        .iter()
                        .map(|r| BoltType::from(r.code.as_str()))
                        .collect::<Vec<_>>(),
                )
                .with("at", u.at.millis())
                .into(),
        );
        *now = next;
    }
    Ok(writes)
}

/// Writes judgements onto their edges and into the history, numbered in order.
async fn write_judgements(tx: &mut Txn, writes: Vec<BoltType>) -> Work<()> {
    let writes = numbered(tx, "judgement", writes).await?;
    // The judgement goes into the history too; the edge holds the latest.
    unwind(
        tx,
        "UNWIND $rows AS r
         MATCH (a:Face {face_id: r.a})-[e:SIMILAR]->(b:Face {face_id: r.b})
         SET e.verdict = r.verdict, e.score = r.score, e.rule_set = r.rule_set,
             e.reasons = r.reasons, e.reason_codes = r.codes, e.adjudicated_at = r.at
         CREATE (:Judgement {face_a: r.a, face_b: r.b, verdict: r.verdict, score: r.score,
                             rule_set: r.rule_set, reasons: r.reasons, at: r.at,
                             seq: r.seq})",
        writes,
    )
    .await?;
    Ok(())
}

/// The relationship type of an analyst decision.
fn decision_type(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::Same => "SAME_PERSON",
        DecisionKind::Different => "DIFFERENT_PERSON",
    }
}

/// Adds an analyst decision between two stored faces, numbered after the earlier ones.
pub(super) async fn record_decision(tx: &mut Txn, decision: &Decision) -> Work<()> {
    require_faces(tx, &[decision.pair.a(), decision.pair.b()]).await?;
    let seq = take_numbers(tx, "decision", 1).await?;
    let cypher = format!(
        "MATCH (a:Face {{face_id: $a}}) MATCH (b:Face {{face_id: $b}})
         CREATE (a)-[:{} {{analyst: $analyst, note: $note, at: $at, seq: $seq}}]->(b)",
        decision_type(decision.kind)
    );
    tx.run(
        query(&cypher)
            .param("a", decision.pair.a().as_str())
            .param("b", decision.pair.b().as_str())
            .param("analyst", decision.analyst.as_str())
            .param("note", decision.note.clone())
            .param("at", decision.at.millis())
            .param("seq", seq),
    )
    .await?;
    super::scoped::mark_pair(tx, &decision.pair).await
}

/// Replaces the cluster membership held on the faces; every member must be a stored face.
pub(super) async fn replace_clusters(tx: &mut Txn, clusters: &[ClusterMembership]) -> Work<()> {
    let members: Vec<&FaceId> = clusters.iter().flat_map(|c| &c.faces).collect();
    require_faces(tx, &members).await?;
    tx.run(query(
        "MATCH (f:Face) WHERE f.cluster_id IS NOT NULL
         REMOVE f.cluster_id, f.cluster_rank, f.cluster_lead",
    ))
    .await?;
    let (count, leads) = super::scoped::write_members(tx, clusters).await?;
    super::scoped::set_totals(tx, count, leads).await
}
