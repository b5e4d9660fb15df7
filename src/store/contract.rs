//! The contract every [`GraphStore`] adapter passes: behaviour checks that take a fresh, empty store
//! and panic with a message saying what broke. [`graph_store_contract!`](crate::graph_store_contract)
//! turns them into one `#[test]` each; [`fixtures`] builds the test data, and other tests reuse it.

use super::{
    ClusterMembership, EdgeRecord, FaceRecord, GraphStore, IngestBatch, IngestOutcome, StoreError,
    StoreStats, VerdictUpdate,
};
use crate::model::{
    DecisionKind, Evidence, FaceAttributes, FaceId, FacePair, Reason, ReasonCode, Verdict,
};

use fixtures::{
    batch, decision, face, face_id, judgement, observation, pair, search, similarity, subject_id,
    ts,
};

/// Expands to one `#[test]` per contract check, each on a fresh store from `$make`.
///
/// `$make` is a closure or function returning something that dereferences to a store: a
/// `Box<dyn GraphStore>`, a `Box` of an adapter, or a wrapper that also keeps a temporary directory
/// alive. Invoke it inside a module of its own to keep the test names apart:
///
/// ```text
/// mod contract {
///     use facegraph::store::sqlite::SqliteStore;
///     facegraph::graph_store_contract!(|| Box::new(SqliteStore::open_in_memory().expect("store")));
/// }
/// ```
#[macro_export]
macro_rules! graph_store_contract {
    ($make:expr) => {
        $crate::graph_store_contract!(@tests $make;
            empty_store_reads_empty,
            ingest_then_read,
            both_directions_fold_into_one_edge,
            reingest_is_idempotent,
            unknown_face_in_observation_writes_nothing,
            unknown_face_in_search_writes_nothing,
            self_observations_are_skipped,
            face_attributes_are_completed_not_erased,
            subjects_link_by_external_image_id,
            subject_link_given_before_the_image_applies_later,
            verdicts_round_trip_exactly,
            verdicts_filter_edges,
            verdict_without_edge_fails_and_writes_nothing,
            decisions_are_append_only,
            decision_on_unknown_face_fails,
            searches_are_recorded,
            clusters_are_replaced,
            raw_response_is_kept_verbatim,
            faces_ignores_unknown_ids,
            edges_touching_returns_edges_with_an_end_in_the_set,
            similarities_round_trip_exactly,
            face_sequence_follows_insertion,
            faces_of_subject_returns_that_subjects_faces,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::store::contract::$name(&*store);
            }
        )*

        /// The macro and `contract::ALL` list the checks separately; this keeps them in step.
        #[test]
        fn every_contract_check_runs() {
            let in_macro: &[&str] = &[$(stringify!($name)),*];
            let in_all: ::std::vec::Vec<&str> =
                $crate::store::contract::ALL.iter().map(|(name, _)| *name).collect();
            assert_eq!(in_macro, in_all.as_slice(), "graph_store_contract! and contract::ALL differ");
        }
    };
}

/// One contract check: it takes a fresh, empty store and panics when the store breaks the contract.
pub type Check = fn(&dyn GraphStore);

