//! [`LocalEngine`]: the `FaceEngine` port implemented over a [`FaceAnalyzer`] (the models) and the
//! collections on disk, with Rekognition's semantics for MaxFaces, QualityFilter, thresholds and
//! pagination, and one addition: indexing the same image bytes with the same external image id
//! again returns the faces already indexed instead of adding duplicates.
//!
//! `indexing.rs` is the IndexFaces path for a new image, `records.rs` the conversions between
//! analysed faces, log records, domain types and Rekognition's responses, and `quality.rs` the
//! quality bar of each filter.

mod indexing;
mod quality;
mod records;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::calibration::{cosine_for_similarity, similarity_from_cosine};
use super::collections::{self, Collection, FaceKey, ImageKey, Manifest, MatchRow, StoreError};
use super::FaceAnalyzer;
use crate::engine::{
    CollectionInfo, EngineError, FaceEngine, FaceMatch, FacePage, HeldFace, IndexFacesRequest,
    IndexFacesResult, SearchByImageResult,
};
use crate::model::{CollectionId, ContentHash, ExternalImageId, FaceId, Similarity, Timestamp};
use records::{external_id_of, face_id_of, face_of, stored_value_error, upload_id_of};

pub use quality::QualityBar;
pub(crate) use records::face_record;
pub use records::{index_faces_response, search_faces_response};

/// The engine's name, recorded on collections and edges.
pub const ENGINE_NAME: &str = "local";
/// At most this many faces are taken from one image, as Rekognition's IndexFaces does.
pub const MAX_FACES_PER_IMAGE: usize = 100;
/// The largest `MaxFaces` of a search and `MaxResults` of ListFaces, as in Rekognition.
pub const MAX_RESULTS: u32 = 4096;
/// How far below the threshold's cosine the index is asked to look, so that rounding of the
/// similarity never hides a face at the threshold; hits are filtered on their similarity after.
const COSINE_SLACK: f32 = 1e-4;

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
        let c = self.collection(req.collection_id)?;
        let image_key = sha256(image_bytes(req)?);
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

    /// A face held in another collection is compared by its stored embedding, when the two
    /// collections' faces come from the same models.
    #[tracing::instrument(skip_all, fields(collection = %collection_id, face = %face.face_id))]
    fn search_held_face(
        &self,
        collection_id: &CollectionId,
        face: &HeldFace<'_>,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        if face.collection_id == collection_id {
            return self.search_faces(collection_id, face.face_id, threshold, max_faces);
        }
        check_max("MaxFaces", max_faces)?;
        let home = self.collection(face.collection_id)?;
        let target = self.collection(collection_id)?;
        let (h, t) = (home.manifest(), target.manifest());
        if h.face_model_version != t.face_model_version || h.embedding_dim != t.embedding_dim {
            return Err(EngineError::InvalidParameter(format!(
                "face {} of collection {} (face model version {}) cannot be compared with the faces \
                 of collection {} (face model version {})",
                face.face_id,
                home.id(),
                h.face_model_version,
                target.id(),
                t.face_model_version
            )));
        }
        let embedding = home
            .embedding(&face_key(face.face_id)?)
            .map_err(backend("search the collection"))?
            .ok_or_else(|| EngineError::FaceNotFound {
                collection_id: face.collection_id.clone(),
                face_id: face.face_id.clone(),
            })?;
        let min = cosine_for_similarity(threshold) - COSINE_SLACK;
        let rows = target
            .search_stored_vector(&embedding, max_faces as usize, min)
            .map_err(backend("search the collection"))?;
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

/// The prefix of ListFaces tokens, so that a token of another kind is recognised as foreign.
const TOKEN_PREFIX: &str = "lf1.";

/// The request's bytes: the local engine reads no other source.
pub(super) fn image_bytes<'a>(req: &IndexFacesRequest<'a>) -> Result<&'a [u8], EngineError> {
    req.image.bytes().ok_or_else(|| {
        EngineError::InvalidParameter(
            "the local engine reads images from their bytes only".to_owned(),
        )
    })
}

fn parse_token(token: &str) -> Result<FaceKey, EngineError> {
    let invalid = || EngineError::InvalidPaginationToken(token.to_owned());
    let hex_part = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    let bytes = hex::decode(hex_part).map_err(|_| invalid())?;
    FaceKey::try_from(bytes.as_slice()).map_err(|_| invalid())
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
