//! The SQLite store's reads: each one query (or a few) on the connection, decoded by
//! [`super::decode`].

use rusqlite::Connection;

use super::backend;
use super::decode::{
    collect, decision, edge_record, face_record, id_list, search_record, Cells, EDGE_SELECT,
    FACE_SELECT,
};
use crate::model::{Decision, FaceId, FacePair, SearchRecord, SubjectId, Verdict};
use crate::store::codec::group_clusters;
use crate::store::{ClusterMembership, EdgeRecord, FaceRecord, StoreError, StoreStats};

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
        .prepare_cached("SELECT cluster_id, face_id FROM cluster_members ORDER BY id")
        .map_err(backend(OP))?;
    let rows = stmt.query([]).map_err(backend(OP))?;
    let members = collect(rows, OP, |row| {
        let mut c = Cells::new(row, "cluster member");
        Ok((c.text()?.to_owned(), c.parse(FaceId::parse)?))
    })?;
    // Clusters come back in the order they were stored, each with its faces in order.
    Ok(group_clusters(members))
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
