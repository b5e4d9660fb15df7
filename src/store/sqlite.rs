//! The embedded graph store: the whole match graph in one SQLite file (WAL journal), its schema
//! migrated in place and versioned with `PRAGMA user_version`. Every write method is one transaction.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::codec::{group_clusters, reasons_from_json, reasons_to_json};
use super::{
    ClusterMembership, EdgeRecord, FaceRecord, GraphStore, IngestBatch, IngestOutcome, StoreError,
    StoreStats, VerdictUpdate,
};
use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, Decision, DecisionKind, Edge, ExternalImageId,
    Face, FaceAttributes, FaceId, FacePair, Gender, GenderValue, ImageId, Judgement, ParseError,
    Pose, Quality, SearchRecord, Similarity, SubjectId, Timestamp, Verdict,
};

/// The schema migrations, oldest first; migration `i` brings the store to `user_version` `i + 1`.
/// A released migration is never edited: a change to the schema is a new file at the end.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

/// The schema version this build writes: the number of migrations it knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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
        let file = path.as_deref();
        let open_error = |source| in_file(file, "open", source);
        // The busy timeout comes first so that the pragmas below wait for another process's lock
        // instead of failing.
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;
        // Checked before anything writes to the file, so that a newer facegraph's store is left as
        // it was (switching it to WAL would already be a change).
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_error)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // WAL lets readers (the API, an analyst's SQLite shell) run while a batch is written;
        // NORMAL synchronisation survives application crashes and keeps bulk ingest fast.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if file.is_some() && !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                journal_mode = %mode,
                "the graph store's file system does not support WAL; readers will block writers"
            );
        }
        // A bulk ingest touches more pages than the default 2 MiB cache holds; 64 MiB is a bound,
        // not an allocation.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -65536;",
        )
        .map_err(open_error)?;
        // Every statement the store runs is cached; the default of 16 would evict some of them.
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, found).map_err(|e| match e {
            StoreError::Backend { operation, source } => in_file(file, operation, source),
            other => other,
        })?;
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
}

/// Applies the migrations after `from` in one transaction, so that a failed migration leaves the
/// store at its old version.
fn migrate(conn: &mut Connection, from: i64) -> Result<(), StoreError> {
    if from >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("migrate"))?;
    // Another process may have migrated between the check in `init` and this transaction.
    let current: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(backend("migrate"))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    let start = usize::try_from(current.max(0)).unwrap_or(usize::MAX);
    for sql in MIGRATIONS.iter().skip(start) {
        tx.execute_batch(sql).map_err(backend("migrate"))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(backend("migrate"))?;
    tx.commit().map_err(backend("migrate"))?;
    tracing::info!(
        from = current,
        to = SCHEMA_VERSION,
        "migrated the graph store schema"
    );
    Ok(())
}

