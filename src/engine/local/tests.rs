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

use super::{
    calibration, index_faces_response, AnalyzedFace, FaceAnalyzer, ImageAnalysis, LocalEngine,
};
use crate::engine::{
    EngineError, FaceEngine, ImageError, ImageSource, IndexFacesRequest, IndexFacesResult,
    QualityFilter, UnindexedReason,
};
use crate::model::{
    BoundingBox, CollectionId, Confidence, ContentHash, ExternalImageId, FaceAttributes, FaceId,
    Gender, GenderValue, ImageId, Pose, Quality, Similarity, Timestamp,
};
use crate::rekognition::{index_faces_to_domain, parse_saved, SavedResponse};

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
                        age: Some(crate::model::AgeRange::new(25, 33)),
                        quality: Some(Quality {
                            brightness: f.bright,
                            sharpness: f.sharp,
                        }),
                        pose: Some(Pose {
                            yaw: f.yaw,
                            pitch: f.pitch,
                            roll: 1.5,
                        }),
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

#[test]
fn collections_are_created_listed_described_and_deleted() {
    let f = Fixture::new();
    let other = CollectionId::parse("another.one").unwrap();
    f.engine.create_collection(&other).unwrap();
    assert!(matches!(
        f.engine.create_collection(&other),
        Err(EngineError::CollectionExists(_))
    ));
    assert_eq!(
        f.engine.list_collections().unwrap(),
        vec![other.clone(), f.coll.clone()]
    );
    let info = f.engine.describe_collection(&other).unwrap();
    assert_eq!(info.face_count, 0);
    assert_eq!(info.face_model_version, "test-1");
    assert!(info.created_at.millis() > 0);
    f.engine.delete_collection(&other).unwrap();
    assert_eq!(f.engine.list_collections().unwrap(), vec![f.coll.clone()]);
    assert!(matches!(
        f.engine.describe_collection(&other),
        Err(EngineError::CollectionNotFound(_))
    ));
    assert!(matches!(
        f.engine.delete_collection(&other),
        Err(EngineError::CollectionNotFound(_))
    ));
    // A deleted collection can be created again, empty.
    f.engine.create_collection(&other).unwrap();
    assert_eq!(f.engine.describe_collection(&other).unwrap().face_count, 0);
}

