//! The SQLite graph store: the adapter contract on a fresh file per test, plus what only a file
//! store has to promise (durability across reopen, WAL, refusing a newer schema, corrupt values).

use std::ops::Deref;
use std::path::PathBuf;

use facegraph::model::Verdict;
use facegraph::store::contract::fixtures::{
    batch, face, face_id, image, judgement, observation, pair, ts,
};
use facegraph::store::sqlite::{SqliteStore, SCHEMA_VERSION};
use facegraph::store::{GraphStore, StoreError, VerdictUpdate};
use tempfile::TempDir;

/// A store in a file of its own temporary directory, which lives as long as the store.
struct TempStore {
    // Declared first so that it is dropped (and the file closed) before the directory is removed.
    store: SqliteStore,
    dir: TempDir,
}

impl TempStore {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(&dir.path().join("graph.sqlite")).expect("opens a new store");
        Self { store, dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("graph.sqlite")
    }
}

impl Deref for TempStore {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

mod contract {
    facegraph::graph_store_contract!(super::TempStore::new);
}

mod contract_in_memory {
    facegraph::graph_store_contract!(|| Box::new(
        facegraph::store::sqlite::SqliteStore::open_in_memory().expect("opens an in-memory store")
    ));
}

#[test]
fn data_survives_close_and_reopen() {
    let temp = TempStore::new();
    let mut input = batch(&[(1, 1), (2, 2)]);
    input.observations = vec![observation(1, 2, 97.99)];
    temp.ingest(&input).expect("ingest");
    let stats = temp.stats().expect("stats");
    let path = temp.file();
    let TempStore { store, dir } = temp;
    drop(store);

    let reopened = SqliteStore::open(&path).expect("reopens");
    assert_eq!(reopened.stats().expect("stats"), stats);
    let edge = reopened
        .edge(&pair(1, 2))
        .expect("reads")
        .expect("the edge survived");
    assert_eq!(
        edge.edge.similarity_ab,
        Some(input.observations[0].similarity)
    );
    let again = reopened.ingest(&input).expect("re-ingest");
    assert_eq!(again, Default::default(), "nothing is new after reopening");
    drop(reopened);
    drop(dir);
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("deep/er/graph.sqlite");
    let store = SqliteStore::open(&path).expect("opens");
    assert_eq!(store.kind(), "sqlite");
    assert_eq!(store.path(), Some(path.as_path()));
    assert!(path.exists());
}

#[test]
fn the_file_is_in_wal_mode() {
    let temp = TempStore::new();
    let conn = rusqlite::Connection::open(temp.file()).expect("opens the file");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let temp = TempStore::new();
    let path = temp.file();
    let TempStore { store, dir } = temp;
    drop(store);
    let newer = SCHEMA_VERSION + 41;
    {
        let conn = rusqlite::Connection::open(&path).expect("opens the file");
        conn.pragma_update(None, "user_version", newer)
            .expect("sets user_version");
    }

    let err = SqliteStore::open(&path).expect_err("a newer schema is refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported } if found == newer && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&newer.to_string()) && message.contains(&SCHEMA_VERSION.to_string()),
        "the message names both versions: {message}"
    );
    let conn = rusqlite::Connection::open(&path).expect("opens the file");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, newer, "the refused store was not migrated");
    drop(dir);
}

#[test]
fn a_file_that_is_not_a_store_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the faces you are looking for, ".repeat(100),
    )
    .expect("writes");
    let err = SqliteStore::open(&path).expect_err("not a database");
    let chain = error_chain(&err);
    assert!(chain.contains("notes.txt"), "{chain}");
}

#[test]
fn corrupt_values_are_reported_with_their_column() {
    let temp = TempStore::new();
    temp.ingest(&batch(&[(1, 1)])).expect("ingest");
    {
        let conn = rusqlite::Connection::open(temp.file()).expect("opens the file");
        conn.execute("UPDATE faces SET gender = 'Robot'", [])
            .expect("corrupts the gender");
    }
    let err = temp.faces(&[face_id(1)]).expect_err("a corrupt gender");
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::Corrupt { .. }) && message.contains("gender"),
        "{message}"
    );
    assert!(message.contains("Robot"), "names the value: {message}");
}