/// Every contract check with its name, for runners that do not use the macro (for instance one
/// that starts an external server once and gives each check a fresh database).
pub const ALL: &[(&str, Check)] = &[
    ("empty_store_reads_empty", empty_store_reads_empty),
    ("ingest_then_read", ingest_then_read),
    (
        "both_directions_fold_into_one_edge",
        both_directions_fold_into_one_edge,
    ),
    ("reingest_is_idempotent", reingest_is_idempotent),
    (
        "unknown_face_in_observation_writes_nothing",
        unknown_face_in_observation_writes_nothing,
    ),
    (
        "unknown_face_in_search_writes_nothing",
        unknown_face_in_search_writes_nothing,
    ),
    (
        "self_observations_are_skipped",
        self_observations_are_skipped,
    ),
    (
        "face_attributes_are_completed_not_erased",
        face_attributes_are_completed_not_erased,
    ),
    (
        "subjects_link_by_external_image_id",
        subjects_link_by_external_image_id,
    ),
    (
        "subject_link_given_before_the_image_applies_later",
        subject_link_given_before_the_image_applies_later,
    ),
    ("verdicts_round_trip_exactly", verdicts_round_trip_exactly),
    ("verdicts_filter_edges", verdicts_filter_edges),
    (
        "verdict_without_edge_fails_and_writes_nothing",
        verdict_without_edge_fails_and_writes_nothing,
    ),
    ("decisions_are_append_only", decisions_are_append_only),
    (
        "decision_on_unknown_face_fails",
        decision_on_unknown_face_fails,
    ),
    ("searches_are_recorded", searches_are_recorded),
    ("clusters_are_replaced", clusters_are_replaced),
    (
        "raw_response_is_kept_verbatim",
        raw_response_is_kept_verbatim,
    ),
    ("faces_ignores_unknown_ids", faces_ignores_unknown_ids),
    (
        "edges_touching_returns_edges_with_an_end_in_the_set",
        edges_touching_returns_edges_with_an_end_in_the_set,
    ),
    (
        "similarities_round_trip_exactly",
        similarities_round_trip_exactly,
    ),
    (
        "face_sequence_follows_insertion",
        face_sequence_follows_insertion,
    ),
    (
        "faces_of_subject_returns_that_subjects_faces",
        faces_of_subject_returns_that_subjects_faces,
    ),
];

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

/// A recorded judgement reads back exactly (verdict, score, rule set, reasons with their evidence in
/// order); recording the same judgement again changes nothing, a different one changes the edge.
pub fn verdicts_round_trip_exactly(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2)]);
    input.observations = vec![observation(1, 2, 97.99)];
    ingest(store, &input);

    let first = judgement(
        Verdict::Review,
        93.5,
        vec![
            Reason::new(
                ReasonCode::SimilarityBand,
                "97.99 is in the review band (90 to 98.5)",
                vec![
                    ("similarity", Evidence::from(97.99_f32)),
                    ("review_from", 90.0.into()),
                    ("band", "review".into()),
                ],
            ),
            Reason::new(
                ReasonCode::GenderContradiction,
                "one face is 96% male, the other 100% female",
                vec![
                    ("gender_a", "Male".into()),
                    ("confidence_a", 96.0.into()),
                    ("gender_b", "Female".into()),
                    ("confidence_b", 100.0.into()),
                    ("penalty", (-4.489_999_999_999_995).into()),
                ],
            ),
        ],
    );
    let update = VerdictUpdate {
        pair: pair(1, 2),
        judgement: first.clone(),
        at: ts(5_000),
    };
    assert_eq!(
        ok(
            store.record_verdicts(std::slice::from_ref(&update)),
            "record"
        ),
        1
    );
    let edge = ok(store.edge(&pair(1, 2)), "edge").expect("edge");
    assert_eq!(edge.judgement.as_ref(), Some(&first), "judgement read back");
    assert_eq!(edge.adjudicated_at, Some(ts(5_000)));

    let mut same_later = update.clone();
    same_later.at = ts(6_000);
    assert_eq!(
        ok(store.record_verdicts(&[same_later]), "record"),
        0,
        "an identical judgement is not recorded again"
    );
    let edge = ok(store.edge(&pair(1, 2)), "edge").expect("edge");
    assert_eq!(edge.adjudicated_at, Some(ts(5_000)), "left untouched");

    let mut changed = update;
    changed.judgement.score = 93.25;
    changed.judgement.rule_set = "rules-v2".to_owned();
    changed.at = ts(7_000);
    assert_eq!(ok(store.record_verdicts(&[changed.clone()]), "record"), 1);
    let edge = ok(store.edge(&pair(1, 2)), "edge").expect("edge");
    assert_eq!(edge.judgement, Some(changed.judgement));
    assert_eq!(edge.adjudicated_at, Some(ts(7_000)));
    assert_eq!(
        edge.edge.similarity_ab,
        Some(similarity(97.99)),
        "a verdict leaves the observation alone"
    );
}

