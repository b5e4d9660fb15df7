//! Contract checks of the stream's bookkeeping: processed message keys kept with their first
//! record, the judgement history read in commit order, the outbox of match events moved with its
//! cursor in one transaction, named cursors, and leases held by one holder until they expire.

use super::fixtures::{batch, face_id, image_id, judgement, observation, pair, ts};
use super::{ingest, ok};
use crate::model::{Reason, ReasonCode, Verdict};
use crate::store::{GraphStore, MatchEventRecord, ProcessedMessage, VerdictUpdate};

/// A processed message key is read back with its record; recording it again keeps the first.
pub fn processed_messages_keep_their_first_record(store: &dyn GraphStore) {
    assert_eq!(
        ok(store.processed_message("k-1"), "read a key"),
        None,
        "an empty store has processed nothing"
    );
    let first = ProcessedMessage {
        key: "k-1".to_owned(),
        image_id: image_id(1),
        face_id: Some(face_id(1)),
        at: ts(1_000),
    };
    let faceless = ProcessedMessage {
        key: "k-2".to_owned(),
        image_id: image_id(2),
        face_id: None,
        at: ts(1_000),
    };
    ok(
        store.record_processed_messages(&[first.clone(), faceless.clone()]),
        "record keys",
    );
    let again = ProcessedMessage {
        image_id: image_id(3),
        at: ts(2_000),
        ..first.clone()
    };
    ok(store.record_processed_messages(&[again]), "record again");
    assert_eq!(
        ok(store.processed_message("k-1"), "read"),
        Some(first),
        "a key keeps its first record"
    );
    assert_eq!(ok(store.processed_message("k-2"), "read"), Some(faceless));
}

fn band(verdict: Verdict, similarity: f64) -> crate::model::Judgement {
    judgement(
        verdict,
        similarity,
        vec![Reason::new(
            ReasonCode::SimilarityBand,
            "band",
            vec![("similarity", similarity.into())],
        )],
    )
}

/// Judgements come back in the order they were recorded, after any position, within a limit;
/// a judgement equal to the edge's current one is not recorded again.
pub fn the_judgement_history_is_read_in_order(store: &dyn GraphStore) {
    let mut input = batch(&[(1, 1), (2, 2), (3, 3)]);
    input.observations = vec![observation(1, 2, 99.0), observation(1, 3, 95.0)];
    ingest(store, &input);
    assert!(ok(store.judgements_after(0, 10), "history").is_empty());
    let updates = [
        (pair(1, 2), band(Verdict::Confirmed, 99.0), 1_000),
        (pair(1, 3), band(Verdict::Review, 95.0), 1_000),
        (pair(1, 2), band(Verdict::Confirmed, 99.0), 2_000),
        (pair(1, 2), band(Verdict::Review, 97.0), 3_000),
    ];
    for (p, j, at) in updates {
        ok(
            store.record_verdicts(&[VerdictUpdate {
                pair: p,
                judgement: j,
                at: ts(at),
            }]),
            "record",
        );
    }
    let all = ok(store.judgements_after(0, 10), "history");
    let seen: Vec<_> = all
        .iter()
        .map(|e| (e.pair.clone(), e.judgement.verdict, e.at))
        .collect();
    assert_eq!(
        seen,
        [
            (pair(1, 2), Verdict::Confirmed, ts(1_000)),
            (pair(1, 3), Verdict::Review, ts(1_000)),
            (pair(1, 2), Verdict::Review, ts(3_000)),
        ],
        "every change once, in order"
    );
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "positions grow: {all:?}"
    );
    assert_eq!(all[2].judgement, band(Verdict::Review, 97.0));
    let rest = ok(store.judgements_after(all[0].seq, 10), "history");
    assert_eq!(rest, all[1..].to_vec(), "after a position");
    let first = ok(store.judgements_after(0, 1), "history");
    assert_eq!(first, all[..1].to_vec(), "within the limit");
}

fn event(id: &str, p: (u32, u32), verdict: Verdict, seq: i64) -> MatchEventRecord {
    MatchEventRecord {
        event_id: id.to_owned(),
        pair: pair(p.0, p.1),
        verdict,
        judgement_seq: seq,
        payload: format!("{{\"event_id\":\"{id}\"}}"),
        sent_at: None,
    }
}