#[test]
fn faces_come_largest_first_with_lowercase_uuids_and_rekognition_records() {
    let f = Fixture::new();
    let img = Img::new(
        "group",
        vec![
            face(axis(0), 0.1, 0.0),
            face(axis(1), 0.3, 0.3),
            face(axis(2), 0.2, 0.7),
        ],
    );
    let r = f.index(&img, "group.jpg");
    let widths: Vec<f32> = r.faces.iter().map(|f| f.bbox.width).collect();
    assert_eq!(widths, [0.3, 0.2, 0.1]);
    assert_eq!(
        r.faces.iter().map(|f| f.is_largest).collect::<Vec<_>>(),
        [true, false, false]
    );
    for face in &r.faces {
        let id = face.face_id.as_str();
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(uuid.get_version_num(), 4, "{id}");
        assert_eq!(id, id.to_lowercase());
        // The image is the upload: these bytes under this external image id.
        let content = ContentHash::of_bytes(&img.bytes());
        let ext = ExternalImageId::parse("group.jpg").unwrap();
        assert_eq!(face.image_id, ImageId::of_upload(&content, Some(&ext)));
        assert_eq!(r.image.content_sha256.as_ref(), Some(&content));
        assert_eq!(
            face.external_image_id.as_ref().unwrap().as_str(),
            "group.jpg"
        );
        let raw = face.raw.as_deref().unwrap();
        assert!(raw.starts_with(r#"{"Face":{"FaceId":""#), "{raw}");
        assert!(
            raw.contains(r#""Landmarks":[{"Type":"eyeLeft","X":"#),
            "{raw}"
        );
        assert_eq!(face.attributes.gender.unwrap().value, GenderValue::Female);
    }
    assert_eq!(r.image.width, Some(1000));
    assert_eq!(r.image.face_count, 3);
    assert_eq!(r.face_model_version, "test-1");
    assert_eq!(f.count(), 3);
}

#[test]
fn the_index_faces_response_reads_back_through_ingest_rekognition() {
    let f = Fixture::new();
    let img = Img::new(
        "pair",
        vec![
            face(axis(0), 0.3, 0.0),
            face(axis(1), 0.2, 0.5),
            face(axis(2), 0.01, 0.9),
        ],
    );
    let r = f.index(&img, "pair.jpg");
    assert_eq!(r.unindexed.len(), 1);
    let response = index_faces_response(&r);
    let bytes = serde_json::to_vec_pretty(&response).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("\"FaceRecords\""), "{text}");
    assert!(text.contains("\"UnindexedFaces\""), "{text}");
    assert!(text.contains("\"SMALL_BOUNDING_BOX\""), "{text}");
    let SavedResponse::IndexFaces(parsed) = parse_saved(&bytes).unwrap() else {
        panic!("not read back as IndexFaces");
    };
    let indexed_at = r.faces[0].indexed_at;
    let domain = index_faces_to_domain(&parsed, &f.coll, indexed_at).unwrap();
    assert_eq!(domain.faces, r.faces);
    assert_eq!(domain.face_model_version.as_deref(), Some("test-1"));
    assert_eq!(
        domain.unindexed,
        vec![vec!["SMALL_BOUNDING_BOX".to_owned()]]
    );
    assert_eq!(domain.image.unwrap().face_count, 3);
}

#[test]
fn max_faces_keeps_the_largest_and_reports_the_rest() {
    let f = Fixture::new();
    let img = Img::new(
        "three",
        vec![
            face(axis(0), 0.1, 0.0),
            face(axis(1), 0.3, 0.3),
            face(axis(2), 0.2, 0.7),
        ],
    );
    let r = f
        .index_with(&img, "three.jpg", Some(2), QualityFilter::Auto)
        .unwrap();
    assert_eq!(r.faces.len(), 2);
    assert_eq!(r.faces[0].bbox.width, 0.3);
    assert_eq!(r.faces[1].bbox.width, 0.2);
    assert_eq!(r.unindexed.len(), 1);
    assert_eq!(r.unindexed[0].bbox.width, 0.1);
    assert_eq!(r.unindexed[0].reasons, [UnindexedReason::ExceedsMaxFaces]);
    let err = f
        .index_with(&img, "zero.jpg", Some(0), QualityFilter::Auto)
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidParameter(_)), "{err}");
}

