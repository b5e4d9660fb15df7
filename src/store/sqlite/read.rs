//! The SQLite store's reads: each one query (or a few) on the connection, decoded by
//! [`super::decode`].

use rusqlite::Connection;

use super::backend;
use super::decode::{
    collect, decision, edge_record, face_record, id_list, light_edge, search_record, Cells,
    EDGE_SELECT, FACE_SELECT,
};
use crate::model::{Decision, Edge, FaceId, FacePair, SearchRecord, SubjectId, Verdict};
use crate::store::codec::group_clusters;
use crate::store::{
    ClusterMembership, ClusterTotals, DirtyFaces, EdgeRecord, FaceRecord, QueuePosition,
    StoreError, StoreStats,
};

/// The stored faces among `ids`, in insertion order.
pub(super) fn faces<'a>(
    conn: &Connection,
    ids: impl IntoIterator<Item = &'a FaceId>,
) -> Result<Vec<FaceRecord>, StoreError> {
    const OP: &str = "read faces";
    let sql = format!(
        "{FACE_SELECT} WHERE f.face_id IN (SELECT value FROM json_each(?1)) ORDER BY f.seq"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt.query([id_list(ids)]).map_err(backend(OP))?;
    collect(rows, OP, face_record)
}

/// [`GraphStore::all_faces`](crate::store::GraphStore::all_faces).
pub(super) fn all_faces(conn: &Connection) -> Result<Vec<FaceRecord>, StoreError> {
    const OP: &str = "read faces";
    let sql = format!("{FACE_SELECT} ORDER BY f.seq");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt.query([]).map_err(backend(OP))?;
    collect(rows, OP, face_record)
}

/// [`GraphStore::faces_of_subject`](crate::store::GraphStore::faces_of_subject).
pub(super) fn faces_of_subject(
    conn: &Connection,
    subject: &SubjectId,
) -> Result<Vec<FaceRecord>, StoreError> {
    const OP: &str = "read faces";
    let sql = format!("{FACE_SELECT} WHERE i.subject_id = ?1 ORDER BY f.seq");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt.query([subject.as_str()]).map_err(backend(OP))?;
    collect(rows, OP, face_record)
}

/// [`GraphStore::edge`](crate::store::GraphStore::edge).
pub(super) fn edge(conn: &Connection, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError> {
    const OP: &str = "read edges";
    let sql = format!("{EDGE_SELECT} WHERE face_a = ?1 AND face_b = ?2");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt
        .query([pair.a().as_str(), pair.b().as_str()])
        .map_err(backend(OP))?;
    Ok(collect(rows, OP, edge_record)?.into_iter().next())
}

/// [`GraphStore::edges_touching`](crate::store::GraphStore::edges_touching).
pub(super) fn edges_touching(
    conn: &Connection,
    ids: &[FaceId],
) -> Result<Vec<EdgeRecord>, StoreError> {
    const OP: &str = "read edges";
    // Two index lookups instead of an OR, which SQLite would answer with a full scan; the
    // second half leaves out the edges the first half already returned.
    let sql = format!(
        "{EDGE_SELECT} WHERE face_a IN (SELECT value FROM json_each(?1))
         UNION ALL
         {EDGE_SELECT} WHERE face_b IN (SELECT value FROM json_each(?1))
           AND face_a NOT IN (SELECT value FROM json_each(?1))"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt.query([id_list(ids)]).map_err(backend(OP))?;
    collect(rows, OP, edge_record)
}

/// [`GraphStore::edges`](crate::store::GraphStore::edges).
pub(super) fn edges(
    conn: &Connection,
    verdict: Option<Verdict>,
) -> Result<Vec<EdgeRecord>, StoreError> {
    const OP: &str = "read edges";
    let sql = match verdict {
        Some(_) => format!("{EDGE_SELECT} WHERE verdict = ?1"),
        None => EDGE_SELECT.to_owned(),
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt
        .query(rusqlite::params_from_iter(verdict.map(Verdict::as_str)))
        .map_err(backend(OP))?;
    collect(rows, OP, edge_record)
}

/// [`GraphStore::decisions`](crate::store::GraphStore::decisions).
pub(super) fn decisions(conn: &Connection) -> Result<Vec<Decision>, StoreError> {
    const OP: &str = "read decisions";
    let mut stmt = conn
        .prepare_cached("SELECT face_a, face_b, kind, analyst, note, at FROM decisions ORDER BY id")
        .map_err(backend(OP))?;
    let rows = stmt.query([]).map_err(backend(OP))?;
    collect(rows, OP, decision)
}

/// [`GraphStore::searches`](crate::store::GraphStore::searches).
pub(super) fn searches(conn: &Connection, ids: &[FaceId]) -> Result<Vec<SearchRecord>, StoreError> {
    const OP: &str = "read searches";
    let mut stmt = conn
        .prepare_cached(
            "SELECT face_id, collection_id, bound, collection_seq, searched_at FROM searches
             WHERE face_id IN (SELECT value FROM json_each(?1))
             ORDER BY searched_at, id",
        )
        .map_err(backend(OP))?;
    let rows = stmt.query([id_list(ids)]).map_err(backend(OP))?;
    collect(rows, OP, search_record)
}

/// [`GraphStore::clusters`](crate::store::GraphStore::clusters).
pub(super) fn clusters(conn: &Connection) -> Result<Vec<ClusterMembership>, StoreError> {
    const OP: &str = "read clusters";
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.cluster_id, m.face_id, coalesce(c.fraud_lead, 0) FROM cluster_members m
             LEFT JOIN clusters c ON c.cluster_id = m.cluster_id ORDER BY m.id",
        )
        .map_err(backend(OP))?;
    let rows = stmt.query([]).map_err(backend(OP))?;
    // Clusters come back in the order they were stored, each with its faces in order.
    Ok(group_clusters(collect(rows, OP, cluster_member)?))
}

/// Reads a row of (cluster id, face id, fraud lead).
fn cluster_member(row: &rusqlite::Row<'_>) -> Result<(String, FaceId, bool), StoreError> {
    let mut c = Cells::new(row, "cluster member");
    Ok((c.text()?.to_owned(), c.parse(FaceId::parse)?, c.int()? != 0))
}

/// [`GraphStore::stats`](crate::store::GraphStore::stats).
pub(super) fn stats(conn: &Connection) -> Result<StoreStats, StoreError> {
    const OP: &str = "read statistics";
    let mut stmt = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM collections), (SELECT count(*) FROM images),
                    (SELECT count(*) FROM faces), (SELECT count(*) FROM subjects),
                    (SELECT count(*) FROM edges), (SELECT count(*) FROM decisions)",
        )
        .map_err(backend(OP))?;
    let rows = stmt.query([]).map_err(backend(OP))?;
    let counts = collect(rows, OP, |row| {
        let mut c = Cells::new(row, "statistics");
        let mut next = || -> Result<usize, StoreError> {
            let n = c.int()?;
            usize::try_from(n).map_err(|_| c.corrupt_last(format!("count {n}")))
        };
        Ok(StoreStats {
            collections: next()?,
            images: next()?,
            faces: next()?,
            subjects: next()?,
            edges: next()?,
            decisions: next()?,
        })
    })?;
    Ok(counts.into_iter().next().unwrap_or_default())
}

// Scoped adjudication (issue 13).

/// [`GraphStore::dirty_faces`](crate::store::GraphStore::dirty_faces).
pub(super) fn dirty_faces(conn: &Connection, limit: usize) -> Result<DirtyFaces, StoreError> {
    const OP: &str = "read the faces awaiting re-judging";
    let (count, through): (i64, i64) = conn
        .prepare_cached("SELECT count(*), coalesce(max(id), 0) FROM dirty_faces")
        .and_then(|mut stmt| stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(backend(OP))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT f.face_id FROM dirty_faces d JOIN faces f ON f.seq = d.face_seq
             WHERE d.id <= ?1 ORDER BY d.id LIMIT ?2",
        )
        .map_err(backend(OP))?;
    let rows = stmt
        .query(rusqlite::params![
            through,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])
        .map_err(backend(OP))?;
    let faces = collect(rows, OP, |row| Cells::new(row, "face").parse(FaceId::parse))?;
    Ok(DirtyFaces {
        faces,
        count: usize::try_from(count).unwrap_or(0),
        through,
    })
}

/// [`GraphStore::similar_edges`](crate::store::GraphStore::similar_edges).
pub(super) fn similar_edges(
    conn: &Connection,
    ids: &[FaceId],
) -> Result<Vec<(Edge, Option<Verdict>)>, StoreError> {
    const OP: &str = "read edges";
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The faces' seqs first, so that the edges are found through the primary key and the index
    // on face_b, as in `edges_touching`.
    const SQL: &str = "WITH wanted(seq) AS (SELECT f.seq FROM faces f
                              WHERE f.face_id IN (SELECT value FROM json_each(?1)))
         SELECT fa.face_id, fb.face_id, e.similarity_ab, e.similarity_ba, e.engine, e.searched_at,
                e.verdict
         FROM edges e JOIN faces fa ON fa.seq = e.face_a JOIN faces fb ON fb.seq = e.face_b
         WHERE e.face_a IN wanted
         UNION ALL
         SELECT fa.face_id, fb.face_id, e.similarity_ab, e.similarity_ba, e.engine, e.searched_at,
                e.verdict
         FROM edges e JOIN faces fa ON fa.seq = e.face_a JOIN faces fb ON fb.seq = e.face_b
         WHERE e.face_b IN wanted AND e.face_a NOT IN wanted";
    let mut stmt = conn.prepare_cached(SQL).map_err(backend(OP))?;
    let rows = stmt.query([id_list(ids)]).map_err(backend(OP))?;
    collect(rows, OP, light_edge)
}

