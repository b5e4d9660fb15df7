//! The SQLite store's writes other than ingest: judgements on edges (kept in a history), analyst
//! decisions (only ever appended) and cluster membership (replaced whole). Each runs in the
//! caller's transaction.

use rusqlite::{params, CachedStatement, Transaction};

use super::decode::Cells;
use super::seqs::FaceSeqs;
use super::{backend, InvalidWrite};
use crate::adjudication::in_review_queue;
use crate::model::Decision;
use crate::store::codec::reasons_to_json;
use crate::store::{ClusterMembership, StoreError, VerdictUpdate};

/// Records each judgement whose edge holds another; returns how many changed.
pub(super) fn record_verdicts(
    tx: &Transaction<'_>,
    updates: &[VerdictUpdate],
) -> Result<usize, StoreError> {
    const OP: &str = "record verdicts";
    let mut select = tx
        .prepare_cached(
            "SELECT h.verdict, h.score, h.rule_set, h.reasons
             FROM edges e LEFT JOIN verdict_history h ON h.id = e.judgement_id
             WHERE e.face_a = ?1 AND e.face_b = ?2",
        )
        .map_err(backend(OP))?;
    let mut update = tx
        .prepare_cached(
            "UPDATE edges SET verdict = ?3, judgement_id = ?4, score = ?5, queued = ?6
             WHERE face_a = ?1 AND face_b = ?2",
        )
        .map_err(backend(OP))?;
    let mut history = tx
        .prepare_cached(
            "INSERT INTO verdict_history (face_a, face_b, verdict, score, rule_set, reasons, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(backend(OP))?;
    let mut seqs = FaceSeqs::default();
    let mut changed = 0;
    for u in updates {
        let j = &u.judgement;
        let reasons = checked_reasons(u)?;
        // An unknown face is named as such; a pair of known faces without an edge was never found
        // similar, and a verdict on it is a caller's mistake.
        let key = (
            seqs.resolve(tx, u.pair.a(), OP)?,
            seqs.resolve(tx, u.pair.b(), OP)?,
        );
        if holds(&mut select, key, u, &reasons)? {
            continue;
        }
        // The judgement goes into the history first; the edge then points at it.
        let verdict = j.verdict.as_str();
        let (sa, sb) = key;
        history
            .execute(params![
                sa,
                sb,
                verdict,
                j.score,
                j.rule_set,
                reasons,
                u.at.millis()
            ])
            .map_err(backend(OP))?;
        let judgement_id = tx.last_insert_rowid();
        update
            .execute(params![
                sa,
                sb,
                verdict,
                judgement_id,
                j.score,
                in_review_queue(j)
            ])
            .map_err(backend(OP))?;
        changed += 1;
    }
    Ok(changed)
}

/// The update's reasons as stored, once its score is known to be storable.
fn checked_reasons(u: &VerdictUpdate) -> Result<String, StoreError> {
    if u.judgement.score.is_nan() {
        // SQLite stores NaN as NULL, which would read back as a corrupt judgement.
        return Err(StoreError::Backend {
            operation: "record verdicts",
            source: Box::new(InvalidWrite(format!(
                "the judgement of {} - {} has a score that is not a number",
                u.pair.a(),
                u.pair.b()
            ))),
        });
    }
    reasons_to_json(&u.judgement.reasons)
}

/// Whether the edge of the faces with seqs `key` holds the update's judgement already (`reasons`
/// is its reasons as stored); an error when the pair has no edge.
fn holds(
    select: &mut CachedStatement<'_>,
    key: (i64, i64),
    u: &VerdictUpdate,
    reasons: &str,
) -> Result<bool, StoreError> {
    const OP: &str = "record verdicts";
    let j = &u.judgement;
    let mut rows = select.query([key.0, key.1]).map_err(backend(OP))?;
    let Some(row) = rows.next().map_err(backend(OP))? else {
        return Err(StoreError::Backend {
            operation: OP,
            source: Box::new(InvalidWrite(format!(
                "no SIMILAR edge between faces {} and {}: only observed pairs are judged",
                u.pair.a(),
                u.pair.b()
            ))),
        });
    };
    let mut c = Cells::new(row, "edge");
    Ok(c.opt_text()? == Some(j.verdict.as_str())
        && c.opt_real()? == Some(j.score)
        && c.opt_text()? == Some(j.rule_set.as_str())
        && c.opt_text()? == Some(reasons))
}

/// Appends an analyst decision on two stored faces.
pub(super) fn record_decision(tx: &Transaction<'_>, decision: &Decision) -> Result<(), StoreError> {
    const OP: &str = "record a decision";
    let mut seqs = FaceSeqs::default();
    let a = seqs.resolve(tx, decision.pair.a(), OP)?;
    let b = seqs.resolve(tx, decision.pair.b(), OP)?;
    // Both faces' edges, and those of their must-link components, await re-judging.
    mark_dirty(tx, [a, b], OP)?;
    tx.prepare_cached(
        "INSERT INTO decisions (face_a, face_b, kind, analyst, note, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            decision.pair.a().as_str(),
            decision.pair.b().as_str(),
            decision.kind.as_str(),
            decision.analyst,
            decision.note,
            decision.at.millis(),
        ])
    })
    .map_err(backend(OP))?;
    Ok(())
}

