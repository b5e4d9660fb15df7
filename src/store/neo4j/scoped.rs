//! The Neo4j store's part of scoped adjudication: faces awaiting re-judging (a `dirty` mark on the
//! face, numbered by a counter), edges read without their judgements, the decisions and clusters
//! of some faces, clusters replaced a few at a time with their totals kept in counters, and the
//! review queue read in pages.

use std::collections::HashSet;

use neo4rs::{query, BoltType, Txn};

use super::decode::{
    all, corrupt, decision, edge_record, get, int, opt_parsed, opt_real, parsed, text,
    DECISION_COLUMNS, EDGE_COLUMNS,
};
use super::driver::{ids, rows, take_numbers, unwind, unwind_rows, Map, Work};
use super::Neo4jStore;
use crate::model::{
    Decision, Edge, ExternalImageId, FaceId, FacePair, Similarity, Timestamp, Verdict,
};
use crate::store::codec::group_clusters;
use crate::store::{
    ClusterMembership, ClusterTotals, DirtyFaces, EdgeRecord, IngestBatch, QueuePosition,
    StoreError,
};

/// The counters that hold the cluster totals.
const CLUSTERS: &str = "clusters";
const FRAUD_LEADS: &str = "fraud_leads";

/// Marks every face a batch names as awaiting re-judging: its faces, both faces of its
/// observations, the faces of its searches, and the faces of the images its subject links and
/// images name. More than what changed (a repeated batch marks its faces again); a face marked for
/// nothing costs a re-judging that writes nothing.
pub(super) async fn mark_batch(tx: &mut Txn, batch: &IngestBatch) -> Work<()> {
    let mut faces: HashSet<&FaceId> = batch.faces.iter().map(|f| &f.face_id).collect();
    faces.extend(
        batch
            .observations
            .iter()
            .filter(|o| o.searched != o.found)
            .flat_map(|o| [&o.searched, &o.found]),
    );
    faces.extend(batch.searches.iter().map(|s| &s.face_id));
    let externals: HashSet<&ExternalImageId> = batch.subjects.iter().map(|(e, _)| e).collect();
    let images: HashSet<&str> = batch
        .images
        .iter()
        .map(|i| i.image_id.as_str())
        .chain(batch.faces.iter().map(|f| f.image_id.as_str()))
        .collect();
    if faces.is_empty() && externals.is_empty() && images.is_empty() {
        return Ok(());
    }
    let mark = take_numbers(tx, "dirty", 1).await?;
    let with_mark = |cypher: &str| cypher.replace("$mark", &mark.to_string());
    unwind(
        tx,
        &with_mark("UNWIND $rows AS id MATCH (f:Face {face_id: id}) SET f.dirty = $mark"),
        ids(faces),
    )
    .await?;
    unwind(
        tx,
        &with_mark(
            "UNWIND $rows AS ext MATCH (f:Face)-[:IN_IMAGE]->(:Image {external_image_id: ext})
             SET f.dirty = $mark",
        ),
        externals.iter().map(|e| e.as_str().into()).collect(),
    )
    .await?;
    unwind(
        tx,
        &with_mark(
            "UNWIND $rows AS id MATCH (f:Face)-[:IN_IMAGE]->(:Image {image_id: id})
             SET f.dirty = $mark",
        ),
        images.into_iter().map(BoltType::from).collect(),
    )
    .await?;
    Ok(())
}

/// Marks both faces of a decision as awaiting re-judging.
pub(super) async fn mark_pair(tx: &mut Txn, pair: &FacePair) -> Work<()> {
    let mark = take_numbers(tx, "dirty", 1).await?;
    tx.run(
        query("UNWIND $rows AS id MATCH (f:Face {face_id: id}) SET f.dirty = $mark")
            .param("rows", ids([pair.a(), pair.b()]))
            .param("mark", mark),
    )
    .await?;
    Ok(())
}

