//! Contract checks of what scoped adjudication needs from a store: the faces a write leaves
//! awaiting re-judging, edges read light with their verdicts, a face's decisions, clusters replaced
//! a few at a time with their totals kept, and the review queue read in pages.

use super::fixtures::{self, batch, decision, face_id, judgement, observation, pair, ts};
use super::{ingest, ok, sorted_clusters};
use crate::model::{DecisionKind, FaceId, FacePair, Reason, ReasonCode, Verdict};
use crate::store::{
    ClusterMembership, ClusterTotals, GraphStore, IngestBatch, QueuePosition, VerdictUpdate,
};

fn dirty(store: &dyn GraphStore) -> (Vec<FaceId>, i64) {
    let marked = ok(store.dirty_faces(1_000), "dirty_faces");
    assert_eq!(marked.count, marked.faces.len(), "every mark is listed");
    let mut faces = marked.faces;
    faces.sort();
    (faces, marked.through)
}

fn ids(ns: &[u32]) -> Vec<FaceId> {
    let mut v: Vec<FaceId> = ns.iter().map(|n| face_id(*n)).collect();
    v.sort();
    v
}

/// An ingest marks its new faces and both faces of its new edges, a decision both its faces, a new
/// search its face; clearing up to a mark leaves the faces marked after it.
pub fn writes_mark_the_faces_they_touch(store: &dyn GraphStore) {
    assert_eq!(dirty(store).0, Vec::<FaceId>::new(), "an empty store");
    let mut input = batch(&[(1, 1), (2, 2), (3, 3)]);
    input.observations = vec![observation(1, 2, 97.0)];
    ingest(store, &input);
    let (marked, through) = dirty(store);
    assert!(
        ids(&[1, 2, 3]).iter().all(|f| marked.contains(f)),
        "new faces are marked: {marked:?}"
    );
    ok(store.clear_dirty(through), "clear_dirty");
    assert!(dirty(store).0.is_empty(), "cleared");

    // A new edge between stored faces marks both.
    ingest(
        store,
        &IngestBatch {
            observations: vec![observation(2, 3, 91.0)],
            ..IngestBatch::default()
        },
    );
    let (marked, through) = dirty(store);
    assert!(
        ids(&[2, 3]).iter().all(|f| marked.contains(f)),
        "{marked:?}"
    );
    // A decision made while a re-judging runs keeps its marks when that re-judging clears its own.
    ok(
        store.record_decision(&decision(1, 3, DecisionKind::Different, 10, None)),
        "decision",
    );
    ok(store.clear_dirty(through), "clear_dirty");
    let (marked, through) = dirty(store);
    assert_eq!(marked, ids(&[1, 3]), "the decision's faces stay marked");
    ok(store.clear_dirty(through), "clear_dirty");

    // A new search of a stored face marks it: its silence is new evidence.
    ingest(
        store,
        &IngestBatch {
            searches: vec![fixtures::search(2, Some(80.0), 3)],
            ..IngestBatch::default()
        },
    );
    assert!(dirty(store).0.contains(&face_id(2)));
}

/// `similar_edges` returns every edge with an end among the faces, once, with its verdict and
/// without the rest of the judgement.
pub fn similar_edges_carry_their_verdicts(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3), (4, 4)]);
    input.observations = vec![
        observation(1, 2, 99.0),
        observation(2, 3, 95.5),
        observation(3, 2, 95.25),
        observation(3, 4, 85.0),
    ];
    ingest(store, &input);
    let update = VerdictUpdate {
        pair: pair(2, 3),
        judgement: judgement(Verdict::Review, 95.5, vec![]),
        at: ts(5),
    };
    ok(store.record_verdicts(&[update]), "record_verdicts");
    let mut found = ok(
        store.similar_edges(&[face_id(2), face_id(3)]),
        "similar_edges",
    );
    found.sort_by(|x, y| x.0.pair.cmp(&y.0.pair));
    let pairs: Vec<(FacePair, Option<Verdict>)> =
        found.iter().map(|(e, v)| (e.pair.clone(), *v)).collect();
    assert_eq!(
        pairs,
        vec![
            (pair(1, 2), None),
            (pair(2, 3), Some(Verdict::Review)),
            (pair(3, 4), None)
        ]
    );
    let both = &found[1].0;
    assert_eq!(
        (
            both.similarity_ab.map(|s| s.get()),
            both.similarity_ba.map(|s| s.get())
        ),
        (Some(95.5), Some(95.25)),
        "both directions"
    );
    assert!(ok(store.similar_edges(&[]), "similar_edges").is_empty());
}

/// `decisions_touching` returns the decisions naming any of the faces, oldest first.
pub fn decisions_touching_are_oldest_first(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1), (2, 2), (3, 3), (4, 4)]));
    let made = [
        decision(1, 2, DecisionKind::Same, 10, None),
        decision(3, 4, DecisionKind::Same, 20, None),
        decision(1, 2, DecisionKind::Different, 30, Some("on second thought")),
        decision(2, 3, DecisionKind::Different, 40, None),
    ];
    for d in &made {
        ok(store.record_decision(d), "record_decision");
    }
    let of = |faces: &[u32]| ok(store.decisions_touching(&ids(faces)), "decisions_touching");
    assert_eq!(
        of(&[2]),
        vec![made[0].clone(), made[2].clone(), made[3].clone()]
    );
    assert_eq!(
        of(&[4, 1]),
        vec![made[0].clone(), made[1].clone(), made[2].clone()]
    );
    assert!(of(&[]).is_empty());
}