/// Replaces the stored cluster membership; every member must be a stored face.
pub(super) fn replace_clusters(
    tx: &Transaction<'_>,
    clusters: &[ClusterMembership],
) -> Result<(), StoreError> {
    const OP: &str = "replace clusters";
    tx.execute("DELETE FROM cluster_members", [])
        .map_err(backend(OP))?;
    tx.execute("DELETE FROM clusters", [])
        .map_err(backend(OP))?;
    insert_clusters(tx, clusters, OP)
}

/// Removes the clusters `removed` and stores `added`; every member must be a stored face.
pub(super) fn replace_some_clusters(
    tx: &Transaction<'_>,
    removed: &[String],
    added: &[ClusterMembership],
) -> Result<(), StoreError> {
    const OP: &str = "replace clusters";
    let mut members = tx
        .prepare_cached("DELETE FROM cluster_members WHERE cluster_id = ?1")
        .map_err(backend(OP))?;
    let mut cluster = tx
        .prepare_cached("DELETE FROM clusters WHERE cluster_id = ?1")
        .map_err(backend(OP))?;
    for id in removed {
        members.execute([id]).map_err(backend(OP))?;
        cluster.execute([id]).map_err(backend(OP))?;
    }
    insert_clusters(tx, added, OP)
}

fn insert_clusters(
    tx: &Transaction<'_>,
    clusters: &[ClusterMembership],
    op: &'static str,
) -> Result<(), StoreError> {
    let mut seqs = FaceSeqs::default();
    let mut insert = tx
        .prepare_cached("INSERT INTO cluster_members (cluster_id, face_id) VALUES (?1, ?2)")
        .map_err(backend(op))?;
    // A cluster stored twice (its id is its membership) is one row; the totals count it once.
    let mut flag = tx
        .prepare_cached(
            "INSERT INTO clusters (cluster_id, fraud_lead) VALUES (?1, ?2)
             ON CONFLICT (cluster_id) DO NOTHING",
        )
        .map_err(backend(op))?;
    for cluster in clusters {
        if flag
            .execute(params![cluster.cluster_id, cluster.fraud_lead])
            .map_err(backend(op))?
            == 0
        {
            continue;
        }
        for face in &cluster.faces {
            seqs.resolve(tx, face, op)?;
            insert
                .execute(params![cluster.cluster_id, face.as_str()])
                .map_err(backend(op))?;
        }
    }
    Ok(())
}

/// Marks the faces with these seqs as awaiting re-judging, each with a mark newer than any before.
pub(super) fn mark_dirty(
    tx: &Transaction<'_>,
    seqs: impl IntoIterator<Item = i64>,
    op: &'static str,
) -> Result<(), StoreError> {
    // REPLACE deletes a face's older mark and inserts a new row, whose AUTOINCREMENT id is newer
    // than every mark a running re-judging may have read.
    let mut mark = tx
        .prepare_cached("INSERT OR REPLACE INTO dirty_faces (face_seq) VALUES (?1)")
        .map_err(backend(op))?;
    for seq in seqs {
        mark.execute([seq]).map_err(backend(op))?;
    }
    Ok(())
}

/// Clears the marks up to `through`.
pub(super) fn clear_dirty(tx: &Transaction<'_>, through: i64) -> Result<(), StoreError> {
    tx.execute("DELETE FROM dirty_faces WHERE id <= ?1", [through])
        .map_err(backend("clear the faces awaiting re-judging"))?;
    Ok(())
}
