//! The ingest step that turns a batch's observations into `SIMILAR` relationships on Neo4j: folded
//! into one edge per unordered pair, created when new, rewritten only when the batch changed them.

use std::collections::HashMap;

use neo4rs::{BoltType, Txn};

use super::decode::{get, opt_real, text};
use super::driver::{unwind, unwind_rows, Map, Work};
use crate::model::{Edge, FacePair, Similarity, Timestamp};
use crate::store::IngestBatch;

/// An edge's stored similarities (a to b, b to a) and when it was last observed.
type StoredSims = (Option<Similarity>, Option<Similarity>, Timestamp);

/// The batch's observations folded into one edge per pair, in the order the pairs first appear.
fn fold_observations(batch: &IngestBatch) -> Vec<Edge> {
    let mut folded: Vec<Edge> = Vec::new();
    let mut index: HashMap<FacePair, usize> = HashMap::new();
    for obs in &batch.observations {
        let Some(pair) = FacePair::new(obs.searched.clone(), obs.found.clone()) else {
            continue;
        };
        match index.get(&pair) {
            Some(&i) => folded[i].fold(obs),
            None => {
                if let Some(edge) = Edge::from_observation(obs) {
                    index.insert(pair, folded.len());
                    folded.push(edge);
                }
            }
        }
    }
    folded
}

/// An edge as `UNWIND` parameters, with its best similarity for queries that sort by it.
fn edge_row(
    pair: &FacePair,
    ab: Option<Similarity>,
    ba: Option<Similarity>,
    engine: &str,
    at: Timestamp,
) -> BoltType {
    let best = match (ab, ba) {
        (Some(x), Some(y)) => Some(x.get().max(y.get())),
        (x, y) => x.or(y).map(Similarity::get),
    };
    Map::default()
        .with("a", pair.a().as_str())
        .with("b", pair.b().as_str())
        .with("ab", ab.map(Similarity::get))
        .with("ba", ba.map(Similarity::get))
        .with("similarity", best)
        .with("engine", engine)
        .with("at", at.millis())
        .into()
}

/// Folds the batch's observations into one edge per pair and writes them: pairs between faces that
/// both had edges before the batch are read first and rewritten only when the batch changed them;
/// every other pair is new (a face without edges cannot have this one), which spares the lookup
/// when a backfill writes the faces first and their search hits after. `stored` tells, for each
/// stored face the batch names, whether it had edges. Returns the counts of new and changed edges.
pub(super) async fn upsert_edges(
    tx: &mut Txn,
    batch: &IngestBatch,
    stored: &HashMap<String, bool>,
) -> Work<(usize, usize)> {
    let folded = fold_observations(batch);
    if folded.is_empty() {
        return Ok((0, 0));
    }
    let known = known_edges(tx, &folded, stored).await?;
    let plan = plan_writes(&folded, &known);
    let new_count = plan.new.len();
    if !plan.new.is_empty() {
        unwind(
            tx,
            "UNWIND $rows AS r
             MATCH (a:Face {face_id: r.a})
             MATCH (b:Face {face_id: r.b})
             CREATE (a)-[:SIMILAR {similarity_ab: r.ab, similarity_ba: r.ba,
                                   similarity: r.similarity, engine: r.engine,
                                   searched_at: r.at}]->(b)",
            plan.new,
        )
        .await?;
    }
    if !plan.changed.is_empty() {
        unwind(
            tx,
            "UNWIND $rows AS r
             MATCH (a:Face {face_id: r.a})-[e:SIMILAR]->(b:Face {face_id: r.b})
             SET e.similarity_ab = r.ab, e.similarity_ba = r.ba, e.similarity = r.similarity,
                 e.searched_at = r.at",
            plan.changed,
        )
        .await?;
    }
    Ok((new_count, plan.changed_sims))
}

/// A pair's faces' ids, the key of the edges read back.
type PairKey = (String, String);

/// The stored edges among the folded ones. Only two faces that both have edges already can have
/// this one, so only those pairs are looked up.
async fn known_edges(
    tx: &mut Txn,
    folded: &[Edge],
    stored: &HashMap<String, bool>,
) -> Work<HashMap<PairKey, StoredSims>> {
    let maybe_known: Vec<BoltType> = folded
        .iter()
        .filter(|e| {
            stored.get(e.pair.a().as_str()) == Some(&true)
                && stored.get(e.pair.b().as_str()) == Some(&true)
        })
        .map(|e| {
            Map::default()
                .with("a", e.pair.a().as_str())
                .with("b", e.pair.b().as_str())
                .into()
        })
        .collect();
    let mut known = HashMap::new();
    if maybe_known.is_empty() {
        return Ok(known);
    }
    let found = unwind_rows(
        tx,
        "UNWIND $rows AS p
         MATCH (a:Face {face_id: p.a})-[e:SIMILAR]->(b:Face {face_id: p.b})
         RETURN p.a AS a, p.b AS b, e.similarity_ab AS ab, e.similarity_ba AS ba,
                e.searched_at AS at",
        maybe_known,
    )
    .await?;
    for row in &found {
        known.insert(
            (text(row, "edge", "a")?, text(row, "edge", "b")?),
            (
                opt_real(row, "edge", "ab", Similarity::new)?,
                opt_real(row, "edge", "ba", Similarity::new)?,
                Timestamp::from_millis(get(row, "edge", "at")?),
            ),
        );
    }
    Ok(known)
}

/// What to write for a batch's edges.
struct EdgeWrites {
    /// Rows of edges to create.
    new: Vec<BoltType>,
    /// Rows of stored edges to rewrite.
    changed: Vec<BoltType>,
    /// How many stored edges' similarities changed (a rewrite may only move the time).
    changed_sims: usize,
}

/// Sorts the folded edges into new ones and stored ones the batch changes. The batch's
/// observations are newer than what is stored: each direction it observed replaces the stored
/// value, as `Edge::fold` does.
fn plan_writes(folded: &[Edge], known: &HashMap<PairKey, StoredSims>) -> EdgeWrites {
    let mut plan = EdgeWrites {
        new: Vec::new(),
        changed: Vec::new(),
        changed_sims: 0,
    };
    for e in folded {
        let key = (
            e.pair.a().as_str().to_owned(),
            e.pair.b().as_str().to_owned(),
        );
        let Some(&(stored_ab, stored_ba, stored_at)) = known.get(&key) else {
            plan.new.push(edge_row(
                &e.pair,
                e.similarity_ab,
                e.similarity_ba,
                &e.engine,
                e.searched_at,
            ));
            continue;
        };
        let ab = e.similarity_ab.or(stored_ab);
        let ba = e.similarity_ba.or(stored_ba);
        let at = stored_at.max(e.searched_at);
        let sims_changed = ab != stored_ab || ba != stored_ba;
        if sims_changed || at != stored_at {
            plan.changed.push(edge_row(&e.pair, ab, ba, &e.engine, at));
        }
        if sims_changed {
            plan.changed_sims += 1;
        }
    }
    plan
}
