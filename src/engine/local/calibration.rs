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
/// increasing in the cosine. The value keeps every bit of f64: the curve approaches 100 within
/// 4e-7 at cosine 1, so rounding it (to six decimals, as it once was) made different cosines above
/// 0.8 tie, and ranking by similarity saw ties the cosines do not have.
pub fn similarity_from_cosine(cosine: f32) -> Similarity {
    let c = f64::from(cosine).clamp(-1.0, 1.0);
    let s = 100.0 / (1.0 + (-STEEPNESS * (c - MIDPOINT)).exp());
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

    /// Every f32 cosine from `from` up to `to`, in order (the ranges stay clear of zero).
    fn every_f32(from: f32, to: f32) -> impl Iterator<Item = f32> {
        // Upwards is one more in the bits of a positive float and one less in those of a negative one.
        let next = |c: &f32| {
            Some(if *c > 0.0 {
                f32::from_bits(c.to_bits() + 1)
            } else {
                f32::from_bits(c.to_bits() - 1)
            })
        };
        std::iter::successors(Some(from), next).take_while(move |c| *c <= to)
    }

    #[test]
    fn different_cosines_never_tie() {
        // Where the curve is flattest (near cosine 1 and far below the threshold) every f32 step
        // still moves the similarity, so ranking by similarity is ranking by cosine.
        for (from, to) in [(0.9f32, 1.0f32), (-1.0, -0.99), (0.44, 0.46)] {
            let mut last = similarity_from_cosine(from).get();
            for c in every_f32(from, to).skip(1) {
                let s = similarity_from_cosine(c).get();
                assert!(
                    s > last,
                    "similarity ties or falls at cosine {c}: {s} after {last}"
                );
                last = s;
            }
        }
        assert!(similarity_from_cosine(1.0).get() < 100.0);
        assert!(similarity_from_cosine(-1.0).get() > 0.0);
    }

    #[test]
    fn the_anchors_of_the_bands_hold() {
        // Search threshold 80 at cosine 0.345 and auto-confirm 98.5 at 0.447 (docs/local-engine.md).
        assert!((similarity_from_cosine(0.345).get() - 80.0).abs() < 0.25);
        assert!((similarity_from_cosine(0.447).get() - 98.5).abs() < 0.05);
        assert!(
            (f64::from(cosine_for_similarity(Similarity::new(80.0).unwrap())) - 0.345).abs() < 1e-3
        );
        assert!(
            (f64::from(cosine_for_similarity(Similarity::new(98.5).unwrap())) - 0.447).abs() < 1e-3
        );
    }

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