impl GraphStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn ingest(&self, batch: &IngestBatch) -> Result<IngestOutcome, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("ingest"))?;
        let outcome = ingest(&tx, batch)?;
        tx.commit().map_err(backend("ingest"))?;
        Ok(outcome)
    }

    fn record_verdicts(&self, updates: &[VerdictUpdate]) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("record verdicts"))?;
        let changed = record_verdicts(&tx, updates)?;
        tx.commit().map_err(backend("record verdicts"))?;
        Ok(changed)
    }

    fn record_decision(&self, decision: &Decision) -> Result<(), StoreError> {
        const OP: &str = "record a decision";
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        let mut seqs = FaceSeqs::default();
        seqs.resolve(&tx, decision.pair.a(), OP)?;
        seqs.resolve(&tx, decision.pair.b(), OP)?;
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
        tx.commit().map_err(backend(OP))
    }

    fn replace_clusters(&self, clusters: &[ClusterMembership]) -> Result<(), StoreError> {
        const OP: &str = "replace clusters";
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(OP))?;
        tx.execute("DELETE FROM cluster_members", [])
            .map_err(backend(OP))?;
        let mut seqs = FaceSeqs::default();
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO cluster_members (cluster_id, face_id) VALUES (?1, ?2)")
                .map_err(backend(OP))?;
            for cluster in clusters {
                for face in &cluster.faces {
                    seqs.resolve(&tx, face, OP)?;
                    insert
                        .execute(params![cluster.cluster_id, face.as_str()])
                        .map_err(backend(OP))?;
                }
            }
        }
        tx.commit().map_err(backend(OP))
    }

    fn faces(&self, ids: &[FaceId]) -> Result<Vec<FaceRecord>, StoreError> {
        const OP: &str = "read faces";
        let conn = self.lock();
        let sql = format!(
            "{FACE_SELECT} WHERE f.face_id IN (SELECT value FROM json_each(?1)) ORDER BY f.seq"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
        let rows = stmt.query([id_list(ids)]).map_err(backend(OP))?;
        collect(rows, OP, face_record)
    }

    fn all_faces(&self) -> Result<Vec<FaceRecord>, StoreError> {
        const OP: &str = "read faces";
        let conn = self.lock();
        let sql = format!("{FACE_SELECT} ORDER BY f.seq");
        let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
        let rows = stmt.query([]).map_err(backend(OP))?;
        collect(rows, OP, face_record)
    }

    fn faces_of_subject(&self, subject: &SubjectId) -> Result<Vec<FaceRecord>, StoreError> {
        const OP: &str = "read faces";
        let conn = self.lock();
        let sql = format!("{FACE_SELECT} WHERE i.subject_id = ?1 ORDER BY f.seq");
        let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
        let rows = stmt.query([subject.as_str()]).map_err(backend(OP))?;
        collect(rows, OP, face_record)
    }

    fn edge(&self, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError> {
        const OP: &str = "read edges";
        let conn = self.lock();
        let sql = format!("{EDGE_SELECT} WHERE face_a = ?1 AND face_b = ?2");
        let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
        let rows = stmt
            .query([pair.a().as_str(), pair.b().as_str()])
            .map_err(backend(OP))?;
        Ok(collect(rows, OP, edge_record)?.into_iter().next())
    }

    fn edges_touching(&self, ids: &[FaceId]) -> Result<Vec<EdgeRecord>, StoreError> {
        const OP: &str = "read edges";
        let conn = self.lock();
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

    fn edges(&self, verdict: Option<Verdict>) -> Result<Vec<EdgeRecord>, StoreError> {
        const OP: &str = "read edges";
        let conn = self.lock();
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

    fn decisions(&self) -> Result<Vec<Decision>, StoreError> {
        const OP: &str = "read decisions";
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT face_a, face_b, kind, analyst, note, at FROM decisions ORDER BY id",
            )
            .map_err(backend(OP))?;
        let rows = stmt.query([]).map_err(backend(OP))?;
        collect(rows, OP, decision)
    }

    fn searches(&self, ids: &[FaceId]) -> Result<Vec<SearchRecord>, StoreError> {
        const OP: &str = "read searches";
        let conn = self.lock();
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

    fn clusters(&self) -> Result<Vec<ClusterMembership>, StoreError> {
        const OP: &str = "read clusters";
        let conn = self.lock();
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

    fn stats(&self) -> Result<StoreStats, StoreError> {
        const OP: &str = "read statistics";
        let conn = self.lock();
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
}

// ---------------------------------------------------------------------------------------------
// Writes

fn ingest<'b>(tx: &Transaction<'_>, batch: &'b IngestBatch) -> Result<IngestOutcome, StoreError> {
    const OP: &str = "ingest";
    let mut outcome = IngestOutcome::default();

    // Every face that observations and searches name must be stored or in the batch. Checked
    // before anything is written: failing early is cheaper than rolling back a large batch.
    let mut seqs = FaceSeqs::default();
    {
        let in_batch: HashSet<&FaceId> = batch.faces.iter().map(|f| &f.face_id).collect();
        let named = batch
            .observations
            .iter()
            .flat_map(|obs| [&obs.searched, &obs.found])
            .chain(batch.searches.iter().map(|s| &s.face_id));
        seqs.prefetch(tx, named.filter(|id| !in_batch.contains(id)), OP)?;
        let mut require = |id: &'b FaceId| -> Result<(), StoreError> {
            if in_batch.contains(id) {
                Ok(())
            } else {
                seqs.resolve(tx, id, OP).map(drop)
            }
        };
        for obs in &batch.observations {
            if obs.searched != obs.found {
                require(&obs.searched)?;
                require(&obs.found)?;
            }
        }
        for search in &batch.searches {
            require(&search.face_id)?;
        }
    }

    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO collections (collection_id, engine, face_model_version, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (collection_id) DO UPDATE SET
                     -- A placeholder (no engine) has a guessed creation time; the record knows.
                     created_at = CASE WHEN collections.engine IS NULL
                                       THEN excluded.created_at ELSE collections.created_at END,
                     engine = coalesce(collections.engine, excluded.engine),
                     face_model_version =
                         coalesce(collections.face_model_version, excluded.face_model_version)
                 WHERE collections.engine IS NULL
                    OR (collections.face_model_version IS NULL
                        AND excluded.face_model_version IS NOT NULL)",
            )
            .map_err(backend(OP))?;
        for c in &batch.collections {
            stmt.execute(params![
                c.collection_id.as_str(),
                c.engine,
                c.face_model_version,
                c.created_at.millis(),
            ])
            .map_err(backend(OP))?;
        }
    }

    // Images whose subject may need resolving once the batch's links are in.
    let mut touched_images: Vec<&ImageId> = Vec::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO images (image_id, external_image_id, source, width, height,
                                     face_count, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (image_id) DO UPDATE SET
                     -- A placeholder (no face count) has a guessed receipt time; the record knows.
                     received_at = CASE WHEN images.face_count IS NULL
                                        THEN excluded.received_at ELSE images.received_at END,
                     external_image_id =
                         coalesce(images.external_image_id, excluded.external_image_id),
                     source = coalesce(images.source, excluded.source),
                     width = coalesce(images.width, excluded.width),
                     height = coalesce(images.height, excluded.height),
                     face_count = coalesce(images.face_count, excluded.face_count)
                 WHERE (images.external_image_id IS NULL AND excluded.external_image_id IS NOT NULL)
                    OR (images.source IS NULL AND excluded.source IS NOT NULL)
                    OR (images.width IS NULL AND excluded.width IS NOT NULL)
                    OR (images.height IS NULL AND excluded.height IS NOT NULL)
                    OR images.face_count IS NULL",
            )
            .map_err(backend(OP))?;
        for image in &batch.images {
            stmt.execute(params![
                image.image_id.as_str(),
                image
                    .external_image_id
                    .as_ref()
                    .map(ExternalImageId::as_str),
                image.source,
                image.width,
                image.height,
                image.face_count,
                image.received_at.millis(),
            ])
            .map_err(backend(OP))?;
            touched_images.push(&image.image_id);
        }
    }

    {
        // A face may arrive before the records of its collection and image (a ListFaces response
        // names neither in full); those get placeholder rows that their own records complete later,
        // so that every face is in an image and a collection, as in the graph model.
        let mut collection_stub = tx
            .prepare_cached(
                "INSERT INTO collections (collection_id, created_at) VALUES (?1, ?2)
                 ON CONFLICT (collection_id) DO NOTHING",
            )
            .map_err(backend(OP))?;
        let mut image_stub = tx
            .prepare_cached(
                "INSERT INTO images (image_id, external_image_id, received_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (image_id) DO UPDATE SET external_image_id = excluded.external_image_id
                 WHERE images.external_image_id IS NULL AND excluded.external_image_id IS NOT NULL",
            )
            .map_err(backend(OP))?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO faces (face_id, collection_id, image_id, external_image_id,
                     bbox_left, bbox_top, bbox_width, bbox_height, detection_confidence,
                     gender, gender_confidence, age_low, age_high, brightness, sharpness,
                     yaw, pitch, roll, is_largest, indexed_at, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         ?16, ?17, ?18, ?19, ?20, ?21)
                 ON CONFLICT (face_id) DO NOTHING",
            )
            .map_err(backend(OP))?;
        // A face seen again gains what it lacked and keeps what it had: the first known value of
        // each attribute wins. Attributes that travel together (gender and its confidence, age
        // bounds, quality, pose) are written together, so per-column coalescing keeps them whole.
        // `is_largest` can only become true: false is also what a source that cannot tell says.
        // The statement takes the insert's numbered parameters (SQLite lets a statement leave some
        // unused), so one parameter list serves both.
        let mut complete = tx
            .prepare_cached(
                "UPDATE faces SET
                     external_image_id = coalesce(external_image_id, ?4),
                     detection_confidence = coalesce(detection_confidence, ?9),
                     gender = coalesce(gender, ?10),
                     gender_confidence = coalesce(gender_confidence, ?11),
                     age_low = coalesce(age_low, ?12),
                     age_high = coalesce(age_high, ?13),
                     brightness = coalesce(brightness, ?14),
                     sharpness = coalesce(sharpness, ?15),
                     yaw = coalesce(yaw, ?16),
                     pitch = coalesce(pitch, ?17),
                     roll = coalesce(roll, ?18),
                     is_largest = is_largest OR ?19,
                     raw = coalesce(raw, ?21)
                 WHERE face_id = ?1 AND (
                     (external_image_id IS NULL AND ?4 IS NOT NULL)
                     OR (detection_confidence IS NULL AND ?9 IS NOT NULL)
                     OR (gender IS NULL AND ?10 IS NOT NULL)
                     OR (age_low IS NULL AND ?12 IS NOT NULL)
                     OR (brightness IS NULL AND ?14 IS NOT NULL)
                     OR (yaw IS NULL AND ?16 IS NOT NULL)
                     OR (is_largest = 0 AND ?19 = 1)
                     OR (raw IS NULL AND ?21 IS NOT NULL))",
            )
            .map_err(backend(OP))?;
        for face in &batch.faces {
            let ext = face.external_image_id.as_ref().map(ExternalImageId::as_str);
            collection_stub
                .execute(params![
                    face.collection_id.as_str(),
                    face.indexed_at.millis()
                ])
                .map_err(backend(OP))?;
            image_stub
                .execute(params![
                    face.image_id.as_str(),
                    ext,
                    face.indexed_at.millis()
                ])
                .map_err(backend(OP))?;
            touched_images.push(&face.image_id);
            let a = &face.attributes;
            let values = params![
                face.face_id.as_str(),
                face.collection_id.as_str(),
                face.image_id.as_str(),
                ext,
                f64::from(face.bbox.left),
                f64::from(face.bbox.top),
                f64::from(face.bbox.width),
                f64::from(face.bbox.height),
                face.detection_confidence.map(Confidence::get),
                a.gender.map(|g| g.value.as_str()),
                a.gender.map(|g| g.confidence.get()),
                a.age.map(|r| r.low),
                a.age.map(|r| r.high),
                a.quality.map(|q| f64::from(q.brightness)),
                a.quality.map(|q| f64::from(q.sharpness)),
                a.pose.map(|p| f64::from(p.yaw)),
                a.pose.map(|p| f64::from(p.pitch)),
                a.pose.map(|p| f64::from(p.roll)),
                face.is_largest,
                face.indexed_at.millis(),
                face.raw,
            ];
            if insert.execute(values).map_err(backend(OP))? == 1 {
                outcome.new_faces += 1;
                seqs.insert(&face.face_id, tx.last_insert_rowid());
            } else {
                complete.execute(values).map_err(backend(OP))?;
                seqs.resolve(tx, &face.face_id, OP)?;
            }
        }
    }

    {
        let mut subject = tx
            .prepare_cached("INSERT INTO subjects (subject_id) VALUES (?1) ON CONFLICT DO NOTHING")
            .map_err(backend(OP))?;
        let mut link = tx
            .prepare_cached(
                "INSERT INTO subject_links (external_image_id, subject_id) VALUES (?1, ?2)
                 ON CONFLICT (external_image_id) DO UPDATE SET subject_id = excluded.subject_id
                 WHERE subject_links.subject_id IS NOT excluded.subject_id",
            )
            .map_err(backend(OP))?;
        let mut relink = tx
            .prepare_cached(
                "UPDATE images SET subject_id = ?2
                 WHERE external_image_id = ?1 AND subject_id IS NOT ?2",
            )
            .map_err(backend(OP))?;
        for (ext, subject_id) in &batch.subjects {
            subject
                .execute([subject_id.as_str()])
                .map_err(backend(OP))?;
            link.execute([ext.as_str(), subject_id.as_str()])
                .map_err(backend(OP))?;
            outcome.subject_links += relink
                .execute([ext.as_str(), subject_id.as_str()])
                .map_err(backend(OP))?;
        }
        // Images of this batch whose external id was linked to a subject by an earlier batch.
        let mut adopt = tx
            .prepare_cached(
                "UPDATE images SET subject_id =
                     (SELECT l.subject_id FROM subject_links l
                      WHERE l.external_image_id = images.external_image_id)
                 WHERE image_id = ?1 AND subject_id IS NULL
                   AND external_image_id IN (SELECT external_image_id FROM subject_links)",
            )
            .map_err(backend(OP))?;
        let mut seen = HashSet::new();
        for image in touched_images {
            if seen.insert(image) {
                outcome.subject_links += adopt.execute([image.as_str()]).map_err(backend(OP))?;
            }
        }
    }

    let (new_edges, changed_edges) = upsert_edges(tx, batch, &mut seqs)?;
    outcome.new_edges = new_edges;
    outcome.changed_edges = changed_edges;

    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO searches (face_id, collection_id, bound, collection_seq, searched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (face_id, collection_id, searched_at) DO NOTHING",
            )
            .map_err(backend(OP))?;
        for s in &batch.searches {
            stmt.execute(params![
                s.face_id.as_str(),
                s.collection_id.as_str(),
                s.bound.map(Similarity::get),
                s.collection_seq,
                s.searched_at.millis(),
            ])
            .map_err(backend(OP))?;
        }
    }
    Ok(outcome)
}