impl Neo4jStore {
    pub(super) fn read_dirty(&self, limit: usize) -> Result<DirtyFaces, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (found, count, through) =
            self.transaction("read the faces awaiting re-judging", async |tx| {
                let totals = rows(
                    tx,
                    query(
                        "MATCH (f:Face) WHERE f.dirty IS NOT NULL
                         RETURN count(f) AS n, coalesce(max(f.dirty), 0) AS through",
                    ),
                )
                .await?;
                let (count, through) = match totals.first() {
                    Some(r) => (int(r, "n")?, int(r, "through")?),
                    None => (0, 0),
                };
                let found = rows(
                    tx,
                    query(
                        "MATCH (f:Face) WHERE f.dirty IS NOT NULL AND f.dirty <= $through
                         RETURN f.face_id AS face ORDER BY f.dirty, f.face_id LIMIT $limit",
                    )
                    .param("through", through)
                    .param("limit", limit),
                )
                .await?;
                Ok((found, count, through))
            })?;
        let faces = all(found, |row| parsed(row, "face", "face", FaceId::parse))?;
        Ok(DirtyFaces {
            faces,
            count: usize::try_from(count).map_err(|_| corrupt("dirty faces", count))?,
            through,
        })
    }

    pub(super) fn clear_dirty_marks(&self, through: i64) -> Result<(), StoreError> {
        self.transaction("clear the faces awaiting re-judging", async |tx| {
            tx.run(
                query("MATCH (f:Face) WHERE f.dirty <= $through REMOVE f.dirty")
                    .param("through", through),
            )
            .await?;
            Ok(())
        })
    }

    pub(super) fn light_edges(
        &self,
        wanted: &[FaceId],
    ) -> Result<Vec<(Edge, Option<Verdict>)>, StoreError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        const COLUMNS: &str = "a.face_id AS face_a, b.face_id AS face_b,
            e.similarity_ab AS similarity_ab, e.similarity_ba AS similarity_ba,
            e.engine AS engine, e.searched_at AS searched_at, e.verdict AS verdict";
        let outgoing = format!(
            "UNWIND $rows AS id MATCH (a:Face {{face_id: id}})-[e:SIMILAR]->(b:Face) RETURN {COLUMNS}"
        );
        let incoming = format!(
            "UNWIND $rows AS id MATCH (a:Face)-[e:SIMILAR]->(b:Face {{face_id: id}}) RETURN {COLUMNS}"
        );
        let found = self.transaction("read edges", async |tx| {
            let mut found = unwind_rows(tx, &outgoing, ids(wanted)).await?;
            found.extend(unwind_rows(tx, &incoming, ids(wanted)).await?);
            Ok(found)
        })?;
        let mut seen = HashSet::new();
        let mut edges = Vec::new();
        for (edge, verdict) in all(found, light_edge)? {
            if seen.insert(edge.pair.clone()) {
                edges.push((edge, verdict));
            }
        }
        Ok(edges)
    }

    pub(super) fn decisions_of(&self, wanted: &[FaceId]) -> Result<Vec<Decision>, StoreError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let cypher = format!(
            "UNWIND $rows AS id
             MATCH (a:Face)-[d:SAME_PERSON|DIFFERENT_PERSON]->(b:Face)
             WHERE a.face_id = id OR b.face_id = id
             RETURN {DECISION_COLUMNS}"
        );
        let found = self.transaction("read decisions", async |tx| {
            Ok(unwind_rows(tx, &cypher, ids(wanted)).await?)
        })?;
        let mut numbered: Vec<(i64, Decision)> = Vec::with_capacity(found.len());
        for row in &found {
            numbered.push((int(row, "seq")?, decision(row)?));
        }
        numbered.sort_by_key(|(seq, _)| *seq);
        numbered.dedup_by_key(|(seq, _)| *seq);
        Ok(numbered.into_iter().map(|(_, d)| d).collect())
    }

    pub(super) fn clusters_holding(
        &self,
        wanted: &[FaceId],
    ) -> Result<Vec<ClusterMembership>, StoreError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.transaction("read clusters", async |tx| {
            let names = unwind_rows(
                tx,
                "UNWIND $rows AS id MATCH (f:Face {face_id: id}) WHERE f.cluster_id IS NOT NULL
                 RETURN DISTINCT f.cluster_id AS cluster",
                ids(wanted),
            )
            .await?;
            let mut clusters: Vec<BoltType> = Vec::with_capacity(names.len());
            for row in &names {
                clusters.push(text(row, "cluster", "cluster")?.into());
            }
            Ok(unwind_rows(
                tx,
                "UNWIND $rows AS c MATCH (f:Face {cluster_id: c})
                 RETURN f.cluster_id AS cluster, f.face_id AS face,
                        coalesce(f.cluster_lead, false) AS lead, f.cluster_rank AS rank
                 ORDER BY rank",
                clusters,
            )
            .await?)
        })?;
        let mut members = Vec::with_capacity(found.len());
        for row in &found {
            members.push((
                int(row, "rank")?,
                (
                    text(row, "cluster member", "cluster")?,
                    parsed(row, "cluster member", "face", FaceId::parse)?,
                    get::<bool>(row, "cluster member", "lead")?,
                ),
            ));
        }
        members.sort_by_key(|(rank, _)| *rank);
        Ok(group_clusters(members.into_iter().map(|(_, m)| m)))
    }

    pub(super) fn replace_clusters_of(
        &self,
        removed: &[String],
        added: &[ClusterMembership],
    ) -> Result<(), StoreError> {
        self.transaction("replace clusters", async |tx| {
            let removed: Vec<BoltType> = removed.iter().map(|c| c.as_str().into()).collect();
            let gone = unwind_rows(
                tx,
                "UNWIND $rows AS c MATCH (f:Face {cluster_id: c})
                 WITH c, max(coalesce(f.cluster_lead, false)) AS lead
                 RETURN count(c) AS n, sum(CASE WHEN lead THEN 1 ELSE 0 END) AS leads",
                removed.clone(),
            )
            .await?;
            let (mut clusters, mut leads) = (0, 0);
            for row in &gone {
                clusters -= int(row, "n")?;
                leads -= int(row, "leads")?;
            }
            unwind(
                tx,
                "UNWIND $rows AS c MATCH (f:Face {cluster_id: c})
                 REMOVE f.cluster_id, f.cluster_rank, f.cluster_lead",
                removed,
            )
            .await?;
            let (more, more_leads) = write_members(tx, added).await?;
            clusters += more;
            leads += more_leads;
            adjust_totals(tx, clusters, leads).await
        })
    }

    pub(super) fn totals(&self) -> Result<ClusterTotals, StoreError> {
        let found = self.transaction("read cluster totals", async |tx| {
            Ok(rows(
                tx,
                query(
                    "OPTIONAL MATCH (c:Counter {name: $clusters})
                     OPTIONAL MATCH (l:Counter {name: $leads})
                     RETURN coalesce(c.value, 0) AS clusters, coalesce(l.value, 0) AS leads",
                )
                .param("clusters", CLUSTERS)
                .param("leads", FRAUD_LEADS),
            )
            .await?)
        })?;
        let (clusters, leads) = match found.first() {
            Some(r) => (int(r, "clusters")?, int(r, "leads")?),
            None => (0, 0),
        };
        let count = |n: i64| usize::try_from(n).map_err(|_| corrupt("cluster totals", n));
        Ok(ClusterTotals {
            clusters: count(clusters)?,
            fraud_leads: count(leads)?,
        })
    }

    pub(super) fn queue_page(
        &self,
        after: Option<&QueuePosition>,
        limit: usize,
    ) -> Result<Vec<EdgeRecord>, StoreError> {
        // The queue is the review verdicts whose reasons hold neither band retention nor a
        // self-match; the codes are kept on the edge for queries like this one.
        let cypher = format!(
            "MATCH (a:Face)-[e:SIMILAR]->(b:Face)
             WHERE e.verdict = 'review'
               AND NOT 'band_retention' IN e.reason_codes AND NOT 'same_subject' IN e.reason_codes
               AND ($score IS NULL OR e.score < $score
                    OR (e.score = $score AND (a.face_id > $a OR (a.face_id = $a AND b.face_id > $b))))
             RETURN {EDGE_COLUMNS}
             ORDER BY e.score DESC, a.face_id, b.face_id LIMIT $limit"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self.transaction("read the review queue", async |tx| {
            Ok(rows(
                tx,
                query(&cypher)
                    .param("score", after.map(|p| p.score))
                    .param("a", after.map(|p| p.pair.a().as_str().to_owned()))
                    .param("b", after.map(|p| p.pair.b().as_str().to_owned()))
                    .param("limit", limit),
            )
            .await?)
        })?;
        all(found, edge_record)
    }
}

