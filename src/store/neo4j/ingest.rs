//! [`GraphStore::ingest`](crate::store::GraphStore::ingest) on Neo4j, one named step per part of
//! the batch: the faces it names and its faces' records are checked first, then collections,
//! images, faces, subjects, edges and searches are written in `UNWIND` batches, in the caller's
//! transaction.

use std::collections::{HashMap, HashSet};

use neo4rs::{query, BoltType, Txn};

use super::decode::{int, text};
use super::driver::{rows_of, take_numbers, unwind, unwind_rows, Map, Work};
use super::edges::upsert_edges;
use super::read::face_records;
use super::write::stored_faces;
use super::BATCH_ROWS;
use crate::model::{
    Collection, CollectionId, Confidence, ContentHash, ExternalImageId, Face, FaceId, Image,
    ImageId, SearchRecord, Similarity, SubjectId,
};
use crate::store::conflict::refuse_conflicts;
use crate::store::{IngestBatch, IngestOutcome, StoreError};

/// Writes `batch` in `tx`; the caller commits. Nothing is written when a face that observations or
/// searches name is unknown.
pub(super) async fn ingest(tx: &mut Txn, batch: &IngestBatch) -> Work<IngestOutcome> {
    let stored = require_named_faces(tx, batch).await?;
    refuse_conflicting_faces(tx, &batch.faces, &stored).await?;
    write_collections(tx, &batch.collections).await?;
    write_images(tx, &batch.images).await?;
    let new_faces = write_faces(tx, &batch.faces, &stored).await?;
    let touched_images: Vec<&ImageId> = batch
        .images
        .iter()
        .map(|i| &i.image_id)
        .chain(batch.faces.iter().map(|f| &f.image_id))
        .collect();
    let subject_links = link_subjects(tx, &batch.subjects, &touched_images).await?;
    let (new_edges, changed_edges) = upsert_edges(tx, batch, &stored).await?;
    write_searches(tx, &batch.searches).await?;
    complete_uploads(tx, &batch.completed).await?;
    super::scoped::mark_batch(tx, batch).await?;
    Ok(IngestOutcome {
        new_faces,
        new_edges,
        changed_edges,
        subject_links,
    })
}

/// Checks that every face that observations and searches name is stored or in the batch. Returns
/// the stored faces among those and the batch's own, each with whether it has edges already.
async fn require_named_faces(tx: &mut Txn, batch: &IngestBatch) -> Work<HashMap<String, bool>> {
    let in_batch: HashSet<&FaceId> = batch.faces.iter().map(|f| &f.face_id).collect();
    let named: HashSet<&FaceId> = batch
        .observations
        .iter()
        .filter(|o| o.searched != o.found)
        .flat_map(|o| [&o.searched, &o.found])
        .chain(batch.searches.iter().map(|s| &s.face_id))
        .collect();
    let wanted: HashSet<&FaceId> = in_batch.union(&named).copied().collect();
    let stored = stored_faces(tx, &wanted, true).await?;
    let mut missing: Vec<&FaceId> = named
        .iter()
        .filter(|id| !in_batch.contains(*id) && !stored.contains_key(id.as_str()))
        .copied()
        .collect();
    missing.sort();
    match missing.first() {
        Some(id) => Err(StoreError::UnknownFace((*id).clone()).into()),
        None => Ok(stored),
    }
}

/// Refuses the batch with [`StoreError::Conflict`] when one of its faces contradicts the stored
/// record of its id (`stored` holds the batch's stored faces), before anything is written: a
/// conflicting face's image would otherwise be left without faces.
async fn refuse_conflicting_faces(
    tx: &mut Txn,
    faces: &[Face],
    stored: &HashMap<String, bool>,
) -> Work<()> {
    let mut known: Vec<&FaceId> = faces
        .iter()
        .map(|f| &f.face_id)
        .filter(|id| stored.contains_key(id.as_str()))
        .collect();
    known.sort_unstable();
    known.dedup();
    // A batch of new faces, the bulk case, needs no read.
    let records = if known.is_empty() {
        Vec::new()
    } else {
        face_records(tx, known).await?
    };
    let stored: Vec<Face> = records.into_iter().map(|record| record.face).collect();
    Ok(refuse_conflicts(&stored, faces)?)
}

