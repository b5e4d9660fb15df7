//! Uploads in the Neo4j store: images read back by id and the pending ones, and the migration that
//! split the local engine's images, once keyed by their bytes' hash, into one image per upload.

use neo4rs::{query, Row, Txn};

use super::decode::{all, get, opt_parsed, parsed};
use super::driver::{rows, unwind, unwind_rows, Map, Work};
use super::Neo4jStore;
use crate::model::{CollectionId, ContentHash, ExternalImageId, Image, ImageId, Timestamp};
use crate::store::StoreError;

const IMAGE_COLUMNS: &str = "i.image_id AS image_id, i.external_image_id AS external_image_id,
    i.content_sha256 AS content_sha256, i.collection_id AS collection_id,
    coalesce(i.pending, false) AS pending, i.source AS source, i.width AS width,
    i.height AS height, i.face_count AS face_count, i.received_at AS received_at";

/// [`GraphStore::images`](crate::store::GraphStore::images).
pub(super) fn images(store: &Neo4jStore, ids: &[ImageId]) -> Result<Vec<Image>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let cypher =
        format!("UNWIND $rows AS id MATCH (i:Image {{image_id: id}}) RETURN {IMAGE_COLUMNS}");
    let wanted: Vec<neo4rs::BoltType> = ids.iter().map(|i| i.as_str().into()).collect();
    let found = store.transaction("read images", async |tx| {
        Ok(unwind_rows(tx, &cypher, wanted.clone()).await?)
    })?;
    all(found, image)
}

/// [`GraphStore::pending_images`](crate::store::GraphStore::pending_images).
pub(super) fn pending(store: &Neo4jStore) -> Result<Vec<Image>, StoreError> {
    let cypher = format!(
        "MATCH (i:Image) WHERE i.pending RETURN {IMAGE_COLUMNS} ORDER BY received_at, image_id"
    );
    let found = store.transaction("read pending uploads", async |tx| {
        Ok(rows(tx, query(&cypher)).await?)
    })?;
    all(found, image)
}

/// [`GraphStore::forget_pending_image`](crate::store::GraphStore::forget_pending_image).
pub(super) fn forget(store: &Neo4jStore, id: &ImageId) -> Result<(), StoreError> {
    store.transaction("forget an upload", async |tx| {
        tx.run(
            query(
                "MATCH (i:Image {image_id: $id}) WHERE i.pending AND NOT (i)<-[:IN_IMAGE]-(:Face)
                 DETACH DELETE i",
            )
            .param("id", id.as_str()),
        )
        .await?;
        Ok(())
    })
}

fn image(row: &Row) -> Result<Image, StoreError> {
    const W: &str = "image";
    let count = |key: &str| -> Result<Option<u32>, StoreError> {
        Ok(get::<Option<i64>>(row, W, key)?.and_then(|n| u32::try_from(n).ok()))
    };
    Ok(Image {
        image_id: parsed(row, W, "image_id", ImageId::parse)?,
        external_image_id: opt_parsed(row, W, "external_image_id", ExternalImageId::parse)?,
        content_sha256: opt_parsed(row, W, "content_sha256", ContentHash::parse)?,
        collection_id: opt_parsed(row, W, "collection_id", CollectionId::parse)?,
        pending: get(row, W, "pending")?,
        source: get(row, W, "source")?,
        width: count("width")?,
        height: count("height")?,
        face_count: count("face_count")?.unwrap_or(0),
        received_at: Timestamp::from_millis(get(row, W, "received_at")?),
    })
}

/// The migrations run once per database, each recorded as a `(:Migration {name})` node.
const UPLOADS_MIGRATION: &str = "uploads-v1";