/// `edges(Some(verdict))` returns exactly the edges whose current verdict is that one.
pub fn verdicts_filter_edges(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3), (4, 4)]);
    input.observations = vec![
        observation(1, 2, 99.0),
        observation(1, 3, 95.0),
        observation(1, 4, 91.0),
        observation(2, 3, 92.0),
    ];
    ingest(store, &input);
    let verdict = |a, b, v| VerdictUpdate {
        pair: pair(a, b),
        judgement: judgement(v, 90.0, vec![]),
        at: ts(9_000),
    };
    let updates = [
        verdict(1, 2, Verdict::Confirmed),
        verdict(1, 3, Verdict::Review),
        verdict(1, 4, Verdict::Review),
    ];
    assert_eq!(ok(store.record_verdicts(&updates), "record"), 3);
    let pairs_of = |v: Option<Verdict>| {
        let mut pairs: Vec<FacePair> = ok(store.edges(v), "edges")
            .into_iter()
            .map(|e| e.edge.pair)
            .collect();
        pairs.sort();
        pairs
    };
    assert_eq!(
        pairs_of(Some(Verdict::Review)),
        vec![pair(1, 3), pair(1, 4)]
    );
    assert_eq!(pairs_of(Some(Verdict::Confirmed)), vec![pair(1, 2)]);
    assert!(pairs_of(Some(Verdict::Rejected)).is_empty());
    assert_eq!(pairs_of(None).len(), 4, "None returns every edge");

    // Moving an edge out of review takes it off the filtered list.
    ok(
        store.record_verdicts(&[verdict(1, 3, Verdict::Rejected)]),
        "record",
    );
    assert_eq!(pairs_of(Some(Verdict::Review)), vec![pair(1, 4)]);
    assert_eq!(pairs_of(Some(Verdict::Rejected)), vec![pair(1, 3)]);
}

/// A judgement for a pair without an edge is an error, and the other updates of the call are not
/// applied; a pair naming an unknown face fails with [`StoreError::UnknownFace`].
pub fn verdict_without_edge_fails_and_writes_nothing(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3)]);
    input.observations = vec![observation(1, 2, 99.0)];
    ingest(store, &input);
    let good = VerdictUpdate {
        pair: pair(1, 2),
        judgement: judgement(Verdict::Confirmed, 99.0, vec![]),
        at: ts(9_000),
    };
    let no_edge = VerdictUpdate {
        pair: pair(1, 3),
        ..good.clone()
    };
    assert!(
        store
            .record_verdicts(&[good.clone(), no_edge.clone()])
            .is_err(),
        "a verdict on a pair without an edge is refused"
    );
    let edge = ok(store.edge(&pair(1, 2)), "edge").expect("edge");
    assert_eq!(edge.judgement, None, "the call was all or nothing");

    let unknown = VerdictUpdate {
        pair: pair(1, 8),
        ..good
    };
    match store.record_verdicts(&[unknown]) {
        Err(StoreError::UnknownFace(id)) => assert_eq!(id, face_id(8)),
        other => panic!("expected UnknownFace({}), got {other:?}", face_id(8)),
    }
}

/// Decisions are history: two decisions on one pair both come back, oldest first.
pub fn decisions_are_append_only(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1), (2, 2), (3, 3)]));
    let first = decision(1, 2, DecisionKind::Same, 10_000, Some("same mole"));
    let second = decision(2, 1, DecisionKind::Different, 20_000, None);
    let third = decision(1, 3, DecisionKind::Different, 15_000, Some("twins"));
    for d in [&first, &second, &third] {
        ok(store.record_decision(d), "record_decision");
    }
    assert_eq!(
        ok(store.decisions(), "decisions"),
        vec![first, second, third],
        "every decision, in the order recorded"
    );
    assert_eq!(stats(store).decisions, 3);
}

