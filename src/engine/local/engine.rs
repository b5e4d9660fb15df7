//! [`LocalEngine`]: the `FaceEngine` port implemented over a [`FaceAnalyzer`] (the models) and the
//! collections on disk, with Rekognition's semantics for MaxFaces, QualityFilter, thresholds and
//! pagination, and one addition: indexing the same image bytes with the same external image id
//! again returns the faces already indexed instead of adding duplicates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::calibration::{cosine_for_similarity, similarity_from_cosine};
use super::collections::{
    self, Appended, Collection, FaceKey, ImageDoc, ImageKey, Manifest, MatchRow, NewFace, NewImage,
    StoreError, StoredFace, StoredImage,
};
use super::{AnalyzedFace, FaceAnalyzer};
use crate::engine::unindexed_of;
use crate::engine::{
    CollectionInfo, EngineError, FaceEngine, FaceMatch, FacePage, IndexFacesRequest,
    IndexFacesResult, QualityFilter, SearchByImageResult, UnindexedReason,
};
use crate::model::{
    BoundingBox, CollectionId, Confidence, ContentHash, ExternalImageId, Face, FaceAttributes,
    FaceId, GenderValue, Image, ImageId, Similarity, Timestamp,
};
use crate::rekognition::{index_faces_to_domain, wire};

/// The engine's name, recorded on collections and edges.
pub const ENGINE_NAME: &str = "local";
/// At most this many faces are taken from one image, as Rekognition's IndexFaces does.
pub const MAX_FACES_PER_IMAGE: usize = 100;
/// The largest `MaxFaces` of a search and `MaxResults` of ListFaces, as in Rekognition.
pub const MAX_RESULTS: u32 = 4096;
/// How far below the threshold's cosine the index is asked to look, so that rounding of the
/// similarity never hides a face at the threshold; hits are filtered on their similarity after.
const COSINE_SLACK: f32 = 1e-4;

/// The bar a face must clear under a quality filter. Rekognition does not publish its thresholds;
/// these follow its documented intent (LOW filters only the worst faces, AUTO is MEDIUM) on the
/// local analyzer's measures. `docs/local-collections.md` lists them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityBar {
    /// Least detection confidence (0-100); below: `LOW_CONFIDENCE`.
    pub min_confidence: f64,
    /// Least width and height of the face box in pixels; below: `SMALL_BOUNDING_BOX`.
    pub min_face_pixels: f32,
    /// Least brightness (0-100); below: `LOW_BRIGHTNESS`.
    pub min_brightness: f32,
    /// Least sharpness (0-100); below: `LOW_SHARPNESS`.
    pub min_sharpness: f32,
    /// Largest absolute yaw in degrees; beyond: `EXTREME_POSE`.
    pub max_yaw: f32,
    /// Largest absolute pitch in degrees; beyond: `EXTREME_POSE`.
    pub max_pitch: f32,
    /// Least mean of brightness and sharpness; below: `LOW_FACE_QUALITY` (several measures that
    /// each pass, together too poor).
    pub min_overall: f32,
}

impl QualityBar {
    /// The bar of a filter; `None` for `NONE`, which indexes every detected face.
    pub fn of(filter: QualityFilter) -> Option<Self> {
        match filter {
            QualityFilter::None => None,
            QualityFilter::Low => Some(Self {
                min_confidence: 50.0,
                min_face_pixels: 20.0,
                min_brightness: 10.0,
                min_sharpness: 5.0,
                max_yaw: 75.0,
                max_pitch: 60.0,
                min_overall: 10.0,
            }),
            QualityFilter::Auto | QualityFilter::Medium => Some(Self {
                min_confidence: 70.0,
                min_face_pixels: 40.0,
                min_brightness: 20.0,
                min_sharpness: 10.0,
                max_yaw: 60.0,
                max_pitch: 45.0,
                min_overall: 25.0,
            }),
            QualityFilter::High => Some(Self {
                min_confidence: 90.0,
                min_face_pixels: 64.0,
                min_brightness: 35.0,
                min_sharpness: 25.0,
                max_yaw: 45.0,
                max_pitch: 30.0,
                min_overall: 40.0,
            }),
        }
    }

