//! The stream's bookkeeping in the Neo4j store: `(:StreamMessage)` nodes for processed message
//! keys, the `(:Judgement)` history read in order of its sequence numbers, `(:MatchEvent)` nodes
//! as the outbox, and `(:StreamCursor)` and `(:StreamLease)` nodes.

use neo4rs::{query, BoltType, Row};

use super::decode::{all, corrupt, get, opt_parsed, parsed, text};
use super::driver::{numbered, rows, unwind, unwind_rows, Map};
use super::Neo4jStore;
use crate::model::{FaceId, FacePair, ImageId, Judgement, Timestamp, Verdict};
use crate::store::codec::reasons_from_json;
use crate::store::{JudgementEntry, MatchEventRecord, ProcessedMessage, StoreError};

/// [`GraphStore::processed_message`](crate::store::GraphStore::processed_message).
pub(super) fn processed_message(
    store: &Neo4jStore,
    key: &str,
) -> Result<Option<ProcessedMessage>, StoreError> {
    let found = store.transaction("read a processed message", async |tx| {
        Ok(rows(
            tx,
            query(
                "MATCH (m:StreamMessage {key: $key})
                 RETURN m.key AS key, m.image_id AS image_id, m.face_id AS face_id, m.at AS at",
            )
            .param("key", key),
        )
        .await?)
    })?;
    Ok(all(found, |row| {
        const W: &str = "processed message";
        Ok(ProcessedMessage {
            key: text(row, W, "key")?,
            image_id: parsed(row, W, "image_id", ImageId::parse)?,
            face_id: opt_parsed(row, W, "face_id", FaceId::parse)?,
            at: Timestamp::from_millis(get(row, W, "at")?),
        })
    })?
    .pop())
}

/// [`GraphStore::record_processed_messages`](crate::store::GraphStore::record_processed_messages).
pub(super) fn record_processed(
    store: &Neo4jStore,
    messages: &[ProcessedMessage],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let list: Vec<BoltType> = messages
        .iter()
        .map(|m| {
            Map::default()
                .with("key", m.key.as_str())
                .with("image_id", m.image_id.as_str())
                .with("face_id", m.face_id.as_ref().map(FaceId::as_str))
                .with("at", m.at.millis())
                .into()
        })
        .collect();
    store.transaction("record processed messages", async |tx| {
        unwind(
            tx,
            "UNWIND $rows AS r
             MERGE (m:StreamMessage {key: r.key})
             ON CREATE SET m.image_id = r.image_id, m.face_id = r.face_id, m.at = r.at",
            list.clone(),
        )
        .await?;
        Ok(())
    })
}

/// [`GraphStore::judgements_after`](crate::store::GraphStore::judgements_after): the
/// `(:Judgement)` nodes by their sequence numbers, which the judgement counter hands out in commit
/// order (taking a number locks the counter until the transaction ends).
pub(super) fn judgements_after(
    store: &Neo4jStore,
    after: i64,
    limit: usize,
) -> Result<Vec<JudgementEntry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found = store.transaction("read the judgement history", async |tx| {
        Ok(rows(
            tx,
            query(
                "MATCH (j:Judgement) WHERE j.seq > $after
                 RETURN j.seq AS seq, j.face_a AS face_a, j.face_b AS face_b,
                        j.verdict AS verdict, j.score AS score, j.rule_set AS rule_set,
                        j.reasons AS reasons, j.at AS at
                 ORDER BY seq LIMIT $limit",
            )
            .param("after", after)
            .param("limit", limit),
        )
        .await?)
    })?;
    all(found, |row| {
        const W: &str = "judgement";
        let seq: i64 = get(row, W, "seq")?;
        let pair = pair_of(row, W)?;
        let reasons: String = text(row, W, "reasons")?;
        Ok(JudgementEntry {
            seq,
            pair,
            judgement: Judgement {
                verdict: parsed(row, W, "verdict", parse_verdict)?,
                score: get(row, W, "score")?,
                rule_set: text(row, W, "rule_set")?,
                reasons: reasons_from_json(&reasons)
                    .map_err(|detail| corrupt(W, format!("judgement {seq}: {detail}")))?,
            },
            at: Timestamp::from_millis(get(row, W, "at")?),
        })
    })
}

