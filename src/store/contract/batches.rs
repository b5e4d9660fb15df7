//! Contract checks of [`GraphStore::ingest`]: what a batch writes and reads back, how observations
//! fold into edges, what a re-ingest and a refused batch leave, and how faces are completed.

use super::fixtures::{
    self, batch, face, face_id, observation, pair, search, similarity, subject_id, ts,
};
use super::{ingest, ok, read_face, sorted_edges, sorted_faces, stats};
use crate::model::{
    AgeRange, CollectionId, Face, FaceAttributes, Gender, GenderValue, Pose, Quality,
};
use crate::store::{FaceField, GraphStore, IngestBatch, IngestOutcome, StoreError, StoreStats};

/// A fresh store holds nothing and every read says so.
pub fn empty_store_reads_empty(store: &dyn GraphStore) {
    assert_eq!(
        stats(store),
        StoreStats::default(),
        "a fresh store is empty"
    );
    assert!(ok(store.all_faces(), "all_faces").is_empty());
    assert!(ok(store.faces(&[face_id(1)]), "faces").is_empty());
    assert!(ok(store.edges(None), "edges").is_empty());
    assert!(ok(store.edge(&pair(1, 2)), "edge").is_none());
    assert!(ok(store.decisions(), "decisions").is_empty());
    assert!(ok(store.searches(&[face_id(1)]), "searches").is_empty());
    assert!(ok(store.clusters(), "clusters").is_empty());
    assert!(ok(store.edges_touching(&[face_id(1)]), "edges_touching").is_empty());
}

/// Faces and edges written in one batch read back as written, and the counts add up.
pub fn ingest_then_read(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3)]);
    input.observations = vec![observation(1, 2, 99.1), observation(1, 3, 91.5)];
    let outcome = ingest(store, &input);
    assert_eq!(
        outcome,
        IngestOutcome {
            new_faces: 3,
            new_edges: 2,
            changed_edges: 0,
            subject_links: 0,
        },
        "outcome of the first ingest"
    );
    assert_eq!(
        stats(store),
        StoreStats {
            collections: 1,
            images: 3,
            faces: 3,
            subjects: 0,
            edges: 2,
            decisions: 0,
        }
    );

    let faces = sorted_faces(ok(store.all_faces(), "all_faces"));
    let expected: Vec<_> = input.faces.clone();
    assert_eq!(
        faces.iter().map(|r| r.face.clone()).collect::<Vec<_>>(),
        expected,
        "faces read back as written"
    );
    assert!(faces.iter().all(|r| r.subject.is_none()));

    let edge = ok(store.edge(&pair(1, 2)), "edge").expect("the edge 1-2 is stored");
    assert_eq!(edge.edge.pair, pair(1, 2));
    assert_eq!(edge.edge.similarity_ab, Some(similarity(99.1)));
    assert_eq!(edge.edge.similarity_ba, None);
    assert_eq!(edge.edge.engine, "local");
    assert_eq!(edge.edge.searched_at, ts(1_000));
    assert_eq!(edge.judgement, None, "a new edge has no judgement");
    assert_eq!(edge.adjudicated_at, None);
    assert!(ok(store.edge(&pair(2, 3)), "edge").is_none());
    assert_eq!(ok(store.edges(None), "edges").len(), 2);
}

