//! Match events: derived from the stored judgement history, not from what one process saw, so that
//! every process sharing a store (and every restart) derives the same events. An event is due for a
//! judgement that confirms a pair no event was sent for, and for a judgement that changes the
//! verdict of a pair whose last event said otherwise. Its id and content come from the judgement
//! (and the faces at the time), and it is written to the store's outbox, with the cursor over the
//! history, in one transaction before it is sent; it is marked sent after the broker acknowledged
//! it. A crash between sending and marking sends it again, with the same id and bytes; nothing
//! else repeats an event. One process at a time relays the outbox, under a lease in the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use super::kafka::{send_all, Outgoing};
use super::messages::{MatchEvent, VERSION};
use super::metrics::StreamMetrics;
use super::StreamError;
use crate::api::wire::ReasonOut;
use crate::faults::crash_point;
use crate::model::{Evidence, FaceId, FacePair, Timestamp, Verdict};
use crate::service::Facegraph;
use crate::store::{FaceRecord, GraphStore, JudgementEntry, MatchEventRecord, StoreError};

/// The cursor that says how far the outbox has read the judgement history.
pub const CURSOR: &str = "match_events";

/// The lease of the outbox's relay.
const LEASE: &str = "match_events";

/// How long the relay's lease lasts without renewal (it is renewed before every page of events):
/// a holder that died is replaced after this.
const LEASE_TIME: Duration = Duration::from_secs(15);

/// Judgements read from the history at a time.
const PAGE: usize = 1_000;

/// The events due for `entries` (in history order), given the verdict of the last event of each
/// pair (updated as events become due): each with the verdict of the event before it.
pub fn due_events<'a>(
    entries: &'a [JudgementEntry],
    last: &mut HashMap<FacePair, Verdict>,
) -> Vec<(&'a JudgementEntry, Option<Verdict>)> {
    let mut due = Vec::new();
    for e in entries {
        let verdict = e.judgement.verdict;
        let previous = last.get(&e.pair).copied();
        let is_due = match previous {
            None => verdict == Verdict::Confirmed,
            Some(p) => p != verdict,
        };
        if is_due {
            due.push((e, previous));
            last.insert(e.pair.clone(), verdict);
        }
    }
    due
}

/// The id of the event of a judgement: a hash of the pair, the judgement's place in the history,
/// its time and its verdict, 32 hex digits.
pub fn event_id(e: &JudgementEntry) -> String {
    let mut h = Sha256::new();
    h.update(b"facegraph match event v1\n");
    for part in [
        e.pair.a().as_str(),
        e.pair.b().as_str(),
        &e.seq.to_string(),
        &e.at.millis().to_string(),
        e.judgement.verdict.as_str(),
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..16])
}

/// The event of a judgement, with the faces' images and subjects.
pub fn event_record(
    e: &JudgementEntry,
    previous: Option<Verdict>,
    faces: &HashMap<FaceId, FaceRecord>,
) -> MatchEventRecord {
    let face = |id: &FaceId| faces.get(id);
    let external = |id: &FaceId| {
        face(id)
            .and_then(|f| f.face.external_image_id.as_ref())
            .map(|x| x.as_str().to_owned())
    };
    let subject = |id: &FaceId| {
        face(id)
            .and_then(|f| f.subject.as_ref())
            .map(|s| s.as_str().to_owned())
    };
    // The similarity the judgement weighed: the band rule, always first, records it.
    let similarity = e.judgement.reasons.first().and_then(|r| {
        r.evidence.iter().find_map(|(k, v)| match v {
            Evidence::Number(n) if k == "similarity" => Some(*n),
            _ => None,
        })
    });
    let (a, b) = (e.pair.a(), e.pair.b());
    let event = MatchEvent {
        version: VERSION,
        event_id: event_id(e),
        face_a: a.as_str().to_owned(),
        face_b: b.as_str().to_owned(),
        external_image_id_a: external(a),
        external_image_id_b: external(b),
        subject_a: subject(a),
        subject_b: subject(b),
        similarity,
        verdict: e.judgement.verdict.as_str(),
        previous_verdict: previous.map(Verdict::as_str),
        score: e.judgement.score,
        rule_set: e.judgement.rule_set.clone(),
        reasons: e.judgement.reasons.iter().map(ReasonOut::from).collect(),
        at: e.at.to_string(),
    };
    MatchEventRecord {
        event_id: event.event_id.clone(),
        pair: e.pair.clone(),
        verdict: e.judgement.verdict,
        judgement_seq: e.seq,
        // Plain strings and numbers (non-finite evidence is null) always serialise.
        payload: serde_json::to_string(&event).unwrap_or_default(),
        sent_at: None,
    }
}

