//! The embedded graph store: the whole match graph in one SQLite file (WAL journal), its schema
//! migrated in place and versioned with `PRAGMA user_version`. Every write method is one transaction.
//!
//! `schema` opens and migrates the file, `ingest` and `edges` write batches, `write` the other
//! writes, `read` the queries, `decode` turns rows into domain values, `seqs` maps face ids to the
//! insertion numbers the tables key on.

mod decode;
mod edges;
mod ingest;
mod read;
mod schema;
mod seqs;
mod stream;
mod uploads;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use schema::SCHEMA_VERSION;

use super::{
    ClusterMembership, ClusterTotals, DirtyFaces, EdgeRecord, FaceRecord, GraphStore, IngestBatch,
    IngestOutcome, JudgementEntry, MatchEventRecord, ProcessedMessage, QueuePosition, StoreError,
    StoreStats, VerdictUpdate,
};
use crate::model::{
    Decision, Edge, FaceId, FacePair, Image, ImageId, SearchRecord, SubjectId, Timestamp, Verdict,
};

/// The graph store on an embedded SQLite database.
///
/// One connection behind a mutex serves every caller: SQLite allows one writer at a time anyway, and
/// the trait's methods are short transactions.
///
/// Beyond what [`GraphStore`] promises: a face whose collection or image was not given gets a
/// placeholder row that the record completes when it arrives; a subject link given before any image
/// with its external id is kept and applies to such images when they arrive; a verdict for a pair of
/// known faces without an edge fails with [`StoreError::Backend`] (operation `record verdicts`)
/// saying so, since the store has no error kind for a caller's mistake.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the store in the file at `path`, creating the file and its parent directories when
    /// absent, and migrates its schema to [`SCHEMA_VERSION`]. A store written by a newer facegraph is
    /// refused with [`StoreError::SchemaTooNew`] and left untouched.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| in_file(Some(parent), "create the store's directory", e))?;
        }
        let conn = Connection::open(path).map_err(|e| in_file(Some(path), "open", e))?;
        Self::init(conn, Some(path.to_owned()))
    }

    /// Opens a store that lives in memory and vanishes when dropped, for tests and what-if runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend("open"))?;
        Self::init(conn, None)
    }

    /// The file the store lives in; `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        schema::prepare(&mut conn, path.as_deref())?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its transaction, which rolled back, so the
        // connection is consistent and can be used again.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `write` in one immediate transaction (the write lock is taken at once, so that two
    /// writers queue instead of one failing at its first write) and commits it; an error rolls
    /// everything back.
    fn write<T>(
        &self,
        operation: &'static str,
        write: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(operation))?;
        let value = write(&tx)?;
        tx.commit().map_err(backend(operation))?;
        Ok(value)
    }
}