/// Searching a found b and b found a make one edge that keeps both similarities, whether both
/// directions arrive in one batch or in two.
pub fn both_directions_fold_into_one_edge(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3)]);
    input.observations = vec![observation(1, 2, 74.834282), observation(2, 1, 74.834274)];
    let outcome = ingest(store, &input);
    assert_eq!((outcome.new_edges, outcome.changed_edges), (1, 0));
    let edge = ok(store.edge(&pair(1, 2)), "edge").expect("edge 1-2");
    assert_eq!(edge.edge.similarity_ab, Some(similarity(74.834282)));
    assert_eq!(edge.edge.similarity_ba, Some(similarity(74.834274)));

    // The same, across two batches: the second direction changes the edge, not the edge count.
    let first = IngestBatch {
        observations: vec![observation(3, 1, 88.0)],
        ..IngestBatch::default()
    };
    assert_eq!(ingest(store, &first).new_edges, 1);
    let mut second_obs = observation(1, 3, 88.5);
    second_obs.searched_at = ts(2_000);
    let second = IngestBatch {
        observations: vec![second_obs],
        ..IngestBatch::default()
    };
    let outcome = ingest(store, &second);
    assert_eq!(
        (outcome.new_edges, outcome.changed_edges),
        (0, 1),
        "the reverse direction of a stored edge changes it"
    );
    let edge = ok(store.edge(&pair(1, 3)), "edge").expect("edge 1-3");
    assert_eq!(
        edge.edge.similarity_ab,
        Some(similarity(88.5)),
        "1 searched"
    );
    assert_eq!(
        edge.edge.similarity_ba,
        Some(similarity(88.0)),
        "3 searched"
    );
    assert_eq!(edge.edge.searched_at, ts(2_000), "the latest observation");
    assert_eq!(stats(store).edges, 2);
}

/// Ingesting the same batch again reports zeros and changes nothing.
pub fn reingest_is_idempotent(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 1), (3, 2)]);
    input.subjects = vec![(fixtures::external_image_id(1), subject_id("customer-1"))];
    input.observations = vec![
        observation(1, 3, 97.99),
        observation(3, 1, 97.98),
        observation(2, 3, 91.0),
    ];
    input.searches = vec![search(1, Some(90.0), 3), search(3, None, 3)];
    let first = ingest(store, &input);
    assert_eq!(first.new_faces, 3);
    assert_eq!(first.new_edges, 2);
    assert_eq!(first.subject_links, 1);
    let stats_before = stats(store);
    let faces_before = sorted_faces(ok(store.all_faces(), "all_faces"));
    let edges_before = sorted_edges(ok(store.edges(None), "edges"));
    let searches_before = ok(store.searches(&[face_id(1), face_id(3)]), "searches");

    let again = ingest(store, &input);
    assert_eq!(
        again,
        IngestOutcome::default(),
        "re-ingesting a batch reports nothing new"
    );
    assert_eq!(stats(store), stats_before);
    assert_eq!(
        sorted_faces(ok(store.all_faces(), "all_faces")),
        faces_before
    );
    assert_eq!(sorted_edges(ok(store.edges(None), "edges")), edges_before);
    assert_eq!(
        ok(store.searches(&[face_id(1), face_id(3)]), "searches"),
        searches_before
    );
}

/// An observation naming a face that is neither stored nor in the batch fails the whole batch with
/// [`StoreError::UnknownFace`] naming that face, and nothing of the batch is written.
pub fn unknown_face_in_observation_writes_nothing(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1)]));
    let before = stats(store);
    let mut input = batch(&[(2, 2), (3, 3)]);
    input.subjects = vec![(fixtures::external_image_id(2), subject_id("customer-2"))];
    input.observations = vec![
        observation(2, 3, 95.0),
        observation(1, 2, 96.0),
        observation(2, 9, 97.0),
    ];
    input.searches = vec![search(2, Some(80.0), 3)];
    match store.ingest(&input) {
        Err(StoreError::UnknownFace(id)) => {
            assert_eq!(id, face_id(9), "the error names the unknown face")
        }
        other => panic!("expected UnknownFace({}), got {other:?}", face_id(9)),
    }
    assert_eq!(stats(store), before, "a failed batch writes nothing");
    assert!(ok(store.faces(&[face_id(2), face_id(3)]), "faces").is_empty());
    assert!(ok(store.edges(None), "edges").is_empty());
    assert!(ok(store.searches(&[face_id(2)]), "searches").is_empty());
}

/// A search of a face that is neither stored nor in the batch fails the whole batch.
pub fn unknown_face_in_search_writes_nothing(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2)]);
    input.observations = vec![observation(1, 2, 95.0)];
    input.searches = vec![search(1, Some(80.0), 2), search(7, Some(80.0), 2)];
    match store.ingest(&input) {
        Err(StoreError::UnknownFace(id)) => assert_eq!(id, face_id(7)),
        other => panic!("expected UnknownFace({}), got {other:?}", face_id(7)),
    }
    assert_eq!(stats(store), StoreStats::default(), "nothing was written");
}

