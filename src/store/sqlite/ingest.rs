//! [`GraphStore::ingest`](crate::store::GraphStore::ingest) on SQLite, one named step per part of
//! the batch: the faces it names and its faces' records are checked first, then collections,
//! images, faces, subjects, edges and searches are written in that order, in the caller's
//! transaction.

use std::collections::HashSet;

use rusqlite::{params, Transaction};

use super::edges::upsert_edges;
use super::seqs::FaceSeqs;
use super::{backend, read};
use crate::model::{
    Collection, CollectionId, Confidence, ContentHash, ExternalImageId, Face, FaceId, Image,
    ImageId, SearchRecord, Similarity, SubjectId,
};
use crate::store::conflict::refuse_conflicts;
use crate::store::{IngestBatch, IngestOutcome, StoreError};

const OP: &str = "ingest";

/// Writes `batch` in `tx`; the caller commits. Nothing is written when a face that observations or
/// searches name is unknown.
pub(super) fn ingest(
    tx: &Transaction<'_>,
    batch: &IngestBatch,
) -> Result<IngestOutcome, StoreError> {
    let mut seqs = FaceSeqs::default();
    // The faces whose edges this batch may change the verdicts of, marked in this transaction.
    let mut dirty: HashSet<i64> = HashSet::new();
    require_named_faces(tx, batch, &mut seqs)?;
    refuse_conflicting_faces(tx, &batch.faces)?;
    write_collections(tx, &batch.collections)?;
    // Images whose subject may need resolving once the batch's links are in.
    let mut touched_images: Vec<&ImageId> = batch.images.iter().map(|i| &i.image_id).collect();
    write_images(tx, &batch.images)?;
    let new_faces = write_faces(tx, &batch.faces, &mut seqs, &mut dirty)?;
    touched_images.extend(batch.faces.iter().map(|f| &f.image_id));
    let subject_links = link_subjects(tx, &batch.subjects, &touched_images, &mut dirty)?;
    let (new_edges, changed_edges) = upsert_edges(tx, batch, &mut seqs, &mut dirty)?;
    write_searches(tx, &batch.searches, &mut seqs, &mut dirty)?;
    super::uploads::complete(tx, &batch.completed)?;
    let mut dirty: Vec<i64> = dirty.into_iter().collect();
    dirty.sort_unstable();
    super::write::mark_dirty(tx, dirty, OP)?;
    Ok(IngestOutcome {
        new_faces,
        new_edges,
        changed_edges,
        subject_links,
    })
}

/// Checks that every face that observations and searches name is stored or in the batch, and
/// notes the seqs of the stored ones. Checked before anything is written: failing early is cheaper
/// than rolling back a large batch.
fn require_named_faces<'b>(
    tx: &Transaction<'_>,
    batch: &'b IngestBatch,
    seqs: &mut FaceSeqs<'b>,
) -> Result<(), StoreError> {
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
    Ok(())
}

/// Refuses the batch with [`StoreError::Conflict`] when one of its faces contradicts the stored
/// record of its id, before anything is written (a conflicting face's image would otherwise be
/// left without faces).
fn refuse_conflicting_faces(tx: &Transaction<'_>, faces: &[Face]) -> Result<(), StoreError> {
    if faces.is_empty() {
        return Ok(());
    }
    let stored: Vec<Face> = read::faces(tx, faces.iter().map(|f| &f.face_id))?
        .into_iter()
        .map(|record| record.face)
        .collect();
    refuse_conflicts(&stored, faces)
}

/// Creates collections, or completes the placeholder a face left for one.
fn write_collections(tx: &Transaction<'_>, collections: &[Collection]) -> Result<(), StoreError> {
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
    for c in collections {
        stmt.execute(params![
            c.collection_id.as_str(),
            c.engine,
            c.face_model_version,
            c.created_at.millis(),
        ])
        .map_err(backend(OP))?;
    }
    Ok(())
}

