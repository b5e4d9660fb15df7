//! Tests of the local engine's collection semantics: persistence, crash recovery, dedup on re-run,
//! pagination, MaxFaces and QualityFilter reasons, deletes, search order and thresholds, and
//! concurrent use. They run on a small deterministic test analyzer that reads a synthetic image
//! format of its own (a magic line and a JSON description of the faces, with explicit embeddings),
//! so that cosines are chosen exactly. It exists only to test the collections; end-to-end tests on
//! real photos come with the real analyzer (ONNX models).

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod collections;
mod recovery;
mod rekognition;
mod routing;

use super::{AnalyzedFace, FaceAnalyzer, ImageAnalysis, LocalEngine};
use crate::engine::{
    EngineError, FaceEngine, ImageError, ImageSource, IndexFacesRequest, IndexFacesResult,
    QualityFilter,
};
use crate::model::{
    BoundingBox, CollectionId, Confidence, ExternalImageId, FaceAttributes, FaceId, Gender,
    GenderValue, ImageId, Pose, Quality, Similarity,
};

const MAGIC: &[u8] = b"FGTESTIMG\n";
const DIM: usize = 8;

/// One face of a synthetic image.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FaceSpec {
    /// left, top, width, height as ratios.
    bbox: [f32; 4],
    emb: Vec<f32>,
    conf: f64,
    bright: f32,
    sharp: f32,
    yaw: f32,
    pitch: f32,
}

/// A synthetic image: its size, faces, and a tag that makes otherwise equal images differ.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Img {
    w: u32,
    h: u32,
    faces: Vec<FaceSpec>,
    tag: String,
}

impl Img {
    fn new(tag: &str, faces: Vec<FaceSpec>) -> Self {
        Self {
            w: 1000,
            h: 1000,
            faces,
            tag: tag.to_owned(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend(serde_json::to_vec(self).unwrap());
        b
    }
}

/// A good face of `size` (ratio) at `left`, with embedding `emb`.
fn face(emb: Vec<f32>, size: f32, left: f32) -> FaceSpec {
    FaceSpec {
        bbox: [left, 0.1, size, size],
        emb,
        conf: 99.5,
        bright: 80.0,
        sharp: 70.0,
        yaw: 3.0,
        pitch: -2.0,
    }
}

/// A unit vector along axis `a` turned towards axis `b` so that its cosine with axis `a` is `cos`.
fn toward(a: usize, b: usize, cos: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[a] = cos;
    v[b] = (1.0 - cos * cos).max(0.0).sqrt();
    v
}

fn axis(a: usize) -> Vec<f32> {
    toward(a, (a + 1) % DIM, 1.0)
}

#[derive(Debug)]
struct TestAnalyzer {
    version: &'static str,
}

impl FaceAnalyzer for TestAnalyzer {
    fn analyze(&self, bytes: &[u8]) -> Result<ImageAnalysis, EngineError> {
        if bytes.is_empty() {
            return Err(ImageError::Empty.into());
        }
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| ImageError::UnsupportedFormat {
                found: "not a test image".to_owned(),
            })?;
        let img: Img =
            serde_json::from_slice(body).map_err(|e| ImageError::Decode(format!("{e}")))?;
        let mut faces: Vec<AnalyzedFace> = img
            .faces
            .iter()
            .map(|f| {
                let bbox = BoundingBox {
                    left: f.bbox[0],
                    top: f.bbox[1],
                    width: f.bbox[2],
                    height: f.bbox[3],
                };
                let (px, py) = (bbox.left * img.w as f32, bbox.top * img.h as f32);
                let (pw, ph) = (bbox.width * img.w as f32, bbox.height * img.h as f32);
                AnalyzedFace {
                    bbox,
                    confidence: Confidence::new(f.conf).unwrap(),
                    landmarks: [
                        (px + 0.3 * pw, py + 0.4 * ph),
                        (px + 0.7 * pw, py + 0.4 * ph),
                        (px + 0.5 * pw, py + 0.6 * ph),
                        (px + 0.35 * pw, py + 0.8 * ph),
                        (px + 0.65 * pw, py + 0.8 * ph),
                    ],
                    embedding: f.emb.clone(),
                    attributes: FaceAttributes {
                        gender: Some(Gender {
                            value: GenderValue::Female,
                            confidence: Confidence::new(97.25).unwrap(),
                        }),
                        age: Some(crate::model::AgeRange::new(25, 33).unwrap()),
                        quality: Some(
                            Quality::new(f64::from(f.bright), f64::from(f.sharp)).unwrap(),
                        ),
                        pose: Some(Pose::new(f64::from(f.yaw), f64::from(f.pitch), 1.5).unwrap()),
                    },
                }
            })
            .collect();
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(ImageAnalysis {
            image_id: ImageId::of_bytes(bytes),
            width: img.w,
            height: img.h,
            faces,
        })
    }

    fn model_version(&self) -> &str {
        self.version
    }

    fn embedding_dim(&self) -> usize {
        DIM
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    engine: LocalEngine,
    coll: CollectionId,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let engine = open_engine(&dir);
        let coll = CollectionId::parse("test-faces").unwrap();
        engine.create_collection(&coll).unwrap();
        Self {
            _tmp: tmp,
            dir,
            engine,
            coll,
        }
    }

    fn reopen(&mut self) {
        self.engine = open_engine(&self.dir);
    }

    fn index(&self, img: &Img, ext: &str) -> IndexFacesResult {
        self.index_with(img, ext, None, QualityFilter::Auto)
            .unwrap()
    }

    fn index_with(
        &self,
        img: &Img,
        ext: &str,
        max_faces: Option<u32>,
        quality_filter: QualityFilter,
    ) -> Result<IndexFacesResult, EngineError> {
        let bytes = img.bytes();
        let ext = ExternalImageId::parse(ext).unwrap();
        self.engine.index_faces(&IndexFacesRequest {
            collection_id: &self.coll,
            image: ImageSource::Bytes(&bytes),
            external_image_id: Some(&ext),
            subject_id: None,
            max_faces,
            quality_filter,
        })
    }

    fn search(&self, face: &FaceId, threshold: f64, max: u32) -> Vec<(FaceId, f64)> {
        self.engine
            .search_faces(&self.coll, face, Similarity::new(threshold).unwrap(), max)
            .unwrap()
            .into_iter()
            .map(|m| (m.face_id, m.similarity.get()))
            .collect()
    }

    fn count(&self) -> u64 {
        self.engine
            .describe_collection(&self.coll)
            .unwrap()
            .face_count
    }

    fn all_faces(&self, page: u32) -> Vec<FaceId> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let p = self
                .engine
                .list_faces(&self.coll, token.as_deref(), page)
                .unwrap();
            assert!(p.faces.len() <= page as usize);
            out.extend(p.faces.into_iter().map(|f| f.face_id));
            match p.next_token {
                Some(t) => token = Some(t),
                None => return out,
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join("collections")
            .join(self.coll.as_str())
            .join("faces.log")
    }
}

fn open_engine(dir: &Path) -> LocalEngine {
    LocalEngine::open(dir, Arc::new(TestAnalyzer { version: "test-1" }))
        .unwrap()
        .with_search_threads(2)
}

fn one_face(tag: &str, emb: Vec<f32>) -> Img {
    Img::new(tag, vec![face(emb, 0.3, 0.1)])
}