/// An observation of a face with itself is not an edge; it is skipped, not an error.
pub fn self_observations_are_skipped(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2)]);
    input.observations = vec![observation(1, 1, 100.0), observation(1, 2, 93.0)];
    let outcome = ingest(store, &input);
    assert_eq!(outcome.new_edges, 1);
    assert_eq!(stats(store).edges, 1);
}

/// A face first seen without attributes (as ListFaces reports it) gains them from a later record,
/// and a record without them does not erase them again.
pub fn face_attributes_are_completed_not_erased(store: &dyn GraphStore) {
    let full = face(1, 1);
    let mut bare = full.clone();
    bare.attributes = FaceAttributes::default();
    bare.detection_confidence = None;
    bare.external_image_id = None;
    bare.is_largest = false;
    bare.raw = None;

    let mut first = batch(&[]);
    first.faces = vec![bare.clone()];
    assert_eq!(ingest(store, &first).new_faces, 1);
    assert_eq!(read_face(store, 1).face, bare);

    let mut second = batch(&[]);
    second.faces = vec![full.clone()];
    assert_eq!(
        ingest(store, &second).new_faces,
        0,
        "a known face is not new"
    );
    assert_eq!(
        read_face(store, 1).face,
        full,
        "missing attributes are filled"
    );

    assert_eq!(ingest(store, &first), IngestOutcome::default());
    assert_eq!(
        read_face(store, 1).face,
        full,
        "absent attributes do not erase stored ones"
    );
    assert_eq!(stats(store).faces, 1);
}

/// A face whose record contradicts the stored one (here: found in another image) fails the whole
/// batch with [`StoreError::Conflict`] naming the face and the field, and nothing of the batch is
/// written: not the other image (which would be left without faces), not the batch's other faces,
/// edges, searches or subjects. The same holds for two contradicting records of one face in one
/// batch. The stored batch, ingested again, is still a no-op.
pub fn conflicting_face_is_refused_and_writes_nothing(store: &dyn GraphStore) {
    let first = batch(&[(1, 1), (2, 2)]);
    ingest(store, &first);
    let before = stats(store);
    let faces_before = sorted_faces(ok(store.all_faces(), "all_faces"));

    // Face 1 again, now in image 3, beside a new face 4 that is searched and linked to a subject.
    let mut input = batch(&[(4, 4)]);
    let mut moved = face(1, 3);
    moved.external_image_id = Some(fixtures::external_image_id(1));
    input.images.push(fixtures::image(3));
    input.faces.push(moved);
    input.subjects = vec![(fixtures::external_image_id(4), subject_id("customer-4"))];
    input.observations = vec![observation(4, 2, 95.0)];
    input.searches = vec![search(4, Some(95.0), 3)];
    expect_conflict(store, &input, 1, FaceField::ImageId);
    assert_eq!(stats(store), before, "a refused batch writes nothing");
    assert!(ok(store.faces(&[face_id(4)]), "faces").is_empty());
    assert!(ok(store.edges(None), "edges").is_empty());
    assert!(ok(store.searches(&[face_id(4)]), "searches").is_empty());

    // Two records of a new face 5 that disagree on gender, in one batch.
    let mut twice = batch(&[(5, 5)]);
    let mut other = face(5, 5);
    other.attributes.gender = Some(Gender {
        value: GenderValue::Female,
        confidence: fixtures::confidence(99.0),
    });
    twice.faces.push(other);
    expect_conflict(store, &twice, 5, FaceField::Gender);
    assert_eq!(
        stats(store),
        before,
        "a batch that contradicts itself writes nothing"
    );

    assert_eq!(ingest(store, &first), IngestOutcome::default());
    assert_eq!(
        sorted_faces(ok(store.all_faces(), "all_faces")),
        faces_before
    );
}

