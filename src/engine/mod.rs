//! The `FaceEngine` port: face collections with Rekognition's semantics (create, list, describe,
//! delete; index faces; search by face id and by image; list and delete faces). Two adapters: the
//! local engine (ONNX models run by tract, the embedded default) and AWS Rekognition through
//! aws-sdk-rekognition. The port follows Rekognition's API, so both keep its semantics. Decorators
//! add to any engine: the local pre-filter in front of Rekognition ([`prefilter`]) and collection
//! routing ([`routing`]); [`calls`] is the ledger of the Rekognition calls made and avoided.

pub mod calls;
pub mod local;
pub mod prefilter;
pub mod rekognition;
pub mod routing;
mod unindexed;

pub(crate) use unindexed::unindexed_of;

use std::fmt;

use crate::model::{
    BoundingBox, CollectionId, Confidence, ContentHash, ExternalImageId, Face, FaceAttributes,
    FaceId, Image, ImageId, Similarity, SubjectId, Timestamp,
};

use self::calls::{AvoidedBy, Operation};

/// Errors of a face engine, each with a message a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The collection does not exist.
    #[error("collection {0} does not exist")]
    CollectionNotFound(CollectionId),
    /// The collection already exists.
    #[error("collection {0} already exists")]
    CollectionExists(CollectionId),
    /// The face is not in the collection.
    #[error("face {face_id} is not in collection {collection_id}")]
    FaceNotFound {
        /// The collection.
        collection_id: CollectionId,
        /// The face.
        face_id: FaceId,
    },
    /// The image cannot be used: empty, truncated, not JPEG or PNG, or too large.
    #[error("invalid image")]
    InvalidImage(#[from] ImageError),
    /// An image searched by image has no face.
    #[error("there is no face in the image")]
    NoFaceInImage,
    /// The models are not in the cache.
    #[error("face models are missing from {dir}: run `facegraph models fetch` first")]
    ModelsMissing {
        /// The model cache directory.
        dir: String,
    },
    /// A request parameter is out of range.
    #[error("{0}")]
    InvalidParameter(String),
    /// A pagination token that this engine did not hand out.
    #[error("invalid pagination token {0:?}")]
    InvalidPaginationToken(String),
    /// The engine failed (I/O, inference, the remote service).
    #[error("face engine {operation} failed")]
    Backend {
        /// What it was doing.
        operation: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why an image was refused before any face detection ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// No bytes.
    #[error("the image is empty")]
    Empty,
    /// Bytes beyond the limit.
    #[error("the image is {size} bytes, more than the limit of {limit} bytes")]
    TooManyBytes {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Pixels beyond the limit (a decompression bomb guard).
    #[error("the image is {width}x{height} pixels, more than the limit of {limit} pixels")]
    TooManyPixels {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
    /// Decoding would take more memory than the limit (a 16-bit or huge image).
    #[error(
        "the image is {width}x{height} pixels, which take {bytes} bytes to decode, more than the \
         limit of {limit} bytes"
    )]
    TooManyDecodedBytes {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The bytes decoding would take.
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// Neither JPEG nor PNG by its bytes.
    #[error("the image is not JPEG or PNG (by its content; found: {found})")]
    UnsupportedFormat {
        /// What the bytes look like.
        found: String,
    },
    /// The bytes could not be decoded (truncated, corrupt).
    #[error("the image could not be decoded: {0}")]
    Decode(String),
}

/// Rekognition's `QualityFilter`: which detected faces are too poor to index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QualityFilter {
    /// Index every detected face.
    None,
    /// The engine's default bar (MEDIUM here, as Rekognition documents for AUTO).
    #[default]
    Auto,
    /// Filter only the worst faces.
    Low,
    /// Filter poor faces.
    Medium,
    /// Index only good faces.
    High,
}

impl QualityFilter {
    /// Parses Rekognition's spelling (`NONE`, `AUTO`, `LOW`, `MEDIUM`, `HIGH`), ignoring case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "NONE" => Some(Self::None),
            "AUTO" => Some(Self::Auto),
            "LOW" => Some(Self::Low),
            "MEDIUM" => Some(Self::Medium),
            "HIGH" => Some(Self::High),
            _ => None,
        }
    }

    /// Rekognition's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Auto => "AUTO",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
        }
    }
}