/// Creates collections, or completes the placeholder a face left for one.
async fn write_collections(tx: &mut Txn, collections: &[Collection]) -> Work<()> {
    if collections.is_empty() {
        return Ok(());
    }
    let rows: Vec<BoltType> = collections
        .iter()
        .map(|c| {
            Map::default()
                .with("id", c.collection_id.as_str())
                .with("engine", c.engine.as_str())
                .with("version", c.face_model_version.clone())
                .with("at", c.created_at.millis())
                .into()
        })
        .collect();
    // A placeholder (no engine) has a guessed creation time; the record knows.
    unwind(
        tx,
        "UNWIND $rows AS r
         MERGE (c:Collection {collection_id: r.id})
         ON CREATE SET c.engine = r.engine, c.face_model_version = r.version,
                       c.created_at = r.at
         ON MATCH SET c.created_at = CASE WHEN c.engine IS NULL THEN r.at ELSE c.created_at END,
                      c.engine = coalesce(c.engine, r.engine),
                      c.face_model_version = coalesce(c.face_model_version, r.version)",
        rows,
    )
    .await?;
    Ok(())
}

/// Creates images, or completes what an image lacked (a placeholder, or a record without a source).
async fn write_images(tx: &mut Txn, images: &[Image]) -> Work<()> {
    if images.is_empty() {
        return Ok(());
    }
    let rows: Vec<BoltType> = images
        .iter()
        .map(|i| {
            Map::default()
                .with("id", i.image_id.as_str())
                .with(
                    "ext",
                    i.external_image_id.as_ref().map(ExternalImageId::as_str),
                )
                .with("source", i.source.clone())
                .with("width", i.width.map(i64::from))
                .with("height", i.height.map(i64::from))
                .with("faces", i64::from(i.face_count))
                .with("at", i.received_at.millis())
                .with(
                    "content",
                    i.content_sha256.as_ref().map(ContentHash::as_str),
                )
                .with(
                    "collection",
                    i.collection_id.as_ref().map(CollectionId::as_str),
                )
                .with("pending", i.pending)
                .into()
        })
        .collect();
    // A placeholder (no face count) has a guessed receipt time; the record knows.
    unwind(
        tx,
        "UNWIND $rows AS r
         MERGE (i:Image {image_id: r.id})
         ON CREATE SET i.external_image_id = r.ext, i.source = r.source, i.width = r.width,
                       i.height = r.height, i.face_count = r.faces, i.received_at = r.at,
                       i.content_sha256 = r.content, i.collection_id = r.collection,
                       i.pending = r.pending
         ON MATCH SET i.content_sha256 = coalesce(i.content_sha256, r.content),
                      i.collection_id = coalesce(i.collection_id, r.collection),
                      i.received_at =
                          CASE WHEN i.face_count IS NULL THEN r.at ELSE i.received_at END,
                      i.external_image_id = coalesce(i.external_image_id, r.ext),
                      i.source = coalesce(i.source, r.source),
                      i.width = coalesce(i.width, r.width),
                      i.height = coalesce(i.height, r.height),
                      i.face_count = CASE WHEN coalesce(i.pending, false) THEN r.faces
                                          ELSE coalesce(i.face_count, r.faces) END,
                      // Last: the count above reads whether the image was pending before.
                      i.pending = coalesce(i.pending, false) AND r.pending",
        rows,
    )
    .await?;
    Ok(())
}

/// Writes the batch's faces: new ones are created with the next sequence numbers; a face already
/// stored (or seen earlier in the batch) gains the attributes it lacked and keeps those it had.
/// Returns how many were new.
async fn write_faces(tx: &mut Txn, faces: &[Face], stored: &HashMap<String, bool>) -> Work<usize> {
    let mut fresh: Vec<&Face> = Vec::new();
    let mut again: Vec<&Face> = Vec::new();
    let mut seen: HashSet<&FaceId> = HashSet::new();
    for face in faces {
        if stored.contains_key(face.face_id.as_str()) || !seen.insert(&face.face_id) {
            again.push(face);
        } else {
            fresh.push(face);
        }
    }
    if !fresh.is_empty() {
        create_faces(tx, &fresh).await?;
    }
    if !again.is_empty() {
        complete_faces(tx, &again).await?;
    }
    Ok(fresh.len())
}

/// Creates faces that the store does not hold. A face may arrive before the records of its
/// collection and image (a ListFaces response names neither in full); those get placeholders that
/// their own records complete later.
async fn create_faces(tx: &mut Txn, fresh: &[&Face]) -> Work<()> {
    let first = take_numbers(tx, "face", fresh.len()).await?;
    let rows: Vec<BoltType> = fresh
        .iter()
        .zip(first..)
        .map(|(face, seq)| face_row(face, Some(seq)))
        .collect();
    unwind(
        tx,
        "UNWIND $rows AS r
         MERGE (c:Collection {collection_id: r.collection_id})
         ON CREATE SET c.created_at = r.indexed_at
         MERGE (i:Image {image_id: r.image_id})
         ON CREATE SET i.received_at = r.indexed_at
         SET i.external_image_id = coalesce(i.external_image_id, r.external_image_id)
         CREATE (f:Face)
         SET f = r
         CREATE (f)-[:IN_IMAGE]->(i)
         CREATE (f)-[:IN_COLLECTION]->(c)",
        rows,
    )
    .await?;
    Ok(())
}

