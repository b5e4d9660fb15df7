//! Ingest of one image through a face engine in two stages: the index stage records the upload,
//! indexes its faces and stores them with the image and its subject; the search stage searches the
//! collection for each new face and stores the hits and the searches in the transaction that
//! completes the upload. `stage_image` runs both (the REST API's image upload and the CLI's
//! directory ingest), the stream runs each as a consumer of its own; and completing the uploads a
//! crash interrupted.

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
use crate::store::EdgeRecord;
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
    /// When the upload was received, when not now (a backfill replays uploads of earlier days).
    pub received_at: Option<Timestamp>,
    /// The SHA-256 of `image`, when the caller computed it already (the stream derives a
    /// message's key from it); computed here otherwise.
    pub content: Option<&'a ContentHash>,
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
            received_at: None,
            content: None,
        }
    }
}

/// An upload after the index stage: recorded, its faces indexed and stored, and (unless it was a
/// duplicate) still pending until the search stage completes it.
#[derive(Clone, Debug)]
pub struct IndexedUpload {
    /// The upload as stored.
    pub image: Image,
    /// The ids of the faces indexed from it, largest first (none for a duplicate).
    pub face_ids: Vec<FaceId>,
    /// Faces detected but not indexed, and why.
    pub unindexed: Vec<UnindexedFace>,
    /// Whether the upload was complete before: the same bytes under the same external image id,
    /// not processed again.
    pub duplicate: bool,
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
    /// The hits stored (on faces the graph holds), for a stage that passes them on.
    pub stored_hits: Vec<Observation>,
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