/// Rekognition's reasons for not indexing a detected face.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnindexedReason {
    /// More faces than `MaxFaces`; the smallest are dropped.
    ExceedsMaxFaces,
    /// Turned too far away.
    ExtremePose,
    /// Too dark.
    LowBrightness,
    /// Too blurred.
    LowSharpness,
    /// The detector is not sure it is a face.
    LowConfidence,
    /// Too small.
    SmallBoundingBox,
    /// Poor overall.
    LowFaceQuality,
}

impl UnindexedReason {
    /// Rekognition's spelling, e.g. `EXCEEDS_MAX_FACES`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExceedsMaxFaces => "EXCEEDS_MAX_FACES",
            Self::ExtremePose => "EXTREME_POSE",
            Self::LowBrightness => "LOW_BRIGHTNESS",
            Self::LowSharpness => "LOW_SHARPNESS",
            Self::LowConfidence => "LOW_CONFIDENCE",
            Self::SmallBoundingBox => "SMALL_BOUNDING_BOX",
            Self::LowFaceQuality => "LOW_FACE_QUALITY",
        }
    }
}

/// A collection as the engine describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionInfo {
    /// Its id.
    pub collection_id: CollectionId,
    /// How many faces it holds.
    pub face_count: u64,
    /// The engine's face model version.
    pub face_model_version: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// Where the image of a request is: its bytes, given in the request. Rekognition also reads images
/// from S3 objects itself; such a source is a new variant here, which engines that read only bytes
/// refuse.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum ImageSource<'a> {
    /// The image's bytes (JPEG or PNG).
    Bytes(&'a [u8]),
}

impl<'a> ImageSource<'a> {
    /// The bytes, when the request carries them.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self {
            Self::Bytes(b) => Some(b),
        }
    }
}

/// An `IndexFaces` request.
#[derive(Clone, Copy, Debug)]
pub struct IndexFacesRequest<'a> {
    /// The collection to index into.
    pub collection_id: &'a CollectionId,
    /// The image.
    pub image: ImageSource<'a>,
    /// The caller's name for the image.
    pub external_image_id: Option<&'a ExternalImageId>,
    /// The customer behind the image, when known. Engines do not send it anywhere; collection
    /// routing by tenant picks the collection by it.
    pub subject_id: Option<&'a SubjectId>,
    /// At most this many faces, the largest; `None` for all.
    pub max_faces: Option<u32>,
    /// Which faces are too poor to index.
    pub quality_filter: QualityFilter,
}

/// A face the engine holds, as a search starts from it: which collection holds it (IndexFaces
/// reports it on the face), and, when the caller still has them, the bytes of the image it was
/// indexed from.
#[derive(Clone, Copy, Debug)]
pub struct HeldFace<'a> {
    /// The face.
    pub face_id: &'a FaceId,
    /// The collection that holds it.
    pub collection_id: &'a CollectionId,
    /// The image it was indexed from, when the caller has its bytes.
    pub image: Option<&'a [u8]>,
}

/// A detected face that was not indexed, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct UnindexedFace {
    /// Where it is.
    pub bbox: BoundingBox,
    /// How sure the detector is.
    pub confidence: Option<Confidence>,
    /// What the classifiers said.
    pub attributes: FaceAttributes,
    /// Why it was not indexed.
    pub reasons: Vec<UnindexedReason>,
}

/// The result of `IndexFaces`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexFacesResult {
    /// The image, with its id (SHA-256 of the bytes for the local engine), size and face count.
    pub image: Image,
    /// The faces indexed, largest first.
    pub faces: Vec<Face>,
    /// The faces detected but not indexed.
    pub unindexed: Vec<UnindexedFace>,
    /// The engine's face model version.
    pub face_model_version: String,
}

