//! The collections on disk through the engine: creating, listing and deleting them, surviving a
//! restart, paging through faces, deletes and compaction, concurrent use, the face model a
//! collection was made with, and the times faces were indexed.

// Tests unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::model::Timestamp;

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
            subject_id: None,
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