/// [`GraphStore::decisions_touching`](crate::store::GraphStore::decisions_touching).
pub(super) fn decisions_touching(
    conn: &Connection,
    ids: &[FaceId],
) -> Result<Vec<Decision>, StoreError> {
    const OP: &str = "read decisions";
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT face_a, face_b, kind, analyst, note, at FROM decisions
             WHERE id IN (SELECT id FROM decisions WHERE face_a IN (SELECT value FROM json_each(?1))
                          UNION
                          SELECT id FROM decisions WHERE face_b IN (SELECT value FROM json_each(?1)))
             ORDER BY id",
        )
        .map_err(backend(OP))?;
    let rows = stmt.query([id_list(ids)]).map_err(backend(OP))?;
    collect(rows, OP, decision)
}

/// [`GraphStore::clusters_of`](crate::store::GraphStore::clusters_of).
pub(super) fn clusters_of(
    conn: &Connection,
    ids: &[FaceId],
) -> Result<Vec<ClusterMembership>, StoreError> {
    const OP: &str = "read clusters";
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.cluster_id, m.face_id, coalesce(c.fraud_lead, 0) FROM cluster_members m
             LEFT JOIN clusters c ON c.cluster_id = m.cluster_id
             WHERE m.cluster_id IN (SELECT cluster_id FROM cluster_members
                                    WHERE face_id IN (SELECT value FROM json_each(?1)))
             ORDER BY m.id",
        )
        .map_err(backend(OP))?;
    let rows = stmt.query([id_list(ids)]).map_err(backend(OP))?;
    Ok(group_clusters(collect(rows, OP, cluster_member)?))
}

