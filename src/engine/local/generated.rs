//! A face analyzer without inference: it reads a small generated image format that names a person,
//! a photo and a face count, and derives deterministic faces and embeddings from them. Run under the
//! real [`super::LocalEngine`] (collections, log, vector index), it is the whole engine without the
//! models, for measuring and fault-testing the pipeline around it (`facegraph bench-stream`,
//! `facegraph stream --faces generated`).

use sha2::{Digest, Sha256};

use super::{AnalyzedFace, FaceAnalyzer, ImageAnalysis};
use crate::engine::{EngineError, ImageError};
use crate::model::{
    AgeRange, BoundingBox, Confidence, FaceAttributes, Gender, GenderValue, ImageId, Pose, Quality,
};

/// The first bytes of a generated image.
pub const MAGIC: &[u8] = b"FACEGRAPH-GENERATED-IMAGE-1\n";

/// The length of the generated embeddings.
pub const DIMENSIONS: usize = 128;

/// How far a photo's embedding strays from its person's: with this noise, two photos of one
/// person have a cosine near 0.8 (similarity above 99.9), and two people's embeddings are nearly
/// orthogonal (similarity near 0, the engine's threshold of 80 is about four standard deviations
/// away).
const PHOTO_NOISE: f32 = 0.5;

/// The model version the generated faces are recorded with: a collection of generated faces is
/// never searched with real embeddings, nor the other way round.
pub const MODEL_VERSION: &str = "generated-v1";

/// The bytes of a generated image of `person` (photo `photo` of them) with `faces` faces, the
/// first the largest; other faces in the picture belong to people of their own.
pub fn generated_image(person: u64, photo: u64, faces: u32) -> Vec<u8> {
    slow_generated_image(person, photo, faces, 0)
}

/// A generated image whose analysis takes `delay_ms` milliseconds, as a slow inference would:
/// for tests of what happens while an image is being analysed.
pub fn slow_generated_image(person: u64, photo: u64, faces: u32, delay_ms: u64) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend(format!("person={person}\nphoto={photo}\nfaces={faces}\n").as_bytes());
    if delay_ms > 0 {
        bytes.extend(format!("delay_ms={delay_ms}\n").as_bytes());
    }
    bytes
}

/// The analyzer of generated images; any other bytes are an image it cannot decode.
#[derive(Clone, Copy, Debug, Default)]
pub struct GeneratedAnalyzer;

impl FaceAnalyzer for GeneratedAnalyzer {
    fn analyze(&self, bytes: &[u8]) -> Result<ImageAnalysis, EngineError> {
        if bytes.is_empty() {
            return Err(ImageError::Empty.into());
        }
        let spec = Spec::parse(bytes)?;
        if spec.delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(spec.delay_ms));
        }
        let faces = (0..spec.faces)
            .map(|i| {
                // The second and later faces are bystanders: people of their own, smaller.
                let person = if i == 0 {
                    spec.person
                } else {
                    spec.person ^ (u64::from(i) << 48)
                };
                face(person, spec.photo, i)
            })
            .collect();
        Ok(ImageAnalysis {
            image_id: ImageId::of_bytes(bytes),
            width: 640,
            height: 480,
            faces,
        })
    }

    fn model_version(&self) -> &str {
        MODEL_VERSION
    }

    fn embedding_dim(&self) -> usize {
        DIMENSIONS
    }
}

/// What a generated image says.
struct Spec {
    person: u64,
    photo: u64,
    faces: u32,
    delay_ms: u64,
}

impl Spec {
    fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        let unsupported = || ImageError::UnsupportedFormat {
            found: "neither a generated image nor JPEG or PNG".to_owned(),
        };
        let body = bytes.strip_prefix(MAGIC).ok_or_else(unsupported)?;
        let text = std::str::from_utf8(body)
            .map_err(|_| ImageError::Decode("a generated image is text".to_owned()))?;
        let optional = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.trim().parse().ok())
        };
        let field = |name: &str| -> Result<u64, ImageError> {
            optional(name)
                .ok_or_else(|| ImageError::Decode(format!("a generated image without {name}")))
        };
        let faces = u32::try_from(field("faces")?)
            .ok()
            .filter(|n| *n <= 8)
            .ok_or_else(|| ImageError::Decode("at most 8 faces".to_owned()))?;
        Ok(Self {
            person: field("person")?,
            photo: field("photo")?,
            faces,
            // At most a minute: a test image, not a way to hang the engine.
            delay_ms: optional("delay_ms").unwrap_or(0).min(60_000),
        })
    }
}

