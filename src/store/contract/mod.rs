//! The contract every [`GraphStore`] adapter passes: behaviour checks that take a fresh, empty store
//! and panic with a message saying what broke. [`graph_store_contract!`](crate::graph_store_contract)
//! turns them into one `#[test]` each; [`fixtures`] builds the test data, and other tests reuse it.

mod batches;
pub mod fixtures;
mod records;
mod scoped;
mod stream;
mod uploads;

pub use batches::{
    both_directions_fold_into_one_edge, conflicting_face_is_refused_and_writes_nothing,
    conflicts_name_the_field_that_differs, empty_store_reads_empty,
    face_attributes_are_completed_not_erased, face_sequence_follows_insertion, ingest_then_read,
    raw_response_is_kept_verbatim, reingest_is_idempotent, self_observations_are_skipped,
    similarities_round_trip_exactly, subject_link_given_before_the_image_applies_later,
    subjects_link_by_external_image_id, unknown_face_in_observation_writes_nothing,
    unknown_face_in_search_writes_nothing,
};
pub use records::{
    clusters_are_replaced, decision_on_unknown_face_fails, decisions_are_append_only,
    edges_touching_returns_edges_with_an_end_in_the_set, faces_ignores_unknown_ids,
    faces_of_subject_returns_that_subjects_faces, searches_are_recorded,
    verdict_without_edge_fails_and_writes_nothing, verdicts_filter_edges,
    verdicts_round_trip_exactly,
};
pub use scoped::{
    decisions_touching_are_oldest_first, review_pages_follow_the_queue,
    similar_edges_carry_their_verdicts, some_clusters_are_replaced_and_totals_kept,
    writes_mark_the_faces_they_touch,
};
pub use stream::{
    cursors_read_back_what_was_set, leases_are_held_by_one_holder_until_they_expire,
    match_events_move_through_the_outbox_with_their_cursor,
    processed_messages_keep_their_first_record, the_judgement_history_is_read_in_order,
};
pub use uploads::{
    a_refused_upload_is_forgotten, reused_photos_share_their_content_hash,
    uploads_stay_pending_until_completed,
};

use super::{
    ClusterMembership, EdgeRecord, FaceRecord, GraphStore, IngestBatch, IngestOutcome, StoreError,
    StoreStats,
};
use fixtures::face_id;

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
            conflicting_face_is_refused_and_writes_nothing,
            conflicts_name_the_field_that_differs,
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
            uploads_stay_pending_until_completed,
            reused_photos_share_their_content_hash,
            a_refused_upload_is_forgotten,
            processed_messages_keep_their_first_record,
            the_judgement_history_is_read_in_order,
            match_events_move_through_the_outbox_with_their_cursor,
            cursors_read_back_what_was_set,
            leases_are_held_by_one_holder_until_they_expire,
            writes_mark_the_faces_they_touch,
            similar_edges_carry_their_verdicts,
            decisions_touching_are_oldest_first,
            some_clusters_are_replaced_and_totals_kept,
            review_pages_follow_the_queue,
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
        "conflicting_face_is_refused_and_writes_nothing",
        conflicting_face_is_refused_and_writes_nothing,
    ),
    (
        "conflicts_name_the_field_that_differs",
        conflicts_name_the_field_that_differs,
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
    (
        "uploads_stay_pending_until_completed",
        uploads_stay_pending_until_completed,
    ),
    (
        "reused_photos_share_their_content_hash",
        reused_photos_share_their_content_hash,
    ),
    (
        "a_refused_upload_is_forgotten",
        a_refused_upload_is_forgotten,
    ),
    (
        "processed_messages_keep_their_first_record",
        processed_messages_keep_their_first_record,
    ),
    (
        "the_judgement_history_is_read_in_order",
        the_judgement_history_is_read_in_order,
    ),
    (
        "match_events_move_through_the_outbox_with_their_cursor",
        match_events_move_through_the_outbox_with_their_cursor,
    ),
    (
        "cursors_read_back_what_was_set",
        cursors_read_back_what_was_set,
    ),
    (
        "leases_are_held_by_one_holder_until_they_expire",
        leases_are_held_by_one_holder_until_they_expire,
    ),
    (
        "writes_mark_the_faces_they_touch",
        writes_mark_the_faces_they_touch,
    ),
    (
        "similar_edges_carry_their_verdicts",
        similar_edges_carry_their_verdicts,
    ),
    (
        "decisions_touching_are_oldest_first",
        decisions_touching_are_oldest_first,
    ),
    (
        "some_clusters_are_replaced_and_totals_kept",
        some_clusters_are_replaced_and_totals_kept,
    ),
    (
        "review_pages_follow_the_queue",
        review_pages_follow_the_queue,
    ),
];

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
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::errors::chain(err)
}
