//! Deterministic test data: faces, images, observations and judgements numbered by small integers,
//! for the contract and for any test or benchmark that needs a graph.

use crate::model::{
    AgeRange, BoundingBox, Collection, CollectionId, Confidence, Decision, DecisionKind,
    ExternalImageId, Face, FaceAttributes, FaceId, FacePair, Gender, GenderValue, Image, ImageId,
    Judgement, Observation, Pose, Quality, Reason, SearchRecord, Similarity, SubjectId, Timestamp,
    Verdict,
};
use crate::store::IngestBatch;

/// Face `n`'s id: `00000000-0000-4000-8000-{n:012}`.
pub fn face_id(n: u32) -> FaceId {
    parse(FaceId::parse(&format!("00000000-0000-4000-8000-{n:012}")))
}

/// Image `n`'s id: `10000000-0000-4000-8000-{n:012}`.
pub fn image_id(n: u32) -> ImageId {
    parse(ImageId::parse(&format!("10000000-0000-4000-8000-{n:012}")))
}

/// Image `n`'s external id: `image-{n}.jpg`.
pub fn external_image_id(n: u32) -> ExternalImageId {
    parse(ExternalImageId::parse(&format!("image-{n}.jpg")))
}

/// The collection every fixture face is in.
pub fn collection_id() -> CollectionId {
    parse(CollectionId::parse("contract-faces"))
}

/// The fixtures' collection, on the `local` engine.
pub fn collection() -> Collection {
    Collection {
        collection_id: collection_id(),
        engine: "local".to_owned(),
        face_model_version: Some("sface-2021dec".to_owned()),
        created_at: ts(0),
    }
}

/// A subject id; panics when `s` is not a valid one.
pub fn subject_id(s: &str) -> SubjectId {
    parse(SubjectId::parse(s))
}

/// A similarity; panics outside 0-100.
pub fn similarity(v: f64) -> Similarity {
    parse(Similarity::new(v))
}

/// A confidence; panics outside 0-100.
pub fn confidence(v: f64) -> Confidence {
    parse(Confidence::new(v))
}

/// A timestamp `ms` milliseconds after the epoch.
pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// The pair of faces `x` and `y`; panics when they are the same face.
pub fn pair(x: u32, y: u32) -> FacePair {
    FacePair::new(face_id(x), face_id(y))
        .unwrap_or_else(|| panic!("faces {x} and {y} do not make a pair"))
}

/// Image `n`: 640x480, one face, from `fixtures/image-{n}.jpg`.
pub fn image(n: u32) -> Image {
    Image {
        image_id: image_id(n),
        external_image_id: Some(external_image_id(n)),
        content_sha256: None,
        collection_id: Some(collection_id()),
        pending: false,
        source: Some(format!("fixtures/image-{n}.jpg")),
        width: Some(640),
        height: Some(480),
        face_count: 1,
        received_at: ts(100),
    }
}

/// Face `n` in image `image`, with every attribute reported (a male of 25-35, frontal, sharp),
/// values that vary a little with `n`, and a raw response naming it.
pub fn face(n: u32, image: u32) -> Face {
    let jitter = f64::from(n % 7) * 0.125;
    Face {
        face_id: face_id(n),
        collection_id: collection_id(),
        image_id: image_id(image),
        external_image_id: Some(external_image_id(image)),
        bbox: BoundingBox {
            left: 0.25,
            top: 0.2,
            width: 0.34567,
            height: 0.456_789,
        },
        detection_confidence: Some(confidence(99.999_81 - jitter)),
        attributes: FaceAttributes {
            gender: Some(Gender {
                value: GenderValue::Male,
                confidence: confidence(96.3 + jitter),
            }),
            age: Some(parse(AgeRange::new(25, 35))),
            quality: Some(parse(Quality::new(81.7, 92.1))),
            pose: Some(parse(Pose::new(-3.5, 7.25, 0.1))),
        },
        is_largest: true,
        indexed_at: ts(200),
        raw: Some(format!("{{\"FaceId\":\"{}\"}}", face_id(n))),
    }
}

/// A batch with the fixtures' collection, and face `n` in image `image` for each `(n, image)`
/// together with those images.
pub fn batch(faces: &[(u32, u32)]) -> IngestBatch {
    let mut images: Vec<u32> = faces.iter().map(|(_, image)| *image).collect();
    images.sort_unstable();
    images.dedup();
    IngestBatch {
        collections: vec![collection()],
        images: images.into_iter().map(image).collect(),
        faces: faces.iter().map(|(n, img)| face(*n, *img)).collect(),
        ..IngestBatch::default()
    }
}

/// Searching face `searched` found face `found` with `similarity`, on the `local` engine at 1 s.
pub fn observation(searched: u32, found: u32, similarity: f64) -> Observation {
    Observation {
        searched: face_id(searched),
        found: face_id(found),
        similarity: self::similarity(similarity),
        engine: "local".to_owned(),
        searched_at: ts(1_000),
    }
}

/// A search of face `n` in the fixtures' collection at 1 s, when it held `collection_seq` faces.
pub fn search(n: u32, bound: Option<f64>, collection_seq: i64) -> SearchRecord {
    SearchRecord {
        face_id: face_id(n),
        collection_id: collection_id(),
        bound: bound.map(similarity),
        collection_seq,
        searched_at: ts(1_000),
    }
}

/// A judgement under the rule set `rules-v1`.
pub fn judgement(verdict: Verdict, score: f64, reasons: Vec<Reason>) -> Judgement {
    Judgement {
        verdict,
        score,
        rule_set: "rules-v1".to_owned(),
        reasons,
    }
}

/// A decision by analyst `ana` on faces `x` and `y` at `at_ms`.
pub fn decision(x: u32, y: u32, kind: DecisionKind, at_ms: i64, note: Option<&str>) -> Decision {
    Decision {
        pair: pair(x, y),
        kind,
        analyst: "ana".to_owned(),
        at: ts(at_ms),
        note: note.map(str::to_owned),
    }
}

fn parse<T>(value: Result<T, crate::model::ParseError>) -> T {
    value.unwrap_or_else(|e| panic!("fixture value is invalid: {e}"))
}