/// Folds the batch's observations into one edge per pair, then writes each: a new pair is one
/// insert, the hot path of bulk ingest; a known pair is read and rewritten only when the batch
/// changed it. Returns the counts of new and changed edges.
fn upsert_edges<'b>(
    tx: &Transaction<'_>,
    batch: &'b IngestBatch,
    seqs: &mut FaceSeqs<'b>,
) -> Result<(usize, usize), StoreError> {
    const OP: &str = "ingest";
    // The fold of `Edge::fold`, keyed by the faces' seqs instead of cloned ids: the pair's first
    // observation names the engine, a later observation of a direction replaces the earlier one,
    // and the edge was searched when it was last observed.
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
    let mut select = tx
        .prepare_cached(
            "SELECT similarity_ab, similarity_ba, searched_at FROM edges
             WHERE face_a = ?1 AND face_b = ?2",
        )
        .map_err(backend(OP))?;
    let mut update = tx
        .prepare_cached(
            "UPDATE edges SET similarity_ab = ?3, similarity_ba = ?4, searched_at = ?5
             WHERE face_a = ?1 AND face_b = ?2",
        )
        .map_err(backend(OP))?;
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
            continue;
        }
        let mut rows = select.query([a, b]).map_err(backend(OP))?;
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
        // The batch's observations are newer than what is stored: each direction it observed
        // replaces the stored value, as `Edge::fold` does.
        let ab = edge.ab.or(stored_ab);
        let ba = edge.ba.or(stored_ba);
        let at = stored_at.max(edge.searched_at);
        let sims_changed = ab != stored_ab || ba != stored_ba;
        if sims_changed || at != stored_at {
            update
                .execute(params![
                    a,
                    b,
                    ab.map(Similarity::get),
                    ba.map(Similarity::get),
                    at.millis(),
                ])
                .map_err(backend(OP))?;
        }
        if sims_changed {
            changed += 1;
        }
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