/// Every part of a face's record that both records report is compared: collection, image, external
/// image id, bounding box, detection confidence, gender, age, quality and pose. The conflict names
/// the field and shows both values; a record that only adds what the stored one lacked is not a
/// conflict (see [`face_attributes_are_completed_not_erased`]).
pub fn conflicts_name_the_field_that_differs(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1)]));
    let before = stats(store);
    let stored = face(1, 1);
    let changes: [(FaceField, Change); 9] = [
        (FaceField::Collection, |f| {
            f.collection_id = parse(CollectionId::parse("other-faces"));
        }),
        (FaceField::ImageId, |f| f.image_id = fixtures::image_id(2)),
        (FaceField::ExternalImageId, |f| {
            f.external_image_id = Some(fixtures::external_image_id(2));
        }),
        (FaceField::BoundingBox, |f| f.bbox.top += 0.125),
        (FaceField::DetectionConfidence, |f| {
            f.detection_confidence = Some(fixtures::confidence(50.0));
        }),
        (FaceField::Gender, |f| {
            f.attributes.gender = Some(Gender {
                value: GenderValue::Female,
                confidence: fixtures::confidence(99.5),
            });
        }),
        (FaceField::Age, |f| {
            f.attributes.age = AgeRange::new(3, 7).ok()
        }),
        (FaceField::Quality, |f| {
            f.attributes.quality = Quality::new(8.0, 4.0).ok();
        }),
        (FaceField::Pose, |f| {
            f.attributes.pose = Pose::new(45.0, 0.0, 0.0).ok();
        }),
    ];
    for (field, change) in changes {
        let mut changed = stored.clone();
        change(&mut changed);
        let mut input = batch(&[]);
        input.faces = vec![changed];
        let (was, now) = expect_conflict(store, &input, 1, field);
        assert_ne!(was, now, "{field}: the two values are shown");
        assert_eq!(stats(store), before, "{field}: nothing was written");
        assert_eq!(
            read_face(store, 1).face,
            stored,
            "{field}: the stored face is kept"
        );
    }
    let (was, now) = {
        let mut female = stored.clone();
        female.attributes.gender = Some(Gender {
            value: GenderValue::Female,
            confidence: fixtures::confidence(99.5),
        });
        let mut input = batch(&[]);
        input.faces = vec![female];
        expect_conflict(store, &input, 1, FaceField::Gender)
    };
    assert!(
        was.contains("Male") && now.contains("Female") && now.contains("99.5"),
        "values as people read them: stored {was:?}, incoming {now:?}"
    );
}

/// A change to a face record.
type Change = fn(&mut Face);

/// Ingests `input`, which must fail with a conflict on face `n`'s `field`; returns the stored and
/// the incoming value as the error shows them.
fn expect_conflict(
    store: &dyn GraphStore,
    input: &IngestBatch,
    n: u32,
    field: FaceField,
) -> (String, String) {
    match store.ingest(input) {
        Err(StoreError::Conflict {
            face_id: id,
            field: found,
            stored,
            incoming,
        }) if id == face_id(n) && found == field => (stored, incoming),
        other => panic!("expected a conflict on the {field} of face {n}, got {other:?}"),
    }
}

fn parse<T>(value: Result<T, crate::model::ParseError>) -> T {
    value.unwrap_or_else(|e| panic!("test value is invalid: {e}"))
}