#[test]
fn quality_filters_give_rekognition_reasons() {
    use QualityFilter::{Auto, High, Low, Medium, None as NoFilter};
    use UnindexedReason as R;
    let good = face(axis(0), 0.3, 0.1);
    let with = |change: &dyn Fn(&mut FaceSpec)| {
        let mut s = good.clone();
        change(&mut s);
        s
    };
    let cases: Vec<(&str, FaceSpec, QualityFilter, Vec<R>)> = vec![
        ("good face, high bar", good.clone(), High, vec![]),
        ("unsure, low bar", with(&|s| s.conf = 60.0), Low, vec![]),
        (
            "unsure, auto",
            with(&|s| s.conf = 60.0),
            Auto,
            vec![R::LowConfidence],
        ),
        (
            "tiny, low",
            with(&|s| s.bbox = [0.1, 0.1, 0.015, 0.015]),
            Low,
            vec![R::SmallBoundingBox],
        ),
        (
            "small, medium",
            with(&|s| s.bbox = [0.1, 0.1, 0.03, 0.03]),
            Medium,
            vec![R::SmallBoundingBox],
        ),
        (
            "small, low",
            with(&|s| s.bbox = [0.1, 0.1, 0.03, 0.03]),
            Low,
            vec![],
        ),
        (
            "dark",
            with(&|s| s.bright = 15.0),
            Medium,
            vec![R::LowBrightness],
        ),
        ("dark, low", with(&|s| s.bright = 15.0), Low, vec![]),
        (
            "blurred",
            with(&|s| s.sharp = 20.0),
            High,
            vec![R::LowSharpness],
        ),
        (
            "profile",
            with(&|s| s.yaw = -70.0),
            Medium,
            vec![R::ExtremePose],
        ),
        (
            "looking down",
            with(&|s| s.pitch = 50.0),
            Medium,
            vec![R::ExtremePose],
        ),
        ("profile, low", with(&|s| s.yaw = -70.0), Low, vec![]),
        (
            "mediocre together",
            with(&|s| {
                s.bright = 25.0;
                s.sharp = 12.0;
            }),
            Medium,
            vec![R::LowFaceQuality],
        ),
        (
            "everything wrong, no filter",
            with(&|s| {
                s.conf = 10.0;
                s.bright = 1.0;
                s.yaw = 90.0;
            }),
            NoFilter,
            vec![],
        ),
        (
            "everything wrong",
            with(&|s| {
                s.conf = 10.0;
                s.bbox = [0.1, 0.1, 0.01, 0.01];
                s.bright = 1.0;
                s.sharp = 1.0;
                s.yaw = 90.0;
            }),
            Low,
            vec![
                R::LowConfidence,
                R::SmallBoundingBox,
                R::LowBrightness,
                R::LowSharpness,
                R::ExtremePose,
                R::LowFaceQuality,
            ],
        ),
    ];
    let f = Fixture::new();
    for (i, (name, spec, filter, expected)) in cases.into_iter().enumerate() {
        let img = Img::new(&format!("q{i}"), vec![spec]);
        let r = f
            .index_with(&img, &format!("q{i}.jpg"), None, filter)
            .unwrap();
        if expected.is_empty() {
            assert_eq!(r.faces.len(), 1, "{name}: should be indexed");
            assert!(r.unindexed.is_empty(), "{name}");
        } else {
            assert!(r.faces.is_empty(), "{name}: should be left out");
            assert_eq!(r.unindexed.len(), 1, "{name}");
            assert_eq!(r.unindexed[0].reasons, expected, "{name}");
        }
    }
}

#[test]
fn reindexing_the_same_image_returns_the_existing_faces() {
    let f = Fixture::new();
    let img = Img::new(
        "selfie",
        vec![face(axis(0), 0.3, 0.1), face(axis(3), 0.01, 0.8)],
    );
    let first = f.index(&img, "selfie.jpg");
    assert_eq!((first.faces.len(), first.unindexed.len()), (1, 1));
    let again = f.index(&img, "selfie.jpg");
    assert_eq!(again, first, "a re-run answers exactly as the first run");
    assert_eq!(f.count(), 1);

    // Same bytes under another name are another image, as in Rekognition.
    let renamed = f.index(&img, "copy-of-selfie.jpg");
    assert_ne!(renamed.faces[0].face_id, first.faces[0].face_id);
    assert_eq!(f.count(), 2);

    // An image whose faces were all deleted is indexed afresh.
    f.engine
        .delete_faces(&f.coll, &[first.faces[0].face_id.clone()])
        .unwrap();
    let fresh = f.index(&img, "selfie.jpg");
    assert_ne!(fresh.faces[0].face_id, first.faces[0].face_id);
    assert_eq!(f.count(), 2);

    // An image without faces is remembered too.
    let empty = Img::new("landscape", vec![]);
    assert!(f.index(&empty, "landscape.jpg").faces.is_empty());
    assert!(f.index(&empty, "landscape.jpg").faces.is_empty());
    assert_eq!(f.count(), 2);
}

#[test]
fn collections_survive_a_restart() {
    let mut f = Fixture::new();
    let a = f.index(&one_face("a", axis(0)), "a.jpg");
    let b = f.index(&one_face("b", toward(0, 1, 0.95)), "b.jpg");
    let c = f.index(&one_face("c", toward(0, 2, 0.9)), "c.jpg");
    f.engine
        .delete_faces(&f.coll, &[c.faces[0].face_id.clone()])
        .unwrap();
    let before = f.search(&a.faces[0].face_id, 0.0, 10);
    let listed = f.engine.list_faces(&f.coll, None, 100).unwrap().faces;
    f.reopen();
    assert_eq!(f.count(), 2);
    assert_eq!(f.search(&a.faces[0].face_id, 0.0, 10), before);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].0, b.faces[0].face_id);
    assert_eq!(
        f.engine.list_faces(&f.coll, None, 100).unwrap().faces,
        listed
    );
    assert_eq!(f.index(&one_face("b", toward(0, 1, 0.95)), "b.jpg"), b);
    assert_eq!(f.count(), 2);
}