fn record_verdicts(tx: &Transaction<'_>, updates: &[VerdictUpdate]) -> Result<usize, StoreError> {
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
        let (a, b) = (u.pair.a().as_str(), u.pair.b().as_str());
        let j = &u.judgement;
        if j.score.is_nan() {
            // SQLite stores NaN as NULL, which would read back as a corrupt judgement.
            return Err(StoreError::Backend {
                operation: OP,
                source: Box::new(InvalidWrite(format!(
                    "the judgement of {a} - {b} has a score that is not a number"
                ))),
            });
        }
        let reasons = reasons_to_json(&j.reasons)?;
        // An unknown face is named as such; a pair of known faces without an edge was never found
        // similar, and a verdict on it is a caller's mistake.
        let (sa, sb) = (
            seqs.resolve(tx, u.pair.a(), OP)?,
            seqs.resolve(tx, u.pair.b(), OP)?,
        );
        let mut rows = select.query([sa, sb]).map_err(backend(OP))?;
        let Some(row) = rows.next().map_err(backend(OP))? else {
            return Err(StoreError::Backend {
                operation: OP,
                source: Box::new(InvalidWrite(format!(
                    "no SIMILAR edge between faces {a} and {b}: only observed pairs are judged"
                ))),
            });
        };
        let mut c = Cells::new(row, "edge");
        let same = c.opt_text()? == Some(j.verdict.as_str())
            && c.opt_real()? == Some(j.score)
            && c.opt_text()? == Some(j.rule_set.as_str())
            && c.opt_text()? == Some(reasons.as_str());
        drop(rows);
        if same {
            continue;
        }
        // The judgement goes into the history first; the edge then points at it.
        let verdict = j.verdict.as_str();
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

/// The seqs of faces looked up in a transaction, so that each face costs at most one query however
/// many observations name it. Every lookup also checks that the face exists.
#[derive(Default)]
struct FaceSeqs<'b> {
    seqs: HashMap<&'b FaceId, i64>,
}

