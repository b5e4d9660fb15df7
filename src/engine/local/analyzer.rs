//! `LocalAnalyzer`, the local engine's [`FaceAnalyzer`]: decodes an image, detects faces with YuNet,
//! aligns each to the ArcFace template for SFace's 128-D embedding and to dlib's chips for gender and
//! age, and estimates quality and pose. Models are loaded once and shared between threads; the
//! analyses running at once share one memory budget ([`MemoryBudget`]).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use image::RgbImage;
use tract_onnx::prelude::*;

use super::align::{self, ARCFACE_112};
use super::attributes::{self, Manifest};
use super::budget::MemoryBudget;
use super::detect::{Detection, Detector};
use super::image::{read_header, ImageLimits};
use super::models::require_models;
use super::onnx::{self, Plan};
use super::{AnalyzedFace, FaceAnalyzer, ImageAnalysis};
use crate::engine::EngineError;
use crate::model::{BoundingBox, Confidence, FaceAttributes, ImageId};

/// The face model version recorded on collections.
pub const MODEL_VERSION: &str = "yunet-2023mar+sface-2021dec+dlib-age-gender-v1";
/// The length of SFace's embeddings.
pub const EMBEDDING_DIM: usize = 128;
/// What an analysis takes from the budget besides its decoded image: the detector's input and
/// intermediate tensors, the recognisers', and what the allocator keeps per thread. Measured on
/// the release server: eight concurrent uploads of a one-megapixel photo (3 MB decoded) raised its
/// resident memory by 340 MB, 42 MB each.
pub const WORKING_BYTES: u64 = 48 * 1024 * 1024;

/// The local models behind one cheap handle.
#[derive(Clone, Debug)]
pub struct LocalAnalyzer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    detector: Detector,
    recognizer: Plan,
    gender: Plan,
    age: Plan,
    manifest: Manifest,
    limits: ImageLimits,
    /// `limits.concurrent_analysis_bytes`, lent to each analysis for as long as it runs.
    budget: MemoryBudget,
}

fn backend(operation: &'static str) -> impl FnOnce(TractError) -> EngineError {
    move |e| EngineError::Backend {
        operation,
        source: e.into(),
    }
}

