//! The ingest step that turns a batch's observations into SIMILAR edges on SQLite: folded into one
//! edge per unordered pair, inserted when new, rewritten only when the batch changed them.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, CachedStatement, Transaction};

use super::backend;
use super::decode::Cells;
use super::seqs::FaceSeqs;
use crate::model::{Similarity, Timestamp};
use crate::store::{IngestBatch, StoreError};

const OP: &str = "ingest";

/// Folds the batch's observations into one edge per pair, then writes each: a new pair is one
/// insert, the hot path of bulk ingest; a known pair is read and rewritten only when the batch
/// changed it. Returns the counts of new and changed edges.
pub(super) fn upsert_edges<'b>(
    tx: &Transaction<'_>,
    batch: &'b IngestBatch,
    seqs: &mut FaceSeqs<'b>,
    dirty: &mut HashSet<i64>,
) -> Result<(usize, usize), StoreError> {
    let mut folded = fold(tx, batch, seqs)?;
    // In key order, the inserts walk the primary key's b-tree from left to right instead of
    // jumping around it, which keeps the pages they touch in the cache.
    folded.sort_unstable_by_key(|e| e.key);

    let mut insert = tx
        .prepare_cached(
            "INSERT INTO edges (face_a, face_b, similarity_ab, similarity_ba, engine, searched_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (face_a, face_b) DO NOTHING",
        )
        .map_err(backend(OP))?;
    let mut known = KnownEdges::prepare(tx)?;
    let (mut new, mut changed) = (0, 0);
    for edge in &folded {
        let (a, b) = edge.key;
        let inserted = insert
            .execute(params![
                a,
                b,
                edge.ab.map(Similarity::get),
                edge.ba.map(Similarity::get),
                edge.engine,
                edge.searched_at.millis(),
            ])
            .map_err(backend(OP))?;
        if inserted == 1 {
            new += 1;
        } else if known.merge(edge)? {
            changed += 1;
        } else {
            continue;
        }
        // Both faces of a new or changed edge await re-judging.
        dirty.extend([a, b]);
    }
    Ok((new, changed))
}

/// One pair's observations in a batch, by the seqs of its faces in canonical order.
struct FoldedEdge<'b> {
    key: (i64, i64),
    ab: Option<Similarity>,
    ba: Option<Similarity>,
    engine: &'b str,
    searched_at: Timestamp,
}

/// The fold of `Edge::fold`, keyed by the faces' seqs instead of cloned ids: the pair's first
/// observation names the engine, a later observation of a direction replaces the earlier one, and
/// the edge was searched when it was last observed. Observations of a face with itself are skipped.
fn fold<'b>(
    tx: &Transaction<'_>,
    batch: &'b IngestBatch,
    seqs: &mut FaceSeqs<'b>,
) -> Result<Vec<FoldedEdge<'b>>, StoreError> {
    let mut folded: Vec<FoldedEdge<'b>> = Vec::new();
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(batch.observations.len());
    for obs in &batch.observations {
        let searched_first = match obs.searched.cmp(&obs.found) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => continue,
        };
        let (searched, found) = (
            seqs.resolve(tx, &obs.searched, OP)?,
            seqs.resolve(tx, &obs.found, OP)?,
        );
        let key = if searched_first {
            (searched, found)
        } else {
            (found, searched)
        };
        let i = *index.entry(key).or_insert_with(|| {
            folded.push(FoldedEdge {
                key,
                ab: None,
                ba: None,
                engine: &obs.engine,
                searched_at: obs.searched_at,
            });
            folded.len() - 1
        });
        let edge = &mut folded[i];
        if searched_first {
            edge.ab = Some(obs.similarity);
        } else {
            edge.ba = Some(obs.similarity);
        }
        edge.searched_at = edge.searched_at.max(obs.searched_at);
    }
    Ok(folded)
}

/// The statements that merge a batch's edge into the stored edge of the same pair.
struct KnownEdges<'t> {
    select: CachedStatement<'t>,
    update: CachedStatement<'t>,
}

impl<'t> KnownEdges<'t> {
    fn prepare(tx: &'t Transaction<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            select: tx
                .prepare_cached(
                    "SELECT similarity_ab, similarity_ba, searched_at FROM edges
                     WHERE face_a = ?1 AND face_b = ?2",
                )
                .map_err(backend(OP))?,
            update: tx
                .prepare_cached(
                    "UPDATE edges SET similarity_ab = ?3, similarity_ba = ?4, searched_at = ?5
                     WHERE face_a = ?1 AND face_b = ?2",
                )
                .map_err(backend(OP))?,
        })
    }

    /// Merges `edge` into the stored edge of its pair; returns whether the similarities changed.
    /// The batch's observations are newer than what is stored: each direction it observed
    /// replaces the stored value, as `Edge::fold` does.
    fn merge(&mut self, edge: &FoldedEdge<'_>) -> Result<bool, StoreError> {
        let (a, b) = edge.key;
        let mut rows = self.select.query([a, b]).map_err(backend(OP))?;
        let Some(row) = rows.next().map_err(backend(OP))? else {
            return Err(StoreError::Corrupt {
                what: "edge",
                detail: format!("faces seq {a} and {b} conflict on insert but cannot be read"),
            });
        };
        let mut c = Cells::new(row, "edge");
        let stored_ab = c.opt_parse_real(Similarity::new)?;
        let stored_ba = c.opt_parse_real(Similarity::new)?;
        let stored_at = Timestamp::from_millis(c.int()?);
        drop(rows);
        let ab = edge.ab.or(stored_ab);
        let ba = edge.ba.or(stored_ba);
        let at = stored_at.max(edge.searched_at);
        let sims_changed = ab != stored_ab || ba != stored_ba;
        if sims_changed || at != stored_at {
            self.update
                .execute(params![
                    a,
                    b,
                    ab.map(Similarity::get),
                    ba.map(Similarity::get),
                    at.millis(),
                ])
                .map_err(backend(OP))?;
        }
        Ok(sims_changed)
    }
}
