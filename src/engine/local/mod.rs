//! The local face engine, facegraph's embedded default: face detection, alignment, embedding and
//! attribute models run in-process, and collections kept on disk under the data directory.
//!
//! The engine is split along one seam: a [`FaceAnalyzer`] turns image bytes into faces with
//! embeddings and attributes (the models), and the collection store indexes and searches those
//! embeddings with Rekognition's semantics.

pub mod align;
pub mod analyzer;
pub mod attributes;
pub mod budget;
pub mod calibration;
pub mod collections;
pub mod detect;
pub mod detector;
mod engine;
pub mod eval;
pub mod generated;
pub mod image;
pub mod index;
pub mod models;
pub mod onnx;
pub mod resize;
#[cfg(test)]
mod tests;

pub use analyzer::LocalAnalyzer;
pub use detector::{DetectedFaces, LocalDetector};
pub(crate) use engine::face_record;
pub use engine::{
    index_faces_response, search_faces_response, LocalEngine, QualityBar, MAX_RESULTS,
};
pub use image::ImageLimits;

use crate::model::{BoundingBox, Confidence, FaceAttributes, ImageId};

use super::EngineError;

/// One face found in an image, with everything the engine needs to index it.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyzedFace {
    /// Where the face is, as ratios of the image size (Rekognition's convention).
    pub bbox: BoundingBox,
    /// How sure the detector is that this is a face.
    pub confidence: Confidence,
    /// The five landmarks (right eye, left eye, nose tip, right mouth corner, left mouth corner as the
    /// detector orders them), in pixels.
    pub landmarks: [(f32, f32); 5],
    /// The L2-normalised embedding of the aligned face.
    pub embedding: Vec<f32>,
    /// Gender, age, quality and pose.
    pub attributes: FaceAttributes,
}

/// What the analyzer found in one image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageAnalysis {
    /// The image's id: the SHA-256 of its bytes.
    pub image_id: ImageId,
    /// Width in pixels, after EXIF orientation.
    pub width: u32,
    /// Height in pixels, after EXIF orientation.
    pub height: u32,
    /// The faces, largest first.
    pub faces: Vec<AnalyzedFace>,
}

/// Turns image bytes into faces with embeddings and attributes.
pub trait FaceAnalyzer: Send + Sync + std::fmt::Debug {
    /// Decodes the image (refusing bad or oversized input) and analyses every face in it.
    fn analyze(&self, bytes: &[u8]) -> Result<ImageAnalysis, EngineError>;

    /// The version of the models, recorded as the collection's face model version.
    fn model_version(&self) -> &str;

    /// The length of the embeddings.
    fn embedding_dim(&self) -> usize;
}
