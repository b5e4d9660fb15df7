//! The engine's Rekognition semantics: face records and their order, responses that read back
//! through `ingest-rekognition`, MaxFaces and QualityFilter reasons, re-indexing an image, and
//! search order, thresholds and search by image.

// Tests unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::engine::local::{calibration, index_faces_response};
use crate::engine::UnindexedReason;
use crate::model::ContentHash;
use crate::rekognition::{index_faces_to_domain, parse_saved, SavedResponse};

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
