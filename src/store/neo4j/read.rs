//! The Neo4j store's reads, each one transaction of one or a few queries, decoded by
//! [`super::decode`].

use std::collections::HashSet;

use neo4rs::{query, Txn};

use super::decode::{
    all, cluster_member, corrupt, decision, edge_record, face_record, int, search_record,
    DECISION_COLUMNS, EDGE_COLUMNS, FACE_COLUMNS, FACE_EXTRA, FACE_SUBJECT, SEARCH_COLUMNS,
};
use super::driver::{ids, rows, unwind_rows, Work};
use super::Neo4jStore;
use crate::model::{Decision, FaceId, FacePair, SearchRecord, SubjectId, Verdict};
use crate::store::codec::group_clusters;
use crate::store::{ClusterMembership, EdgeRecord, FaceRecord, StoreError, StoreStats};

/// The stored faces among `ids_wanted`, in insertion order.
pub(super) fn faces(
    store: &Neo4jStore,
    ids_wanted: &[FaceId],
) -> Result<Vec<FaceRecord>, StoreError> {
    if ids_wanted.is_empty() {
        return Ok(Vec::new());
    }
    store.transaction("read faces", async |tx| {
        face_records(tx, ids_wanted.iter()).await
    })
}

/// The stored faces among `wanted`, in insertion order, read in `tx`.
pub(super) async fn face_records<'a>(
    tx: &mut Txn,
    wanted: impl IntoIterator<Item = &'a FaceId>,
) -> Work<Vec<FaceRecord>> {
    let cypher = format!(
        "UNWIND $rows AS id MATCH (f:Face {{face_id: id}}) {FACE_SUBJECT}
         RETURN {FACE_COLUMNS}, {FACE_EXTRA} ORDER BY seq"
    );
    let found = unwind_rows(tx, &cypher, ids(wanted)).await?;
    let mut faces = all(found, face_record)?;
    // Each chunk of the UNWIND is ordered on its own, and an id given twice is found twice.
    faces.sort_by_key(|f| f.seq);
    faces.dedup_by_key(|f| f.seq);
    Ok(faces)
}

/// [`GraphStore::all_faces`](crate::store::GraphStore::all_faces).
pub(super) fn all_faces(store: &Neo4jStore) -> Result<Vec<FaceRecord>, StoreError> {
    let cypher = format!(
        "MATCH (f:Face) {FACE_SUBJECT} RETURN {FACE_COLUMNS}, {FACE_EXTRA}
         ORDER BY seq"
    );
    let found = store.transaction("read faces", async |tx| Ok(rows(tx, query(&cypher)).await?))?;
    all(found, face_record)
}

/// [`GraphStore::faces_of_subject`](crate::store::GraphStore::faces_of_subject).
pub(super) fn faces_of_subject(
    store: &Neo4jStore,
    subject: &SubjectId,
) -> Result<Vec<FaceRecord>, StoreError> {
    let cypher = format!(
        "MATCH (s:Subject {{subject_id: $subject}})<-[:OF_SUBJECT]-(fi:Image)<-[:IN_IMAGE]-(f:Face)
         RETURN {FACE_COLUMNS}, {FACE_EXTRA} ORDER BY seq"
    );
    let found = store.transaction("read faces", async |tx| {
        Ok(rows(tx, query(&cypher).param("subject", subject.as_str())).await?)
    })?;
    all(found, face_record)
}