/// One search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceMatch {
    /// The face found.
    pub face_id: FaceId,
    /// How similar, 0-100.
    pub similarity: Similarity,
    /// The image it is in.
    pub image_id: ImageId,
    /// The caller's name for that image.
    pub external_image_id: Option<ExternalImageId>,
}

/// The result of `SearchFacesByImage`.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchByImageResult {
    /// The face that was searched: the largest in the image.
    pub searched_bbox: BoundingBox,
    /// The detector's confidence in it.
    pub searched_confidence: Option<Confidence>,
    /// The hits, most similar first.
    pub matches: Vec<FaceMatch>,
}

/// A page of `ListFaces`.
#[derive(Clone, Debug, PartialEq)]
pub struct FacePage {
    /// The faces of the page.
    pub faces: Vec<Face>,
    /// The token of the next page, if any.
    pub next_token: Option<String>,
}

/// A face engine with Rekognition's collection semantics. Implementations are shared between threads.
pub trait FaceEngine: Send + Sync + fmt::Debug {
    /// A short name (`local`, `rekognition`), recorded on collections and edges.
    fn name(&self) -> &'static str;

    /// Creates an empty collection.
    fn create_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError>;

    /// The collections, in id order.
    fn list_collections(&self) -> Result<Vec<CollectionId>, EngineError>;

    /// A collection's description.
    fn describe_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError>;

    /// Deletes a collection and its faces.
    fn delete_collection(&self, id: &CollectionId) -> Result<(), EngineError>;

    /// Detects faces in an image and adds them to a collection.
    fn index_faces(&self, req: &IndexFacesRequest<'_>) -> Result<IndexFacesResult, EngineError>;

    /// What an earlier IndexFaces call indexed from these bytes under this external image id, read
    /// back from the collection without analysing anything; `None` when there was no such call (or
    /// the collection does not exist). A writer completes an upload that a crash interrupted with it.
    fn find_indexed(
        &self,
        collection_id: &CollectionId,
        external_image_id: Option<&ExternalImageId>,
        content: &ContentHash,
    ) -> Result<Option<IndexFacesResult>, EngineError>;

    /// Faces of the collection similar to a face of the collection (never the face itself), most
    /// similar first, at least `threshold` similar, at most `max_faces`.
    fn search_faces(
        &self,
        collection_id: &CollectionId,
        face_id: &FaceId,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError>;

    /// Faces of `collection_id` similar to a face the engine holds, maybe in another collection
    /// (a routed collection's family is several). When `collection_id` holds the face this is
    /// [`FaceEngine::search_faces`]. Rekognition compares a face only with the faces of its own
    /// collection, so by default a face held elsewhere is searched by its image
    /// ([`FaceEngine::search_faces_by_image`], which searches the image's largest face) and is
    /// refused without it; the local engine compares the stored embedding itself.
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
        match face.image {
            Some(image) => Ok(self
                .search_faces_by_image(collection_id, image, threshold, max_faces)?
                .matches),
            None => Err(EngineError::InvalidParameter(format!(
                "the {} engine compares face {} (in collection {}) only with the faces of its own \
                 collection; searching collection {collection_id} needs the image it was indexed \
                 from",
                self.name(),
                face.face_id,
                face.collection_id
            ))),
        }
    }

    /// Faces of the collection similar to the largest face of an image.
    fn search_faces_by_image(
        &self,
        collection_id: &CollectionId,
        image: &[u8],
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<SearchByImageResult, EngineError>;

    /// A page of the collection's faces, in a stable order.
    fn list_faces(
        &self,
        collection_id: &CollectionId,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<FacePage, EngineError>;

    /// Deletes faces; returns those that were deleted (unknown ids are skipped, like Rekognition).
    fn delete_faces(
        &self,
        collection_id: &CollectionId,
        face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError>;

    /// Records that `calls` calls of `operation` were not made, and why: the pre-filter, the
    /// service's duplicate detection and the stream's Bloom filter report what they saved here.
    /// An engine that keeps a bill (Rekognition's [`calls::CallLedger`]) counts them; the others
    /// ignore it, and decorators pass it on.
    fn note_avoided(&self, _operation: Operation, _reason: AvoidedBy, _calls: u64) {}
}
