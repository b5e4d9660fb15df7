//! The `GraphStore` port: where the match graph lives. Adapters: `sqlite` (embedded, one file, the
//! default) and [`neo4j`] (a Neo4j server over Bolt); `crate::startup::open_store` opens the one
//! the settings name. Every adapter passes the same contract suite in [`contract`].

mod codec;
mod conflict;
pub mod contract;
pub mod neo4j;
pub mod sqlite;
mod stream;

pub use conflict::FaceField;

use crate::model::{
    Collection, ContentHash, Decision, Edge, ExternalImageId, Face, FaceId, FacePair, Image,
    ImageId, Judgement, Observation, SearchRecord, SubjectId, Timestamp, Verdict,
};

pub use stream::{JudgementEntry, MatchEventRecord, ProcessedMessage};

/// Errors of a store adapter.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened, read or written.
    #[error("graph store {operation} failed")]
    Backend {
        /// What the store was doing.
        operation: &'static str,
        /// The adapter's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// What the store holds could not be read back as domain values (a corrupt or foreign file).
    #[error("graph store holds an invalid {what}: {detail}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A write names a face that the store does not hold.
    #[error(
        "face {0} is not in the store; it must be indexed before it is searched or decided on"
    )]
    UnknownFace(FaceId),
    /// A face in a batch contradicts the stored record of the same face id (or an earlier record of
    /// it in the same batch): its image, collection, bounding box or an attribute both records
    /// report differs. Nothing of the batch is written.
    #[error("face {face_id}: {field} differs (stored {stored}, this input {incoming})")]
    Conflict {
        /// The face.
        face_id: FaceId,
        /// The first part of the record that differs.
        field: FaceField,
        /// The stored value, as written in messages.
        stored: String,
        /// The batch's value, as written in messages.
        incoming: String,
    },
    /// The store was written by a newer facegraph.
    #[error(
        "graph store schema version {found} is newer than this facegraph supports ({supported})"
    )]
    SchemaTooNew {
        /// The version found in the store.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}

/// Everything one unit of input adds to the graph, written in one transaction: all of it or none.
#[derive(Clone, Debug, Default)]
pub struct IngestBatch {
    /// Collections to create if absent.
    pub collections: Vec<Collection>,
    /// Images to add or complete. An image stays pending while every record of it says so, and
    /// stops being pending with [`IngestBatch::completed`] or a record that is not pending.
    pub images: Vec<Image>,
    /// Faces to add. A face already stored (or given twice) gains the attributes it lacked; a face
    /// whose image, collection, bounding box or an attribute that both records report differs is a
    /// [`StoreError::Conflict`]. Neither `raw`, `indexed_at` nor a `false` `is_largest` (what a
    /// source that cannot tell says) is compared.
    pub faces: Vec<Face>,
    /// Subjects behind images, by external image id: every image with that external id is linked.
    pub subjects: Vec<(ExternalImageId, SubjectId)>,
    /// Search results, folded into one edge per unordered pair.
    pub observations: Vec<Observation>,
    /// Searches that ran.
    pub searches: Vec<SearchRecord>,
    /// Uploads this batch completes: their images stop being pending, in the same transaction
    /// that stores their last part.
    pub completed: Vec<ImageId>,
}

/// What an ingest changed; re-ingesting the same batch reports zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Faces that were not stored before.
    pub new_faces: usize,
    /// Edges that were not stored before.
    pub new_edges: usize,
    /// Edges whose observed similarities changed.
    pub changed_edges: usize,
    /// Image-subject links that were added or changed.
    pub subject_links: usize,
}

/// A stored face with the subject of its image.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceRecord {
    /// The face.
    pub face: Face,
    /// The subject behind the face's image, when known.
    pub subject: Option<SubjectId>,
    /// The SHA-256 of its image's bytes, when facegraph read them: two faces of different images
    /// with the same hash are one photo uploaded twice.
    pub content_sha256: Option<ContentHash>,
    /// The store's insertion sequence number of the face (1, 2, ...): searches cover faces up to
    /// the sequence number they record.
    pub seq: i64,
}

/// A stored edge with its current verdict, if adjudicated.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeRecord {
    /// The edge.
    pub edge: Edge,
    /// The latest judgement, when the edge has been adjudicated.
    pub judgement: Option<Judgement>,
    /// When that judgement was made.
    pub adjudicated_at: Option<Timestamp>,
}

/// A judgement to record for an edge.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictUpdate {
    /// The edge's pair.
    pub pair: FacePair,
    /// The judgement.
    pub judgement: Judgement,
    /// When it was made.
    pub at: Timestamp,
}

/// Counts of what the store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Collections.
    pub collections: usize,
    /// Images.
    pub images: usize,
    /// Faces.
    pub faces: usize,
    /// Subjects.
    pub subjects: usize,
    /// SIMILAR edges.
    pub edges: usize,
    /// Analyst decisions (all of history).
    pub decisions: usize,
}

