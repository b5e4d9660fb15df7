-- The stream's bookkeeping beside the graph: the message keys its stages processed (the exact
-- check behind the Bloom filter), the outbox of match events (each derived once from a judgement
-- and kept with the bytes it is sent as, so that sending it again after a crash sends the same
-- event), named cursors (how far the outbox has read the judgement history; a backfill's last
-- day) and leases (one relay of the outbox at a time among the processes that share the store).

CREATE TABLE stream_messages (
    key      TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    face_id  TEXT,
    at       INTEGER NOT NULL
) STRICT;

CREATE TABLE stream_cursors (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE stream_leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  INTEGER NOT NULL
) STRICT;

CREATE TABLE match_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    face_a        TEXT NOT NULL,
    face_b        TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    judgement_seq INTEGER NOT NULL,
    payload       TEXT NOT NULL,
    sent_at       INTEGER
) STRICT;
CREATE INDEX match_events_pair ON match_events (face_a, face_b, seq);
CREATE INDEX match_events_unsent ON match_events (seq) WHERE sent_at IS NULL;