/// Completes stored faces with the attributes they lacked. Attributes that travel together are
/// written together, so per-property coalescing keeps them whole; `is_largest` can only become
/// true.
async fn complete_faces(tx: &mut Txn, again: &[&Face]) -> Work<()> {
    let rows: Vec<BoltType> = again.iter().map(|face| face_row(face, None)).collect();
    unwind(
        tx,
        "UNWIND $rows AS r
         MATCH (f:Face {face_id: r.face_id})
         SET f.external_image_id = coalesce(f.external_image_id, r.external_image_id),
             f.detection_confidence = coalesce(f.detection_confidence, r.detection_confidence),
             f.gender = coalesce(f.gender, r.gender),
             f.gender_confidence = coalesce(f.gender_confidence, r.gender_confidence),
             f.age_low = coalesce(f.age_low, r.age_low),
             f.age_high = coalesce(f.age_high, r.age_high),
             f.brightness = coalesce(f.brightness, r.brightness),
             f.sharpness = coalesce(f.sharpness, r.sharpness),
             f.yaw = coalesce(f.yaw, r.yaw),
             f.pitch = coalesce(f.pitch, r.pitch),
             f.roll = coalesce(f.roll, r.roll),
             f.is_largest = f.is_largest OR r.is_largest,
             f.raw = coalesce(f.raw, r.raw)",
        rows,
    )
    .await?;
    Ok(())
}

/// A face's properties as `UNWIND` parameters, with its sequence number when it is new.
fn face_row(face: &Face, seq: Option<i64>) -> BoltType {
    let a = &face.attributes;
    let mut m = Map::default()
        .with("face_id", face.face_id.as_str())
        .with("collection_id", face.collection_id.as_str())
        .with("image_id", face.image_id.as_str())
        .with(
            "external_image_id",
            face.external_image_id.as_ref().map(ExternalImageId::as_str),
        )
        .with("bbox_left", f64::from(face.bbox.left))
        .with("bbox_top", f64::from(face.bbox.top))
        .with("bbox_width", f64::from(face.bbox.width))
        .with("bbox_height", f64::from(face.bbox.height))
        .with(
            "detection_confidence",
            face.detection_confidence.map(Confidence::get),
        )
        .with("gender", a.gender.map(|g| g.value.as_str()))
        .with("gender_confidence", a.gender.map(|g| g.confidence.get()))
        .with("age_low", a.age.map(|r| i64::from(r.low())))
        .with("age_high", a.age.map(|r| i64::from(r.high())))
        .with("brightness", a.quality.map(|q| f64::from(q.brightness())))
        .with("sharpness", a.quality.map(|q| f64::from(q.sharpness())))
        .with("yaw", a.pose.map(|p| f64::from(p.yaw())))
        .with("pitch", a.pose.map(|p| f64::from(p.pitch())))
        .with("roll", a.pose.map(|p| f64::from(p.roll())))
        .with("is_largest", face.is_largest)
        .with("indexed_at", face.indexed_at.millis())
        .with("raw", face.raw.clone());
    if let Some(seq) = seq {
        m = m.with("seq", seq);
    }
    m.into()
}

/// Links images to the batch's subjects by external image id, and images of this batch to subjects
/// that earlier batches named for their external id. Returns how many image links changed.
async fn link_subjects(
    tx: &mut Txn,
    subjects: &[(ExternalImageId, SubjectId)],
    touched: &[&ImageId],
) -> Work<usize> {
    let mut changed = 0;
    for chunk in subjects.chunks(BATCH_ROWS) {
        changed += link_named(tx, chunk).await?;
    }
    Ok(changed + adopt_links(tx, touched).await?)
}