/// [`GraphStore::edge`](crate::store::GraphStore::edge).
pub(super) fn edge(store: &Neo4jStore, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError> {
    let cypher = format!(
        "MATCH (a:Face {{face_id: $a}})-[e:SIMILAR]->(b:Face {{face_id: $b}})
         RETURN {EDGE_COLUMNS}"
    );
    let found = store.transaction("read edges", async |tx| {
        Ok(rows(
            tx,
            query(&cypher)
                .param("a", pair.a().as_str())
                .param("b", pair.b().as_str()),
        )
        .await?)
    })?;
    Ok(all(found, edge_record)?.into_iter().next())
}

/// [`GraphStore::edges_touching`](crate::store::GraphStore::edges_touching).
pub(super) fn edges_touching(
    store: &Neo4jStore,
    ids_wanted: &[FaceId],
) -> Result<Vec<EdgeRecord>, StoreError> {
    if ids_wanted.is_empty() {
        return Ok(Vec::new());
    }
    let outgoing = format!(
        "UNWIND $rows AS id MATCH (a:Face {{face_id: id}})-[e:SIMILAR]->(b:Face)
         RETURN {EDGE_COLUMNS}"
    );
    let incoming = format!(
        "UNWIND $rows AS id MATCH (a:Face)-[e:SIMILAR]->(b:Face {{face_id: id}})
         RETURN {EDGE_COLUMNS}"
    );
    let found = store.transaction("read edges", async |tx| {
        let mut found = unwind_rows(tx, &outgoing, ids(ids_wanted)).await?;
        found.extend(unwind_rows(tx, &incoming, ids(ids_wanted)).await?);
        Ok(found)
    })?;
    let mut seen = HashSet::new();
    let mut edges = Vec::new();
    for record in all(found, edge_record)? {
        if seen.insert(record.edge.pair.clone()) {
            edges.push(record);
        }
    }
    Ok(edges)
}

/// [`GraphStore::edges`](crate::store::GraphStore::edges).
pub(super) fn edges(
    store: &Neo4jStore,
    verdict: Option<Verdict>,
) -> Result<Vec<EdgeRecord>, StoreError> {
    let cypher = match verdict {
        Some(_) => format!(
            "MATCH (a:Face)-[e:SIMILAR]->(b:Face) WHERE e.verdict = $verdict
             RETURN {EDGE_COLUMNS}"
        ),
        None => format!("MATCH (a:Face)-[e:SIMILAR]->(b:Face) RETURN {EDGE_COLUMNS}"),
    };
    let found = store.transaction("read edges", async |tx| {
        let mut q = query(&cypher);
        if let Some(v) = verdict {
            q = q.param("verdict", v.as_str());
        }
        Ok(rows(tx, q).await?)
    })?;
    all(found, edge_record)
}

/// [`GraphStore::decisions`](crate::store::GraphStore::decisions).
pub(super) fn decisions(store: &Neo4jStore) -> Result<Vec<Decision>, StoreError> {
    let cypher = format!(
        "MATCH (a:Face)-[d:SAME_PERSON|DIFFERENT_PERSON]->(b:Face) RETURN {DECISION_COLUMNS}
         ORDER BY seq"
    );
    let found = store.transaction("read decisions", async |tx| {
        Ok(rows(tx, query(&cypher)).await?)
    })?;
    all(found, decision)
}

/// [`GraphStore::searches`](crate::store::GraphStore::searches).
pub(super) fn searches(
    store: &Neo4jStore,
    ids_wanted: &[FaceId],
) -> Result<Vec<SearchRecord>, StoreError> {
    if ids_wanted.is_empty() {
        return Ok(Vec::new());
    }
    let cypher =
        format!("UNWIND $rows AS id MATCH (s:Search {{face_id: id}}) RETURN {SEARCH_COLUMNS}");
    let found = store.transaction("read searches", async |tx| {
        Ok(unwind_rows(tx, &cypher, ids(ids_wanted)).await?)
    })?;
    let mut searches = all(found, search_record)?;
    searches.sort_by_key(|(order, _)| *order);
    searches.dedup_by_key(|(order, _)| *order);
    Ok(searches.into_iter().map(|(_, s)| s).collect())
}

/// [`GraphStore::clusters`](crate::store::GraphStore::clusters).
pub(super) fn clusters(store: &Neo4jStore) -> Result<Vec<ClusterMembership>, StoreError> {
    let found = store.transaction("read clusters", async |tx| {
        Ok(rows(
            tx,
            query(
                "MATCH (f:Face) WHERE f.cluster_id IS NOT NULL
                 RETURN f.cluster_id AS cluster, f.face_id AS face,
                        coalesce(f.cluster_lead, false) AS lead, f.cluster_rank AS rank
                 ORDER BY rank",
            ),
        )
        .await?)
    })?;
    let members = all(found, cluster_member)?;
    Ok(group_clusters(members))
}

/// [`GraphStore::stats`](crate::store::GraphStore::stats).
pub(super) fn stats(store: &Neo4jStore) -> Result<StoreStats, StoreError> {
    const COUNTS: [&str; 6] = [
        "MATCH (n:Collection) RETURN count(n) AS n",
        "MATCH (n:Image) RETURN count(n) AS n",
        "MATCH (n:Face) RETURN count(n) AS n",
        "MATCH (n:Subject) RETURN count(n) AS n",
        "MATCH (:Face)-[e:SIMILAR]->(:Face) RETURN count(e) AS n",
        "MATCH (:Face)-[d:SAME_PERSON|DIFFERENT_PERSON]->(:Face) RETURN count(d) AS n",
    ];
    let counts = store.transaction("read statistics", async |tx| {
        let mut counts = [0_usize; 6];
        for (slot, cypher) in counts.iter_mut().zip(COUNTS) {
            let found = rows(tx, query(cypher)).await?;
            let n = found.first().map(|r| int(r, "n")).transpose()?.unwrap_or(0);
            *slot = usize::try_from(n).map_err(|_| corrupt("statistics", n))?;
        }
        Ok(counts)
    })?;
    let [collections, images, faces, subjects, edges, decisions] = counts;
    Ok(StoreStats {
        collections,
        images,
        faces,
        subjects,
        edges,
        decisions,
    })
}
