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