    /// Why a face of an image of `width` x `height` pixels fails this bar; empty when it passes.
    /// Measures the analyzer did not report are not held against the face.
    pub fn reasons(&self, face: &AnalyzedFace, width: u32, height: u32) -> Vec<UnindexedReason> {
        let mut reasons = Vec::new();
        if face.confidence.get() < self.min_confidence {
            reasons.push(UnindexedReason::LowConfidence);
        }
        let (w, h) = (
            face.bbox.width * width as f32,
            face.bbox.height * height as f32,
        );
        if w.min(h) < self.min_face_pixels {
            reasons.push(UnindexedReason::SmallBoundingBox);
        }
        if let Some(q) = face.attributes.quality {
            if q.brightness < self.min_brightness {
                reasons.push(UnindexedReason::LowBrightness);
            }
            if q.sharpness < self.min_sharpness {
                reasons.push(UnindexedReason::LowSharpness);
            }
        }
        if let Some(p) = face.attributes.pose {
            if p.yaw.abs() > self.max_yaw || p.pitch.abs() > self.max_pitch {
                reasons.push(UnindexedReason::ExtremePose);
            }
        }
        if let Some(q) = face.attributes.quality {
            if (q.brightness + q.sharpness) / 2.0 < self.min_overall {
                reasons.push(UnindexedReason::LowFaceQuality);
            }
        }
        reasons
    }
}

/// The local face engine: collections under `<data_dir>/collections/`, faces from an analyzer.
#[derive(Debug)]
pub struct LocalEngine {
    root: PathBuf,
    analyzer: Arc<dyn FaceAnalyzer>,
    /// Collections opened so far; each is opened (its log replayed) on first use.
    open: Mutex<HashMap<CollectionId, Arc<Collection>>>,
    search_threads: usize,
}