/// Events enter the outbox only with the cursor at the expected position, which moves with them;
/// they are read unsent in order, the latest of each pair is found, and sent ones leave the
/// unsent list; an event id enqueued again is left as it was.
pub fn match_events_move_through_the_outbox_with_their_cursor(store: &dyn GraphStore) {
    ingest(store, &batch(&[(1, 1), (2, 2), (3, 3)]));
    let first = [
        event("e-1", (1, 2), Verdict::Confirmed, 1),
        event("e-2", (1, 3), Verdict::Confirmed, 2),
    ];
    assert!(ok(
        store.enqueue_match_events("events", None, "2", &first),
        "enqueue"
    ));
    assert_eq!(
        ok(store.stream_cursor("events"), "cursor").as_deref(),
        Some("2")
    );
    let stale = [event("e-x", (2, 3), Verdict::Confirmed, 9)];
    assert!(
        !ok(
            store.enqueue_match_events("events", None, "9", &stale),
            "enqueue"
        ),
        "a writer that read an old cursor writes nothing"
    );
    let later = [event("e-3", (1, 2), Verdict::Review, 3)];
    assert!(ok(
        store.enqueue_match_events("events", Some("2"), "3", &later),
        "enqueue"
    ));
    let unsent = ok(store.unsent_match_events(10), "unsent");
    let ids: Vec<&str> = unsent.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["e-1", "e-2", "e-3"], "unsent, oldest first");
    assert_eq!(unsent[0], first[0], "read back as enqueued");
    let mut last = ok(
        store.last_match_events(&[pair(1, 2), pair(1, 3), pair(2, 3)]),
        "last events",
    );
    last.sort_by(|x, y| x.pair.cmp(&y.pair));
    let last_ids: Vec<&str> = last.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        last_ids,
        ["e-3", "e-2"],
        "the latest of each pair that has one"
    );
    ok(
        store.mark_match_events_sent(&["e-1".to_owned(), "e-2".to_owned()], ts(5_000)),
        "mark sent",
    );
    let unsent = ok(store.unsent_match_events(10), "unsent");
    assert_eq!(unsent.len(), 1);
    assert_eq!(unsent[0].event_id, "e-3");
    assert_eq!(ok(store.unsent_match_events(0), "unsent").len(), 0);
    let mut again = first[0].clone();
    again.payload = "{}".to_owned();
    assert!(ok(
        store.enqueue_match_events("events", Some("3"), "4", &[again]),
        "enqueue"
    ));
    let last = ok(store.last_match_events(&[pair(1, 2)]), "last events");
    assert_eq!(
        last[0].event_id, "e-3",
        "an old id enqueued again adds nothing"
    );
    assert!(ok(store.unsent_match_events(10), "unsent")
        .iter()
        .all(|e| e.event_id != "e-1"));
}

/// A named cursor reads back what was last set.
pub fn cursors_read_back_what_was_set(store: &dyn GraphStore) {
    assert_eq!(ok(store.stream_cursor("backfill:a"), "cursor"), None);
    ok(store.set_stream_cursor("backfill:a", "2024-01-01"), "set");
    ok(store.set_stream_cursor("backfill:b", "2024-02-01"), "set");
    ok(store.set_stream_cursor("backfill:a", "2024-01-02"), "set");
    assert_eq!(
        ok(store.stream_cursor("backfill:a"), "cursor").as_deref(),
        Some("2024-01-02")
    );
    assert_eq!(
        ok(store.stream_cursor("backfill:b"), "cursor").as_deref(),
        Some("2024-02-01")
    );
}

/// A lease is held by one holder, who may renew it, until it expires or is released.
pub fn leases_are_held_by_one_holder_until_they_expire(store: &dyn GraphStore) {
    let take = |holder: &str, now: i64| {
        ok(
            store.take_lease("relay", holder, ts(now), ts(now + 1_000)),
            "take",
        )
    };
    assert!(take("a", 0), "a free lease is taken");
    assert!(!take("b", 500), "a held lease is refused");
    assert!(take("a", 900), "the holder renews it");
    assert!(!take("b", 1_500), "until 1900");
    assert!(take("b", 1_900), "an expired lease is taken over");
    ok(store.release_lease("relay", "a"), "release");
    assert!(!take("a", 2_000), "only the holder releases");
    ok(store.release_lease("relay", "b"), "release");
    assert!(take("a", 2_000), "a released lease is free");
    assert!(
        ok(store.take_lease("other", "b", ts(2_000), ts(3_000)), "take"),
        "leases are named"
    );
}