impl LocalAnalyzer {
    /// Loads and checks the models from the cache directory; `EngineError::ModelsMissing` says to
    /// run `facegraph models fetch` when they are not there.
    pub fn load(models_dir: &Path, limits: ImageLimits) -> Result<Self, EngineError> {
        let paths = require_models(models_dir)?;
        let detector = Detector::load(&paths.detector).map_err(backend("loading YuNet"))?;
        let recognizer = onnx::read_proto(&paths.recognizer)
            .and_then(|p| onnx::plan(&p, &[1, 3, 112, 112]))
            .map_err(backend("loading SFace"))?;
        let manifest_text =
            std::fs::read_to_string(&paths.manifest).map_err(|e| EngineError::Backend {
                operation: "reading the age and gender manifest",
                source: e.into(),
            })?;
        let manifest: Manifest =
            serde_json::from_str(&manifest_text).map_err(|e| EngineError::Backend {
                operation: "parsing the age and gender manifest",
                source: e.into(),
            })?;
        manifest.check().map_err(|e| EngineError::Backend {
            operation: "checking the age and gender manifest",
            source: e.into(),
        })?;
        let (gs, ags) = (manifest.gender_size(), manifest.age_size());
        let gender = onnx::read_proto(&paths.gender)
            .and_then(|p| onnx::plan(&p, &[1, 3, gs, gs]))
            .map_err(backend("loading the gender network"))?;
        let age = onnx::read_proto(&paths.age)
            .and_then(|p| onnx::plan(&p, &[1, 3, ags, ags]))
            .map_err(backend("loading the age network"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                detector,
                recognizer,
                gender,
                age,
                manifest,
                limits,
                budget: MemoryBudget::new(limits.concurrent_analysis_bytes),
            }),
        })
    }

    /// The same models with another detection score threshold (0-1; default 0.8).
    pub fn with_score_threshold(self, threshold: f32) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => return Self { inner: shared },
        };
        inner.detector.score_threshold = threshold;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Analyses the faces of a decoded image, largest first.
    pub fn analyze_pixels(&self, img: &RgbImage) -> Result<Vec<AnalyzedFace>, EngineError> {
        let detections = self
            .inner
            .detector
            .detect(img)
            .map_err(backend("face detection"))?;
        let mut faces = detections
            .iter()
            .map(|d| self.face(img, d))
            .collect::<Result<Vec<_>, _>>()?;
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(faces)
    }

    /// Detection and embedding only (no attributes), best detection first: the benchmark's
    /// comparison with OpenCV's `FaceDetectorYN` + `FaceRecognizerSF`.
    pub fn detect_and_embed(
        &self,
        img: &RgbImage,
    ) -> Result<Vec<(Detection, Vec<f32>)>, EngineError> {
        let detections = self
            .inner
            .detector
            .detect(img)
            .map_err(backend("face detection"))?;
        detections
            .into_iter()
            .map(|d| Ok((d, self.embed(img, &d.landmarks)?)))
            .collect()
    }

    /// The SFace embedding (L2-normalised) of the face with these landmarks.
    pub fn embed(
        &self,
        img: &RgbImage,
        landmarks: &[(f32, f32); 5],
    ) -> Result<Vec<f32>, EngineError> {
        let aligned = self.align_arcface(img, landmarks);
        self.embed_aligned(&aligned)
    }

    fn align_arcface(&self, img: &RgbImage, landmarks: &[(f32, f32); 5]) -> RgbImage {
        let src = landmarks.map(|(x, y)| (f64::from(x), f64::from(y)));
        let m = align::similarity_transform(&src, &ARCFACE_112);
        // No anti-aliasing: OpenCV's alignCrop samples bilinearly, and SFace was trained that way.
        align::warp(img, &m, 112, false)
    }

    fn embed_aligned(&self, aligned: &RgbImage) -> Result<Vec<f32>, EngineError> {
        // SFace takes RGB, 0-255, no mean: OpenCV's blobFromImage(aligned, 1, 112x112, 0, swapRB).
        let mut data = vec![0f32; 3 * 112 * 112];
        for (x, y, p) in aligned.enumerate_pixels() {
            for c in 0..3 {
                data[c * 112 * 112 + y as usize * 112 + x as usize] = f32::from(p.0[c]);
            }
        }
        let out = run1(&self.inner.recognizer, &[1, 3, 112, 112], &data, "SFace")?;
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= 0.0 {
            return Err(EngineError::Backend {
                operation: "SFace",
                source: "the embedding is zero or not finite".into(),
            });
        }
        Ok(out.iter().map(|v| v / norm).collect())
    }

    fn face(&self, img: &RgbImage, d: &Detection) -> Result<AnalyzedFace, EngineError> {
        let aligned = self.align_arcface(img, &d.landmarks);
        let embedding = self.embed_aligned(&aligned)?;
        let m = &self.inner.manifest;
        let src = d.landmarks.map(|(x, y)| (f64::from(x), f64::from(y)));
        let chip = |size: usize| {
            let to_chip =
                align::similarity_transform(&src, &align::dlib_template(size as u32, m.padding()));
            align::warp(img, &to_chip, size as u32, true)
        };
        let (gs, ags) = (m.gender_size(), m.age_size());
        // Gender is the mean of the chip's and its mirror image's probabilities: a cheap test-time
        // augmentation that steadies the small 32x32 classifier on hard faces.
        let gchip = chip(gs);
        let mut gp = run1(
            &self.inner.gender,
            &[1, 3, gs, gs],
            &m.gender_input(&gchip),
            "gender",
        )?;
        let mirrored = image::imageops::flip_horizontal(&gchip);
        let gq = run1(
            &self.inner.gender,
            &[1, 3, gs, gs],
            &m.gender_input(&mirrored),
            "gender",
        )?;
        for (p, q) in gp.iter_mut().zip(&gq) {
            *p = (*p + q) / 2.0;
        }
        let ap = run1(
            &self.inner.age,
            &[1, 3, ags, ags],
            &m.age_input(&chip(ags)),
            "age",
        )?;
        let (w, h) = (img.width() as f32, img.height() as f32);
        Ok(AnalyzedFace {
            bbox: BoundingBox {
                left: d.bbox[0] / w,
                top: d.bbox[1] / h,
                width: d.bbox[2] / w,
                height: d.bbox[3] / h,
            },
            confidence: Confidence::new((f64::from(d.score) * 100.0).clamp(0.0, 100.0)).map_err(
                |e| EngineError::Backend {
                    operation: "face detection",
                    source: e.into(),
                },
            )?,
            landmarks: d.landmarks,
            embedding,
            attributes: FaceAttributes {
                gender: m.gender(&gp),
                age: m.age(&ap),
                quality: attributes::quality(img, d.bbox, &aligned),
                pose: attributes::pose(&d.landmarks),
            },
        })
    }

    /// Analyses several images on all cores; results in input order.
    pub fn analyze_many(&self, images: &[&[u8]]) -> Vec<Result<ImageAnalysis, EngineError>> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(images.len())
            .max(1);
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<ImageAnalysis, EngineError>>>> =
            Mutex::new((0..images.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(bytes) = images.get(i) else { break };
                    let r = self.analyze(bytes);
                    let mut all = results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    all[i] = Some(r);
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(EngineError::Backend {
                        operation: "analysis",
                        source: "a worker thread stopped".into(),
                    })
                })
            })
            .collect()
    }
}

fn run1(
    plan: &Plan,
    shape: &[usize],
    data: &[f32],
    what: &'static str,
) -> Result<Vec<f32>, EngineError> {
    let tensor = Tensor::from_shape(shape, data).map_err(backend(what))?;
    let mut out = onnx::run(plan, tensor).map_err(backend(what))?;
    if out.is_empty() {
        return Err(EngineError::Backend {
            operation: what,
            source: "the network gave no output".into(),
        });
    }
    Ok(out.swap_remove(0).1)
}

impl FaceAnalyzer for LocalAnalyzer {
    /// Reads the header first and waits for the analysis's share of the budget (the decoded bytes
    /// plus [`WORKING_BYTES`]), which it holds until the decoded pixels are dropped: the budget
    /// bounds what the analyses running at once hold, not only what they decode.
    fn analyze(&self, bytes: &[u8]) -> Result<ImageAnalysis, EngineError> {
        let header = read_header(bytes, self.inner.limits)?;
        let _share = self
            .inner
            .budget
            .acquire(header.decoded_bytes().saturating_add(WORKING_BYTES));
        let img = header.decode()?;
        let faces = self.analyze_pixels(&img)?;
        Ok(ImageAnalysis {
            image_id: ImageId::of_bytes(bytes),
            width: img.width(),
            height: img.height(),
            faces,
        })
    }

    fn model_version(&self) -> &str {
        MODEL_VERSION
    }

    fn embedding_dim(&self) -> usize {
        EMBEDDING_DIM
    }
}