fn parse_verdict(s: &str) -> Result<Verdict, String> {
    Verdict::parse(s).ok_or_else(|| format!("{s:?} is not confirmed, review or rejected"))
}

fn pair_of(row: &Row, what: &'static str) -> Result<FacePair, StoreError> {
    let a = parsed(row, what, "face_a", FaceId::parse)?;
    let b = parsed(row, what, "face_b", FaceId::parse)?;
    FacePair::new(a.clone(), b).ok_or_else(|| corrupt(what, format!("face {a} with itself")))
}

/// [`GraphStore::stream_cursor`](crate::store::GraphStore::stream_cursor).
pub(super) fn cursor(store: &Neo4jStore, name: &str) -> Result<Option<String>, StoreError> {
    let found = store.transaction("read a cursor", async |tx| {
        Ok(rows(
            tx,
            query("MATCH (c:StreamCursor {name: $name}) RETURN c.value AS value")
                .param("name", name),
        )
        .await?)
    })?;
    Ok(
        all(found, |row| get::<Option<String>>(row, "cursor", "value"))?
            .pop()
            .flatten(),
    )
}

/// [`GraphStore::set_stream_cursor`](crate::store::GraphStore::set_stream_cursor).
pub(super) fn set_cursor(store: &Neo4jStore, name: &str, value: &str) -> Result<(), StoreError> {
    store.transaction("set a cursor", async |tx| {
        tx.run(
            query("MERGE (c:StreamCursor {name: $name}) SET c.value = $value")
                .param("name", name)
                .param("value", value),
        )
        .await?;
        Ok(())
    })
}

/// [`GraphStore::take_lease`](crate::store::GraphStore::take_lease).
pub(super) fn take_lease(
    store: &Neo4jStore,
    name: &str,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, StoreError> {
    let found = store.transaction("take a lease", async |tx| {
        Ok(rows(
            tx,
            query(
                "MERGE (l:StreamLease {name: $name})
                 ON CREATE SET l.holder = $holder, l.until = $until
                 WITH l WHERE l.holder = $holder OR l.until <= $now
                 SET l.holder = $holder, l.until = $until
                 RETURN l.holder AS holder",
            )
            .param("name", name)
            .param("holder", holder)
            .param("now", now.millis())
            .param("until", until.millis()),
        )
        .await?)
    })?;
    Ok(!found.is_empty())
}

/// [`GraphStore::release_lease`](crate::store::GraphStore::release_lease).
pub(super) fn release_lease(
    store: &Neo4jStore,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    store.transaction("release a lease", async |tx| {
        tx.run(
            query("MATCH (l:StreamLease {name: $name, holder: $holder}) DELETE l")
                .param("name", name)
                .param("holder", holder),
        )
        .await?;
        Ok(())
    })
}

const EVENT_COLUMNS: &str = "e.event_id AS event_id, e.face_a AS face_a, e.face_b AS face_b,
    e.verdict AS verdict, e.judgement_seq AS judgement_seq, e.payload AS payload,
    e.sent_at AS sent_at, e.seq AS seq";

fn event(row: &Row) -> Result<MatchEventRecord, StoreError> {
    const W: &str = "match event";
    Ok(MatchEventRecord {
        event_id: text(row, W, "event_id")?,
        pair: pair_of(row, W)?,
        verdict: parsed(row, W, "verdict", parse_verdict)?,
        judgement_seq: get(row, W, "judgement_seq")?,
        payload: text(row, W, "payload")?,
        sent_at: get::<Option<i64>>(row, W, "sent_at")?.map(Timestamp::from_millis),
    })
}

/// [`GraphStore::last_match_events`](crate::store::GraphStore::last_match_events).
pub(super) fn last_events(
    store: &Neo4jStore,
    pairs: &[FacePair],
) -> Result<Vec<MatchEventRecord>, StoreError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<BoltType> = pairs
        .iter()
        .map(|p| {
            Map::default()
                .with("a", p.a().as_str())
                .with("b", p.b().as_str())
                .into()
        })
        .collect();
    let cypher = format!(
        "UNWIND $rows AS p
         MATCH (e:MatchEvent {{face_a: p.a, face_b: p.b}})
         WITH p, e ORDER BY e.seq DESC
         WITH p, collect(e)[0] AS e
         RETURN {EVENT_COLUMNS}"
    );
    let found = store.transaction("read match events", async |tx| {
        Ok(unwind_rows(tx, &cypher, list.clone()).await?)
    })?;
    all(found, event)
}

