//! Contract checks of what follows ingest: judgements on edges, analyst decisions, searches and
//! clusters, and the reads that select faces and edges.

use super::fixtures::{
    self, batch, decision, face_id, judgement, observation, pair, search, similarity, subject_id,
    ts,
};
use super::{ingest, ok, sorted_clusters, sorted_faces, stats};
use crate::model::{DecisionKind, Evidence, FaceId, FacePair, Reason, ReasonCode, Verdict};
use crate::store::{ClusterMembership, GraphStore, IngestBatch, StoreError, VerdictUpdate};

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
        fraud_lead: id == "c-2",
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