#[test]
fn corrupt_reason_codes_are_reported() {
    let temp = TempStore::new();
    let mut input = batch(&[(1, 1), (2, 2)]);
    input.observations = vec![observation(1, 2, 99.0)];
    temp.ingest(&input).expect("ingest");
    temp.record_verdicts(&[VerdictUpdate {
        pair: pair(1, 2),
        judgement: judgement(Verdict::Review, 99.0, vec![]),
        at: ts(1),
    }])
    .expect("verdict");
    {
        // A foreign writer that ignores the history's append-only trigger.
        let conn = rusqlite::Connection::open(temp.file()).expect("opens the file");
        conn.execute_batch(
            "DROP TRIGGER verdict_history_no_update;
             UPDATE verdict_history
             SET reasons = '[{\"code\":\"telepathy\",\"message\":\"\",\"evidence\":[]}]';",
        )
        .expect("corrupts the reasons");
    }
    let err = temp.edges(None).expect_err("an unknown reason code");
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::Corrupt { .. }) && message.contains("telepathy"),
        "{message}"
    );
}

#[test]
fn decisions_cannot_be_rewritten_behind_the_store() {
    let temp = TempStore::new();
    temp.ingest(&batch(&[(1, 1), (2, 2)])).expect("ingest");
    temp.record_decision(&facegraph::store::contract::fixtures::decision(
        1,
        2,
        facegraph::model::DecisionKind::Same,
        1,
        None,
    ))
    .expect("decision");
    let conn = rusqlite::Connection::open(temp.file()).expect("opens the file");
    assert!(conn.execute("DELETE FROM decisions", []).is_err());
    assert!(conn
        .execute("UPDATE decisions SET kind = 'different'", [])
        .is_err());
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    facegraph::errors::chain(err)
}

#[test]
fn every_changed_verdict_is_kept_in_the_history() {
    let temp = TempStore::new();
    let mut input = batch(&[(1, 1), (2, 2)]);
    input.observations = vec![observation(1, 2, 95.0)];
    temp.ingest(&input).expect("ingest");
    let update = |verdict, at| VerdictUpdate {
        pair: pair(1, 2),
        judgement: judgement(verdict, 95.0, vec![]),
        at: ts(at),
    };
    for (u, changed) in [
        (update(Verdict::Review, 1), 1),
        (update(Verdict::Review, 2), 0),
        (update(Verdict::Confirmed, 3), 1),
    ] {
        assert_eq!(temp.record_verdicts(&[u]).expect("verdict"), changed);
    }
    let conn = rusqlite::Connection::open(temp.file()).expect("opens the file");
    let mut stmt = conn
        .prepare("SELECT verdict, at FROM verdict_history ORDER BY id")
        .expect("prepares");
    let history: Vec<(String, i64)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("queries")
        .collect::<Result<_, _>>()
        .expect("reads");
    assert_eq!(
        history,
        vec![("review".to_owned(), 1), ("confirmed".to_owned(), 3)]
    );
}