/// The relay of the outbox to the matches topic.
#[derive(Clone)]
pub struct Relay {
    graph: Facegraph,
    producer: FutureProducer,
    topic: String,
    holder: String,
    exclusive: bool,
    metrics: StreamMetrics,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("topic", &self.topic)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay of `graph`'s outbox to `topic`. The embedded store has one writer, the holder of
    /// the data directory's lock, so its relay needs no lease (and does not wait out the lease of
    /// a predecessor that crashed); a shared store's relays take turns under the lease.
    pub fn new(
        graph: Facegraph,
        producer: FutureProducer,
        topic: String,
        metrics: StreamMetrics,
    ) -> Self {
        let holder = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4());
        let exclusive = graph.store().kind() == "sqlite";
        Self {
            graph,
            producer,
            topic,
            holder,
            exclusive,
            metrics,
        }
    }

    /// Relays until `shutdown`, a round when woken and every second; a last round at the end.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.round().await {
                tracing::warn!(error = %crate::errors::Chain(&e), "relaying match events failed; trying again");
            }
        }
        if let Err(e) = self.round().await {
            tracing::warn!(error = %crate::errors::Chain(&e), "the last round of match events failed; the next start sends them");
        }
    }

    /// One round: takes the lease (or leaves the round to its holder), sends what the outbox
    /// holds unsent, derives the events of judgements recorded since the cursor, and sends them.
    /// Returns how many events were sent.
    pub async fn round(&self) -> Result<usize, StreamError> {
        let store = Arc::clone(self.graph.store());
        if !self.renew(&store).await? {
            return Ok(0);
        }
        let mut sent = 0;
        let result = async {
            loop {
                let unsent = blocking(&store, |s| s.unsent_match_events(PAGE)).await?;
                if !unsent.is_empty() {
                    sent += self.send(&store, unsent).await?;
                } else if !self.derive(&store).await? {
                    break;
                }
                if !self.renew(&store).await? {
                    break;
                }
            }
            Ok::<_, StreamError>(())
        }
        .await;
        if !self.exclusive {
            let holder = self.holder.clone();
            blocking(&store, move |s| s.release_lease(LEASE, &holder)).await?;
        }
        result.map(|()| sent)
    }

    async fn renew(&self, store: &Arc<dyn GraphStore>) -> Result<bool, StreamError> {
        if self.exclusive {
            return Ok(true);
        }
        let holder = self.holder.clone();
        let now = Timestamp::now();
        let until = Timestamp::from_millis(now.millis() + LEASE_TIME.as_millis() as i64);
        blocking(store, move |s| s.take_lease(LEASE, &holder, now, until)).await
    }

    /// Sends events in outbox order and marks them sent once the broker has them all.
    async fn send(
        &self,
        store: &Arc<dyn GraphStore>,
        events: Vec<MatchEventRecord>,
    ) -> Result<usize, StreamError> {
        let messages: Vec<Outgoing> = events
            .iter()
            .map(|e| Outgoing {
                topic: self.topic.clone(),
                key: format!("{}:{}", e.pair.a(), e.pair.b()).into_bytes(),
                payload: e.payload.clone().into_bytes(),
                headers: vec![("event_id", e.event_id.clone().into_bytes())],
            })
            .collect();
        send_all(&self.producer, &messages).await?;
        crash_point("events.after_send");
        for e in &events {
            self.metrics.event(e.verdict.as_str());
        }
        let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
        blocking(store, move |s| {
            s.mark_match_events_sent(&ids, Timestamp::now())
        })
        .await?;
        Ok(events.len())
    }

    /// Derives the events of the next page of the history into the outbox; `false` when the
    /// history has nothing new (or another process moved the cursor first).
    async fn derive(&self, store: &Arc<dyn GraphStore>) -> Result<bool, StreamError> {
        let cursor = blocking(store, |s| s.stream_cursor(CURSOR)).await?;
        let after = match cursor.as_deref() {
            None => 0,
            Some(c) => c.parse::<i64>().map_err(|_| StreamError::Cursor {
                name: CURSOR,
                value: c.to_owned(),
            })?,
        };
        let entries = blocking(store, move |s| s.judgements_after(after, PAGE)).await?;
        let Some(last_seq) = entries.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let pairs: Vec<FacePair> = entries
            .iter()
            .map(|e| e.pair.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut last: HashMap<FacePair, Verdict> =
            blocking(store, move |s| s.last_match_events(&pairs))
                .await?
                .into_iter()
                .map(|e| (e.pair, e.verdict))
                .collect();
        let due = due_events(&entries, &mut last);
        let ids: Vec<FaceId> = due
            .iter()
            .flat_map(|(e, _)| [e.pair.a().clone(), e.pair.b().clone()])
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let faces: HashMap<FaceId, FaceRecord> = blocking(store, move |s| s.faces(&ids))
            .await?
            .into_iter()
            .map(|f| (f.face.face_id.clone(), f))
            .collect();
        let records: Vec<MatchEventRecord> = due
            .into_iter()
            .map(|(e, previous)| event_record(e, previous, &faces))
            .collect();
        let to = last_seq.to_string();
        blocking(store, move |s| {
            s.enqueue_match_events(CURSOR, cursor.as_deref(), &to, &records)
        })
        .await
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn GraphStore>,
    f: impl FnOnce(&dyn GraphStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StreamError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| StreamError::Task(e.to_string()))?
        .map_err(StreamError::Store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Judgement, Reason, ReasonCode};
    use crate::store::contract::fixtures::{face_id, pair};

    fn entry(seq: i64, p: (u32, u32), verdict: Verdict) -> JudgementEntry {
        JudgementEntry {
            seq,
            pair: pair(p.0, p.1),
            judgement: Judgement {
                verdict,
                score: 99.0,
                rule_set: "rs-1".to_owned(),
                reasons: vec![Reason::new(
                    ReasonCode::SimilarityBand,
                    "band",
                    vec![("similarity", 99.25.into())],
                )],
            },
            at: Timestamp::from_millis(seq * 1_000),
        }
    }

    #[test]
    fn confirmations_and_later_changes_are_due_and_nothing_else() {
        let history = [
            entry(1, (1, 2), Verdict::Review),
            entry(2, (1, 2), Verdict::Confirmed),
            entry(3, (1, 3), Verdict::Rejected),
            entry(4, (1, 2), Verdict::Review),
            entry(5, (2, 3), Verdict::Confirmed),
            entry(6, (2, 3), Verdict::Confirmed),
            entry(7, (1, 3), Verdict::Review),
        ];
        let mut last = HashMap::new();
        let due: Vec<(i64, Option<Verdict>)> = due_events(&history, &mut last)
            .into_iter()
            .map(|(e, p)| (e.seq, p))
            .collect();
        assert_eq!(
            due,
            [(2, None), (4, Some(Verdict::Confirmed)), (5, None)],
            "a first confirmation, a later change, another first confirmation"
        );
        // A pair whose last event (sent before) confirmed it: a rejection is due.
        let mut last = HashMap::from([(pair(1, 3), Verdict::Confirmed)]);
        let due = due_events(&history[2..3], &mut last);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, Some(Verdict::Confirmed));
    }

    #[test]
    fn an_event_is_the_same_whenever_it_is_derived() {
        let e = entry(2, (1, 2), Verdict::Confirmed);
        let faces = HashMap::new();
        let first = event_record(&e, None, &faces);
        let again = event_record(&e, None, &faces);
        assert_eq!(first, again);
        assert_eq!(first.event_id.len(), 32);
        assert_ne!(
            first.event_id,
            event_record(&entry(3, (1, 2), Verdict::Confirmed), None, &faces).event_id,
            "another judgement, another id"
        );
        let json: serde_json::Value = serde_json::from_str(&first.payload).unwrap();
        assert_eq!(json["face_a"], face_id(1).as_str());
        assert_eq!(json["similarity"], 99.25);
        assert_eq!(json["verdict"], "confirmed");
        assert!(json["previous_verdict"].is_null());
        assert_eq!(json["at"], "1970-01-01T00:00:02.000Z");
        assert_eq!(json["reasons"][0]["code"], "similarity_band");
    }
}
