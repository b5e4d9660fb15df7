//! [`PrefilterEngine`]: the local face detector in front of another engine (Rekognition), so that
//! an image in which no face is found is never sent: IndexFaces is answered with the image and no
//! face (which the pipeline stores as a faceless upload), SearchFacesByImage with "no face in the
//! image", and each call saved is reported to the inner engine's ledger as avoided by the
//! pre-filter. Every other call passes through.
//!
//! The detector runs at a lower score threshold than the local engine indexes at, so that it errs
//! towards sending: a photo sent in vain costs one call, a face missed costs a customer's match.
//! Bytes that are no JPEG or PNG at all are refused as Rekognition would refuse them; a JPEG or
//! PNG the local decoder cannot read is sent anyway, for the service to judge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::calls::{AvoidedBy, Operation};
use super::local::LocalDetector;
use super::{
    CollectionInfo, EngineError, FaceEngine, FaceMatch, FacePage, HeldFace, ImageError,
    IndexFacesRequest, IndexFacesResult, SearchByImageResult,
};
use crate::model::{
    CollectionId, ContentHash, ExternalImageId, FaceId, Image, ImageId, Similarity, Timestamp,
};

/// The default minimum detection score of the pre-filter, 0-1: below the 0.8 the local engine
/// indexes at, so that doubtful faces are still sent.
pub const DEFAULT_MIN_SCORE: f32 = 0.5;

/// An engine behind the local detector.
#[derive(Debug)]
pub struct PrefilterEngine {
    inner: Arc<dyn FaceEngine>,
    detector: Arc<LocalDetector>,
    /// Each collection's face model version, asked of the inner engine once, for the answers the
    /// pre-filter gives itself.
    versions: Mutex<HashMap<CollectionId, String>>,
}

impl PrefilterEngine {
    /// `inner` behind `detector`.
    pub fn new(inner: Arc<dyn FaceEngine>, detector: Arc<LocalDetector>) -> Self {
        Self {
            inner,
            detector,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the detector finds a face in the image (and its size): `Ok(None)` when it cannot
    /// read a JPEG or PNG (the inner engine then decides), an error for bytes that are no JPEG or
    /// PNG at all, which Rekognition refuses too.
    fn has_face(
        &self,
        bytes: &[u8],
        operation: Operation,
    ) -> Result<Option<(bool, u32, u32)>, EngineError> {
        match self.detector.detect(bytes) {
            Ok(found) => Ok(Some((!found.faces.is_empty(), found.width, found.height))),
            Err(
                e @ EngineError::InvalidImage(
                    ImageError::Empty | ImageError::UnsupportedFormat { .. },
                ),
            ) => {
                self.inner.note_avoided(operation, AvoidedBy::Prefilter, 1);
                Err(e)
            }
            Err(e) => {
                tracing::debug!(error = %e, "the pre-filter cannot read the image; it is sent");
                Ok(None)
            }
        }
    }

    fn version(&self, id: &CollectionId) -> String {
        let cached = self
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(v) = cached {
            return v;
        }
        match self.inner.describe_collection(id) {
            Ok(info) => {
                self.versions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id.clone(), info.face_model_version.clone());
                info.face_model_version
            }
            // The version only labels the answer; not knowing it must not fail the upload.
            Err(_) => String::new(),
        }
    }
}

impl FaceEngine for PrefilterEngine {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn create_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        self.inner.create_collection(id)
    }

    fn list_collections(&self) -> Result<Vec<CollectionId>, EngineError> {
        self.inner.list_collections()
    }

    fn describe_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        self.inner.describe_collection(id)
    }

    fn delete_collection(&self, id: &CollectionId) -> Result<(), EngineError> {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        self.inner.delete_collection(id)
    }

    #[tracing::instrument(skip_all, fields(collection = %req.collection_id))]
    fn index_faces(&self, req: &IndexFacesRequest<'_>) -> Result<IndexFacesResult, EngineError> {
        let Some(bytes) = req.image.bytes() else {
            return self.inner.index_faces(req);
        };
        match self.has_face(bytes, Operation::IndexFaces)? {
            Some((false, width, height)) => {
                self.inner
                    .note_avoided(Operation::IndexFaces, AvoidedBy::Prefilter, 1);
                let content = ContentHash::of_bytes(bytes);
                Ok(IndexFacesResult {
                    image: Image {
                        image_id: ImageId::of_upload(&content, req.external_image_id),
                        external_image_id: req.external_image_id.cloned(),
                        content_sha256: Some(content),
                        collection_id: Some(req.collection_id.clone()),
                        pending: false,
                        source: None,
                        width: Some(width),
                        height: Some(height),
                        face_count: 0,
                        received_at: Timestamp::now(),
                    },
                    faces: Vec::new(),
                    unindexed: Vec::new(),
                    face_model_version: self.version(req.collection_id),
                })
            }
            _ => self.inner.index_faces(req),
        }
    }

    fn find_indexed(
        &self,
        collection_id: &CollectionId,
        external_image_id: Option<&ExternalImageId>,
        content: &ContentHash,
    ) -> Result<Option<IndexFacesResult>, EngineError> {
        self.inner
            .find_indexed(collection_id, external_image_id, content)
    }

    fn search_faces(
        &self,
        collection_id: &CollectionId,
        face_id: &FaceId,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        self.inner
            .search_faces(collection_id, face_id, threshold, max_faces)
    }

    fn search_held_face(
        &self,
        collection_id: &CollectionId,
        face: &HeldFace<'_>,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        // The face was indexed, so its image has one: nothing to filter.
        self.inner
            .search_held_face(collection_id, face, threshold, max_faces)
    }

    fn search_faces_by_image(
        &self,
        collection_id: &CollectionId,
        image: &[u8],
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<SearchByImageResult, EngineError> {
        if let Some((false, _, _)) = self.has_face(image, Operation::SearchFacesByImage)? {
            self.inner
                .note_avoided(Operation::SearchFacesByImage, AvoidedBy::Prefilter, 1);
            return Err(EngineError::NoFaceInImage);
        }
        self.inner
            .search_faces_by_image(collection_id, image, threshold, max_faces)
    }

    fn list_faces(
        &self,
        collection_id: &CollectionId,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<FacePage, EngineError> {
        self.inner
            .list_faces(collection_id, next_token, max_results)
    }

    fn delete_faces(
        &self,
        collection_id: &CollectionId,
        face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError> {
        self.inner.delete_faces(collection_id, face_ids)
    }

    fn note_avoided(&self, operation: Operation, reason: AvoidedBy, calls: u64) {
        self.inner.note_avoided(operation, reason, calls);
    }
}