#[test]
fn a_crash_in_the_middle_of_a_record_loses_only_that_call() {
    let mut f = Fixture::new();
    let images: Vec<Img> = (0..4)
        .map(|i| one_face(&format!("i{i}"), axis(i)))
        .collect();
    let done: Vec<IndexFacesResult> = images[..3]
        .iter()
        .enumerate()
        .map(|(i, img)| f.index(img, &format!("i{i}.jpg")))
        .collect();
    let whole = std::fs::metadata(f.log_path()).unwrap().len();
    f.index(&images[3], "i3.jpg");
    let with_fourth = std::fs::metadata(f.log_path()).unwrap().len();
    // The process dies while writing the fourth record: half of it reached the disk.
    drop(std::mem::replace(&mut f.engine, open_engine(&f.dir)));
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(f.log_path())
        .unwrap();
    log.set_len(whole + (with_fourth - whole) / 2).unwrap();
    drop(log);
    f.reopen();
    assert_eq!(f.count(), 3);
    assert_eq!(std::fs::metadata(f.log_path()).unwrap().len(), whole);
    // Re-running the whole batch adds the lost image once and nothing else.
    for (i, img) in images.iter().enumerate() {
        let r = f.index(img, &format!("i{i}.jpg"));
        if let Some(earlier) = done.get(i) {
            assert_eq!(&r, earlier);
        }
    }
    assert_eq!(f.count(), 4);
    assert_eq!(f.all_faces(10).len(), 4);
}

#[test]
fn a_zero_filled_tail_is_cut_and_damage_before_good_records_is_refused() {
    let mut f = Fixture::new();
    f.index(&one_face("a", axis(0)), "a.jpg");
    let len = std::fs::metadata(f.log_path()).unwrap().len();
    // A file system may extend a file whose new blocks were never written.
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(f.log_path())
        .unwrap();
    log.set_len(len + 4096).unwrap();
    drop(log);
    f.reopen();
    assert_eq!(f.count(), 1);
    assert_eq!(std::fs::metadata(f.log_path()).unwrap().len(), len);

    f.index(&one_face("b", axis(1)), "b.jpg");
    let mut bytes = std::fs::read(f.log_path()).unwrap();
    bytes[20] ^= 0xff; // inside the first record, which a later good record follows
    std::fs::write(f.log_path(), &bytes).unwrap();
    f.reopen();
    let err = f.engine.describe_collection(&f.coll).unwrap_err();
    let chain = crate::errors::chain(&err);
    assert!(chain.contains("corrupt at byte 8"), "{chain}");
}

#[test]
fn list_faces_pages_through_every_face_once_in_a_stable_order() {
    let f = Fixture::new();
    for i in 0..25 {
        f.index(
            &one_face(&format!("p{i}"), toward(i % DIM, (i + 1) % DIM, 0.6)),
            &format!("p{i}.jpg"),
        );
    }
    let all = f.all_faces(10);
    assert_eq!(all.len(), 25);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, all, "id order, no duplicates");
    assert_eq!(f.all_faces(7), all);
    assert_eq!(f.all_faces(4096), all);

    // A face added between pages does not disturb the faces already there.
    let first = f.engine.list_faces(&f.coll, None, 10).unwrap();
    f.index(&one_face("late", axis(5)), "late.jpg");
    let mut seen: Vec<FaceId> = first.faces.iter().map(|x| x.face_id.clone()).collect();
    let mut token = first.next_token;
    while let Some(t) = token {
        let p = f.engine.list_faces(&f.coll, Some(&t), 10).unwrap();
        seen.extend(p.faces.into_iter().map(|x| x.face_id));
        token = p.next_token;
    }
    for id in &all {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1);
    }

    for bad in ["", "garbage", "lf1.zz", "lf1.00"] {
        let err = f.engine.list_faces(&f.coll, Some(bad), 10).unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidPaginationToken(ref t) if t == bad),
            "{bad}: {err}"
        );
    }
    assert!(f.engine.list_faces(&f.coll, None, 0).is_err());
}