/// [`GraphStore::cluster_totals`](crate::store::GraphStore::cluster_totals).
pub(super) fn cluster_totals(conn: &Connection) -> Result<ClusterTotals, StoreError> {
    const OP: &str = "read cluster totals";
    let (clusters, fraud_leads): (i64, i64) = conn
        .prepare_cached("SELECT clusters, fraud_leads FROM cluster_totals WHERE id = 1")
        .and_then(|mut stmt| stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(backend(OP))?;
    let count = |n: i64| {
        usize::try_from(n).map_err(|_| StoreError::Corrupt {
            what: "cluster totals",
            detail: format!("count {n}"),
        })
    };
    Ok(ClusterTotals {
        clusters: count(clusters)?,
        fraud_leads: count(fraud_leads)?,
    })
}

/// [`GraphStore::review_page`](crate::store::GraphStore::review_page).
pub(super) fn review_page(
    conn: &Connection,
    after: Option<&QueuePosition>,
    limit: usize,
) -> Result<Vec<EdgeRecord>, StoreError> {
    const OP: &str = "read the review queue";
    // The partial index holds the queue in score order, and a page after a cursor starts with a
    // range on it, so a page reads only its own rows however deep into the queue it is. Ties
    // (rare: scores are full-precision similarities less penalties) are ordered by pair after it.
    let after_cursor = if after.is_some() {
        "AND e.score <= ?1 AND (e.score < ?1 OR (fa.face_id, fb.face_id) > (?2, ?3))"
    } else {
        "AND ?1 IS NULL AND ?2 IS NULL AND ?3 IS NULL"
    };
    let sql = format!(
        "{EDGE_SELECT} WHERE (face_a, face_b) IN (
             SELECT fa.face_id, fb.face_id FROM edges e
             JOIN faces fa ON fa.seq = e.face_a JOIN faces fb ON fb.seq = e.face_b
             WHERE e.queued = 1 {after_cursor}
             ORDER BY e.score DESC, fa.face_id, fb.face_id LIMIT ?4)
         ORDER BY score DESC, face_a, face_b"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt
        .query(rusqlite::params![
            after.map(|p| p.score),
            after.map(|p| p.pair.a().as_str()),
            after.map(|p| p.pair.b().as_str()),
            i64::try_from(limit).unwrap_or(i64::MAX),
        ])
        .map_err(backend(OP))?;
    collect(rows, OP, edge_record)
}