#[test]
fn placeholders_for_a_face_are_completed_by_their_own_records() {
    let temp = TempStore::new();
    // A face alone, as a ListFaces response gives it: no collection or image record.
    let mut alone = batch(&[]);
    alone.collections.clear();
    alone.faces = vec![face(1, 1)];
    temp.ingest(&alone).expect("ingest a face alone");
    let stats = temp.stats().expect("stats");
    assert_eq!((stats.collections, stats.images, stats.faces), (1, 1, 1));

    temp.ingest(&batch(&[(1, 1)])).expect("ingest the records");
    assert_eq!(temp.stats().expect("stats"), stats, "completed, not added");
    let conn = rusqlite::Connection::open(temp.file()).expect("opens the file");
    let (engine, face_count, received_at): (String, i64, i64) = conn
        .query_row(
            "SELECT c.engine, i.face_count, i.received_at FROM collections c, images i",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("reads");
    assert_eq!(engine, "local");
    assert_eq!(face_count, 1);
    assert_eq!(received_at, image(1).received_at.millis());
}

#[test]
fn threads_share_one_store() {
    let temp = std::sync::Arc::new(TempStore::new());
    let workers: Vec<_> = (0..4u32)
        .map(|w| {
            let temp = std::sync::Arc::clone(&temp);
            std::thread::spawn(move || {
                let faces: Vec<(u32, u32)> = (0..50).map(|i| (w * 100 + i + 1, w + 1)).collect();
                let mut input = batch(&faces);
                input.observations = (1..50)
                    .map(|i| observation(w * 100 + i, w * 100 + i + 1, 91.0))
                    .collect();
                temp.ingest(&input).expect("ingest")
            })
        })
        .collect();
    for worker in workers {
        let outcome = worker.join().expect("the worker finished");
        assert_eq!((outcome.new_faces, outcome.new_edges), (50, 49));
    }
    let stats = temp.stats().expect("stats");
    assert_eq!((stats.faces, stats.edges, stats.images), (200, 196, 4));
}

#[test]
fn a_version_1_store_splits_reused_photos_into_one_image_per_upload() {
    use facegraph::model::{ContentHash, ExternalImageId, ImageId, SubjectId};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("graph.sqlite");
    // A store as facegraph wrote it before uploads had their own ids: the local engine's images
    // keyed by their bytes' hash, one photo uploaded under a.jpg (S1) and b.jpg (S2) merged into one
    // image; a faceless photo; and a saved response's image (a UUID), which is not the engine's.
    let content = ContentHash::of_bytes(b"the same selfie");
    let faceless = ContentHash::of_bytes(b"a photo with no face");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(include_str!(
            "../src/store/sqlite/migrations/0001_initial.sql"
        ))
        .unwrap();
        conn.execute_batch(&format!(
            "PRAGMA user_version = 1;
             INSERT INTO collections VALUES ('faces', 'local', 'm1', 1), ('saved', 'rekognition', NULL, 1);
             INSERT INTO subjects VALUES ('S1'), ('S2');
             INSERT INTO subject_links VALUES ('a.jpg', 'S1'), ('b.jpg', 'S2');
             INSERT INTO images (image_id, external_image_id, width, height, face_count, received_at, subject_id)
                 VALUES ('{c}', 'a.jpg', 640, 480, 1, 5, 'S1'),
                        ('{n}', 'empty.jpg', 640, 480, 0, 6, NULL),
                        ('11111111-2222-4333-8444-555555555555', 'saved.jpg', NULL, NULL, 1, 7, NULL);
             INSERT INTO faces (face_id, collection_id, image_id, external_image_id, bbox_left, bbox_top,
                                bbox_width, bbox_height, is_largest, indexed_at)
                 VALUES ('00000000-0000-4000-8000-000000000001', 'faces', '{c}', 'a.jpg', 0.1, 0.1, 0.5, 0.5, 1, 5),
                        ('00000000-0000-4000-8000-000000000002', 'faces', '{c}', 'b.jpg', 0.1, 0.1, 0.5, 0.5, 1, 6),
                        ('00000000-0000-4000-8000-000000000003', 'saved', '11111111-2222-4333-8444-555555555555',
                         'saved.jpg', 0.1, 0.1, 0.5, 0.5, 1, 7);",
            c = content.as_str(),
            n = faceless.as_str()
        ))
        .unwrap();
    }
    let store = SqliteStore::open(&file).expect("the migration runs");
    assert_eq!(
        store.stats().unwrap().images,
        4,
        "two uploads of one photo, the faceless one, the saved one"
    );
    let faces = store.faces(&[face_id(1), face_id(2), face_id(3)]).unwrap();
    let by = |n: u32| faces.iter().find(|f| f.face.face_id == face_id(n)).unwrap();
    for (n, ext, subject) in [(1, "a.jpg", "S1"), (2, "b.jpg", "S2")] {
        let ext = ExternalImageId::parse(ext).unwrap();
        assert_eq!(
            by(n).face.image_id,
            ImageId::of_upload(&content, Some(&ext))
        );
        assert_eq!(by(n).subject, Some(SubjectId::parse(subject).unwrap()));
        assert_eq!(by(n).content_sha256.as_ref(), Some(&content));
    }
    assert_eq!(
        by(3).face.image_id.as_str(),
        "11111111-2222-4333-8444-555555555555"
    );
    assert_eq!(by(3).content_sha256, None);
    let empty = ImageId::of_upload(
        &faceless,
        Some(&ExternalImageId::parse("empty.jpg").unwrap()),
    );
    let read = store.images(&[empty]).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].content_sha256.as_ref(), Some(&faceless));
}