/// [`GraphStore::enqueue_match_events`](crate::store::GraphStore::enqueue_match_events). Setting
/// a property of the cursor node first locks it, so that of two writers racing from the same
/// position the second reads the first's and writes nothing.
pub(super) fn enqueue(
    store: &Neo4jStore,
    cursor_name: &str,
    from: Option<&str>,
    to: &str,
    events: &[MatchEventRecord],
) -> Result<bool, StoreError> {
    let list: Vec<BoltType> = events
        .iter()
        .map(|e| {
            Map::default()
                .with("event_id", e.event_id.as_str())
                .with("a", e.pair.a().as_str())
                .with("b", e.pair.b().as_str())
                .with("verdict", e.verdict.as_str())
                .with("judgement_seq", e.judgement_seq)
                .with("payload", e.payload.as_str())
                .into()
        })
        .collect();
    store.transaction("enqueue match events", async |tx| {
        let found = rows(
            tx,
            query(
                "MERGE (c:StreamCursor {name: $name})
                 SET c.locked_at = timestamp()
                 RETURN c.value AS value",
            )
            .param("name", cursor_name),
        )
        .await?;
        let current: Option<String> = match found.first() {
            Some(row) => get(row, "cursor", "value")?,
            None => None,
        };
        if current.as_deref() != from {
            return Ok(false);
        }
        if !list.is_empty() {
            let rows = numbered(tx, "match_event", list.clone()).await?;
            unwind(
                tx,
                "UNWIND $rows AS r
                 MERGE (e:MatchEvent {event_id: r.event_id})
                 ON CREATE SET e.face_a = r.a, e.face_b = r.b, e.verdict = r.verdict,
                               e.judgement_seq = r.judgement_seq, e.payload = r.payload,
                               e.seq = r.seq, e.sent = false",
                rows,
            )
            .await?;
        }
        tx.run(
            query("MATCH (c:StreamCursor {name: $name}) SET c.value = $value")
                .param("name", cursor_name)
                .param("value", to),
        )
        .await?;
        Ok(true)
    })
}

/// [`GraphStore::unsent_match_events`](crate::store::GraphStore::unsent_match_events).
pub(super) fn unsent(
    store: &Neo4jStore,
    limit: usize,
) -> Result<Vec<MatchEventRecord>, StoreError> {
    let cypher = format!(
        "MATCH (e:MatchEvent) WHERE e.sent = false
         RETURN {EVENT_COLUMNS} ORDER BY seq LIMIT $limit"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found = store.transaction("read match events", async |tx| {
        Ok(rows(tx, query(&cypher).param("limit", limit)).await?)
    })?;
    all(found, event)
}

/// [`GraphStore::mark_match_events_sent`](crate::store::GraphStore::mark_match_events_sent).
pub(super) fn mark_sent(
    store: &Neo4jStore,
    ids: &[String],
    at: Timestamp,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let list: Vec<BoltType> = ids.iter().map(|i| i.as_str().into()).collect();
    store.transaction("mark match events sent", async |tx| {
        tx.run(
            query(
                "UNWIND $ids AS id MATCH (e:MatchEvent {event_id: id}) WHERE e.sent = false
                 SET e.sent = true, e.sent_at = $at",
            )
            .param("ids", list.clone())
            .param("at", at.millis()),
        )
        .await?;
        Ok(())
    })
}
