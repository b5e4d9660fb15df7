//! The local engine's similarity scale: a monotonic calibration from the cosine of two SFace
//! embeddings to Rekognition's 0-100 similarity, so that thresholds such as 80 (search) and 98.5
//! (auto-confirm) mean what a Rekognition user expects. docs/local-engine.md gives the derivation.

use crate::model::Similarity;

/// The cosine at which the similarity is 50. With [`STEEPNESS`], similarity 80 falls at cosine
/// 0.345, the threshold that maximised pair accuracy on the labelled set (docs/local-engine.md).
pub const MIDPOINT: f64 = 0.295;
/// The steepness of the logistic curve, per unit of cosine: set so that the 99th percentile of
/// impostor cosines (0.255) scores 25 while the median genuine pair (0.65) scores above 99.9.
pub const STEEPNESS: f64 = 27.5;

/// Similarity (0-100) from the cosine of two L2-normalised embeddings: a logistic curve, strictly
/// increasing in the cosine.
pub fn similarity_from_cosine(cosine: f32) -> Similarity {
    let c = f64::from(cosine).clamp(-1.0, 1.0);
    let s = 100.0 / (1.0 + (-STEEPNESS * (c - MIDPOINT)).exp());
    // Rounded to six decimals like Rekognition's output; always within 0-100.
    let s = (s * 1e6).round() / 1e6;
    Similarity::new(s.clamp(0.0, 100.0)).unwrap_or_else(|_| unreachable!("clamped to 0-100"))
}

/// The cosine at or above which the similarity reaches `similarity`: the inverse of the calibration,
/// used to turn a `FaceMatchThreshold` into a cosine cut-off for the index.
pub fn cosine_for_similarity(similarity: Similarity) -> f32 {
    let s = similarity.get().clamp(1e-9, 100.0 - 1e-9);
    let c = MIDPOINT - (100.0 / s - 1.0).ln() / STEEPNESS;
    c.clamp(-1.0, 1.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_is_monotonic_and_invertible() {
        let mut last = -1.0;
        for i in -100..=100 {
            let c = i as f32 / 100.0;
            let s = similarity_from_cosine(c).get();
            assert!(s >= last, "not monotonic at {c}");
            last = s;
        }
        for t in [50.0, 80.0, 90.0, 98.5] {
            let c = cosine_for_similarity(Similarity::new(t).unwrap());
            assert!((similarity_from_cosine(c).get() - t).abs() < 1e-3, "{t}");
        }
    }
}
