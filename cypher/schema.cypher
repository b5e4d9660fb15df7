// facegraph graph schema for Neo4j 5: uniqueness constraints first (bulk MERGE is slow without them),
// then the indexes that the investigation queries use. Every statement is idempotent (IF NOT EXISTS).

CREATE CONSTRAINT collection_id IF NOT EXISTS FOR (c:Collection) REQUIRE c.collection_id IS UNIQUE;
CREATE CONSTRAINT image_id IF NOT EXISTS FOR (i:Image) REQUIRE i.image_id IS UNIQUE;
CREATE CONSTRAINT face_id IF NOT EXISTS FOR (f:Face) REQUIRE f.face_id IS UNIQUE;
CREATE CONSTRAINT subject_id IF NOT EXISTS FOR (s:Subject) REQUIRE s.subject_id IS UNIQUE;

CREATE INDEX image_external_id IF NOT EXISTS FOR (i:Image) ON (i.external_image_id);
CREATE INDEX image_content IF NOT EXISTS FOR (i:Image) ON (i.content_sha256);
CREATE INDEX image_pending IF NOT EXISTS FOR (i:Image) ON (i.pending);
CREATE INDEX face_collection IF NOT EXISTS FOR (f:Face) ON (f.collection_id);
CREATE INDEX face_cluster IF NOT EXISTS FOR (f:Face) ON (f.cluster_id);
CREATE INDEX similar_verdict IF NOT EXISTS FOR ()-[r:SIMILAR]-() ON (r.verdict);

// Bookkeeping beside the graph model: subjects named before their images arrive, the searches that
// ran (their silence is evidence), every verdict an edge had, and the counters that number faces,
// searches, judgements and decisions in insertion order.
CREATE CONSTRAINT subject_link_external_id IF NOT EXISTS FOR (k:SubjectLink) REQUIRE k.external_image_id IS UNIQUE;
CREATE CONSTRAINT search_key IF NOT EXISTS FOR (s:Search) REQUIRE s.search_key IS UNIQUE;
CREATE CONSTRAINT counter_name IF NOT EXISTS FOR (k:Counter) REQUIRE k.name IS UNIQUE;
CREATE CONSTRAINT migration_name IF NOT EXISTS FOR (m:Migration) REQUIRE m.name IS UNIQUE;
CREATE INDEX search_face IF NOT EXISTS FOR (s:Search) ON (s.face_id);
CREATE INDEX judgement_pair IF NOT EXISTS FOR (j:Judgement) ON (j.face_a, j.face_b);

// The stream's bookkeeping: message keys its stages processed, the outbox of match events, the
// cursors (how far the outbox has read the judgement history, a backfill's last day) and the
// lease that lets one process at a time relay the outbox.
CREATE CONSTRAINT stream_message_key IF NOT EXISTS FOR (m:StreamMessage) REQUIRE m.key IS UNIQUE;
CREATE CONSTRAINT stream_cursor_name IF NOT EXISTS FOR (c:StreamCursor) REQUIRE c.name IS UNIQUE;
CREATE CONSTRAINT stream_lease_name IF NOT EXISTS FOR (l:StreamLease) REQUIRE l.name IS UNIQUE;
CREATE CONSTRAINT match_event_id IF NOT EXISTS FOR (e:MatchEvent) REQUIRE e.event_id IS UNIQUE;
CREATE INDEX judgement_seq IF NOT EXISTS FOR (j:Judgement) ON (j.seq);
CREATE INDEX match_event_pair IF NOT EXISTS FOR (e:MatchEvent) ON (e.face_a, e.face_b);
CREATE INDEX match_event_sent IF NOT EXISTS FOR (e:MatchEvent) ON (e.sent);
