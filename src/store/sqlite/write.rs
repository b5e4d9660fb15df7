//! The SQLite store's writes other than ingest: judgements on edges (kept in a history), analyst
//! decisions (only ever appended) and cluster membership (replaced whole). Each runs in the
//! caller's transaction.

use rusqlite::{params, CachedStatement, Transaction};

use super::decode::Cells;
use super::seqs::FaceSeqs;
use super::{backend, InvalidWrite};
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
            "UPDATE edges SET verdict = ?3, judgement_id = ?4 WHERE face_a = ?1 AND face_b = ?2",
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
            .execute(params![sa, sb, verdict, judgement_id])
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
    seqs.resolve(tx, decision.pair.a(), OP)?;
    seqs.resolve(tx, decision.pair.b(), OP)?;
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
    let mut seqs = FaceSeqs::default();
    let mut insert = tx
        .prepare_cached("INSERT INTO cluster_members (cluster_id, face_id) VALUES (?1, ?2)")
        .map_err(backend(OP))?;
    for cluster in clusters {
        for face in &cluster.faces {
            seqs.resolve(tx, face, OP)?;
            insert
                .execute(params![cluster.cluster_id, face.as_str()])
                .map_err(backend(OP))?;
        }
    }
    Ok(())
}