#[test]
fn listed_faces_carry_their_attributes_and_records() {
    let f = Fixture::new();
    let r = f.index(
        &Img::new(
            "two",
            vec![face(axis(0), 0.3, 0.1), face(axis(1), 0.2, 0.6)],
        ),
        "two.jpg",
    );
    let mut listed = f.engine.list_faces(&f.coll, None, 10).unwrap().faces;
    listed.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
    assert_eq!(listed, r.faces);
}

#[test]
fn search_orders_by_similarity_applies_the_threshold_and_never_returns_the_face_itself() {
    let f = Fixture::new();
    let query = f.index(&one_face("q", axis(0)), "q.jpg").faces[0]
        .face_id
        .clone();
    let mut ids = Vec::new();
    for (i, cos) in [0.2f32, 0.97, 0.5, 0.9, 0.35].iter().enumerate() {
        let r = f.index(
            &one_face(&format!("c{i}"), toward(0, 1 + i, *cos)),
            &format!("c{i}.jpg"),
        );
        ids.push((r.faces[0].face_id.clone(), *cos));
    }
    // A second photo with the very same embedding is found; the searched face itself never is.
    let twin = f.index(&one_face("twin", axis(0)), "twin.jpg").faces[0]
        .face_id
        .clone();

    let expected = |threshold: f64| -> Vec<FaceId> {
        let mut v: Vec<(FaceId, f32)> = ids.clone();
        v.push((twin.clone(), 1.0));
        v.retain(|(_, c)| calibration::similarity_from_cosine(*c).get() >= threshold);
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.into_iter().map(|(id, _)| id).collect()
    };
    for threshold in [0.0, 50.0, 80.0, 99.0] {
        let hits = f.search(&query, threshold, 100);
        assert!(hits.iter().all(|(id, _)| *id != query));
        let got: Vec<FaceId> = hits.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(got, expected(threshold), "threshold {threshold}");
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(hits.iter().all(|(_, s)| *s >= threshold));
    }
    assert_eq!(f.search(&query, 0.0, 2).len(), 2);
    let hits = f.search(&query, 0.0, 100);
    assert_eq!(hits[0].0, twin);
    assert!(hits[0].1 > 99.9);

    // A threshold exactly at a hit's similarity keeps it.
    let exact = calibration::similarity_from_cosine(0.5).get();
    let at = f.search(&query, exact, 100);
    assert_eq!(at.last().map(|h| h.1), Some(exact));

    let missing = FaceId::parse("00000000-0000-4000-8000-000000000000").unwrap();
    let err = f
        .engine
        .search_faces(&f.coll, &missing, Similarity::new(80.0).unwrap(), 10)
        .unwrap_err();
    assert!(matches!(err, EngineError::FaceNotFound { .. }), "{err}");
    let err = f
        .engine
        .search_faces(&f.coll, &query, Similarity::new(80.0).unwrap(), 0)
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidParameter(_)), "{err}");
}

#[test]
fn search_by_image_uses_the_largest_face() {
    let f = Fixture::new();
    let target = f.index(&one_face("t", axis(2)), "t.jpg").faces[0]
        .face_id
        .clone();
    f.index(&one_face("u", axis(4)), "u.jpg");
    let probe = Img::new(
        "probe",
        vec![face(axis(4), 0.1, 0.0), face(toward(2, 3, 0.98), 0.4, 0.5)],
    );
    let r = f
        .engine
        .search_faces_by_image(&f.coll, &probe.bytes(), Similarity::new(80.0).unwrap(), 10)
        .unwrap();
    assert_eq!(r.searched_bbox.width, 0.4);
    assert_eq!(r.matches.len(), 1);
    assert_eq!(r.matches[0].face_id, target);
    assert_eq!(
        r.matches[0].external_image_id.as_ref().unwrap().as_str(),
        "t.jpg"
    );

    let none = Img::new("empty", vec![]);
    let err = f
        .engine
        .search_faces_by_image(&f.coll, &none.bytes(), Similarity::new(80.0).unwrap(), 10)
        .unwrap_err();
    assert!(matches!(err, EngineError::NoFaceInImage), "{err}");
    let err = f
        .engine
        .search_faces_by_image(&f.coll, b"GIF89a", Similarity::new(80.0).unwrap(), 10)
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidImage(_)), "{err}");
}

