//! [`LocalDetector`]: the local engine's face detector alone (YuNet), with the analyzer's image
//! limits and memory budget, for work that must know whether and where an image has faces but not
//! whose they are, such as the pre-filter in front of Rekognition. No face is aligned, embedded or
//! classified, so it costs a fraction of an analysis.

use std::path::Path;

use super::analyzer::WORKING_BYTES;
use super::budget::MemoryBudget;
use super::detect::Detector;
use super::image::{read_header, ImageLimits};
use super::models::require_models;
use crate::engine::EngineError;
use crate::model::{BoundingBox, Confidence};

/// The detector and the limits of the images it reads.
#[derive(Debug)]
pub struct LocalDetector {
    detector: Detector,
    limits: ImageLimits,
    budget: MemoryBudget,
}

/// What the detector found in one image.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectedFaces {
    /// Width in pixels, after EXIF orientation.
    pub width: u32,
    /// Height in pixels, after EXIF orientation.
    pub height: u32,
    /// The faces, largest first: where (ratios of the image size) and how sure the detector is.
    pub faces: Vec<(BoundingBox, Confidence)>,
}

impl LocalDetector {
    /// Loads YuNet from the checked model cache; faces scoring below `min_score` (0-1) are not
    /// reported. `EngineError::ModelsMissing` says to fetch the models when they are not there.
    pub fn load(
        models_dir: &Path,
        limits: ImageLimits,
        min_score: f32,
    ) -> Result<Self, EngineError> {
        let paths = require_models(models_dir)?;
        let mut detector = Detector::load(&paths.detector).map_err(|e| EngineError::Backend {
            operation: "loading YuNet",
            source: e.into(),
        })?;
        detector.score_threshold = min_score;
        Ok(Self {
            detector,
            limits,
            budget: MemoryBudget::new(limits.concurrent_analysis_bytes),
        })
    }

    /// Decodes the image (refusing bad or oversized input as the analyzer does) and detects its
    /// faces. The decoded pixels hold a share of the memory budget until they are dropped.
    pub fn detect(&self, bytes: &[u8]) -> Result<DetectedFaces, EngineError> {
        let header = read_header(bytes, self.limits)?;
        // The analyzer's working memory bounds the detector's, which is a part of it.
        let _share = self
            .budget
            .acquire(header.decoded_bytes().saturating_add(WORKING_BYTES));
        let img = header.decode()?;
        let detections = self
            .detector
            .detect(&img)
            .map_err(|e| EngineError::Backend {
                operation: "face detection",
                source: e.into(),
            })?;
        let (w, h) = (img.width() as f32, img.height() as f32);
        let mut faces = detections
            .iter()
            .map(|d| {
                let confidence = Confidence::new((f64::from(d.score) * 100.0).clamp(0.0, 100.0))
                    .map_err(|e| EngineError::Backend {
                        operation: "face detection",
                        source: e.into(),
                    })?;
                let bbox = BoundingBox {
                    left: d.bbox[0] / w,
                    top: d.bbox[1] / h,
                    width: d.bbox[2] / w,
                    height: d.bbox[3] / h,
                };
                Ok((bbox, confidence))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        faces.sort_by(|a, b| b.0.area().total_cmp(&a.0.area()));
        Ok(DetectedFaces {
            width: img.width(),
            height: img.height(),
            faces,
        })
    }
}