/// Creates images, or completes what an image lacked (a placeholder, or a record without a source).
fn write_images(tx: &Transaction<'_>, images: &[Image]) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO images (image_id, external_image_id, source, width, height,
                                 face_count, received_at, content_sha256, collection_id, pending)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (image_id) DO UPDATE SET
                 content_sha256 = coalesce(images.content_sha256, excluded.content_sha256),
                 collection_id = coalesce(images.collection_id, excluded.collection_id),
                 -- Pending while every record says so: a record that is not completes it.
                 pending = images.pending AND excluded.pending,
                 -- A placeholder (no face count) has a guessed receipt time; the record knows.
                 received_at = CASE WHEN images.face_count IS NULL
                                    THEN excluded.received_at ELSE images.received_at END,
                 external_image_id = coalesce(images.external_image_id, excluded.external_image_id),
                 source = coalesce(images.source, excluded.source),
                 width = coalesce(images.width, excluded.width),
                 height = coalesce(images.height, excluded.height),
                 -- A pending upload's count is not known until the engine has seen it.
                 face_count = CASE WHEN images.pending THEN excluded.face_count
                                   ELSE coalesce(images.face_count, excluded.face_count) END
             WHERE (images.external_image_id IS NULL AND excluded.external_image_id IS NOT NULL)
                OR (images.content_sha256 IS NULL AND excluded.content_sha256 IS NOT NULL)
                OR (images.collection_id IS NULL AND excluded.collection_id IS NOT NULL)
                OR images.pending
                OR (images.source IS NULL AND excluded.source IS NOT NULL)
                OR (images.width IS NULL AND excluded.width IS NOT NULL)
                OR (images.height IS NULL AND excluded.height IS NOT NULL)
                OR images.face_count IS NULL",
        )
        .map_err(backend(OP))?;
    for image in images {
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
            image.content_sha256.as_ref().map(ContentHash::as_str),
            image.collection_id.as_ref().map(CollectionId::as_str),
            image.pending,
        ])
        .map_err(backend(OP))?;
    }
    Ok(())
}

/// A face's placeholder collection, for a face that arrives before its collection's record.
const COLLECTION_STUB: &str = "INSERT INTO collections (collection_id, created_at) VALUES (?1, ?2)
     ON CONFLICT (collection_id) DO NOTHING";

/// A face's placeholder image, for a face that arrives before its image's record.
const IMAGE_STUB: &str = "INSERT INTO images (image_id, external_image_id, received_at)
     VALUES (?1, ?2, ?3)
     ON CONFLICT (image_id) DO UPDATE SET external_image_id = excluded.external_image_id
     WHERE images.external_image_id IS NULL AND excluded.external_image_id IS NOT NULL";

/// A new face, with its 21 numbered parameters; a stored face is left to [`COMPLETE_FACE`].
const INSERT_FACE: &str = "INSERT INTO faces (face_id, collection_id, image_id, external_image_id,
         bbox_left, bbox_top, bbox_width, bbox_height, detection_confidence,
         gender, gender_confidence, age_low, age_high, brightness, sharpness,
         yaw, pitch, roll, is_largest, indexed_at, raw)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
             ?16, ?17, ?18, ?19, ?20, ?21)
     ON CONFLICT (face_id) DO NOTHING";

/// A face seen again gains what it lacked and keeps what it had: the first known value of each
/// attribute wins. Attributes that travel together (gender and its confidence, age bounds,
/// quality, pose) are written together, so per-column coalescing keeps them whole. `is_largest`
/// can only become true: false is also what a source that cannot tell says. The statement takes
/// [`INSERT_FACE`]'s numbered parameters (SQLite lets a statement leave some unused), so one
/// parameter list serves both.
const COMPLETE_FACE: &str = "UPDATE faces SET
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
         OR (raw IS NULL AND ?21 IS NOT NULL))";