/// Replacing some clusters leaves the others, `clusters_of` finds a face's cluster with all its
/// faces, and the totals follow every replacement.
pub fn some_clusters_are_replaced_and_totals_kept(store: &dyn GraphStore) {
    ingest(
        store,
        &batch(&[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7)]),
    );
    let cluster = |id: &str, faces: &[u32], fraud_lead: bool| ClusterMembership {
        cluster_id: id.to_owned(),
        faces: faces.iter().map(|n| face_id(*n)).collect(),
        fraud_lead,
    };
    assert_eq!(
        ok(store.cluster_totals(), "totals"),
        ClusterTotals::default()
    );
    ok(
        store.replace_clusters(&[
            cluster("c-1", &[1, 2], true),
            cluster("c-2", &[3, 4], false),
        ]),
        "replace_clusters",
    );
    let totals = |clusters, fraud_leads| ClusterTotals {
        clusters,
        fraud_leads,
    };
    assert_eq!(ok(store.cluster_totals(), "totals"), totals(2, 1));
    assert_eq!(
        sorted_clusters(ok(store.clusters_of(&[face_id(2)]), "clusters_of")),
        vec![cluster("c-1", &[1, 2], true)]
    );

    ok(
        store.replace_some_clusters(
            &["c-1".to_owned(), "c-9".to_owned()],
            &[
                cluster("c-3", &[1, 2, 5], false),
                cluster("c-4", &[7, 6], true),
            ],
        ),
        "replace_some_clusters",
    );
    assert_eq!(ok(store.cluster_totals(), "totals"), totals(3, 1));
    let mut expected = vec![
        cluster("c-2", &[3, 4], false),
        cluster("c-3", &[1, 2, 5], false),
        cluster("c-4", &[6, 7], true),
    ];
    for c in &mut expected {
        c.faces.sort();
    }
    assert_eq!(sorted_clusters(ok(store.clusters(), "clusters")), expected);
    assert!(ok(store.clusters_of(&[face_id(99)]), "clusters_of").is_empty());

    ok(store.replace_clusters(&[]), "replace_clusters");
    assert_eq!(ok(store.cluster_totals(), "totals"), totals(0, 0));
}

/// The review queue reads in pages from the stored judgements: review verdicts that band
/// retention kept and that are not self-matches, by score descending then pair.
pub fn review_pages_follow_the_queue(store: &dyn GraphStore) {
    let faces: Vec<(u32, u32)> = (1..=8).map(|n| (n, n)).collect();
    let mut input = batch(&faces);
    input.observations = (2..=8)
        .map(|n| observation(1, n, 90.0 + f64::from(n)))
        .collect();
    ingest(store, &input);
    let reason = |code| Reason::new(code, "why", vec![]);
    let verdict = |n: u32, v: Verdict, score: f64, extra: Option<ReasonCode>| VerdictUpdate {
        pair: pair(1, n),
        judgement: judgement(
            v,
            score,
            std::iter::once(reason(ReasonCode::SimilarityBand))
                .chain(extra.map(reason))
                .collect(),
        ),
        at: ts(5),
    };
    let updates = vec![
        verdict(2, Verdict::Review, 91.0, None),
        verdict(3, Verdict::Review, 93.0, None),
        verdict(4, Verdict::Review, 93.0, None),
        verdict(5, Verdict::Review, 95.0, Some(ReasonCode::BandRetention)),
        verdict(6, Verdict::Review, 96.0, Some(ReasonCode::SameSubject)),
        verdict(7, Verdict::Confirmed, 97.0, None),
        verdict(
            8,
            Verdict::Review,
            92.0,
            Some(ReasonCode::GenderContradiction),
        ),
    ];
    ok(store.record_verdicts(&updates), "record_verdicts");
    let mut seen: Vec<FacePair> = Vec::new();
    let mut after: Option<QueuePosition> = None;
    loop {
        let page = ok(store.review_page(after.as_ref(), 2), "review_page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(QueuePosition {
            score: last.judgement.as_ref().expect("a judged edge").score,
            pair: last.edge.pair.clone(),
        });
        seen.extend(page.into_iter().map(|e| e.edge.pair));
    }
    assert_eq!(
        seen,
        vec![pair(1, 3), pair(1, 4), pair(1, 8), pair(1, 2)],
        "score descending, ties by pair; held back, self-matches and other verdicts left out"
    );
    // A judgement that leaves the queue leaves its pages.
    ok(
        store.record_verdicts(&[verdict(3, Verdict::Confirmed, 99.0, None)]),
        "record_verdicts",
    );
    let first = ok(store.review_page(None, 10), "review_page");
    let pairs: Vec<FacePair> = first.into_iter().map(|e| e.edge.pair).collect();
    assert_eq!(pairs, vec![pair(1, 4), pair(1, 8), pair(1, 2)]);
}