/// Records the subjects of these external image ids and moves the images with those ids to them.
/// Returns how many image links changed.
async fn link_named(tx: &mut Txn, chunk: &[(ExternalImageId, SubjectId)]) -> Work<usize> {
    let rows: Vec<BoltType> = chunk
        .iter()
        .map(|(ext, subject)| {
            Map::default()
                .with("ext", ext.as_str())
                .with("subject", subject.as_str())
                .into()
        })
        .collect();
    tx.run(
        query(
            "UNWIND $rows AS r
             MERGE (s:Subject {subject_id: r.subject})
             MERGE (k:SubjectLink {external_image_id: r.ext})
             SET k.subject_id = r.subject",
        )
        .param("rows", rows.clone()),
    )
    .await?;
    // Images with these external ids whose subject is another (or none) change.
    let found = rows_of(
        tx,
        "UNWIND $rows AS r
         MATCH (i:Image {external_image_id: r.ext})
         OPTIONAL MATCH (i)-[:OF_SUBJECT]->(old:Subject)
         WITH i, r, old WHERE old IS NULL OR old.subject_id <> r.subject
         RETURN i.image_id AS image_id, r.subject AS subject",
        rows,
    )
    .await?;
    let relink: Vec<BoltType> = found
        .iter()
        .map(|row| {
            Ok(Map::default()
                .with("image", text(row, "image", "image_id")?)
                .with("subject", text(row, "subject", "subject")?)
                .into())
        })
        .collect::<Result<_, StoreError>>()?;
    let changed = relink.len();
    if !relink.is_empty() {
        tx.run(
            query(
                "UNWIND $rows AS r
                 MATCH (i:Image {image_id: r.image})
                 OPTIONAL MATCH (i)-[old:OF_SUBJECT]->()
                 DELETE old
                 WITH DISTINCT i, r
                 MATCH (s:Subject {subject_id: r.subject})
                 CREATE (i)-[:OF_SUBJECT]->(s)",
            )
            .param("rows", relink),
        )
        .await?;
    }
    Ok(changed)
}

/// Links the touched images that have no subject to the subject an earlier batch named for their
/// external id. Returns how many were linked.
async fn adopt_links(tx: &mut Txn, touched: &[&ImageId]) -> Work<usize> {
    let mut unique: Vec<&ImageId> = touched.to_vec();
    unique.sort();
    unique.dedup();
    let images: Vec<BoltType> = unique.iter().map(|i| i.as_str().into()).collect();
    let adopted = unwind_rows(
        tx,
        "UNWIND $rows AS id
         MATCH (i:Image {image_id: id})
         WHERE i.external_image_id IS NOT NULL AND NOT (i)-[:OF_SUBJECT]->()
         MATCH (k:SubjectLink {external_image_id: i.external_image_id})
         MATCH (s:Subject {subject_id: k.subject_id})
         CREATE (i)-[:OF_SUBJECT]->(s)
         RETURN count(*) AS adopted",
        images,
    )
    .await?;
    let mut changed = 0;
    for row in &adopted {
        changed += usize::try_from(int(row, "adopted")?).unwrap_or(0);
    }
    Ok(changed)
}

/// Records the searches that ran, numbered in order; a search already recorded (same face,
/// collection and time) is kept as it was.
async fn write_searches(tx: &mut Txn, searches: &[SearchRecord]) -> Work<()> {
    if searches.is_empty() {
        return Ok(());
    }
    let first = take_numbers(tx, "search", searches.len()).await?;
    let rows: Vec<BoltType> = searches
        .iter()
        .zip(first..)
        .map(|(s, seq)| {
            Map::default()
                .with(
                    "key",
                    format!(
                        "{}|{}|{}",
                        s.face_id.as_str(),
                        s.collection_id.as_str(),
                        s.searched_at.millis()
                    ),
                )
                .with("face_id", s.face_id.as_str())
                .with("collection_id", s.collection_id.as_str())
                .with("bound", s.bound.map(Similarity::get))
                .with("collection_seq", s.collection_seq)
                .with("at", s.searched_at.millis())
                .with("seq", seq)
                .into()
        })
        .collect();
    unwind(
        tx,
        "UNWIND $rows AS r
         MERGE (s:Search {search_key: r.key})
         ON CREATE SET s.face_id = r.face_id, s.collection_id = r.collection_id,
                       s.bound = r.bound, s.collection_seq = r.collection_seq,
                       s.searched_at = r.at, s.seq = r.seq",
        rows,
    )
    .await?;
    Ok(())
}

/// Marks uploads complete.
async fn complete_uploads(tx: &mut Txn, completed: &[ImageId]) -> Work<()> {
    if completed.is_empty() {
        return Ok(());
    }
    let rows = completed.iter().map(|i| i.as_str().into()).collect();
    unwind(
        tx,
        "UNWIND $rows AS id MATCH (i:Image {image_id: id}) WHERE i.pending SET i.pending = false",
        rows,
    )
    .await?;
    Ok(())
}