/// Writes the batch's faces: new ones are inserted (their seqs noted), stored ones completed.
/// Returns how many were new.
///
/// A face may arrive before the records of its collection and image (a ListFaces response names
/// neither in full); those get placeholder rows that their own records complete later, so that
/// every face is in an image and a collection, as in the graph model.
fn write_faces<'b>(
    tx: &Transaction<'_>,
    faces: &'b [Face],
    seqs: &mut FaceSeqs<'b>,
    dirty: &mut HashSet<i64>,
) -> Result<usize, StoreError> {
    let prepare = |sql| tx.prepare_cached(sql).map_err(backend(OP));
    let (mut collection_stub, mut image_stub) = (prepare(COLLECTION_STUB)?, prepare(IMAGE_STUB)?);
    let (mut insert, mut complete) = (prepare(INSERT_FACE)?, prepare(COMPLETE_FACE)?);
    let mut new_faces = 0;
    for face in faces {
        let ext = face.external_image_id.as_ref().map(ExternalImageId::as_str);
        let at = face.indexed_at.millis();
        collection_stub
            .execute(params![face.collection_id.as_str(), at])
            .map_err(backend(OP))?;
        image_stub
            .execute(params![face.image_id.as_str(), ext, at])
            .map_err(backend(OP))?;
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
            a.age.map(|r| r.low()),
            a.age.map(|r| r.high()),
            a.quality.map(|q| f64::from(q.brightness())),
            a.quality.map(|q| f64::from(q.sharpness())),
            a.pose.map(|p| f64::from(p.yaw())),
            a.pose.map(|p| f64::from(p.pitch())),
            a.pose.map(|p| f64::from(p.roll())),
            face.is_largest,
            at,
            face.raw,
        ];
        if insert.execute(values).map_err(backend(OP))? == 1 {
            new_faces += 1;
            let seq = tx.last_insert_rowid();
            seqs.insert(&face.face_id, seq);
            dirty.insert(seq);
        } else {
            let completed = complete.execute(values).map_err(backend(OP))?;
            let seq = seqs.resolve(tx, &face.face_id, OP)?;
            if completed > 0 {
                dirty.insert(seq);
            }
        }
    }
    Ok(new_faces)
}

/// Links every image with a given external id to its subject, then the batch's images to subjects
/// that earlier batches named for their external ids. Returns how many image links changed.
fn link_subjects(
    tx: &Transaction<'_>,
    subjects: &[(ExternalImageId, SubjectId)],
    touched_images: &[&ImageId],
    dirty: &mut HashSet<i64>,
) -> Result<usize, StoreError> {
    let mut changed = 0;
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
    let mut faces_of_external = tx
        .prepare_cached(
            "SELECT f.seq FROM faces f JOIN images i ON i.image_id = f.image_id
             WHERE i.external_image_id = ?1",
        )
        .map_err(backend(OP))?;
    for (ext, subject_id) in subjects {
        let values = [ext.as_str(), subject_id.as_str()];
        subject
            .execute([subject_id.as_str()])
            .map_err(backend(OP))?;
        link.execute(values).map_err(backend(OP))?;
        let relinked = relink.execute(values).map_err(backend(OP))?;
        if relinked > 0 {
            // The faces of a relinked image have another subject: their edges await re-judging.
            let seqs = faces_of_external
                .query_map([ext.as_str()], |row| row.get::<_, i64>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(backend(OP))?;
            dirty.extend(seqs);
        }
        changed += relinked;
    }
    let mut adopt = tx
        .prepare_cached(
            "UPDATE images SET subject_id =
                 (SELECT l.subject_id FROM subject_links l
                  WHERE l.external_image_id = images.external_image_id)
             WHERE image_id = ?1 AND subject_id IS NULL
               AND external_image_id IN (SELECT external_image_id FROM subject_links)",
        )
        .map_err(backend(OP))?;
    let mut faces_of_image = tx
        .prepare_cached("SELECT seq FROM faces WHERE image_id = ?1")
        .map_err(backend(OP))?;
    let mut seen = HashSet::new();
    for image in touched_images {
        if seen.insert(image) {
            let adopted = adopt.execute([image.as_str()]).map_err(backend(OP))?;
            if adopted > 0 {
                let seqs = faces_of_image
                    .query_map([image.as_str()], |row| row.get::<_, i64>(0))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(backend(OP))?;
                dirty.extend(seqs);
            }
            changed += adopted;
        }
    }
    Ok(changed)
}

/// Records the searches that ran; a search already recorded (same face, collection and time) is
/// kept as it was. A face with a new search awaits re-judging: its silence is new evidence.
fn write_searches<'b>(
    tx: &Transaction<'_>,
    searches: &'b [SearchRecord],
    seqs: &mut FaceSeqs<'b>,
    dirty: &mut HashSet<i64>,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO searches (face_id, collection_id, bound, collection_seq, searched_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (face_id, collection_id, searched_at) DO NOTHING",
        )
        .map_err(backend(OP))?;
    for s in searches {
        let added = stmt
            .execute(params![
                s.face_id.as_str(),
                s.collection_id.as_str(),
                s.bound.map(Similarity::get),
                s.collection_seq,
                s.searched_at.millis(),
            ])
            .map_err(backend(OP))?;
        if added > 0 {
            dirty.insert(seqs.resolve(tx, &s.face_id, OP)?);
        }
    }
    Ok(())
}
