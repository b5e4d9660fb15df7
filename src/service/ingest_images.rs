//! Ingest of one image through a face engine: record the upload, index its faces, store them with
//! the image and its subject, search the collection for each new face, store the hits and the
//! searches, adjudicate; and complete the uploads a crash interrupted. The REST API's image upload
//! and the CLI's directory ingest both run this.

use std::collections::HashSet;

use crate::engine::calls::{AvoidedBy, Operation};
use crate::engine::{
    EngineError, FaceEngine, HeldFace, ImageSource, IndexFacesRequest, QualityFilter, UnindexedFace,
};
use crate::faults::crash_point;
use crate::model::{
    Collection, CollectionId, ContentHash, ExternalImageId, FaceId, Image, ImageId, Observation,
    SearchRecord, Similarity, SubjectId, Timestamp,
};
use crate::store::{FaceRecord, IngestBatch};

use super::{Facegraph, MatchView, Readjudication, ServiceError};

/// Which detected faces of an image are indexed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FacePolicy {
    /// Only the largest face (`MaxFaces = 1`): a selfie is about one person, and faces in the
    /// background are other people who did not onboard.
    #[default]
    LargestOnly,
    /// Every face that passes the quality filter.
    All,
}

/// The default similarity threshold of the searches that follow indexing.
pub const DEFAULT_SEARCH_THRESHOLD: f64 = 80.0;

/// The default maximum number of hits per search.
pub const DEFAULT_MAX_MATCHES: u32 = 100;

/// One image to ingest and how.
#[derive(Clone, Copy, Debug)]
pub struct ImageIngest<'a> {
    /// The collection to index into; created in the engine when missing.
    pub collection_id: &'a CollectionId,
    /// The image's bytes (JPEG or PNG).
    pub image: &'a [u8],
    /// The caller's name for the image.
    pub external_image_id: Option<&'a ExternalImageId>,
    /// The customer behind the image; needs an external image id to link by.
    pub subject_id: Option<&'a SubjectId>,
    /// Where the bytes came from (a path, `api`), recorded on the image.
    pub source: Option<&'a str>,
    /// Which faces to index.
    pub policy: FacePolicy,
    /// Which faces are too poor to index.
    pub quality_filter: QualityFilter,
    /// Hits below this similarity are not returned by the searches.
    pub search_threshold: Similarity,
    /// At most this many hits per search.
    pub max_matches: u32,
}

impl<'a> ImageIngest<'a> {
    /// An ingest of `image` into `collection_id` with the defaults: largest face only, the engine's
    /// default quality filter, threshold 80, at most 100 hits per search.
    pub fn new(collection_id: &'a CollectionId, image: &'a [u8]) -> Self {
        Self {
            collection_id,
            image,
            external_image_id: None,
            subject_id: None,
            source: None,
            policy: FacePolicy::default(),
            quality_filter: QualityFilter::default(),
            search_threshold: Similarity::new(DEFAULT_SEARCH_THRESHOLD)
                .unwrap_or_else(|_| unreachable!("80 is in range")),
            max_matches: DEFAULT_MAX_MATCHES,
        }
    }
}

/// An image whose faces are indexed, searched and stored, but not yet adjudicated: a directory
/// ingest stages every image, then adjudicates the graph once.
#[derive(Clone, Debug)]
pub struct StagedImage {
    /// The image as stored.
    pub image: Image,
    /// The ids of the faces indexed from it, largest first.
    pub face_ids: Vec<FaceId>,
    /// Faces detected but not indexed, and why.
    pub unindexed: Vec<UnindexedFace>,
    /// How many hits the searches of its faces returned (stored or not).
    pub hits: usize,
    /// Hits on faces that the engine holds but the graph does not (indexed outside facegraph); they
    /// are not stored.
    pub unknown_hits: usize,
    /// Whether the upload was complete before: the same bytes under the same external image id,
    /// not processed again.
    pub duplicate: bool,
}

