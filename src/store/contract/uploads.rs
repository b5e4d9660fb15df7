//! Contract checks of uploads: an image recorded pending before the engine sees it, completed by
//! the batch that stores its last part, read back by id with its content hash and collection; and
//! the content hash that faces of reused photos share.

use super::fixtures::{batch, collection, collection_id, face, image, image_id, ts};
use super::{ingest, ok, read_face};
use crate::model::{ContentHash, Image};
use crate::store::{GraphStore, IngestBatch};

fn upload(n: u32, content: &ContentHash) -> Image {
    Image {
        content_sha256: Some(content.clone()),
        pending: true,
        width: None,
        height: None,
        face_count: 0,
        ..image(n)
    }
}

/// A pending upload is read back as such until the batch that completes it; records of it that say
/// it is pending never undo that, and the hash and collection it was recorded with stay.
pub fn uploads_stay_pending_until_completed(store: &dyn GraphStore) {
    let content = ContentHash::of_bytes(b"selfie");
    ingest(
        store,
        &IngestBatch {
            collections: vec![collection()],
            images: vec![upload(1, &content)],
            ..IngestBatch::default()
        },
    );
    let pending = ok(store.pending_images(), "pending_images");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].image_id, image_id(1));
    assert_eq!(pending[0].content_sha256.as_ref(), Some(&content));
    assert_eq!(pending[0].collection_id.as_ref(), Some(&collection_id()));
    assert!(pending[0].pending);
    // The faces arrive with the image still pending: the upload is not complete yet.
    let mut faces = batch(&[(1, 1)]);
    faces.images = vec![Image {
        width: Some(640),
        height: Some(480),
        face_count: 1,
        ..upload(1, &content)
    }];
    ingest(store, &faces);
    assert_eq!(ok(store.pending_images(), "pending_images").len(), 1);
    ingest(
        store,
        &IngestBatch {
            completed: vec![image_id(1)],
            ..IngestBatch::default()
        },
    );
    assert!(ok(store.pending_images(), "pending_images").is_empty());
    let read = ok(store.images(&[image_id(1), image_id(9)]), "images");
    assert_eq!(read.len(), 1, "unknown ids are skipped: {read:?}");
    let img = &read[0];
    assert!(!img.pending);
    assert_eq!(
        (img.width, img.height, img.face_count),
        (Some(640), Some(480), 1)
    );
    assert_eq!(img.content_sha256.as_ref(), Some(&content));
    // A late record that says pending does not reopen a complete upload.
    ingest(
        store,
        &IngestBatch {
            images: vec![upload(1, &content)],
            ..IngestBatch::default()
        },
    );
    assert!(ok(store.pending_images(), "pending_images").is_empty());
}

/// A pending upload the engine refused is forgotten; a complete one, or one with faces, is not.
pub fn a_refused_upload_is_forgotten(store: &dyn GraphStore) {
    let content = ContentHash::of_bytes(b"not an image");
    ingest(
        store,
        &IngestBatch {
            images: vec![upload(1, &content), upload(2, &content)],
            ..IngestBatch::default()
        },
    );
    let mut with_face = batch(&[(1, 2)]);
    with_face.images.clear();
    ingest(store, &with_face);
    ok(store.forget_pending_image(&image_id(1)), "forget");
    ok(store.forget_pending_image(&image_id(2)), "forget");
    let left = ok(store.images(&[image_id(1), image_id(2)]), "images");
    assert_eq!(
        left.iter().map(|i| i.image_id.clone()).collect::<Vec<_>>(),
        [image_id(2)],
        "the faceless pending upload goes, the one with a face stays"
    );
}

/// Two uploads of the same bytes are two images; their faces both carry the bytes' hash, and a
/// record that is not pending completes an image at once.
pub fn reused_photos_share_their_content_hash(store: &dyn GraphStore) {
    let content = ContentHash::of_bytes(b"one photo, two customers");
    let mut b = batch(&[(1, 1), (2, 2)]);
    b.images = vec![
        Image {
            pending: false,
            ..upload(1, &content)
        },
        Image {
            pending: false,
            received_at: ts(200),
            ..upload(2, &content)
        },
    ];
    b.faces = vec![face(1, 1), face(2, 2)];
    ingest(store, &b);
    assert!(ok(store.pending_images(), "pending_images").is_empty());
    assert_eq!(read_face(store, 1).content_sha256.as_ref(), Some(&content));
    assert_eq!(read_face(store, 2).content_sha256.as_ref(), Some(&content));
    assert_eq!(ok(store.stats(), "stats").images, 2);
}
