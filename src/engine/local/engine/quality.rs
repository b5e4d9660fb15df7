//! The quality bar of each `QualityFilter`: the least confidence, face size, brightness and
//! sharpness and the largest pose a face must have to be indexed, and the Rekognition reasons of a
//! face that fails it.

use crate::engine::local::AnalyzedFace;
use crate::engine::{QualityFilter, UnindexedReason};

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
            if q.brightness() < self.min_brightness {
                reasons.push(UnindexedReason::LowBrightness);
            }
            if q.sharpness() < self.min_sharpness {
                reasons.push(UnindexedReason::LowSharpness);
            }
        }
        if let Some(p) = face.attributes.pose {
            if p.yaw().abs() > self.max_yaw || p.pitch().abs() > self.max_pitch {
                reasons.push(UnindexedReason::ExtremePose);
            }
        }
        if let Some(q) = face.attributes.quality {
            if (q.brightness() + q.sharpness()) / 2.0 < self.min_overall {
                reasons.push(UnindexedReason::LowFaceQuality);
            }
        }
        reasons
    }
}