/// What ingesting one image did.
#[derive(Clone, Debug)]
pub struct ImageIngestReport {
    /// The image as stored.
    pub image: Image,
    /// The faces indexed from it, as stored.
    pub faces: Vec<FaceRecord>,
    /// Faces detected but not indexed, and why.
    pub unindexed: Vec<UnindexedFace>,
    /// Every match of the new faces, with its verdict after adjudication.
    pub matches: Vec<MatchView>,
    /// Hits on faces that the engine holds but the graph does not (indexed outside facegraph); they
    /// are not stored.
    pub unknown_hits: usize,
    /// Whether the image was a duplicate of a complete upload (nothing was indexed).
    pub duplicate: bool,
    /// What re-adjudicating the graph changed.
    pub adjudication: Readjudication,
}

/// How the faces of an upload are searched.
#[derive(Clone, Copy, Debug)]
pub struct SearchOptions {
    /// Hits below this similarity are not returned.
    pub threshold: Similarity,
    /// At most this many hits per search.
    pub max_matches: u32,
}

/// What completing the uploads that a crash interrupted did.
#[derive(Debug, Default)]
pub struct ResumeReport {
    /// Uploads completed from what the engine had indexed (nothing analysed again).
    pub completed: Vec<StagedImage>,
    /// Uploads the engine has no trace of (the crash came before it indexed them): they stay
    /// pending until their bytes are sent again.
    pub unresolved: Vec<Image>,
}

impl Facegraph {
    /// Indexes an image's faces with `engine`, stores them with the image and its subject, searches
    /// the collection for each new face, stores the hits and the searches, and adjudicates. An
    /// image with no face is stored as such; a duplicate of a complete upload changes nothing.
    pub fn ingest_image(
        &self,
        engine: &dyn FaceEngine,
        req: &ImageIngest<'_>,
    ) -> Result<ImageIngestReport, ServiceError> {
        let staged = self.stage_image(engine, req)?;
        let adjudication = self.adjudicate_changes()?;
        let faces = self.store.faces(&staged.face_ids)?;
        let matches = self.match_views(self.store.edges_touching(&staged.face_ids)?)?;
        Ok(ImageIngestReport {
            image: staged.image,
            faces,
            unindexed: staged.unindexed,
            matches,
            unknown_hits: staged.unknown_hits,
            duplicate: staged.duplicate,
            adjudication,
        })
    }