/// A subject given for an external image id is the subject of every face in every image with that
/// id; linking the id to another subject later moves them and is reported.
pub fn subjects_link_by_external_image_id(store: &dyn GraphStore) {
    // Images 1 and 2 share the external id "image-1.jpg" (the same upload, received twice).
    let mut input = batch(&[(1, 1), (2, 1), (3, 2), (4, 3)]);
    let shared = fixtures::external_image_id(1);
    for img in &mut input.images {
        if img.image_id == fixtures::image_id(2) {
            img.external_image_id = Some(shared.clone());
        }
    }
    for f in &mut input.faces {
        if f.image_id == fixtures::image_id(2) {
            f.external_image_id = Some(shared.clone());
        }
    }
    input.subjects = vec![(shared.clone(), subject_id("customer-1"))];
    let outcome = ingest(store, &input);
    assert_eq!(outcome.subject_links, 2, "two images were linked");
    assert_eq!(stats(store).subjects, 1);
    let subject_of = |n| read_face(store, n).subject;
    assert_eq!(subject_of(1), Some(subject_id("customer-1")));
    assert_eq!(subject_of(2), Some(subject_id("customer-1")));
    assert_eq!(subject_of(3), Some(subject_id("customer-1")));
    assert_eq!(subject_of(4), None, "another image is not linked");

    let same = IngestBatch {
        subjects: vec![(shared.clone(), subject_id("customer-1"))],
        ..IngestBatch::default()
    };
    assert_eq!(ingest(store, &same).subject_links, 0, "an unchanged link");

    let relink = IngestBatch {
        subjects: vec![(shared, subject_id("customer-2"))],
        ..IngestBatch::default()
    };
    assert_eq!(ingest(store, &relink).subject_links, 2, "a changed link");
    assert_eq!(subject_of(1), Some(subject_id("customer-2")));
    assert_eq!(subject_of(3), Some(subject_id("customer-2")));
    assert_eq!(subject_of(4), None);
}

/// A subject link given before any image with that external id is stored applies to the image when
/// it arrives.
pub fn subject_link_given_before_the_image_applies_later(store: &dyn GraphStore) {
    let early = IngestBatch {
        subjects: vec![(fixtures::external_image_id(1), subject_id("customer-1"))],
        ..IngestBatch::default()
    };
    assert_eq!(
        ingest(store, &early).subject_links,
        0,
        "no image to link yet"
    );
    let outcome = ingest(store, &batch(&[(1, 1)]));
    assert_eq!(outcome.subject_links, 1, "the image was linked on arrival");
    assert_eq!(read_face(store, 1).subject, Some(subject_id("customer-1")));
}

/// The engine's response for a face comes back byte for byte, spacing and all.
pub fn raw_response_is_kept_verbatim(store: &dyn GraphStore) {
    let raw = "{\"FaceId\": \"00000000-0000-4000-8000-000000000001\",\n  \"Confidence\":99.99980926513672 , \"Note\": \"caf\u{e9} \\u00e9\", \"Empty\": {}}";
    let mut f = face(1, 1);
    f.raw = Some(raw.to_owned());
    let mut input = batch(&[]);
    input.faces = vec![f];
    ingest(store, &input);
    assert_eq!(read_face(store, 1).face.raw.as_deref(), Some(raw));
}

/// Similarities and bounds come back equal to what was written, to the last bit.
pub fn similarities_round_trip_exactly(store: &dyn GraphStore) {
    let values = [
        97.99, 74.834282, 74.834274, 0.0, 100.0, 99.999_99, 80.000_01,
    ];
    let n = u32::try_from(values.len()).expect("few values") + 1;
    let mut input = batch(&(1..=n).map(|i| (i, i)).collect::<Vec<_>>());
    input.observations = values
        .iter()
        .zip(2..)
        .map(|(v, found)| observation(1, found, *v))
        .collect();
    input.searches = vec![search(1, Some(74.834282), 8)];
    ingest(store, &input);
    for (v, found) in values.iter().zip(2..) {
        let edge = ok(store.edge(&pair(1, found)), "edge").expect("edge");
        assert_eq!(
            edge.edge.similarity_ab,
            Some(similarity(*v)),
            "similarity {v} round trip"
        );
    }
    assert_eq!(
        ok(store.searches(&[face_id(1)]), "searches")[0].bound,
        Some(similarity(74.834282))
    );
    // Face attributes are floats too.
    assert_eq!(read_face(store, 1).face, input.faces[0]);
}

/// Faces get increasing sequence numbers in the order they were first stored.
pub fn face_sequence_follows_insertion(store: &dyn GraphStore) {
    ingest(store, &batch(&[(5, 1), (2, 1)]));
    ingest(store, &batch(&[(9, 2), (5, 1)]));
    let seq = |n| read_face(store, n).seq;
    assert!(seq(5) >= 1, "sequence numbers start at 1");
    assert!(seq(5) < seq(2), "face 5 was stored before face 2");
    assert!(seq(2) < seq(9), "face 2 was stored before face 9");
}