impl LocalEngine {
    /// An engine over the collections under `<data_dir>/collections/`, which is created if missing;
    /// leftovers of interrupted creations and deletions are removed. Collections are opened lazily.
    /// Searches use every available core.
    pub fn open(data_dir: &Path, analyzer: Arc<dyn FaceAnalyzer>) -> Result<Self, EngineError> {
        let root = data_dir.join("collections");
        std::fs::create_dir_all(&root).map_err(|e| {
            backend("open the data directory")(StoreError::Io {
                action: "create directory",
                path: root.clone(),
                source: e,
            })
        })?;
        collections::clean_leftovers(&root).map_err(backend("open the data directory"))?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            root,
            analyzer,
            open: Mutex::new(HashMap::new()),
            search_threads: threads,
        })
    }

    /// Uses `threads` threads per search (at least one) for collections opened from now on.
    pub fn with_search_threads(mut self, threads: usize) -> Self {
        self.search_threads = threads.max(1);
        self
    }

    /// Rewrites a collection's log without its deleted faces (also run automatically after many
    /// deletes).
    pub fn compact_collection(&self, id: &CollectionId) -> Result<(), EngineError> {
        self.collection(id)?
            .compact()
            .map_err(backend("compact the collection"))
    }

    /// The collection's log size in bytes, for operators and benchmarks.
    pub fn collection_log_bytes(&self, id: &CollectionId) -> Result<u64, EngineError> {
        self.collection(id)?
            .log_bytes()
            .map_err(backend("describe the collection"))
    }

    fn collection(&self, id: &CollectionId) -> Result<Arc<Collection>, EngineError> {
        let mut open = self.lock_open()?;
        if let Some(c) = open.get(id) {
            return Ok(Arc::clone(c));
        }
        if !self
            .root
            .join(id.as_str())
            .join(collections::MANIFEST)
            .is_file()
        {
            return Err(EngineError::CollectionNotFound(id.clone()));
        }
        let c = Arc::new(
            Collection::open(&self.root, id, self.search_threads)
                .map_err(backend("open the collection"))?,
        );
        open.insert(id.clone(), Arc::clone(&c));
        Ok(c)
    }

    fn lock_open(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<CollectionId, Arc<Collection>>>, EngineError>
    {
        self.open.lock().map_err(|_| EngineError::Backend {
            operation: "open a collection",
            source: "a thread panicked while opening a collection".into(),
        })
    }

    fn check_models(&self, c: &Collection) -> Result<(), EngineError> {
        let m = c.manifest();
        let version = self.analyzer.model_version();
        if m.face_model_version != version
            || m.embedding_dim as usize != self.analyzer.embedding_dim()
        {
            return Err(EngineError::InvalidParameter(format!(
                "collection {} holds faces of face model version {} ({} dimensions); the engine runs {} \
                 ({} dimensions), whose embeddings cannot be compared with them",
                c.id(),
                m.face_model_version,
                m.embedding_dim,
                version,
                self.analyzer.embedding_dim()
            )));
        }
        Ok(())
    }

    fn info(c: &Collection) -> Result<CollectionInfo, EngineError> {
        Ok(CollectionInfo {
            collection_id: c.id().clone(),
            face_count: c.face_count().map_err(backend("describe the collection"))?,
            face_model_version: c.manifest().face_model_version.clone(),
            created_at: Timestamp::from_millis(c.manifest().created_at_ms),
        })
    }

    fn matches(
        &self,
        rows: Vec<MatchRow>,
        threshold: Similarity,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let similarity = similarity_from_cosine(row.score);
            if similarity.get() < threshold.get() {
                continue;
            }
            out.push(FaceMatch {
                face_id: face_id_of(&row.id)?,
                similarity,
                image_id: upload_id_of(&row.image_id, row.external_image_id.as_deref())?,
                external_image_id: external_id_of(row.external_image_id.as_deref())?,
            });
        }
        Ok(out)
    }

    fn fresh_index(
        &self,
        c: &Collection,
        req: &IndexFacesRequest<'_>,
        image_key: ImageKey,
    ) -> Result<IndexFacesResult, EngineError> {
        let analysis = self.analyzer.analyze(image_bytes(req)?)?;
        self.check_models(c)?;
        let (width, height) = (analysis.width, analysis.height);
        let mut faces = analysis.faces;
        // Largest first, as Rekognition returns them; the sort is stable for equal boxes.
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        let bar = QualityBar::of(req.quality_filter);
        let max = req
            .max_faces
            .map_or(MAX_FACES_PER_IMAGE, |m| m as usize)
            .min(MAX_FACES_PER_IMAGE);
        let mut indexed: Vec<AnalyzedFace> = Vec::new();
        let mut unindexed: Vec<(AnalyzedFace, Vec<UnindexedReason>)> = Vec::new();
        for face in faces {
            let reasons = bar
                .map(|b| b.reasons(&face, width, height))
                .unwrap_or_default();
            if !reasons.is_empty() {
                unindexed.push((face, reasons));
            } else if indexed.len() < max {
                indexed.push(face);
            } else {
                unindexed.push((face, vec![UnindexedReason::ExceedsMaxFaces]));
            }
        }
        let image_hex = upload_id_of(
            &image_key,
            req.external_image_id.map(ExternalImageId::as_str),
        )?
        .to_string();
        let version = self.analyzer.model_version().to_owned();
        let ext = req.external_image_id.map(|e| e.as_str().to_owned());
        let mut records = Vec::with_capacity(indexed.len());
        let mut new_faces = Vec::with_capacity(indexed.len());
        for (i, face) in indexed.into_iter().enumerate() {
            let id = *uuid::Uuid::new_v4().as_bytes();
            records.push(face_record(
                &id,
                &image_hex,
                ext.as_deref(),
                &face,
                (width, height),
                &version,
            ));
            new_faces.push(NewFace {
                id,
                largest: i == 0,
                embedding: face.embedding,
            });
        }
        let raw_records = records
            .iter()
            .map(serde_json::value::to_raw_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Backend {
                operation: "encode a face record",
                source: Box::new(e),
            })?;
        let wire_unindexed: Vec<wire::UnindexedFace> = unindexed
            .iter()
            .map(|(face, reasons)| wire::UnindexedFace {
                reasons: Some(
                    reasons
                        .iter()
                        .map(|r| wire::Reason::from_wire(r.as_str()))
                        .collect(),
                ),
                face_detail: Some(face_detail(face, width, height)),
            })
            .collect();
        let indexed_at = Timestamp::now();
        let detected = u32::try_from(new_faces.len() + wire_unindexed.len()).unwrap_or(u32::MAX);
        let new_image = NewImage {
            image_id: image_key,
            external_image_id: ext,
            indexed_at_ms: indexed_at.millis(),
            faces: new_faces,
            doc: ImageDoc {
                width,
                height,
                detected,
                face_records: raw_records,
                unindexed_faces: wire_unindexed,
            },
        };
        // The domain faces are converted from the records exactly as a saved response would be.
        let response = wire::IndexFacesResponse {
            face_records: Some(records),
            ..Default::default()
        };
        let converted = index_faces_to_domain(&response, c.id(), indexed_at).map_err(|e| {
            EngineError::Backend {
                operation: "convert the analyzer's faces",
                source: Box::new(e),
            }
        })?;
        let result = IndexFacesResult {
            image: image_of(
                &new_image.doc,
                image_key,
                c.id(),
                req.external_image_id,
                indexed_at,
            )?,
            faces: converted.faces,
            unindexed: new_image
                .doc
                .unindexed_faces
                .iter()
                .map(unindexed_of)
                .collect(),
            face_model_version: version,
        };
        match c
            .append_image(new_image)
            .map_err(backend("index the faces"))?
        {
            Appended::Added => Ok(result),
            // Another call indexed the same image meanwhile: its faces are the answer.
            Appended::Existing(stored) => {
                self.stored_result(c, stored, image_key, req.external_image_id)
            }
        }
    }

    fn stored_result(
        &self,
        c: &Collection,
        stored: StoredImage,
        image_key: ImageKey,
        external_image_id: Option<&ExternalImageId>,
    ) -> Result<IndexFacesResult, EngineError> {
        let indexed_at = Timestamp::from_millis(stored.indexed_at_ms);
        let faces = stored
            .faces
            .iter()
            .map(|f| face_of(c.id(), f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IndexFacesResult {
            image: image_of(
                &stored.doc,
                image_key,
                c.id(),
                external_image_id,
                indexed_at,
            )?,
            faces,
            unindexed: stored
                .doc
                .unindexed_faces
                .iter()
                .map(unindexed_of)
                .collect(),
            face_model_version: c.manifest().face_model_version.clone(),
        })
    }
}