impl<'b> FaceSeqs<'b> {
    fn insert(&mut self, id: &'b FaceId, seq: i64) {
        self.seqs.insert(id, seq);
    }

    /// Looks up the stored faces among `ids` in one query, which is much faster than one query
    /// each when a batch names thousands of stored faces. Unknown ids are left out.
    fn prefetch(
        &mut self,
        tx: &Connection,
        ids: impl Iterator<Item = &'b FaceId>,
        operation: &'static str,
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<&'b FaceId> = ids.filter(|id| !self.seqs.contains_key(id)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        wanted.sort_unstable();
        wanted.dedup();
        let by_id: HashMap<&str, &'b FaceId> = wanted.iter().map(|id| (id.as_str(), *id)).collect();
        let mut stmt = tx
            .prepare_cached(
                "SELECT face_id, seq FROM faces WHERE face_id IN (SELECT value FROM json_each(?1))",
            )
            .map_err(backend(operation))?;
        let list = id_list(wanted.iter().copied());
        let mut rows = stmt.query([list]).map_err(backend(operation))?;
        while let Some(row) = rows.next().map_err(backend(operation))? {
            let mut c = Cells::new(row, "face");
            let face_id = c.text()?;
            let seq = c.int()?;
            if let Some(id) = by_id.get(face_id) {
                self.seqs.insert(id, seq);
            }
        }
        Ok(())
    }