    /// [`Facegraph::ingest_image`] without the adjudication: the image's faces, hits and searches are
    /// stored, and their edges wait for the next [`Facegraph::readjudicate`].
    ///
    /// Crash safety: the upload is recorded (pending) before the engine sees it, its faces are
    /// stored next, and its hits and searches last, in the transaction that completes it. A crash
    /// anywhere leaves a pending upload that [`Facegraph::resume_uploads`] or sending the same bytes
    /// again completes, without analysing anything twice (the engine returns what it indexed).
    #[tracing::instrument(skip_all, fields(collection_id = %req.collection_id, engine = engine.name()))]
    pub fn stage_image(
        &self,
        engine: &dyn FaceEngine,
        req: &ImageIngest<'_>,
    ) -> Result<StagedImage, ServiceError> {
        if req.subject_id.is_some() && req.external_image_id.is_none() {
            return Err(ServiceError::Invalid(
                "a subject is linked to an image by its external image id: give one".to_owned(),
            ));
        }
        if req.max_matches == 0 {
            return Err(ServiceError::Invalid(
                "the maximum number of matches must be at least 1".to_owned(),
            ));
        }
        let content = ContentHash::of_bytes(req.image);
        let image_id = ImageId::of_upload(&content, req.external_image_id);
        let search = SearchOptions {
            threshold: req.search_threshold,
            max_matches: req.max_matches,
        };
        if let Some(stored) = self.store.images(std::slice::from_ref(&image_id))?.pop() {
            if !stored.pending {
                // A duplicate is never sent: an engine that keeps a bill counts the call saved.
                engine.note_avoided(Operation::IndexFaces, AvoidedBy::Duplicate, 1);
                return Ok(StagedImage {
                    image: stored,
                    face_ids: Vec::new(),
                    unindexed: Vec::new(),
                    hits: 0,
                    unknown_hits: 0,
                    duplicate: true,
                });
            }
            // An upload a crash interrupted, sent again: what the engine indexed for it then is
            // its answer. An engine that does not recognise a repeat (Rekognition indexes the same
            // bytes again as new faces) would otherwise double its faces.
            if let Some(indexed) =
                engine.find_indexed(req.collection_id, req.external_image_id, &content)?
            {
                tracing::info!(image_id = %stored.image_id, "completing an interrupted upload");
                return self.complete_upload(engine, stored, indexed, Some(req.image), search);
            }
        }
        let collection = ensure_collection(engine, req.collection_id)?;
        let upload = Image {
            image_id,
            external_image_id: req.external_image_id.cloned(),
            content_sha256: Some(content),
            collection_id: Some(req.collection_id.clone()),
            pending: true,
            source: req.source.map(str::to_owned),
            width: None,
            height: None,
            face_count: 0,
            received_at: Timestamp::now(),
        };
        crash_point("upload.before_record");
        self.store.ingest(&IngestBatch {
            collections: vec![collection],
            images: vec![upload.clone()],
            subjects: match (req.external_image_id, req.subject_id) {
                (Some(e), Some(s)) => vec![(e.clone(), s.clone())],
                _ => Vec::new(),
            },
            ..IngestBatch::default()
        })?;
        crash_point("upload.before_log_append");
        let indexed = match engine.index_faces(&IndexFacesRequest {
            collection_id: req.collection_id,
            image: ImageSource::Bytes(req.image),
            external_image_id: req.external_image_id,
            subject_id: req.subject_id,
            max_faces: match req.policy {
                FacePolicy::LargestOnly => Some(1),
                FacePolicy::All => None,
            },
            quality_filter: req.quality_filter,
        }) {
            Ok(indexed) => indexed,
            // A refusal is final: the bytes are not an image the engine takes, and sending them
            // again will not change that. Only a failure of the engine itself stays pending.
            Err(e @ (EngineError::InvalidImage(_) | EngineError::InvalidParameter(_))) => {
                self.store.forget_pending_image(&upload.image_id)?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        crash_point("upload.after_log_append");
        self.complete_upload(engine, upload, indexed, Some(req.image), search)
    }

    /// Completes the uploads that a crash left pending, from what the engine indexed for them
    /// (read back, never analysed again): their faces are stored, searched, and the uploads
    /// completed. An upload the engine has no trace of stays pending until its bytes come again.
    /// Only the data directory's writer runs this; faces the engine holds without a recorded
    /// upload (indexed outside facegraph) are left alone.
    pub fn resume_uploads(
        &self,
        engine: &dyn FaceEngine,
        search: SearchOptions,
    ) -> Result<ResumeReport, ServiceError> {
        let mut report = ResumeReport::default();
        for upload in self.store.pending_images()? {
            let (Some(collection), Some(content)) = (&upload.collection_id, &upload.content_sha256)
            else {
                report.unresolved.push(upload);
                continue;
            };
            match engine.find_indexed(collection, upload.external_image_id.as_ref(), content)? {
                Some(indexed) => {
                    tracing::info!(image_id = %upload.image_id, "completing an interrupted upload");
                    let staged = self.complete_upload(engine, upload, indexed, None, search)?;
                    report.completed.push(staged);
                }
                None => report.unresolved.push(upload),
            }
        }
        Ok(report)
    }

    /// Stores what the engine indexed for an upload, searches its faces, and stores the hits and
    /// searches in the transaction that completes the upload. `bytes` are the upload's, when the
    /// caller has them: an engine that splits a collection into several compares a face with the
    /// collections that do not hold it by them.
    fn complete_upload(
        &self,
        engine: &dyn FaceEngine,
        upload: Image,
        indexed: crate::engine::IndexFacesResult,
        bytes: Option<&[u8]>,
        search: SearchOptions,
    ) -> Result<StagedImage, ServiceError> {
        let collection_id = upload
            .collection_id
            .clone()
            .ok_or_else(|| ServiceError::Invalid("an upload without a collection".to_owned()))?;
        // The upload's id is facegraph's, whatever the engine calls the image.
        let image = Image {
            width: indexed.image.width,
            height: indexed.image.height,
            face_count: indexed.image.face_count,
            ..upload
        };
        let mut faces = indexed.faces;
        for f in &mut faces {
            f.image_id = image.image_id.clone();
        }
        let new_ids: Vec<FaceId> = faces.iter().map(|f| f.face_id.clone()).collect();
        // Where the engine holds each face (the upload's collection, or one of its family), and
        // whether the image stands for it: searched by image, an image is its largest face.
        let homes: Vec<(CollectionId, bool)> = faces
            .iter()
            .map(|f| (f.collection_id.clone(), f.is_largest))
            .collect();
        self.store.ingest(&IngestBatch {
            images: vec![image.clone()],
            faces,
            ..IngestBatch::default()
        })?;
        crash_point("upload.after_faces_commit");
        // Every face stored up to this upload's own was in the collection when the searches below
        // ran. Read from the faces just stored rather than by counting every face, which would
        // grow with the graph.
        let collection_seq = self
            .store
            .faces(&new_ids)?
            .iter()
            .map(|f| f.seq)
            .max()
            .unwrap_or(0);
        let mut hits: Vec<Observation> = Vec::new();
        let mut searches = Vec::with_capacity(new_ids.len());
        for (face_id, (home, largest)) in new_ids.iter().zip(&homes) {
            let held = HeldFace {
                face_id,
                collection_id: home,
                image: bytes.filter(|_| *largest),
            };
            let found = engine.search_held_face(
                &collection_id,
                &held,
                search.threshold,
                search.max_matches,
            )?;
            let searched_at = Timestamp::now();
            // A full page may have cut hits off: only the lowest returned similarity bounds the rest.
            let bound = if found.len() < search.max_matches as usize {
                Some(search.threshold)
            } else {
                found
                    .iter()
                    .map(|m| m.similarity)
                    .min_by(|x, y| x.get().total_cmp(&y.get()))
            };
            searches.push(SearchRecord {
                face_id: face_id.clone(),
                collection_id: collection_id.clone(),
                bound,
                collection_seq,
                searched_at,
            });
            hits.extend(found.into_iter().map(|m| Observation {
                searched: face_id.clone(),
                found: m.face_id,
                similarity: m.similarity,
                engine: engine.name().to_owned(),
                searched_at,
            }));
        }
        let mut found_ids: Vec<FaceId> = hits.iter().map(|o| o.found.clone()).collect();
        found_ids.sort();
        found_ids.dedup();
        let known: HashSet<FaceId> = self
            .store
            .faces(&found_ids)?
            .into_iter()
            .map(|f| f.face.face_id)
            .collect();
        let before = hits.len();
        hits.retain(|o| known.contains(&o.found));
        let unknown_hits = before - hits.len();
        if unknown_hits > 0 {
            tracing::warn!(
                collection_id = %collection_id,
                unknown_hits,
                "the engine returned faces that the graph does not hold; they were not stored"
            );
        }
        self.store.ingest(&IngestBatch {
            observations: hits,
            searches,
            completed: vec![image.image_id.clone()],
            ..IngestBatch::default()
        })?;
        crash_point("upload.after_hits_commit");
        Ok(StagedImage {
            image: Image {
                pending: false,
                ..image
            },
            face_ids: new_ids,
            unindexed: indexed.unindexed,
            hits: before,
            unknown_hits,
            duplicate: false,
        })
    }
}

/// The collection's record, creating the collection in the engine when it is missing.
fn ensure_collection(
    engine: &dyn FaceEngine,
    id: &CollectionId,
) -> Result<Collection, ServiceError> {
    let info = match engine.describe_collection(id) {
        Ok(info) => info,
        Err(EngineError::CollectionNotFound(_)) => match engine.create_collection(id) {
            Ok(info) => info,
            // Another request created it in between.
            Err(EngineError::CollectionExists(_)) => engine.describe_collection(id)?,
            Err(e) => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    Ok(Collection {
        collection_id: id.clone(),
        engine: engine.name().to_owned(),
        face_model_version: Some(info.face_model_version),
        created_at: info.created_at,
    })
}
