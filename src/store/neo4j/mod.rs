//! The match graph in Neo4j, over Bolt with `neo4rs`: the production store that several facegraph
//! instances share and that analysts open in Neo4j Browser.
//!
//! The graph model is the one of `docs/ARCHITECTURE.md`: `(:Face)-[:IN_IMAGE]->(:Image)`,
//! `(:Image)-[:OF_SUBJECT]->(:Subject)`, `(:Face)-[:IN_COLLECTION]->(:Collection)`, one
//! `(:Face)-[:SIMILAR]->(:Face)` per unordered pair (from the face whose id sorts first), and the
//! analysts' `SAME_PERSON` / `DIFFERENT_PERSON` relationships, which are only ever added. Beside it:
//! `(:Search)` nodes (which face was searched, against which collection, with what bound),
//! `(:Judgement)` nodes (every verdict an edge ever had), `(:SubjectLink)` nodes (a subject named for
//! an external image id before any image with it arrived) and `(:Counter)` nodes that number faces,
//! decisions and searches in insertion order.
//!
//! Every method is one explicit transaction, retried with backoff when the server reports a
//! transient failure (a deadlock, a leader switch, a dropped connection); other failures, a
//! constraint violation among them, are returned at once. Bulk writes go through `UNWIND` in
//! batches of [`BATCH_ROWS`] rows; nodes are written with `MERGE` on their unique keys, so writing
//! the same input again adds nothing. The uniqueness constraints of `cypher/schema.cypher` are
//! created when the store is opened, before any write.
//!
//! The trait is synchronous; the store runs the driver on a small runtime of its own. Call it from
//! plain threads or `spawn_blocking`, never from inside an async task.
//!
//! `driver` holds the connection and the retried transaction, `schema` the constraints, `ingest`
//! and `edges` write batches, `write` the other writes, `read` the queries, and `decode` turns
//! rows into domain values.

mod decode;
mod driver;
mod edges;
mod ingest;
mod read;
mod schema;
mod scoped;
mod stream;
mod uploads;
mod write;

use neo4rs::{query, BoltMap, Graph, Row};
use secrecy::SecretString;

pub use schema::{schema_statements, SCHEMA};

use super::{
    ClusterMembership, ClusterTotals, DirtyFaces, EdgeRecord, FaceRecord, GraphStore, IngestBatch,
    IngestOutcome, JudgementEntry, MatchEventRecord, ProcessedMessage, QueuePosition, StoreError,
    StoreStats, VerdictUpdate,
};
use crate::model::{
    Decision, Edge, FaceId, FacePair, Image, ImageId, SearchRecord, SubjectId, Timestamp, Verdict,
};
use crate::settings::Neo4jSettings;
use decode::int;
use driver::rows;

/// Rows per `UNWIND` statement: large enough that round trips do not dominate, small enough that
/// one statement's parameters stay a few megabytes.
pub const BATCH_ROWS: usize = 10_000;

/// Where and as whom to connect.
#[derive(Clone)]
pub struct Login {
    /// `bolt://HOST:PORT` or `neo4j://HOST:PORT`.
    pub url: String,
    /// The user.
    pub user: String,
    /// The password.
    pub password: SecretString,
    /// The database, selected by name on every transaction.
    pub database: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The login for `url` from the settings; no password is an empty one.
    pub fn from_settings(url: &str, settings: &Neo4jSettings) -> Self {
        Self {
            url: url.to_owned(),
            user: settings.user.clone(),
            password: settings
                .password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
            database: settings.database.clone(),
        }
    }
}