#[test]
fn deleted_faces_are_gone_from_search_list_and_restart_and_compaction_keeps_the_rest() {
    let mut f = Fixture::new();
    let mut ids = Vec::new();
    for i in 0..12 {
        let r = f.index(
            &one_face(
                &format!("d{i}"),
                toward(0, 1 + i % 7, 0.99 - i as f32 * 0.01),
            ),
            &format!("d{i}.jpg"),
        );
        ids.push(r.faces[0].face_id.clone());
    }
    let unknown = FaceId::parse("00000000-0000-4000-8000-000000000001").unwrap();
    let gone = f
        .engine
        .delete_faces(
            &f.coll,
            &[ids[1].clone(), unknown, ids[2].clone(), ids[1].clone()],
        )
        .unwrap();
    assert_eq!(gone, vec![ids[1].clone(), ids[2].clone()]);
    assert_eq!(f.count(), 10);
    let hits = f.search(&ids[0], 0.0, 100);
    assert_eq!(hits.len(), 9);
    assert!(hits.iter().all(|(id, _)| *id != ids[1] && *id != ids[2]));
    assert!(matches!(
        f.engine
            .search_faces(&f.coll, &ids[1], Similarity::new(0.0).unwrap(), 10),
        Err(EngineError::FaceNotFound { .. })
    ));
    let listed = f.all_faces(100);
    assert!(!listed.contains(&ids[1]));

    let before = std::fs::metadata(f.log_path()).unwrap().len();
    f.engine.compact_collection(&f.coll).unwrap();
    assert!(std::fs::metadata(f.log_path()).unwrap().len() < before);
    assert_eq!(f.search(&ids[0], 0.0, 100), hits);
    assert_eq!(f.all_faces(3), listed);
    f.reopen();
    assert_eq!(f.count(), 10);
    assert_eq!(f.search(&ids[0], 0.0, 100), hits);
    assert_eq!(f.all_faces(3), listed);
    // Writes after compaction land in the new log.
    f.index(&one_face("after", axis(6)), "after.jpg");
    f.reopen();
    assert_eq!(f.count(), 11);
}

#[test]
fn indexing_and_searching_from_two_threads_at_once() {
    let f = Fixture::new();
    let anchor = f.index(&one_face("anchor", axis(0)), "anchor.jpg").faces[0]
        .face_id
        .clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..40 {
                f.index(
                    &one_face(&format!("w{i}"), toward(0, 1 + i % 7, 0.95)),
                    &format!("w{i}.jpg"),
                );
            }
        });
        s.spawn(|| {
            let mut last = 0;
            for _ in 0..200 {
                let n = f.search(&anchor, 90.0, 4096).len();
                assert!(n >= last, "a search saw fewer faces than an earlier one");
                last = n;
            }
        });
    });
    assert_eq!(f.search(&anchor, 90.0, 4096).len(), 40);
    assert_eq!(f.count(), 41);
}

#[test]
fn a_collection_of_another_face_model_refuses_new_faces() {
    let f = Fixture::new();
    f.index(&one_face("a", axis(0)), "a.jpg");
    let other = LocalEngine::open(&f.dir, Arc::new(TestAnalyzer { version: "test-2" })).unwrap();
    let bytes = one_face("b", axis(1)).bytes();
    let err = other
        .index_faces(&IndexFacesRequest {
            collection_id: &f.coll,
            image: ImageSource::Bytes(&bytes),
            external_image_id: None,
            max_faces: None,
            quality_filter: QualityFilter::None,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("face model version test-1"),
        "{err}"
    );
}

#[test]
fn timestamps_of_faces_are_when_they_were_indexed() {
    let f = Fixture::new();
    let before = Timestamp::now();
    let r = f.index(&one_face("t", axis(0)), "t.jpg");
    assert!(r.faces[0].indexed_at >= before);
    assert_eq!(r.image.received_at, r.faces[0].indexed_at);
}