    /// The face's seq, or [`StoreError::UnknownFace`] when the store does not hold it.
    fn resolve(
        &mut self,
        tx: &Connection,
        id: &'b FaceId,
        operation: &'static str,
    ) -> Result<i64, StoreError> {
        if let Some(seq) = self.seqs.get(id) {
            return Ok(*seq);
        }
        let seq = tx
            .prepare_cached("SELECT seq FROM faces WHERE face_id = ?1")
            .and_then(|mut stmt| stmt.query_row([id.as_str()], |row| row.get(0)).optional())
            .map_err(backend(operation))?
            .ok_or_else(|| StoreError::UnknownFace(id.clone()))?;
        self.seqs.insert(id, seq);
        Ok(seq)
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

/// The columns of a face record, in the order [`face_record`] reads them.
const FACE_SELECT: &str = "SELECT f.seq, f.face_id, f.collection_id, f.image_id,
        f.external_image_id, f.bbox_left, f.bbox_top, f.bbox_width, f.bbox_height,
        f.detection_confidence, f.gender, f.gender_confidence, f.age_low, f.age_high,
        f.brightness, f.sharpness, f.yaw, f.pitch, f.roll, f.is_largest, f.indexed_at, f.raw,
        i.subject_id
    FROM faces f LEFT JOIN images i ON i.image_id = f.image_id";

/// The columns of an edge record, in the order [`edge_record`] reads them, with the faces' ids.
const EDGE_SELECT: &str = "SELECT face_a, face_b, similarity_ab, similarity_ba, engine,
        searched_at, verdict, score, rule_set, reasons, adjudicated_at FROM similar_edges";

fn face_record(row: &Row<'_>) -> Result<FaceRecord, StoreError> {
    let mut c = Cells::new(row, "face");
    let seq = c.int()?;
    let face_id = c.parse(FaceId::parse)?;
    let collection_id = c.parse(CollectionId::parse)?;
    let image_id = c.parse(ImageId::parse)?;
    let external_image_id = c.opt_parse(ExternalImageId::parse)?;
    let bbox = BoundingBox {
        left: c.real()? as f32,
        top: c.real()? as f32,
        width: c.real()? as f32,
        height: c.real()? as f32,
    };
    let detection_confidence = c.opt_parse_real(Confidence::new)?;
    let gender_value = c.opt_parse(|s| {
        GenderValue::parse(s).ok_or_else(|| ParseError {
            what: "gender",
            value: s.to_owned(),
            rule: "must be Male or Female".to_owned(),
        })
    })?;
    let gender_confidence = c.opt_parse_real(Confidence::new)?;
    let gender = match (gender_value, gender_confidence) {
        (Some(value), Some(confidence)) => Some(Gender { value, confidence }),
        (None, None) => None,
        _ => return Err(c.corrupt_last("gender and its confidence must both be present or absent")),
    };
    let age_low = c.opt_u32()?;
    let age_high = c.opt_u32()?;
    let age = match (age_low, age_high) {
        (Some(low), Some(high)) => Some(AgeRange::new(low, high)),
        (None, None) => None,
        _ => return Err(c.corrupt_last("age_low and age_high must both be present or absent")),
    };
    let (brightness, sharpness) = (c.opt_real()?, c.opt_real()?);
    let quality = match (brightness, sharpness) {
        (Some(b), Some(s)) => Some(Quality {
            brightness: b as f32,
            sharpness: s as f32,
        }),
        (None, None) => None,
        _ => return Err(c.corrupt_last("brightness and sharpness must both be present or absent")),
    };
    let (yaw, pitch, roll) = (c.opt_real()?, c.opt_real()?, c.opt_real()?);
    let pose = match (yaw, pitch, roll) {
        (Some(yaw), Some(pitch), Some(roll)) => Some(Pose {
            yaw: yaw as f32,
            pitch: pitch as f32,
            roll: roll as f32,
        }),
        (None, None, None) => None,
        _ => return Err(c.corrupt_last("yaw, pitch and roll must all be present or absent")),
    };
    let is_largest = match c.int()? {
        0 => false,
        1 => true,
        n => return Err(c.corrupt_last(format!("holds {n}, expected 0 or 1"))),
    };
    let indexed_at = Timestamp::from_millis(c.int()?);
    let raw = c.opt_text()?.map(str::to_owned);
    let subject = c.opt_parse(SubjectId::parse)?;
    Ok(FaceRecord {
        face: Face {
            face_id,
            collection_id,
            image_id,
            external_image_id,
            bbox,
            detection_confidence,
            attributes: FaceAttributes {
                gender,
                age,
                quality,
                pose,
            },
            is_largest,
            indexed_at,
            raw,
        },
        subject,
        seq,
    })
}

fn edge_record(row: &Row<'_>) -> Result<EdgeRecord, StoreError> {
    let mut c = Cells::new(row, "edge");
    let a = c.parse(FaceId::parse)?;
    let b = c.parse(FaceId::parse)?;
    let pair = match FacePair::new(a.clone(), b.clone()) {
        Some(pair) if *pair.a() == a => pair,
        _ => {
            return Err(c.corrupt_last(format!(
                "face_a {a} must sort before face_b {b}: an edge joins two faces in canonical order"
            )))
        }
    };
    let similarity_ab = c.opt_parse_real(Similarity::new)?;
    let similarity_ba = c.opt_parse_real(Similarity::new)?;
    let engine = c.text()?.to_owned();
    let searched_at = Timestamp::from_millis(c.int()?);
    let verdict = c.opt_parse(|s| {
        Verdict::parse(s).ok_or_else(|| ParseError {
            what: "verdict",
            value: s.to_owned(),
            rule: "must be confirmed, review or rejected".to_owned(),
        })
    })?;
    let score = c.opt_real()?;
    let rule_set = c.opt_text()?;
    let reasons = c.opt_text()?;
    let adjudicated_at = c.opt_int()?.map(Timestamp::from_millis);
    let judgement = match (verdict, score, rule_set, reasons) {
        (Some(verdict), Some(score), Some(rule_set), Some(reasons)) => Some(Judgement {
            verdict,
            score,
            rule_set: rule_set.to_owned(),
            reasons: reasons_from_json(reasons)
                .map_err(|detail| c.corrupt_last(format!("of {a} - {b}: {detail}")))?,
        }),
        (None, _, _, _) => None,
        _ => {
            return Err(c.corrupt_last(format!(
                "of {a} - {b}: a verdict needs its score, rule set and reasons"
            )))
        }
    };
    Ok(EdgeRecord {
        edge: Edge {
            pair,
            similarity_ab,
            similarity_ba,
            engine,
            searched_at,
        },
        judgement,
        adjudicated_at,
    })
}

fn decision(row: &Row<'_>) -> Result<Decision, StoreError> {
    let mut c = Cells::new(row, "decision");
    let a = c.parse(FaceId::parse)?;
    let b = c.parse(FaceId::parse)?;
    let Some(pair) = FacePair::new(a, b) else {
        return Err(c.corrupt_last("a decision joins two distinct faces"));
    };
    let kind = c.parse(|s| {
        DecisionKind::parse(s).ok_or_else(|| ParseError {
            what: "decision kind",
            value: s.to_owned(),
            rule: "must be same or different".to_owned(),
        })
    })?;
    let analyst = c.text()?.to_owned();
    let note = c.opt_text()?.map(str::to_owned);
    let at = Timestamp::from_millis(c.int()?);
    Ok(Decision {
        pair,
        kind,
        analyst,
        at,
        note,
    })
}

fn search_record(row: &Row<'_>) -> Result<SearchRecord, StoreError> {
    let mut c = Cells::new(row, "search");
    Ok(SearchRecord {
        face_id: c.parse(FaceId::parse)?,
        collection_id: c.parse(CollectionId::parse)?,
        bound: c.opt_parse_real(Similarity::new)?,
        collection_seq: c.int()?,
        searched_at: Timestamp::from_millis(c.int()?),
    })
}

/// Reads every row with `read`, which turns a row into a domain value or says why it cannot.
fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    operation: &'static str,
    read: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend(operation))? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// Ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: one statement for any number
/// of ids, where a list of parameters would hit SQLite's limit on variables.
fn id_list<'a>(ids: impl IntoIterator<Item = &'a FaceId>) -> String {
    let mut s = String::from("[");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Face ids are lowercase UUIDs, which need no escaping in JSON.
        s.push('"');
        s.push_str(id.as_str());
        s.push('"');
    }
    s.push(']');
    s
}