/// A decision on a face the store does not hold fails with [`StoreError::UnknownFace`].
pub fn decision_on_unknown_face_fails(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1)]));
    match store.record_decision(&decision(1, 5, DecisionKind::Same, 1, None)) {
        Err(StoreError::UnknownFace(id)) => assert_eq!(id, face_id(5)),
        other => panic!("expected UnknownFace({}), got {other:?}", face_id(5)),
    }
    assert!(ok(store.decisions(), "decisions").is_empty());
}

/// Searches read back as recorded, per face, and a search recorded twice is kept once.
pub fn searches_are_recorded(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3)]);
    let mut later = search(1, Some(95.5), 3);
    later.searched_at = ts(3_000);
    input.searches = vec![search(1, Some(80.0), 3), later.clone(), search(2, None, 2)];
    ingest(store, &input);
    ingest(
        store,
        &IngestBatch {
            searches: vec![search(1, Some(80.0), 3)],
            ..IngestBatch::default()
        },
    );
    let mut of_one = ok(store.searches(&[face_id(1)]), "searches");
    of_one.sort_by_key(|s| s.searched_at);
    assert_eq!(of_one, vec![search(1, Some(80.0), 3), later]);
    let of_two = ok(store.searches(&[face_id(2), face_id(9)]), "searches");
    assert_eq!(of_two, vec![search(2, None, 2)]);
    assert!(ok(store.searches(&[face_id(3)]), "searches").is_empty());
    assert!(ok(store.searches(&[]), "searches").is_empty());
}

/// Storing clusters replaces the previous ones entirely.
pub fn clusters_are_replaced(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1), (2, 2), (3, 3), (4, 4)]));
    let cluster = |id: &str, faces: &[u32]| ClusterMembership {
        cluster_id: id.to_owned(),
        faces: faces.iter().map(|n| face_id(*n)).collect(),
    };
    let first = vec![cluster("c-1", &[1, 2]), cluster("c-2", &[3, 4])];
    ok(store.replace_clusters(&first), "replace_clusters");
    assert_eq!(sorted_clusters(ok(store.clusters(), "clusters")), first);

    let second = vec![cluster("c-3", &[1, 2, 3])];
    ok(store.replace_clusters(&second), "replace_clusters");
    assert_eq!(
        sorted_clusters(ok(store.clusters(), "clusters")),
        second,
        "the old clusters are gone"
    );

    ok(store.replace_clusters(&[]), "replace_clusters");
    assert!(ok(store.clusters(), "clusters").is_empty());
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

/// `faces` returns the faces it knows among the ids asked for, however many ids are asked for.
pub fn faces_ignores_unknown_ids(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1), (2, 2), (3, 3)]));
    let found = sorted_faces(ok(
        store.faces(&[face_id(3), face_id(1), face_id(99)]),
        "faces",
    ));
    let ids: Vec<_> = found.iter().map(|r| r.face.face_id.clone()).collect();
    assert_eq!(ids, vec![face_id(1), face_id(3)]);
    assert!(ok(store.faces(&[]), "faces").is_empty());

    // More ids than any database accepts as separate parameters.
    let many: Vec<FaceId> = (2..40_002).map(face_id).collect();
    let found = ok(store.faces(&many), "faces");
    assert_eq!(found.len(), 2, "faces 2 and 3 among 40000 ids");
}

/// `faces_of_subject` returns the faces of every image linked to the subject, in insertion order,
/// and nothing for a subject it does not know.
pub fn faces_of_subject_returns_that_subjects_faces(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 1), (3, 2), (4, 3)]);
    input.subjects = vec![
        (fixtures::external_image_id(1), subject_id("customer-1")),
        (fixtures::external_image_id(3), subject_id("customer-1")),
        (fixtures::external_image_id(2), subject_id("customer-2")),
    ];
    ingest(store, &input);
    let ids = |s: &str| -> Vec<FaceId> {
        ok(store.faces_of_subject(&subject_id(s)), "faces_of_subject")
            .into_iter()
            .map(|r| r.face.face_id)
            .collect()
    };
    assert_eq!(ids("customer-1"), vec![face_id(1), face_id(2), face_id(4)]);
    assert_eq!(ids("customer-2"), vec![face_id(3)]);
    assert!(ids("nobody").is_empty());
}