/// The graph store on a Neo4j server (or another server speaking Bolt and Cypher).
pub struct Neo4jStore {
    graph: Graph,
    database: String,
    url: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Neo4jStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jStore")
            .field("url", &self.url)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Drop for Neo4jStore {
    fn drop(&mut self) {
        // A runtime may not be dropped inside another one's task; this works anywhere.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A caller's mistake that the store refuses (a verdict on a pair without an edge, say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InvalidWrite(String);

impl Neo4jStore {
    /// Connects, checks that the database answers, and applies [`SCHEMA`].
    pub fn connect(login: &Login) -> Result<Self, StoreError> {
        let (runtime, graph) = driver::open(login)?;
        let store = Self {
            graph,
            database: login.database.clone(),
            url: login.url.clone(),
            runtime: Some(runtime),
        };
        store.transaction("connect", async |tx| {
            rows(tx, query("RETURN 1 AS one")).await?;
            Ok(())
        })?;
        store.apply_schema()?;
        store.migrate()?;
        Ok(store)
    }

    /// Deletes every node and relationship of the database, relationships first, a few thousand
    /// per transaction (one huge transaction would hold the whole graph in the server's memory): for
    /// tests and benchmarks that need an empty graph.
    pub fn delete_everything(&self) -> Result<(), StoreError> {
        for cypher in [
            "MATCH ()-[r]->() WITH r LIMIT 5000 DELETE r RETURN count(*) AS deleted",
            "MATCH (n) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS deleted",
        ] {
            loop {
                let deleted = self.transaction("delete everything", async |tx| {
                    let found = rows(tx, query(cypher)).await?;
                    Ok(found.first().map_or(Ok(0), |r| int(r, "deleted"))?)
                })?;
                if deleted == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Runs one read-only query and returns its rows (for investigation queries and their tests).
    pub fn read_rows(&self, cypher: &str, params: BoltMap) -> Result<Vec<Row>, StoreError> {
        self.transaction("run a query", async |tx| {
            Ok(rows(tx, query(cypher).with_params(params.clone())).await?)
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl GraphStore for Neo4jStore {
    fn kind(&self) -> &'static str {
        "neo4j"
    }

    fn ingest(&self, batch: &IngestBatch) -> Result<IngestOutcome, StoreError> {
        self.transaction("ingest", async |tx| ingest::ingest(tx, batch).await)
    }

    fn record_verdicts(&self, updates: &[VerdictUpdate]) -> Result<usize, StoreError> {
        if updates.is_empty() {
            return Ok(0);
        }
        self.transaction("record verdicts", async |tx| {
            write::record_verdicts(tx, updates).await
        })
    }

    fn record_decision(&self, decision: &Decision) -> Result<(), StoreError> {
        self.transaction("record a decision", async |tx| {
            write::record_decision(tx, decision).await
        })
    }

    fn replace_clusters(&self, clusters: &[ClusterMembership]) -> Result<(), StoreError> {
        self.transaction("replace clusters", async |tx| {
            write::replace_clusters(tx, clusters).await
        })
    }

    fn faces(&self, ids: &[FaceId]) -> Result<Vec<FaceRecord>, StoreError> {
        read::faces(self, ids)
    }

    fn all_faces(&self) -> Result<Vec<FaceRecord>, StoreError> {
        read::all_faces(self)
    }

    fn faces_of_subject(&self, subject: &SubjectId) -> Result<Vec<FaceRecord>, StoreError> {
        read::faces_of_subject(self, subject)
    }

    fn edge(&self, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError> {
        read::edge(self, pair)
    }

    fn edges_touching(&self, ids: &[FaceId]) -> Result<Vec<EdgeRecord>, StoreError> {
        read::edges_touching(self, ids)
    }

    fn edges(&self, verdict: Option<Verdict>) -> Result<Vec<EdgeRecord>, StoreError> {
        read::edges(self, verdict)
    }

    fn decisions(&self) -> Result<Vec<Decision>, StoreError> {
        read::decisions(self)
    }

    fn searches(&self, ids: &[FaceId]) -> Result<Vec<SearchRecord>, StoreError> {
        read::searches(self, ids)
    }

    fn clusters(&self) -> Result<Vec<ClusterMembership>, StoreError> {
        read::clusters(self)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        read::stats(self)
    }

    fn images(&self, ids: &[ImageId]) -> Result<Vec<Image>, StoreError> {
        uploads::images(self, ids)
    }

    fn pending_images(&self) -> Result<Vec<Image>, StoreError> {
        uploads::pending(self)
    }

    fn forget_pending_image(&self, id: &ImageId) -> Result<(), StoreError> {
        uploads::forget(self, id)
    }

    fn processed_message(&self, key: &str) -> Result<Option<ProcessedMessage>, StoreError> {
        stream::processed_message(self, key)
    }

    fn record_processed_messages(&self, messages: &[ProcessedMessage]) -> Result<(), StoreError> {
        stream::record_processed(self, messages)
    }

    fn judgements_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JudgementEntry>, StoreError> {
        stream::judgements_after(self, after, limit)
    }

    fn stream_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        stream::cursor(self, name)
    }

    fn set_stream_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        stream::set_cursor(self, name, value)
    }

    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        stream::take_lease(self, name, holder, now, until)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        stream::release_lease(self, name, holder)
    }

    fn last_match_events(&self, pairs: &[FacePair]) -> Result<Vec<MatchEventRecord>, StoreError> {
        stream::last_events(self, pairs)
    }

    fn enqueue_match_events(
        &self,
        cursor: &str,
        from: Option<&str>,
        to: &str,
        events: &[MatchEventRecord],
    ) -> Result<bool, StoreError> {
        stream::enqueue(self, cursor, from, to, events)
    }

    fn unsent_match_events(&self, limit: usize) -> Result<Vec<MatchEventRecord>, StoreError> {
        stream::unsent(self, limit)
    }

    fn mark_match_events_sent(
        &self,
        event_ids: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        stream::mark_sent(self, event_ids, at)
    }

    fn dirty_faces(&self, limit: usize) -> Result<DirtyFaces, StoreError> {
        self.read_dirty(limit)
    }

    fn clear_dirty(&self, through: i64) -> Result<(), StoreError> {
        self.clear_dirty_marks(through)
    }

    fn similar_edges(&self, ids: &[FaceId]) -> Result<Vec<(Edge, Option<Verdict>)>, StoreError> {
        self.light_edges(ids)
    }

    fn decisions_touching(&self, ids: &[FaceId]) -> Result<Vec<Decision>, StoreError> {
        self.decisions_of(ids)
    }

    fn clusters_of(&self, ids: &[FaceId]) -> Result<Vec<ClusterMembership>, StoreError> {
        self.clusters_holding(ids)
    }

    fn replace_some_clusters(
        &self,
        removed: &[String],
        added: &[ClusterMembership],
    ) -> Result<(), StoreError> {
        self.replace_clusters_of(removed, added)
    }

    fn cluster_totals(&self) -> Result<ClusterTotals, StoreError> {
        self.totals()
    }

    fn review_page(
        &self,
        after: Option<&QueuePosition>,
        limit: usize,
    ) -> Result<Vec<EdgeRecord>, StoreError> {
        self.queue_page(after, limit)
    }
}
