//! Ingest of one image through a face engine: index its faces, store them with the image and its
//! subject, search the collection for each new face, store the hits and the searches, adjudicate.
//! The REST API's image upload and the CLI's directory ingest both run this.

use std::collections::HashSet;

use crate::engine::{EngineError, FaceEngine, IndexFacesRequest, QualityFilter, UnindexedFace};
use crate::model::{
    Collection, CollectionId, ExternalImageId, FaceId, Image, Observation, SearchRecord,
    Similarity, SubjectId, Timestamp,
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
    /// What re-adjudicating the graph changed.
    pub adjudication: Readjudication,
}

impl Facegraph {
    /// Indexes an image's faces with `engine`, stores them with the image and its subject in one
    /// batch, searches the collection for each new face, stores the hits and the searches in a second
    /// batch, and adjudicates. An image with no face is stored as such.
    pub fn ingest_image(
        &self,
        engine: &dyn FaceEngine,
        req: &ImageIngest<'_>,
    ) -> Result<ImageIngestReport, ServiceError> {
        let staged = self.stage_image(engine, req)?;
        let adjudication = self.readjudicate()?;
        let faces = self.store.faces(&staged.face_ids)?;
        let matches = self.match_views(self.store.edges_touching(&staged.face_ids)?)?;
        Ok(ImageIngestReport {
            image: staged.image,
            faces,
            unindexed: staged.unindexed,
            matches,
            unknown_hits: staged.unknown_hits,
            adjudication,
        })
    }

    /// [`Facegraph::ingest_image`] without the adjudication: the image's faces, hits and searches are
    /// stored, and their edges wait for the next [`Facegraph::readjudicate`].
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
        let info = match engine.describe_collection(req.collection_id) {
            Ok(info) => info,
            Err(EngineError::CollectionNotFound(_)) => {
                match engine.create_collection(req.collection_id) {
                    Ok(info) => info,
                    // Another request created it in between.
                    Err(EngineError::CollectionExists(_)) => {
                        engine.describe_collection(req.collection_id)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let indexed = engine.index_faces(&IndexFacesRequest {
            collection_id: req.collection_id,
            image: req.image,
            external_image_id: req.external_image_id,
            max_faces: match req.policy {
                FacePolicy::LargestOnly => Some(1),
                FacePolicy::All => None,
            },
            quality_filter: req.quality_filter,
        })?;
        let mut image = indexed.image;
        if image.source.is_none() {
            image.source = req.source.map(str::to_owned);
        }
        let new_ids: Vec<FaceId> = indexed.faces.iter().map(|f| f.face_id.clone()).collect();
        let batch = IngestBatch {
            collections: vec![Collection {
                collection_id: req.collection_id.clone(),
                engine: engine.name().to_owned(),
                face_model_version: Some(indexed.face_model_version.clone()),
                created_at: info.created_at,
            }],
            images: vec![image.clone()],
            faces: indexed.faces,
            subjects: match (req.external_image_id, req.subject_id) {
                (Some(e), Some(s)) => vec![(e.clone(), s.clone())],
                _ => Vec::new(),
            },
            ..IngestBatch::default()
        };
        self.store.ingest(&batch)?;
        // Every face stored so far was in the collection when the searches below ran.
        let collection_seq = i64::try_from(self.store.stats()?.faces).unwrap_or(i64::MAX);

        let mut hits: Vec<Observation> = Vec::new();
        let mut searches = Vec::with_capacity(new_ids.len());
        for face_id in &new_ids {
            let found = engine.search_faces(
                req.collection_id,
                face_id,
                req.search_threshold,
                req.max_matches,
            )?;
            let searched_at = Timestamp::now();
            // A full page may have cut hits off: only the lowest returned similarity bounds the rest.
            let bound = if found.len() < req.max_matches as usize {
                Some(req.search_threshold)
            } else {
                found.iter().map(|m| m.similarity).reduce(
                    |x, y| {
                        if y.get() < x.get() {
                            y
                        } else {
                            x
                        }
                    },
                )
            };
            searches.push(SearchRecord {
                face_id: face_id.clone(),
                collection_id: req.collection_id.clone(),
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
                collection_id = %req.collection_id,
                unknown_hits,
                "the engine returned faces that the graph does not hold; they were not stored"
            );
        }
        self.store.ingest(&IngestBatch {
            observations: hits,
            searches,
            ..IngestBatch::default()
        })?;
        Ok(StagedImage {
            image,
            face_ids: new_ids,
            unindexed: indexed.unindexed,
            hits: before,
            unknown_hits,
        })
    }
}