/// `edges_touching` returns every edge with at least one end among the ids, each once.
pub fn edges_touching_returns_edges_with_an_end_in_the_set(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
    input.observations = vec![
        observation(1, 2, 99.0),
        observation(2, 3, 98.0),
        observation(3, 4, 97.0),
        observation(4, 5, 96.0),
        observation(5, 1, 95.0),
    ];
    ingest(store, &input);
    let touching = |ids: &[u32]| {
        let ids: Vec<FaceId> = ids.iter().map(|n| face_id(*n)).collect();
        let mut pairs: Vec<FacePair> = ok(store.edges_touching(&ids), "edges_touching")
            .into_iter()
            .map(|e| e.edge.pair)
            .collect();
        pairs.sort();
        pairs
    };
    assert_eq!(touching(&[2]), vec![pair(1, 2), pair(2, 3)]);
    let mut expected = vec![pair(1, 2), pair(2, 3), pair(3, 4), pair(1, 5)];
    expected.sort();
    assert_eq!(
        touching(&[2, 3, 1]),
        expected,
        "edges between two listed faces come once"
    );
    assert!(touching(&[42]).is_empty());
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

// ---------------------------------------------------------------------------------------------

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what} failed: {}", chain(&err)),
    }
}

fn ingest(store: &dyn GraphStore, batch: &IngestBatch) -> IngestOutcome {
    ok(store.ingest(batch), "ingest")
}

fn stats(store: &dyn GraphStore) -> StoreStats {
    ok(store.stats(), "stats")
}

fn read_face(store: &dyn GraphStore, n: u32) -> FaceRecord {
    let mut found = ok(store.faces(&[face_id(n)]), "faces");
    assert_eq!(found.len(), 1, "face {n} is stored once");
    found.remove(0)
}

fn sorted_faces(mut faces: Vec<FaceRecord>) -> Vec<FaceRecord> {
    faces.sort_by(|x, y| x.face.face_id.cmp(&y.face.face_id));
    faces
}

fn sorted_edges(mut edges: Vec<EdgeRecord>) -> Vec<EdgeRecord> {
    edges.sort_by(|x, y| x.edge.pair.cmp(&y.edge.pair));
    edges
}

fn sorted_clusters(mut clusters: Vec<ClusterMembership>) -> Vec<ClusterMembership> {
    for c in &mut clusters {
        c.faces.sort();
    }
    clusters.sort_by(|x, y| x.cluster_id.cmp(&y.cluster_id));
    clusters
}

/// The error and its causes on one line, so that a failed check shows the adapter's own message.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Deterministic test data: faces, images, observations and judgements numbered by small integers,
/// for the contract and for any test or benchmark that needs a graph.
pub mod fixtures {
    use crate::model::{
        AgeRange, BoundingBox, Collection, CollectionId, Confidence, Decision, DecisionKind,
        ExternalImageId, Face, FaceAttributes, FaceId, FacePair, Gender, GenderValue, Image,
        ImageId, Judgement, Observation, Pose, Quality, Reason, SearchRecord, Similarity,
        SubjectId, Timestamp, Verdict,
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
                age: Some(AgeRange::new(25, 35)),
                quality: Some(Quality {
                    brightness: 81.7,
                    sharpness: 92.1,
                }),
                pose: Some(Pose {
                    yaw: -3.5,
                    pitch: 7.25,
                    roll: 0.1,
                }),
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
    pub fn decision(
        x: u32,
        y: u32,
        kind: DecisionKind,
        at_ms: i64,
        note: Option<&str>,
    ) -> Decision {
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
}