/// A match cluster as stored, for stores that keep cluster membership on faces.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterMembership {
    /// The cluster's stable id.
    pub cluster_id: String,
    /// Its faces.
    pub faces: Vec<FaceId>,
    /// Whether its faces belong to two or more subjects, so that the store keeps the count of
    /// fraud leads without reading every cluster.
    pub fraud_lead: bool,
}

// Scoped adjudication (issue 13): the faces a write leaves awaiting re-judging, what the rules read
// around them (edges without judgements, decisions, stored clusters), clusters replaced a few at a
// time with their totals kept, and the review queue read in pages.

/// The faces awaiting re-judging: every write that can change a verdict marks the faces it touched
/// in its own transaction, and the re-judging clears the marks it read once its results are stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirtyFaces {
    /// The marked faces, at most the limit asked for, oldest mark first.
    pub faces: Vec<FaceId>,
    /// How many faces are marked in all.
    pub count: usize,
    /// The newest mark read: [`GraphStore::clear_dirty`] up to it leaves faces marked since.
    pub through: i64,
}

/// How many clusters the store holds, and how many of them are fraud leads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterTotals {
    /// Clusters.
    pub clusters: usize,
    /// Clusters whose faces belong to two or more subjects.
    pub fraud_leads: usize,
}

/// Where a page of the review queue starts: after this score and pair, in queue order (score
/// descending, then pair).
#[derive(Clone, Debug, PartialEq)]
pub struct QueuePosition {
    /// The score of the last match of the previous page.
    pub score: f64,
    /// Its pair.
    pub pair: FacePair,
}

/// The match graph's storage. Implementations are shared between threads; every write method is one
/// transaction that either fully applies or leaves the store as it was.
pub trait GraphStore: Send + Sync + std::fmt::Debug {
    /// A short name of the adapter (`sqlite`, `neo4j`).
    fn kind(&self) -> &'static str;

    /// Writes a batch in one transaction. Observations and searches may only name faces that are
    /// stored or in the batch; otherwise nothing is written and [`StoreError::UnknownFace`] is returned.
    /// A face that contradicts its stored record fails the batch the same way, with
    /// [`StoreError::Conflict`].
    fn ingest(&self, batch: &IngestBatch) -> Result<IngestOutcome, StoreError>;

    /// Records judgements on existing edges in one transaction; an edge whose stored judgement is
    /// equal (verdict, score, rule set and reasons) is left untouched. Returns how many changed.
    fn record_verdicts(&self, updates: &[VerdictUpdate]) -> Result<usize, StoreError>;

    /// Appends an analyst decision; earlier decisions on the pair stay in the history.
    fn record_decision(&self, decision: &Decision) -> Result<(), StoreError>;

    /// Replaces the stored cluster membership with these clusters.
    fn replace_clusters(&self, clusters: &[ClusterMembership]) -> Result<(), StoreError>;

    /// The faces with these ids that the store holds, in no particular order.
    fn faces(&self, ids: &[FaceId]) -> Result<Vec<FaceRecord>, StoreError>;

    /// Every face.
    fn all_faces(&self) -> Result<Vec<FaceRecord>, StoreError>;

