-- Scoped adjudication: the faces a write leaves awaiting re-judging, the review queue kept on the
-- edges so that it reads in pages, the indexes that read a face's decisions and clusters, and the
-- clusters with their fraud-lead flag and running totals.

-- Faces awaiting re-judging. A write marks each face it touched with a new id (a face marked again
-- gets a newer one), and the re-judging deletes the marks up to the newest it read: a face marked
-- while it ran keeps its mark. AUTOINCREMENT keeps ids rising even after every row is deleted.
CREATE TABLE dirty_faces (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    face_seq INTEGER NOT NULL UNIQUE REFERENCES faces (seq)
) STRICT;

-- The current judgement's score, and whether it is in the review queue (a review verdict that band
-- retention kept and that is not a self-match), so that the queue is read from an index in score
-- order. Filled in for the judgements already stored.
ALTER TABLE edges ADD COLUMN score REAL;
ALTER TABLE edges ADD COLUMN queued INTEGER NOT NULL DEFAULT 0 CHECK (queued IN (0, 1));
UPDATE edges SET
    score = (SELECT h.score FROM verdict_history h WHERE h.id = edges.judgement_id),
    queued = (verdict = 'review' AND NOT EXISTS (
        SELECT 1 FROM verdict_history h, json_each(h.reasons) r
        WHERE h.id = edges.judgement_id
          AND json_extract(r.value, '$.code') IN ('band_retention', 'same_subject')))
WHERE judgement_id IS NOT NULL;
CREATE INDEX edges_queue ON edges (score DESC) WHERE queued = 1;

CREATE INDEX decisions_face_a ON decisions (face_a);
CREATE INDEX decisions_face_b ON decisions (face_b);
CREATE INDEX cluster_members_cluster ON cluster_members (cluster_id);
CREATE INDEX cluster_members_face ON cluster_members (face_id);

-- One row per stored cluster with whether it is a fraud lead, and the totals the triggers keep, so
-- that the counts after a change are read without reading every cluster.
CREATE TABLE clusters (
    cluster_id TEXT PRIMARY KEY,
    fraud_lead INTEGER NOT NULL CHECK (fraud_lead IN (0, 1))
) STRICT;
INSERT INTO clusters (cluster_id, fraud_lead)
SELECT m.cluster_id, count(DISTINCT i.subject_id) >= 2
FROM cluster_members m
JOIN faces f ON f.face_id = m.face_id
JOIN images i ON i.image_id = f.image_id
GROUP BY m.cluster_id;

CREATE TABLE cluster_totals (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    clusters    INTEGER NOT NULL,
    fraud_leads INTEGER NOT NULL
) STRICT;
INSERT INTO cluster_totals (id, clusters, fraud_leads)
SELECT 1, count(*), coalesce(sum(fraud_lead), 0) FROM clusters;

CREATE TRIGGER clusters_added AFTER INSERT ON clusters
BEGIN
    UPDATE cluster_totals
    SET clusters = clusters + 1, fraud_leads = fraud_leads + NEW.fraud_lead WHERE id = 1;
END;
CREATE TRIGGER clusters_removed AFTER DELETE ON clusters
BEGIN
    UPDATE cluster_totals
    SET clusters = clusters - 1, fraud_leads = fraud_leads - OLD.fraud_lead WHERE id = 1;
END;
