//! Uploads in the SQLite store: images read back by id and the pending ones, and the migration
//! step that split the images of the local engine, once keyed by their bytes' hash, into one image
//! per upload.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::backend;
use super::decode::{collect, Cells};
use crate::model::{CollectionId, ContentHash, ExternalImageId, Image, ImageId, Timestamp};
use crate::store::StoreError;

const IMAGE_SELECT: &str = "SELECT image_id, external_image_id, content_sha256, collection_id,
        pending, source, width, height, face_count, received_at FROM images";

/// The images with these ids.
pub(super) fn images(conn: &Connection, ids: &[ImageId]) -> Result<Vec<Image>, StoreError> {
    const OP: &str = "read images";
    let list = serde_json::to_string(&ids.iter().map(ImageId::as_str).collect::<Vec<_>>())
        .map_err(|e| StoreError::Backend {
            operation: OP,
            source: Box::new(e),
        })?;
    let sql = format!("{IMAGE_SELECT} WHERE image_id IN (SELECT value FROM json_each(?1))");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt.query([list]).map_err(backend(OP))?;
    collect(rows, OP, image)
}

/// The pending uploads, oldest first.
pub(super) fn pending(conn: &Connection) -> Result<Vec<Image>, StoreError> {
    const OP: &str = "read pending uploads";
    let sql = format!("{IMAGE_SELECT} WHERE pending = 1 ORDER BY received_at, image_id");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt.query([]).map_err(backend(OP))?;
    collect(rows, OP, image)
}

/// Removes a pending upload that has no face.
pub(super) fn forget(tx: &Transaction<'_>, id: &ImageId) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM images WHERE image_id = ?1 AND pending = 1
           AND NOT EXISTS (SELECT 1 FROM faces WHERE image_id = ?1)",
        [id.as_str()],
    )
    .map_err(backend("forget an upload"))?;
    Ok(())
}

/// Marks uploads complete.
pub(super) fn complete(tx: &Transaction<'_>, ids: &[ImageId]) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached("UPDATE images SET pending = 0 WHERE image_id = ?1 AND pending = 1")
        .map_err(backend("complete uploads"))?;
    for id in ids {
        stmt.execute([id.as_str()])
            .map_err(backend("complete uploads"))?;
    }
    Ok(())
}

fn image(row: &rusqlite::Row<'_>) -> Result<Image, StoreError> {
    let mut c = Cells::new(row, "image");
    let image_id = c.parse(ImageId::parse)?;
    let external_image_id = c.opt_parse(ExternalImageId::parse)?;
    let content_sha256 = c.opt_parse(ContentHash::parse)?;
    let collection_id = c.opt_parse(CollectionId::parse)?;
    let pending = c.int()? != 0;
    let source = c.opt_text()?.map(str::to_owned);
    let width = c.opt_int()?.and_then(|w| u32::try_from(w).ok());
    let height = c.opt_int()?.and_then(|h| u32::try_from(h).ok());
    let face_count = c
        .opt_int()?
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let received_at = Timestamp::from_millis(c.int()?);
    Ok(Image {
        image_id,
        external_image_id,
        content_sha256,
        collection_id,
        pending,
        source,
        width,
        height,
        face_count,
        received_at,
    })
}

/// One upload of a local-engine image keyed by its bytes' hash: its faces' external image id.
type Upload = (String, Option<String>);

/// Splits every image of a local collection that was keyed by its bytes' hash into one image per
/// upload: its faces grouped by their external image id, each group an image of its own with the
/// id [`ImageId::of_upload`] gives, the old id kept as the content hash, and the subject that the
/// group's external image id is linked to. Faceless images are renamed in place. Images of saved
/// responses (the service's UUIDs) and of the API's candidates are not the engine's and stay.
pub(super) fn split_uploads(tx: &Transaction<'_>) -> Result<(), StoreError> {
    const OP: &str = "split images into uploads";
    let mut groups: BTreeMap<Upload, String> = BTreeMap::new();
    {
        let mut stmt = tx
            .prepare(
                "SELECT DISTINCT f.image_id, f.external_image_id, f.collection_id
                 FROM faces f JOIN collections c ON c.collection_id = f.collection_id
                 WHERE c.engine = 'local' AND length(f.image_id) = 64",
            )
            .map_err(backend(OP))?;
        let mut rows = stmt.query([]).map_err(backend(OP))?;
        while let Some(row) = rows.next().map_err(backend(OP))? {
            let image: String = row.get(0).map_err(backend(OP))?;
            let ext: Option<String> = row.get(1).map_err(backend(OP))?;
            let collection: String = row.get(2).map_err(backend(OP))?;
            groups.insert((image, ext), collection);
        }
    }
    let (mut images, mut uploads) = (std::collections::BTreeSet::new(), 0usize);
    for ((old, ext), collection) in &groups {
        let new = upload_id(old, ext.as_deref())?;
        images.insert(old.clone());
        uploads += 1;
        let subject: Option<String> = match ext {
            Some(e) => tx
                .query_row(
                    "SELECT subject_id FROM subject_links WHERE external_image_id = ?1",
                    [e],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend(OP))?,
            None => None,
        };
        tx.execute(
            "INSERT INTO images (image_id, external_image_id, source, width, height, face_count,
                                 received_at, subject_id, content_sha256, collection_id, pending)
             SELECT ?2, ?3, source, width, height, face_count, received_at,
                    coalesce(?4, CASE WHEN external_image_id IS ?3 THEN subject_id END), ?1, ?5, 0
             FROM images WHERE image_id = ?1
             ON CONFLICT (image_id) DO NOTHING",
            params![old, new.as_str(), ext, subject, collection],
        )
        .map_err(backend(OP))?;
        tx.execute(
            "UPDATE faces SET image_id = ?2 WHERE image_id = ?1 AND external_image_id IS ?3",
            params![old, new.as_str(), ext],
        )
        .map_err(backend(OP))?;
    }
    for old in &images {
        tx.execute(
            "DELETE FROM images WHERE image_id = ?1
               AND NOT EXISTS (SELECT 1 FROM faces WHERE image_id = ?1)",
            [old],
        )
        .map_err(backend(OP))?;
    }
    let faceless: Vec<Upload> = {
        let mut stmt = tx
            .prepare(
                "SELECT image_id, external_image_id FROM images i
                 WHERE length(image_id) = 64 AND content_sha256 IS NULL
                   AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.image_id = i.image_id)",
            )
            .map_err(backend(OP))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend(OP))?;
        rows.collect::<Result<_, _>>().map_err(backend(OP))?
    };
    for (old, ext) in &faceless {
        let new = upload_id(old, ext.as_deref())?;
        tx.execute(
            "UPDATE images SET image_id = ?2, content_sha256 = ?1 WHERE image_id = ?1",
            params![old, new.as_str()],
        )
        .map_err(backend(OP))?;
    }
    if !images.is_empty() {
        tracing::warn!(
            images = images.len(),
            uploads,
            "split the local engine's images into one image per upload; run `facegraph adjudicate` \
             to judge their faces' matches again"
        );
    }
    Ok(())
}

fn upload_id(content: &str, ext: Option<&str>) -> Result<ImageId, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "image",
        detail,
    };
    let content = ContentHash::parse(content).map_err(|e| corrupt(e.to_string()))?;
    let ext = ext
        .map(ExternalImageId::parse)
        .transpose()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(ImageId::of_upload(&content, ext.as_ref()))
}