    /// The edge of one pair.
    fn edge(&self, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError>;

    /// Every edge with at least one end in `ids`.
    fn edges_touching(&self, ids: &[FaceId]) -> Result<Vec<EdgeRecord>, StoreError>;

    /// Every edge, or only those whose current verdict is `verdict`.
    fn edges(&self, verdict: Option<Verdict>) -> Result<Vec<EdgeRecord>, StoreError>;

    /// The whole decision history, oldest first.
    fn decisions(&self) -> Result<Vec<Decision>, StoreError>;

    /// The searches of these faces.
    fn searches(&self, ids: &[FaceId]) -> Result<Vec<SearchRecord>, StoreError>;

    /// The stored cluster membership.
    fn clusters(&self) -> Result<Vec<ClusterMembership>, StoreError>;

    /// Counts of what the store holds.
    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// The images with these ids that the store holds, in no particular order.
    fn images(&self, ids: &[ImageId]) -> Result<Vec<Image>, StoreError>;

    /// The uploads recorded and not completed (a crash came between), oldest first.
    fn pending_images(&self) -> Result<Vec<Image>, StoreError>;

    /// Forgets a pending upload that the engine refused (not an image, or an invalid request): it
    /// is removed when it is still pending and has no face; anything else is left as it is.
    fn forget_pending_image(&self, id: &ImageId) -> Result<(), StoreError>;

    // The stream's bookkeeping (src/stream/): message keys already processed, the judgement
    // history the match events are derived from, the outbox of match events, named cursors and
    // leases. Every method is one transaction, like the rest.

    /// The record of a processed stream message by its key, when there is one.
    fn processed_message(&self, key: &str) -> Result<Option<ProcessedMessage>, StoreError>;

    /// Records processed stream messages; a key recorded before keeps its first record.
    fn record_processed_messages(&self, messages: &[ProcessedMessage]) -> Result<(), StoreError>;

    /// The judgements recorded after position `after` of the judgement history (0 for all), oldest
    /// first, at most `limit`. Positions grow with every judgement recorded, in commit order.
    fn judgements_after(&self, after: i64, limit: usize)
        -> Result<Vec<JudgementEntry>, StoreError>;

    /// The value of a named cursor, when it was ever set.
    fn stream_cursor(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Sets a named cursor.
    fn set_stream_cursor(&self, name: &str, value: &str) -> Result<(), StoreError>;

    /// Takes (or renews) the named lease for `holder` until `until` when it is free, held by
    /// `holder`, or expired at `now`; returns whether `holder` holds it afterwards.
    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Gives the named lease up when `holder` holds it.
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// The latest match event of each of these pairs that has one, sent or not.
    fn last_match_events(&self, pairs: &[FacePair]) -> Result<Vec<MatchEventRecord>, StoreError>;

    /// Adds match events to the outbox (unsent; an event id stored before is left as it is) and
    /// moves the cursor `cursor` from `from` (`None`: never set) to `to`, in one transaction;
    /// when the cursor is not at `from` (another writer moved it), nothing is written and `false`
    /// is returned.
    fn enqueue_match_events(
        &self,
        cursor: &str,
        from: Option<&str>,
        to: &str,
        events: &[MatchEventRecord],
    ) -> Result<bool, StoreError>;

    /// The outbox's unsent match events, oldest first, at most `limit`.
    fn unsent_match_events(&self, limit: usize) -> Result<Vec<MatchEventRecord>, StoreError>;

    /// Marks match events sent.
    fn mark_match_events_sent(&self, event_ids: &[String], at: Timestamp)
        -> Result<(), StoreError>;
    // Scoped adjudication (issue 13).

    /// The faces awaiting re-judging: at most `limit` of them, with their total count and the
    /// newest mark. [`GraphStore::ingest`] marks the faces it adds or completes, the faces whose
    /// subject changed, both faces of every new or changed edge and the faces of new searches;
    /// [`GraphStore::record_decision`] marks both faces of the decision.
    fn dirty_faces(&self, limit: usize) -> Result<DirtyFaces, StoreError>;

    /// Clears the marks up to `through` (a [`DirtyFaces::through`]), in one transaction; a face
    /// marked again since keeps its newer mark.
    fn clear_dirty(&self, through: i64) -> Result<(), StoreError>;

    /// Every edge with at least one end in `ids`, each once, with its current verdict but without
    /// the rest of its judgement: what the rules and the clusters read around a face, lighter than
    /// [`GraphStore::edges_touching`].
    fn similar_edges(&self, ids: &[FaceId]) -> Result<Vec<(Edge, Option<Verdict>)>, StoreError>;

    /// Every decision with at least one face in `ids`, oldest first.
    fn decisions_touching(&self, ids: &[FaceId]) -> Result<Vec<Decision>, StoreError>;

    /// The stored clusters that hold any of `ids`, each with all its faces.
    fn clusters_of(&self, ids: &[FaceId]) -> Result<Vec<ClusterMembership>, StoreError>;

    /// Removes the clusters `removed` (by id; an unknown id is ignored) and stores `added`, leaving
    /// every other cluster as it is, in one transaction.
    fn replace_some_clusters(
        &self,
        removed: &[String],
        added: &[ClusterMembership],
    ) -> Result<(), StoreError>;

    /// How many clusters are stored and how many are fraud leads, without reading them.
    fn cluster_totals(&self) -> Result<ClusterTotals, StoreError>;

    /// A page of the review queue from the stored judgements: edges whose verdict is `review`,
    /// that band retention kept and that are not self-matches, by score descending then pair,
    /// starting after `after`, at most `limit` of them.
    fn review_page(
        &self,
        after: Option<&QueuePosition>,
        limit: usize,
    ) -> Result<Vec<EdgeRecord>, StoreError>;

    /// The faces whose image belongs to `subject`, in insertion order. The default reads every face;
    /// adapters override it with an indexed query.
    fn faces_of_subject(&self, subject: &SubjectId) -> Result<Vec<FaceRecord>, StoreError> {
        let mut faces: Vec<FaceRecord> = self
            .all_faces()?
            .into_iter()
            .filter(|f| f.subject.as_ref() == Some(subject))
            .collect();
        faces.sort_by_key(|f| f.seq);
        Ok(faces)
    }
}
