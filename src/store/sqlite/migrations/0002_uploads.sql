-- Images become uploads: an image is one upload (external image id, subject), and the bytes' hash
-- is a property several uploads can share. An upload is recorded before the face engine sees it
-- (pending) and completed once its faces and their searches are stored, so that a crash in between
-- is finished by the next writer. Existing local-engine images, keyed by their bytes' hash, are
-- split into one image per upload by the migration step that follows this file (in Rust: the new
-- ids are SHA-256s).

ALTER TABLE images ADD COLUMN content_sha256 TEXT;
ALTER TABLE images ADD COLUMN collection_id TEXT;
ALTER TABLE images ADD COLUMN pending INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1));
CREATE INDEX images_content_sha256 ON images (content_sha256) WHERE content_sha256 IS NOT NULL;
CREATE INDEX images_pending ON images (pending) WHERE pending = 1;