/// Reads a row's columns one after the other, turning values that the schema would not hold into
/// [`StoreError::Corrupt`] errors that name the record, the column and the value.
struct Cells<'a, 'r> {
    row: &'a Row<'r>,
    what: &'static str,
    next: usize,
}

impl<'a, 'r> Cells<'a, 'r> {
    fn new(row: &'a Row<'r>, what: &'static str) -> Self {
        Self { row, what, next: 0 }
    }

    fn value(&mut self) -> Result<ValueRef<'a>, StoreError> {
        let i = self.next;
        self.next += 1;
        self.row.get_ref(i).map_err(backend("read a row"))
    }

    /// An error about the column read last.
    fn corrupt_last(&self, detail: impl std::fmt::Display) -> StoreError {
        let column = self
            .next
            .checked_sub(1)
            .and_then(|i| self.row.as_ref().column_name(i).ok())
            .unwrap_or("?");
        StoreError::Corrupt {
            what: self.what,
            detail: format!("column {column} {detail}"),
        }
    }

    fn unexpected(&self, value: ValueRef<'_>, expected: &str) -> StoreError {
        self.corrupt_last(format!("holds {}, expected {expected}", describe(value)))
    }

    fn opt_text(&mut self) -> Result<Option<&'a str>, StoreError> {
        match self.value()? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|_| self.corrupt_last("holds text that is not UTF-8")),
            other => Err(self.unexpected(other, "text")),
        }
    }

    fn text(&mut self) -> Result<&'a str, StoreError> {
        self.opt_text()?
            .ok_or_else(|| self.corrupt_last("is NULL, expected text"))
    }

    fn opt_int(&mut self) -> Result<Option<i64>, StoreError> {
        match self.value()? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            other => Err(self.unexpected(other, "an integer")),
        }
    }

    fn int(&mut self) -> Result<i64, StoreError> {
        self.opt_int()?
            .ok_or_else(|| self.corrupt_last("is NULL, expected an integer"))
    }

    fn opt_u32(&mut self) -> Result<Option<u32>, StoreError> {
        match self.opt_int()? {
            None => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| self.corrupt_last(format!("holds {n}, expected 0 to {}", u32::MAX))),
        }
    }

    fn opt_real(&mut self) -> Result<Option<f64>, StoreError> {
        match self.value()? {
            ValueRef::Null => Ok(None),
            ValueRef::Real(x) => Ok(Some(x)),
            // A foreign writer may have stored a whole number as an integer.
            ValueRef::Integer(n) => Ok(Some(n as f64)),
            other => Err(self.unexpected(other, "a number")),
        }
    }

    fn real(&mut self) -> Result<f64, StoreError> {
        self.opt_real()?
            .ok_or_else(|| self.corrupt_last("is NULL, expected a number"))
    }

    fn opt_parse<T>(
        &mut self,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, StoreError> {
        match self.opt_text()? {
            None => Ok(None),
            Some(s) => parse(s)
                .map(Some)
                .map_err(|e| self.corrupt_last(format!("holds an invalid value: {e}"))),
        }
    }

    fn parse<T>(
        &mut self,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, StoreError> {
        self.opt_parse(parse)?
            .ok_or_else(|| self.corrupt_last("is NULL, expected text"))
    }

    fn opt_parse_real<T>(
        &mut self,
        parse: impl FnOnce(f64) -> Result<T, ParseError>,
    ) -> Result<Option<T>, StoreError> {
        match self.opt_real()? {
            None => Ok(None),
            Some(x) => parse(x)
                .map(Some)
                .map_err(|e| self.corrupt_last(format!("holds an invalid value: {e}"))),
        }
    }
}

fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(n) => format!("the integer {n}"),
        ValueRef::Real(x) => format!("the number {x}"),
        ValueRef::Text(t) => format!("the text {:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

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