/// Writes the members of `clusters` onto their faces, numbered after the members stored; returns
/// how many clusters and fraud leads it wrote.
pub(super) async fn write_members(
    tx: &mut Txn,
    clusters: &[ClusterMembership],
) -> Work<(i64, i64)> {
    let count: usize = clusters.iter().map(|c| c.faces.len()).sum();
    if count == 0 {
        return Ok((0, 0));
    }
    let first = take_numbers(tx, "cluster_member", count).await?;
    let rows: Vec<BoltType> = clusters
        .iter()
        .flat_map(|c| c.faces.iter().map(move |f| (c, f)))
        .zip(first..)
        .map(|((c, f), rank)| {
            Map::default()
                .with("cluster", c.cluster_id.as_str())
                .with("face", f.as_str())
                .with("lead", c.fraud_lead)
                .with("rank", rank)
                .into()
        })
        .collect();
    unwind(
        tx,
        "UNWIND $rows AS r
         MATCH (f:Face {face_id: r.face})
         SET f.cluster_id = r.cluster, f.cluster_rank = r.rank, f.cluster_lead = r.lead",
        rows,
    )
    .await?;
    let leads = clusters.iter().filter(|c| c.fraud_lead).count();
    Ok((clusters.len() as i64, leads as i64))
}

/// Adds to the cluster totals.
async fn adjust_totals(tx: &mut Txn, clusters: i64, leads: i64) -> Work<()> {
    for (name, by) in [(CLUSTERS, clusters), (FRAUD_LEADS, leads)] {
        tx.run(
            query(
                "MERGE (k:Counter {name: $name}) ON CREATE SET k.value = 0
                 SET k.value = k.value + $by",
            )
            .param("name", name)
            .param("by", by),
        )
        .await?;
    }
    Ok(())
}