/// The `i`-th face of a photo of `person`: its embedding is the person's plus the photo's noise,
/// its attributes the person's (gender and age), good quality and a frontal pose.
fn face(person: u64, photo: u64, i: u32) -> AnalyzedFace {
    let centre = unit_gaussian(&[b"person", &person.to_le_bytes()]);
    let noise = unit_gaussian(&[
        b"photo",
        &person.to_le_bytes(),
        &photo.to_le_bytes(),
        &i.to_le_bytes(),
    ]);
    let mut embedding: Vec<f32> = centre
        .iter()
        .zip(&noise)
        .map(|(c, n)| c + PHOTO_NOISE * n)
        .collect();
    normalise(&mut embedding);
    // Faces get smaller from left to right, so that the first is the largest.
    let size = 0.4 / (1.0 + i as f32);
    let left = (0.05 + 0.3 * i as f32).min(0.9);
    let bbox = BoundingBox {
        left,
        top: 0.2,
        width: size,
        height: size,
    };
    let (px, py) = (bbox.left * 640.0, bbox.top * 480.0);
    let (pw, ph) = (bbox.width * 640.0, bbox.height * 480.0);
    let age = 20 + (person % 50) as u32;
    AnalyzedFace {
        bbox,
        confidence: Confidence::new(99.9).unwrap_or_else(|_| unreachable!("in range")),
        landmarks: [
            (px + 0.3 * pw, py + 0.4 * ph),
            (px + 0.7 * pw, py + 0.4 * ph),
            (px + 0.5 * pw, py + 0.6 * ph),
            (px + 0.35 * pw, py + 0.8 * ph),
            (px + 0.65 * pw, py + 0.8 * ph),
        ],
        embedding,
        attributes: FaceAttributes {
            gender: Some(Gender {
                value: if person.is_multiple_of(2) {
                    GenderValue::Female
                } else {
                    GenderValue::Male
                },
                confidence: Confidence::new(99.0).unwrap_or_else(|_| unreachable!("in range")),
            }),
            age: AgeRange::new(age, age + 6).ok(),
            quality: Quality::new(80.0, 80.0).ok(),
            pose: Pose::new(2.0, -1.0, 0.5).ok(),
        },
    }
}

/// A vector of independent standard normal values drawn from a seed, scaled to unit length.
fn unit_gaussian(seed: &[&[u8]]) -> Vec<f32> {
    let mut h = Sha256::new();
    for part in seed {
        h.update(part);
    }
    let digest = h.finalize();
    let mut state = u64::from_le_bytes(
        digest[..8]
            .try_into()
            .unwrap_or_else(|_| unreachable!("a SHA-256 has 32 bytes")),
    );
    let mut next = move || {
        // splitmix64: fast and well mixed, enough for test data.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut uniform = move || ((next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let mut v: Vec<f32> = (0..DIMENSIONS)
        .map(|_| {
            // Box-Muller: one normal value from two uniform ones.
            let (u1, u2) = (uniform(), uniform());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    normalise(&mut v);
    v
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::calibration::similarity_from_cosine;

    fn embedding(person: u64, photo: u64) -> Vec<f32> {
        let analysis = GeneratedAnalyzer
            .analyze(&generated_image(person, photo, 1))
            .unwrap();
        analysis.faces[0].embedding.clone()
    }

    fn similarity(a: &[f32], b: &[f32]) -> f64 {
        similarity_from_cosine(a.iter().zip(b).map(|(x, y)| x * y).sum()).get()
    }

    #[test]
    fn photos_of_one_person_match_and_two_people_do_not() {
        for person in 0..20 {
            let same = similarity(&embedding(person, 1), &embedding(person, 2));
            assert!(same > 99.0, "person {person}: {same}");
            let other = similarity(&embedding(person, 1), &embedding(person + 100, 1));
            assert!(
                other < 80.0,
                "persons {person} and {}: {other}",
                person + 100
            );
        }
    }

    #[test]
    fn faces_follow_the_image_and_other_bytes_are_refused() {
        let a = GeneratedAnalyzer
            .analyze(&generated_image(7, 1, 3))
            .unwrap();
        let b = GeneratedAnalyzer
            .analyze(&generated_image(7, 1, 3))
            .unwrap();
        assert_eq!(a, b, "deterministic");
        assert_eq!(a.faces.len(), 3);
        assert!(a.faces[0].bbox.area() > a.faces[1].bbox.area());
        assert!(GeneratedAnalyzer
            .analyze(&generated_image(7, 2, 0))
            .unwrap()
            .faces
            .is_empty());
        assert!(matches!(
            GeneratedAnalyzer.analyze(b"\xff\xd8\xff not generated"),
            Err(EngineError::InvalidImage(
                ImageError::UnsupportedFormat { .. }
            ))
        ));
    }
}