impl FaceEngine for LocalEngine {
    fn name(&self) -> &'static str {
        ENGINE_NAME
    }

    #[tracing::instrument(skip_all, fields(collection = %id))]
    fn create_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        let mut open = self.lock_open()?;
        if open.contains_key(id) || self.root.join(id.as_str()).exists() {
            return Err(EngineError::CollectionExists(id.clone()));
        }
        let manifest = Manifest {
            format: 1,
            collection_id: id.as_str().to_owned(),
            engine: ENGINE_NAME.to_owned(),
            created_at_ms: Timestamp::now().millis(),
            face_model_version: self.analyzer.model_version().to_owned(),
            embedding_dim: u32::try_from(self.analyzer.embedding_dim()).map_err(|_| {
                EngineError::InvalidParameter("the analyzer's embeddings are too long".to_owned())
            })?,
        };
        let c = Collection::create(&self.root, id, manifest, self.search_threads)
            .map_err(backend("create the collection"))?;
        let info = Self::info(&c)?;
        open.insert(id.clone(), Arc::new(c));
        Ok(info)
    }

    fn list_collections(&self) -> Result<Vec<CollectionId>, EngineError> {
        collections::list_collection_dirs(&self.root).map_err(backend("list the collections"))
    }

    fn describe_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        Self::info(self.collection(id)?.as_ref())
    }

    #[tracing::instrument(skip_all, fields(collection = %id))]
    fn delete_collection(&self, id: &CollectionId) -> Result<(), EngineError> {
        let mut open = self.lock_open()?;
        if !self
            .root
            .join(id.as_str())
            .join(collections::MANIFEST)
            .is_file()
        {
            return Err(EngineError::CollectionNotFound(id.clone()));
        }
        if let Some(c) = open.remove(id) {
            c.mark_deleted().map_err(backend("delete the collection"))?;
        }
        collections::remove_collection_dir(&self.root, id).map_err(backend("delete the collection"))
    }

    #[tracing::instrument(skip_all, fields(collection = %req.collection_id))]
    fn index_faces(&self, req: &IndexFacesRequest<'_>) -> Result<IndexFacesResult, EngineError> {
        if req.max_faces == Some(0) {
            return Err(EngineError::InvalidParameter(
                "MaxFaces must be at least 1".to_owned(),
            ));
        }
        let bytes = image_bytes(req)?;
        let c = self.collection(req.collection_id)?;
        let image_key = sha256(bytes);
        let ext = req.external_image_id.map(ExternalImageId::as_str);
        // The local engine's dedup: the same bytes under the same external image id are indexed once.
        if let Some(stored) = c
            .find_image(&image_key, ext)
            .map_err(backend("look up the image"))?
        {
            if stored.faces_indexed == 0 || !stored.faces.is_empty() {
                return self.stored_result(&c, stored, image_key, req.external_image_id);
            }
        }
        self.fresh_index(&c, req, image_key)
    }

    fn find_indexed(
        &self,
        collection_id: &CollectionId,
        external_image_id: Option<&ExternalImageId>,
        content: &ContentHash,
    ) -> Result<Option<IndexFacesResult>, EngineError> {
        let c = match self.collection(collection_id) {
            Ok(c) => c,
            Err(EngineError::CollectionNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut key: ImageKey = [0; 32];
        hex::decode_to_slice(content.as_str(), &mut key)
            .map_err(|e| stored_value_error("content hash", e))?;
        let ext = external_image_id.map(ExternalImageId::as_str);
        match c
            .find_image(&key, ext)
            .map_err(backend("look up the image"))?
        {
            // Every face of the image deleted since: as if it had never been indexed.
            Some(stored) if stored.faces_indexed > 0 && stored.faces.is_empty() => Ok(None),
            Some(stored) => self
                .stored_result(&c, stored, key, external_image_id)
                .map(Some),
            None => Ok(None),
        }
    }

    #[tracing::instrument(skip_all, fields(collection = %collection_id, face = %face_id))]
    fn search_faces(
        &self,
        collection_id: &CollectionId,
        face_id: &FaceId,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        check_max("MaxFaces", max_faces)?;
        let c = self.collection(collection_id)?;
        let key = face_key(face_id)?;
        let min = cosine_for_similarity(threshold) - COSINE_SLACK;
        let rows = c
            .search_face(&key, max_faces as usize, min)
            .map_err(backend("search the collection"))?
            .ok_or_else(|| EngineError::FaceNotFound {
                collection_id: collection_id.clone(),
                face_id: face_id.clone(),
            })?;
        self.matches(rows, threshold)
    }

    #[tracing::instrument(skip_all, fields(collection = %collection_id))]
    fn search_faces_by_image(
        &self,
        collection_id: &CollectionId,
        image: &[u8],
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<SearchByImageResult, EngineError> {
        check_max("MaxFaces", max_faces)?;
        let c = self.collection(collection_id)?;
        let analysis = self.analyzer.analyze(image)?;
        self.check_models(&c)?;
        let largest = analysis
            .faces
            .iter()
            .reduce(|best, f| {
                if f.bbox.area() > best.bbox.area() {
                    f
                } else {
                    best
                }
            })
            .ok_or(EngineError::NoFaceInImage)?;
        let min = cosine_for_similarity(threshold) - COSINE_SLACK;
        let rows = c
            .search_vector(&largest.embedding, max_faces as usize, min)
            .map_err(backend("search the collection"))?;
        Ok(SearchByImageResult {
            searched_bbox: largest.bbox,
            searched_confidence: Some(largest.confidence),
            matches: self.matches(rows, threshold)?,
        })
    }

    fn list_faces(
        &self,
        collection_id: &CollectionId,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<FacePage, EngineError> {
        check_max("MaxResults", max_results)?;
        let c = self.collection(collection_id)?;
        let after = next_token.map(parse_token).transpose()?;
        let (stored, more) = c
            .list(after.as_ref(), max_results as usize)
            .map_err(backend("list the faces"))?;
        let faces = stored
            .iter()
            .map(|f| face_of(collection_id, f))
            .collect::<Result<Vec<_>, _>>()?;
        let next_token = match (more, stored.last()) {
            (true, Some(last)) => Some(format!("{TOKEN_PREFIX}{}", hex::encode(last.id))),
            _ => None,
        };
        Ok(FacePage { faces, next_token })
    }

    #[tracing::instrument(skip_all, fields(collection = %collection_id, faces = face_ids.len()))]
    fn delete_faces(
        &self,
        collection_id: &CollectionId,
        face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError> {
        if face_ids.is_empty() || face_ids.len() > MAX_RESULTS as usize {
            return Err(EngineError::InvalidParameter(format!(
                "DeleteFaces takes 1 to {MAX_RESULTS} face ids, not {}",
                face_ids.len()
            )));
        }
        let c = self.collection(collection_id)?;
        let keys = face_ids
            .iter()
            .map(face_key)
            .collect::<Result<Vec<_>, _>>()?;
        let deleted = c.delete_faces(&keys).map_err(backend("delete the faces"))?;
        deleted.iter().map(face_id_of).collect()
    }
}

/// Builds the IndexFaces response in Rekognition's PascalCase shape from a result, so that it can be
/// saved and read back by `ingest-rekognition`.
pub fn index_faces_response(result: &IndexFacesResult) -> wire::IndexFacesResponse {
    let face_records = result
        .faces
        .iter()
        .map(|f| {
            f.raw
                .as_deref()
                .and_then(|raw| serde_json::from_str::<wire::FaceRecord>(raw).ok())
                .unwrap_or_else(|| record_of_face(f, &result.face_model_version))
        })
        .collect();
    let unindexed_faces = result
        .unindexed
        .iter()
        .map(|u| wire::UnindexedFace {
            reasons: Some(
                u.reasons
                    .iter()
                    .map(|r| wire::Reason::from_wire(r.as_str()))
                    .collect(),
            ),
            face_detail: Some(detail_of_attributes(&u.bbox, u.confidence, &u.attributes)),
        })
        .collect();
    wire::IndexFacesResponse {
        face_records: Some(face_records),
        orientation_correction: None,
        face_model_version: Some(result.face_model_version.clone()),
        unindexed_faces: Some(unindexed_faces),
    }
}

/// A SearchFaces response in Rekognition's shape, as the service would have answered: what
/// `match-faces --save-image-data` saves so that `ingest-rekognition` can rebuild the edges.
pub fn search_faces_response(
    searched: &FaceId,
    matches: &[FaceMatch],
    face_model_version: &str,
) -> wire::SearchFacesResponse {
    wire::SearchFacesResponse {
        searched_face_id: Some(searched.to_string()),
        face_matches: Some(
            matches
                .iter()
                .map(|m| wire::FaceMatch {
                    similarity: Some(m.similarity.get()),
                    face: Some(wire::Face {
                        face_id: Some(m.face_id.to_string()),
                        image_id: Some(m.image_id.to_string()),
                        external_image_id: m.external_image_id.as_ref().map(ToString::to_string),
                        ..wire::Face::default()
                    }),
                })
                .collect(),
        ),
        face_model_version: Some(face_model_version.to_owned()),
    }
}

/// The prefix of ListFaces tokens, so that a token of another kind is recognised as foreign.
const TOKEN_PREFIX: &str = "lf1.";

fn parse_token(token: &str) -> Result<FaceKey, EngineError> {
    let invalid = || EngineError::InvalidPaginationToken(token.to_owned());
    let hex_part = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    let bytes = hex::decode(hex_part).map_err(|_| invalid())?;
    FaceKey::try_from(bytes.as_slice()).map_err(|_| invalid())
}

/// The request's bytes: the local engine reads no other source.
fn image_bytes<'a>(req: &IndexFacesRequest<'a>) -> Result<&'a [u8], EngineError> {
    req.image.bytes().ok_or_else(|| {
        EngineError::InvalidParameter(
            "the local engine reads images from their bytes only".to_owned(),
        )
    })
}

fn check_max(name: &str, value: u32) -> Result<(), EngineError> {
    if (1..=MAX_RESULTS).contains(&value) {
        Ok(())
    } else {
        Err(EngineError::InvalidParameter(format!(
            "{name} must be from 1 to {MAX_RESULTS}, not {value}"
        )))
    }
}

fn backend(operation: &'static str) -> impl Fn(StoreError) -> EngineError {
    move |e| match e {
        StoreError::Deleted(id) => EngineError::CollectionNotFound(id),
        e => EngineError::Backend {
            operation,
            source: Box::new(e),
        },
    }
}

fn sha256(bytes: &[u8]) -> ImageKey {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn face_key(id: &FaceId) -> Result<FaceKey, EngineError> {
    uuid::Uuid::parse_str(id.as_str())
        .map(|u| *u.as_bytes())
        .map_err(|_| EngineError::InvalidParameter(format!("face id {id} is not a UUID")))
}

fn stored_value_error(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Backend {
        operation: "read a stored face",
        source: format!("stored {what} is invalid: {e}").into(),
    }
}

fn face_id_of(key: &FaceKey) -> Result<FaceId, EngineError> {
    FaceId::parse(&uuid::Uuid::from_bytes(*key).hyphenated().to_string())
        .map_err(|e| stored_value_error("face id", e))
}

/// The image id of an upload: the collection keys images by the bytes' hash and keeps the
/// external image id beside it, and an upload is the two together ([`ImageId::of_upload`]).
fn upload_id_of(key: &ImageKey, external_image_id: Option<&str>) -> Result<ImageId, EngineError> {
    let content = content_of(key)?;
    let ext = external_id_of(external_image_id)?;
    Ok(ImageId::of_upload(&content, ext.as_ref()))
}

fn content_of(key: &ImageKey) -> Result<ContentHash, EngineError> {
    ContentHash::parse(&hex::encode(key)).map_err(|e| stored_value_error("content hash", e))
}

fn external_id_of(ext: Option<&str>) -> Result<Option<ExternalImageId>, EngineError> {
    ext.map(ExternalImageId::parse)
        .transpose()
        .map_err(|e| stored_value_error("external image id", e))
}

fn image_of(
    doc: &ImageDoc,
    key: ImageKey,
    collection: &CollectionId,
    external_image_id: Option<&ExternalImageId>,
    at: Timestamp,
) -> Result<Image, EngineError> {
    let content = content_of(&key)?;
    Ok(Image {
        image_id: ImageId::of_upload(&content, external_image_id),
        external_image_id: external_image_id.cloned(),
        content_sha256: Some(content),
        collection_id: Some(collection.clone()),
        pending: false,
        source: None,
        width: Some(doc.width),
        height: Some(doc.height),
        face_count: doc.detected,
        received_at: at,
    })
}

/// The domain face of a stored record, converted as a saved IndexFaces response would be.
fn face_of(collection: &CollectionId, stored: &StoredFace) -> Result<Face, EngineError> {
    let record: wire::FaceRecord =
        serde_json::from_str(&stored.record).map_err(|e| stored_value_error("face record", e))?;
    let response = wire::IndexFacesResponse {
        face_records: Some(vec![record]),
        ..Default::default()
    };
    let at = Timestamp::from_millis(stored.indexed_at_ms);
    let mut faces = index_faces_to_domain(&response, collection, at)
        .map_err(|e| stored_value_error("face record", e))?
        .faces;
    let mut face = faces
        .pop()
        .ok_or_else(|| stored_value_error("face record", "no face"))?;
    face.is_largest = stored.largest;
    // Records written before uploads had their own ids name the bytes' hash as the image.
    face.image_id = upload_id_of(&stored.image_id, stored.external_image_id.as_deref())?;
    face.raw = Some(stored.record.clone());
    Ok(face)
}

/// Rounds to `decimals` places, so that values read back from JSON are bit for bit the values
/// written (a short decimal parses exactly).
fn round(x: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (x * p).round() / p
}

fn ratio(x: f32) -> f64 {
    round(f64::from(x), 8)
}

fn degrees(x: f32) -> f64 {
    round(f64::from(x).clamp(-180.0, 180.0), 6)
}

fn percent(x: f32) -> f64 {
    round(f64::from(x).clamp(0.0, 100.0), 6)
}

fn wire_box(b: &BoundingBox) -> wire::BoundingBox {
    wire::BoundingBox {
        width: Some(ratio(b.width)),
        height: Some(ratio(b.height)),
        left: Some(ratio(b.left)),
        top: Some(ratio(b.top)),
    }
}

/// The IndexFaces `FaceRecord` of an analysed face, as Rekognition would write it: values rounded
/// so that they read back bit for bit, landmarks as ratios of the image size.
pub(crate) fn face_record(
    id: &FaceKey,
    image_hex: &str,
    external_image_id: Option<&str>,
    face: &AnalyzedFace,
    (width, height): (u32, u32),
    version: &str,
) -> wire::FaceRecord {
    wire::FaceRecord {
        face: Some(wire::Face {
            face_id: Some(uuid::Uuid::from_bytes(*id).hyphenated().to_string()),
            bounding_box: Some(wire_box(&face.bbox)),
            image_id: Some(image_hex.to_owned()),
            external_image_id: external_image_id.map(str::to_owned),
            confidence: Some(round(face.confidence.get(), 6)),
            index_faces_model_version: Some(version.to_owned()),
            user_id: None,
        }),
        face_detail: Some(face_detail(face, width, height)),
    }
}

/// Rekognition names landmarks from the viewer's side: `eyeLeft` is the eye on the left of the
/// picture, the person's right eye, which the detector gives first.
const LANDMARKS: [wire::LandmarkType; 5] = [
    wire::LandmarkType::EyeLeft,
    wire::LandmarkType::EyeRight,
    wire::LandmarkType::Nose,
    wire::LandmarkType::MouthLeft,
    wire::LandmarkType::MouthRight,
];

fn face_detail(face: &AnalyzedFace, width: u32, height: u32) -> wire::FaceDetail {
    let mut detail = detail_of_attributes(&face.bbox, Some(face.confidence), &face.attributes);
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    detail.landmarks = Some(
        LANDMARKS
            .iter()
            .zip(face.landmarks)
            .map(|(t, (x, y))| wire::Landmark {
                r#type: Some(t.clone()),
                x: Some(ratio(x / w)),
                y: Some(ratio(y / h)),
            })
            .collect(),
    );
    detail
}

fn detail_of_attributes(
    bbox: &BoundingBox,
    confidence: Option<Confidence>,
    a: &FaceAttributes,
) -> wire::FaceDetail {
    wire::FaceDetail {
        bounding_box: Some(wire_box(bbox)),
        age_range: a.age.map(|r| wire::AgeRange {
            low: Some(r.low),
            high: Some(r.high),
        }),
        gender: a.gender.map(|g| wire::Gender {
            value: Some(match g.value {
                GenderValue::Male => wire::GenderType::Male,
                GenderValue::Female => wire::GenderType::Female,
            }),
            confidence: Some(round(g.confidence.get(), 6)),
        }),
        pose: a.pose.map(|p| wire::Pose {
            roll: Some(degrees(p.roll)),
            yaw: Some(degrees(p.yaw)),
            pitch: Some(degrees(p.pitch)),
        }),
        quality: a.quality.map(|q| wire::ImageQuality {
            brightness: Some(percent(q.brightness)),
            sharpness: Some(percent(q.sharpness)),
        }),
        confidence: confidence.map(|c| round(c.get(), 6)),
        ..Default::default()
    }
}

/// A face record for a face that has no raw record (built by other code): no landmarks.
fn record_of_face(f: &Face, version: &str) -> wire::FaceRecord {
    wire::FaceRecord {
        face: Some(wire::Face {
            face_id: Some(f.face_id.to_string()),
            bounding_box: Some(wire_box(&f.bbox)),
            image_id: Some(f.image_id.to_string()),
            external_image_id: f.external_image_id.as_ref().map(ToString::to_string),
            confidence: f.detection_confidence.map(|c| round(c.get(), 6)),
            index_faces_model_version: Some(version.to_owned()),
            user_id: None,
        }),
        face_detail: Some(detail_of_attributes(
            &f.bbox,
            f.detection_confidence,
            &f.attributes,
        )),
    }
}
