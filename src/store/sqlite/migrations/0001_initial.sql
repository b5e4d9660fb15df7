-- The first schema of the SQLite graph store: the graph model (collections, images, faces, subjects,
-- SIMILAR edges with their verdicts, searches, analyst decisions) as tables. Identifiers are stored
-- as the domain spells them; times are milliseconds since the Unix epoch; similarities, confidences
-- and scores are REALs, which hold the domain's values exactly, so they read back equal.

CREATE TABLE collections (
    collection_id      TEXT PRIMARY KEY,
    -- NULL only for a collection known from its faces before its own record arrived.
    engine             TEXT,
    face_model_version TEXT,
    created_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE subjects (
    subject_id TEXT PRIMARY KEY
) STRICT;

-- Which subject is behind an external image id. Kept on its own so that a link given before the
-- image arrives still applies when it does.
CREATE TABLE subject_links (
    external_image_id TEXT PRIMARY KEY,
    subject_id        TEXT NOT NULL REFERENCES subjects (subject_id)
) STRICT;

CREATE TABLE images (
    image_id          TEXT PRIMARY KEY,
    external_image_id TEXT,
    source            TEXT,
    width             INTEGER,
    height            INTEGER,
    -- NULL only for an image known from its faces before its own record arrived.
    face_count        INTEGER,
    received_at       INTEGER NOT NULL,
    subject_id        TEXT REFERENCES subjects (subject_id)
) STRICT;
CREATE INDEX images_external_image_id ON images (external_image_id);

CREATE TABLE faces (
    -- The insertion sequence: searches record the highest seq they covered.
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    face_id              TEXT NOT NULL UNIQUE,
    collection_id        TEXT NOT NULL REFERENCES collections (collection_id),
    image_id             TEXT NOT NULL REFERENCES images (image_id),
    external_image_id    TEXT,
    bbox_left            REAL NOT NULL,
    bbox_top             REAL NOT NULL,
    bbox_width           REAL NOT NULL,
    bbox_height          REAL NOT NULL,
    detection_confidence REAL,
    gender               TEXT,
    gender_confidence    REAL,
    age_low              INTEGER,
    age_high             INTEGER,
    brightness           REAL,
    sharpness            REAL,
    yaw                  REAL,
    pitch                REAL,
    roll                 REAL,
    is_largest           INTEGER NOT NULL,
    indexed_at           INTEGER NOT NULL,
    -- The engine's response for the face, verbatim.
    raw                  TEXT
) STRICT;
CREATE INDEX faces_image_id ON faces (image_id);

-- One SIMILAR edge per unordered pair of faces. The faces are named by their seq: the largest table
-- and its indexes stay small and compare integers instead of UUIDs, which is most of the cost of
-- bulk ingest. face_a is the face whose id sorts first (the pair's canonical order), and
-- similarity_ab was observed when face_a was searched. Without a rowid, the primary key is the
-- table, so an insert writes one b-tree less. The row stays small (the reasons live in the verdict
-- history, which judgement_id points into), as a table without rowid wants.
CREATE TABLE edges (
    face_a        INTEGER NOT NULL REFERENCES faces (seq),
    face_b        INTEGER NOT NULL REFERENCES faces (seq),
    similarity_ab REAL,
    similarity_ba REAL,
    engine        TEXT NOT NULL,
    searched_at   INTEGER NOT NULL,
    -- The current verdict, also in the judgement, kept here for the review queue's index.
    verdict       TEXT,
    judgement_id  INTEGER REFERENCES verdict_history (id),
    PRIMARY KEY (face_a, face_b),
    CHECK (face_a <> face_b),
    CHECK ((verdict IS NULL) = (judgement_id IS NULL))
) STRICT, WITHOUT ROWID;
CREATE INDEX edges_face_b ON edges (face_b);
-- Partial: most edges are never adjudicated, and a query on one verdict implies a non-NULL one.
CREATE INDEX edges_verdict ON edges (verdict) WHERE verdict IS NOT NULL;

-- Every judgement an edge has had, appended whenever record_verdicts changes it; the edge points at
-- its current one.
CREATE TABLE verdict_history (
    id       INTEGER PRIMARY KEY,
    face_a   INTEGER NOT NULL,
    face_b   INTEGER NOT NULL,
    verdict  TEXT NOT NULL,
    score    REAL NOT NULL,
    rule_set TEXT NOT NULL,
    -- The reasons as JSON: [{"code", "message", "evidence": [{"key", "number" | "text"}]}].
    reasons  TEXT NOT NULL,
    at       INTEGER NOT NULL,
    FOREIGN KEY (face_a, face_b) REFERENCES edges (face_a, face_b)
) STRICT;
CREATE INDEX verdict_history_pair ON verdict_history (face_a, face_b);

-- The edges with their faces' ids and current judgement, for reads and for people with a SQLite shell.
CREATE VIEW similar_edges AS
SELECT fa.face_id AS face_a, fb.face_id AS face_b, e.similarity_ab, e.similarity_ba, e.engine,
       e.searched_at, e.verdict, h.score, h.rule_set, h.reasons, h.at AS adjudicated_at
FROM edges e
JOIN faces fa ON fa.seq = e.face_a
JOIN faces fb ON fb.seq = e.face_b
LEFT JOIN verdict_history h ON h.id = e.judgement_id;

CREATE TABLE searches (
    id             INTEGER PRIMARY KEY,
    face_id        TEXT NOT NULL REFERENCES faces (face_id),
    -- Not a foreign key: a saved search response may name a collection never recorded itself.
    collection_id  TEXT NOT NULL,
    bound          REAL,
    collection_seq INTEGER NOT NULL,
    searched_at    INTEGER NOT NULL,
    UNIQUE (face_id, collection_id, searched_at)
) STRICT;

-- Analyst decisions: append-only, enforced below.
CREATE TABLE decisions (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    face_a  TEXT NOT NULL REFERENCES faces (face_id),
    face_b  TEXT NOT NULL REFERENCES faces (face_id),
    kind    TEXT NOT NULL CHECK (kind IN ('same', 'different')),
    analyst TEXT NOT NULL,
    note    TEXT,
    at      INTEGER NOT NULL,
    CHECK (face_a < face_b)
) STRICT;

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'analyst decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'analyst decisions are append-only'); END;
CREATE TRIGGER verdict_history_no_update BEFORE UPDATE ON verdict_history
BEGIN SELECT RAISE(ABORT, 'verdict history is append-only'); END;
CREATE TRIGGER verdict_history_no_delete BEFORE DELETE ON verdict_history
BEGIN SELECT RAISE(ABORT, 'verdict history is append-only'); END;

-- The current match clusters; replaced as a whole. Rows keep the order they were given in.
CREATE TABLE cluster_members (
    id         INTEGER PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    face_id    TEXT NOT NULL REFERENCES faces (face_id)
) STRICT;