    /// [`Facegraph::ingest_image`] without the adjudication: the index stage
    /// ([`Facegraph::index_upload`]) then the search stage ([`Facegraph::search_upload`]); the
    /// image's faces, hits and searches are stored, and their edges wait for the next
    /// adjudication.
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
        let indexed = self.index_upload(engine, req)?;
        if indexed.duplicate {
            return Ok(StagedImage {
                image: indexed.image,
                face_ids: Vec::new(),
                unindexed: Vec::new(),
                hits: 0,
                unknown_hits: 0,
                duplicate: true,
                stored_hits: Vec::new(),
            });
        }
        let search = SearchOptions {
            threshold: req.search_threshold,
            max_matches: req.max_matches,
        };
        self.search_upload(engine, &indexed, Some(req.image), search)
    }

    /// The index stage: records the upload (pending) before the engine sees it, indexes its faces
    /// and stores them with the image and its subject. A duplicate of a complete upload changes
    /// nothing; an upload left pending (a crash, or the index stage of a stream whose search stage
    /// has not run yet) is recorded again and the engine answers with the faces it indexed then.
    /// An image the engine refuses is forgotten and its error returned.
    pub fn index_upload(
        &self,
        engine: &dyn FaceEngine,
        req: &ImageIngest<'_>,
    ) -> Result<IndexedUpload, ServiceError> {
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
        let content = req
            .content
            .cloned()
            .unwrap_or_else(|| ContentHash::of_bytes(req.image));
        let image_id = ImageId::of_upload(&content, req.external_image_id);
        if let Some(stored) = self.store.images(std::slice::from_ref(&image_id))?.pop() {
            if !stored.pending {
                // A duplicate is never sent: an engine that keeps a bill counts the call saved.
                engine.note_avoided(Operation::IndexFaces, AvoidedBy::Duplicate, 1);
                return Ok(IndexedUpload {
                    image: stored,
                    face_ids: Vec::new(),
                    unindexed: Vec::new(),
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
                return self.store_indexed(stored, indexed);
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
            received_at: req.received_at.unwrap_or_else(Timestamp::now),
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
        self.store_indexed(upload, indexed)
    }

    /// The upload `image_id` as the index stage left it, with the faces it reported, for a search
    /// stage that receives the upload by id; `None` when the store does not hold the upload.
    pub fn indexed_upload(
        &self,
        image_id: &ImageId,
        face_ids: Vec<FaceId>,
    ) -> Result<Option<IndexedUpload>, ServiceError> {
        Ok(self
            .store
            .images(std::slice::from_ref(image_id))?
            .pop()
            .map(|image| IndexedUpload {
                duplicate: !image.pending,
                image,
                face_ids,
                unindexed: Vec::new(),
            }))
    }

    /// The search stage: searches the collection for each face of an indexed upload and stores
    /// the hits and the searches in the transaction that completes the upload. For an upload that
    /// is complete already (a search stage that runs again after a crash), nothing is searched and
    /// the hits stored then are returned. `bytes` are the upload's, when the caller has them: an
    /// engine that splits a collection into several compares a face with the collections that do
    /// not hold it by them.
    pub fn search_upload(
        &self,
        engine: &dyn FaceEngine,
        upload: &IndexedUpload,
        bytes: Option<&[u8]>,
        search: SearchOptions,
    ) -> Result<StagedImage, ServiceError> {
        if !upload.image.pending {
            let stored_hits = self
                .store
                .edges_touching(&upload.face_ids)?
                .into_iter()
                .flat_map(|e| observations_of(&e, &upload.face_ids))
                .collect();
            return Ok(StagedImage {
                image: upload.image.clone(),
                face_ids: upload.face_ids.clone(),
                unindexed: upload.unindexed.clone(),
                hits: 0,
                unknown_hits: 0,
                duplicate: true,
                stored_hits,
            });
        }
        self.search_and_complete(engine, upload, bytes, search)
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
        let indexed = self.store_indexed(upload, indexed)?;
        self.search_and_complete(engine, &indexed, bytes, search)
    }

    /// Stores the faces the engine indexed for a pending upload, with the image's size and face
    /// count; the upload stays pending.
    fn store_indexed(
        &self,
        upload: Image,
        indexed: crate::engine::IndexFacesResult,
    ) -> Result<IndexedUpload, ServiceError> {
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
        let face_ids: Vec<FaceId> = faces.iter().map(|f| f.face_id.clone()).collect();
        self.store.ingest(&IngestBatch {
            images: vec![image.clone()],
            faces,
            ..IngestBatch::default()
        })?;
        crash_point("upload.after_faces_commit");
        Ok(IndexedUpload {
            image,
            face_ids,
            unindexed: indexed.unindexed,
            duplicate: false,
        })
    }

    /// Searches each face of a pending upload and stores the hits and searches in the
    /// transaction that completes it.
    fn search_and_complete(
        &self,
        engine: &dyn FaceEngine,
        upload: &IndexedUpload,
        bytes: Option<&[u8]>,
        search: SearchOptions,
    ) -> Result<StagedImage, ServiceError> {
        let image = upload.image.clone();
        let collection_id = image
            .collection_id
            .clone()
            .ok_or_else(|| ServiceError::Invalid("an upload without a collection".to_owned()))?;
        let new_ids = upload.face_ids.clone();
        let stored = self.store.faces(&new_ids)?;
        // Every face stored up to this upload's own was in the collection when the searches below
        // ran. Read from the faces stored rather than by counting every face, which would grow
        // with the graph.
        let collection_seq = stored.iter().map(|f| f.seq).max().unwrap_or(0);
        // Where the engine holds each face (the upload's collection, or one of its family), and
        // whether the image stands for it: searched by image, an image is its largest face.
        let homes: Vec<(CollectionId, bool)> = new_ids
            .iter()
            .map(|id| {
                stored
                    .iter()
                    .find(|f| &f.face.face_id == id)
                    .map_or((collection_id.clone(), false), |f| {
                        (f.face.collection_id.clone(), f.face.is_largest)
                    })
            })
            .collect();
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
            observations: hits.clone(),
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
            unindexed: upload.unindexed.clone(),
            hits: before,
            unknown_hits,
            duplicate: false,
            stored_hits: hits,
        })
    }
}

/// The search hits an edge holds for the faces in `searched`: one observation per direction
/// that was searched from one of them.
fn observations_of(e: &EdgeRecord, searched: &[FaceId]) -> Vec<Observation> {
    let edge = &e.edge;
    let (a, b) = (edge.pair.a(), edge.pair.b());
    let mut out = Vec::new();
    for (from, to, similarity) in [(a, b, edge.similarity_ab), (b, a, edge.similarity_ba)] {
        if let Some(similarity) = similarity.filter(|_| searched.contains(from)) {
            out.push(Observation {
                searched: from.clone(),
                found: to.clone(),
                similarity,
                engine: edge.engine.clone(),
                searched_at: edge.searched_at,
            });
        }
    }
    out
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