impl Neo4jStore {
    /// Runs the migrations this database has not had yet.
    pub(super) fn migrate(&self) -> Result<(), StoreError> {
        let done = self.transaction("read migrations", async |tx| {
            let found = rows(
                tx,
                query("MATCH (m:Migration {name: $name}) RETURN m.name AS name")
                    .param("name", UPLOADS_MIGRATION),
            )
            .await?;
            Ok(!found.is_empty())
        })?;
        if done {
            return Ok(());
        }
        let (images, uploads) = self.split_uploads()?;
        if images > 0 {
            tracing::warn!(
                images,
                uploads,
                "split the local engine's images into one image per upload; run `facegraph \
                 adjudicate` to judge their faces' matches again"
            );
        }
        self.transaction("record a migration", async |tx| {
            tx.run(
                query("MERGE (m:Migration {name: $name}) ON CREATE SET m.at = timestamp()")
                    .param("name", UPLOADS_MIGRATION),
            )
            .await?;
            Ok(())
        })
    }

    /// Splits every image of a local collection that is keyed by its bytes' hash into one image per
    /// upload (its faces grouped by external image id), as the SQLite store's migration does.
    /// Idempotent: a split image has its content hash set and is not touched again. Returns how
    /// many images were split into how many uploads.
    pub fn split_uploads(&self) -> Result<(usize, usize), StoreError> {
        self.transaction("split images into uploads", async |tx| split(tx).await)
    }
}

async fn split(tx: &mut Txn) -> Work<(usize, usize)> {
    let found = rows(
        tx,
        query(
            "MATCH (f:Face)-[:IN_IMAGE]->(i:Image), (f)-[:IN_COLLECTION]->(c:Collection)
             WHERE c.engine = 'local' AND i.content_sha256 IS NULL AND size(i.image_id) = 64
             RETURN DISTINCT i.image_id AS image, f.external_image_id AS ext",
        ),
    )
    .await?;
    let mut groups = Vec::new();
    let mut olds = std::collections::BTreeSet::new();
    for row in &found {
        let old: String = get(row, "image", "image")?;
        let ext: Option<String> = get(row, "image", "ext")?;
        let content = ContentHash::parse(&old).map_err(|e| corrupt(e.to_string()))?;
        let ext_id = ext
            .as_deref()
            .map(ExternalImageId::parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        let new = ImageId::of_upload(&content, ext_id.as_ref());
        olds.insert(old.clone());
        groups.push(
            Map::default()
                .with("old", old)
                .with("ext", ext)
                .with("new", new.as_str())
                .into(),
        );
    }
    let uploads = groups.len();
    // The new image takes the old one's properties and the subject its external image id is
    // linked to (or the old image's own, for the upload the old image was named after).
    unwind(
        tx,
        "UNWIND $rows AS r
         MATCH (old:Image {image_id: r.old})
         MERGE (new:Image {image_id: r.new})
         ON CREATE SET new.external_image_id = r.ext, new.source = old.source,
                       new.width = old.width, new.height = old.height,
                       new.face_count = old.face_count, new.received_at = old.received_at,
                       new.content_sha256 = r.old, new.pending = false
         WITH r, old, new
         MATCH (f:Face {image_id: r.old})-[rel:IN_IMAGE]->(old)
         WHERE f.external_image_id = r.ext OR (f.external_image_id IS NULL AND r.ext IS NULL)
         SET f.image_id = r.new, new.collection_id = f.collection_id
         DELETE rel
         CREATE (f)-[:IN_IMAGE]->(new)",
        groups.clone(),
    )
    .await?;
    unwind(
        tx,
        "UNWIND $rows AS r
         MATCH (new:Image {image_id: r.new})
         OPTIONAL MATCH (k:SubjectLink {external_image_id: r.ext})
         OPTIONAL MATCH (ls:Subject {subject_id: k.subject_id})
         OPTIONAL MATCH (old:Image {image_id: r.old})-[:OF_SUBJECT]->(os:Subject)
         WITH new, coalesce(ls, CASE WHEN old.external_image_id = r.ext THEN os END) AS s
         WHERE s IS NOT NULL
         MERGE (new)-[:OF_SUBJECT]->(s)",
        groups,
    )
    .await?;
    let olds_rows = olds.iter().map(|o| o.as_str().into()).collect();
    unwind(
        tx,
        "UNWIND $rows AS id MATCH (old:Image {image_id: id})
         WHERE NOT (old)<-[:IN_IMAGE]-(:Face) DETACH DELETE old",
        olds_rows,
    )
    .await?;
    Ok((olds.len(), uploads))
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        what: "image",
        detail,
    }
}