impl GraphStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn ingest(&self, batch: &IngestBatch) -> Result<IngestOutcome, StoreError> {
        self.write("ingest", |tx| ingest::ingest(tx, batch))
    }

    fn record_verdicts(&self, updates: &[VerdictUpdate]) -> Result<usize, StoreError> {
        self.write("record verdicts", |tx| write::record_verdicts(tx, updates))
    }

    fn record_decision(&self, decision: &Decision) -> Result<(), StoreError> {
        self.write("record a decision", |tx| {
            write::record_decision(tx, decision)
        })
    }

    fn replace_clusters(&self, clusters: &[ClusterMembership]) -> Result<(), StoreError> {
        self.write("replace clusters", |tx| {
            write::replace_clusters(tx, clusters)
        })
    }

    fn faces(&self, ids: &[FaceId]) -> Result<Vec<FaceRecord>, StoreError> {
        read::faces(&self.lock(), ids)
    }

    fn all_faces(&self) -> Result<Vec<FaceRecord>, StoreError> {
        read::all_faces(&self.lock())
    }

    fn dirty_faces(&self, limit: usize) -> Result<DirtyFaces, StoreError> {
        read::dirty_faces(&self.lock(), limit)
    }

    fn clear_dirty(&self, through: i64) -> Result<(), StoreError> {
        self.write("clear the faces awaiting re-judging", |tx| {
            write::clear_dirty(tx, through)
        })
    }

    fn similar_edges(&self, ids: &[FaceId]) -> Result<Vec<(Edge, Option<Verdict>)>, StoreError> {
        read::similar_edges(&self.lock(), ids)
    }

    fn decisions_touching(&self, ids: &[FaceId]) -> Result<Vec<Decision>, StoreError> {
        read::decisions_touching(&self.lock(), ids)
    }

    fn clusters_of(&self, ids: &[FaceId]) -> Result<Vec<ClusterMembership>, StoreError> {
        read::clusters_of(&self.lock(), ids)
    }

    fn replace_some_clusters(
        &self,
        removed: &[String],
        added: &[ClusterMembership],
    ) -> Result<(), StoreError> {
        self.write("replace clusters", |tx| {
            write::replace_some_clusters(tx, removed, added)
        })
    }

    fn cluster_totals(&self) -> Result<ClusterTotals, StoreError> {
        read::cluster_totals(&self.lock())
    }

    fn review_page(
        &self,
        after: Option<&QueuePosition>,
        limit: usize,
    ) -> Result<Vec<EdgeRecord>, StoreError> {
        read::review_page(&self.lock(), after, limit)
    }

    fn faces_of_subject(&self, subject: &SubjectId) -> Result<Vec<FaceRecord>, StoreError> {
        read::faces_of_subject(&self.lock(), subject)
    }

    fn edge(&self, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError> {
        read::edge(&self.lock(), pair)
    }

    fn edges_touching(&self, ids: &[FaceId]) -> Result<Vec<EdgeRecord>, StoreError> {
        read::edges_touching(&self.lock(), ids)
    }

    fn edges(&self, verdict: Option<Verdict>) -> Result<Vec<EdgeRecord>, StoreError> {
        read::edges(&self.lock(), verdict)
    }

    fn decisions(&self) -> Result<Vec<Decision>, StoreError> {
        read::decisions(&self.lock())
    }

    fn searches(&self, ids: &[FaceId]) -> Result<Vec<SearchRecord>, StoreError> {
        read::searches(&self.lock(), ids)
    }

    fn clusters(&self) -> Result<Vec<ClusterMembership>, StoreError> {
        read::clusters(&self.lock())
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        read::stats(&self.lock())
    }

    fn images(&self, ids: &[ImageId]) -> Result<Vec<Image>, StoreError> {
        uploads::images(&self.lock(), ids)
    }

    fn pending_images(&self) -> Result<Vec<Image>, StoreError> {
        uploads::pending(&self.lock())
    }

    fn forget_pending_image(&self, id: &ImageId) -> Result<(), StoreError> {
        self.write("forget an upload", |tx| uploads::forget(tx, id))
    }

    fn processed_message(&self, key: &str) -> Result<Option<ProcessedMessage>, StoreError> {
        stream::processed_message(&self.lock(), key)
    }

    fn record_processed_messages(&self, messages: &[ProcessedMessage]) -> Result<(), StoreError> {
        self.write("record processed messages", |tx| {
            stream::record_processed(tx, messages)
        })
    }

    fn judgements_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JudgementEntry>, StoreError> {
        stream::judgements_after(&self.lock(), after, limit)
    }

    fn stream_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        stream::cursor(&self.lock(), name)
    }

    fn set_stream_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.write("set a cursor", |tx| stream::set_cursor(tx, name, value))
    }

    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write("take a lease", |tx| {
            stream::take_lease(tx, name, holder, now, until)
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.write("release a lease", |tx| {
            stream::release_lease(tx, name, holder)
        })
    }

    fn last_match_events(&self, pairs: &[FacePair]) -> Result<Vec<MatchEventRecord>, StoreError> {
        stream::last_events(&self.lock(), pairs)
    }

    fn enqueue_match_events(
        &self,
        cursor: &str,
        from: Option<&str>,
        to: &str,
        events: &[MatchEventRecord],
    ) -> Result<bool, StoreError> {
        self.write("enqueue match events", |tx| {
            stream::enqueue(tx, cursor, from, to, events)
        })
    }

    fn unsent_match_events(&self, limit: usize) -> Result<Vec<MatchEventRecord>, StoreError> {
        stream::unsent(&self.lock(), limit)
    }

    fn mark_match_events_sent(
        &self,
        event_ids: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write("mark match events sent", |tx| {
            stream::mark_sent(tx, event_ids, at)
        })
    }
}

/// Maps a SQLite error to [`StoreError::Backend`] naming what the store was doing.
fn backend(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Backend {
        operation,
        source: Box::new(source),
    }
}

/// A backend error that names the store's file, when there is one.
fn in_file(
    path: Option<&Path>,
    operation: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    let source = source.into();
    StoreError::Backend {
        operation,
        source: match path {
            Some(path) => Box::new(PathError {
                path: path.to_owned(),
                source,
            }),
            None => source,
        },
    }
}

/// An error about the store's file, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
struct PathError {
    path: PathBuf,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// A write the store refuses because of what it asks, not because of the database.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InvalidWrite(String);