/// Sets the cluster totals, after every cluster was replaced.
pub(super) async fn set_totals(tx: &mut Txn, clusters: i64, leads: i64) -> Work<()> {
    for (name, value) in [(CLUSTERS, clusters), (FRAUD_LEADS, leads)] {
        tx.run(
            query("MERGE (k:Counter {name: $name}) SET k.value = $value")
                .param("name", name)
                .param("value", value),
        )
        .await?;
    }
    Ok(())
}

/// Reads an edge with its verdict but without the rest of its judgement.
fn light_edge(row: &neo4rs::Row) -> Result<(Edge, Option<Verdict>), StoreError> {
    const W: &str = "edge";
    let a = parsed(row, W, "face_a", FaceId::parse)?;
    let b = parsed(row, W, "face_b", FaceId::parse)?;
    let pair = match FacePair::new(a.clone(), b.clone()) {
        Some(pair) if *pair.a() == a => pair,
        _ => {
            return Err(corrupt(
                W,
                format!("{a} -> {b}: a SIMILAR edge leads from the face whose id sorts first"),
            ))
        }
    };
    let verdict = opt_parsed(row, W, "verdict", |s| {
        Verdict::parse(s).ok_or_else(|| format!("{s:?} is not confirmed, review or rejected"))
    })?;
    Ok((
        Edge {
            pair,
            similarity_ab: opt_real(row, W, "similarity_ab", Similarity::new)?,
            similarity_ba: opt_real(row, W, "similarity_ba", Similarity::new)?,
            engine: text(row, W, "engine")?,
            searched_at: Timestamp::from_millis(get(row, W, "searched_at")?),
        },
        verdict,
    ))
}
