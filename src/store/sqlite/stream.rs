//! The stream's bookkeeping in the SQLite store: processed message keys, the judgement history
//! read in order, the outbox of match events, named cursors and leases.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::backend;
use super::decode::{collect, Cells};
use crate::model::{FaceId, FacePair, ImageId, Judgement, ParseError, Timestamp, Verdict};
use crate::store::codec::reasons_from_json;
use crate::store::{JudgementEntry, MatchEventRecord, ProcessedMessage, StoreError};

/// [`GraphStore::processed_message`](crate::store::GraphStore::processed_message).
pub(super) fn processed_message(
    conn: &Connection,
    key: &str,
) -> Result<Option<ProcessedMessage>, StoreError> {
    const OP: &str = "read a processed message";
    let mut stmt = conn
        .prepare_cached("SELECT key, image_id, face_id, at FROM stream_messages WHERE key = ?1")
        .map_err(backend(OP))?;
    let rows = stmt.query([key]).map_err(backend(OP))?;
    Ok(collect(rows, OP, |row| {
        let mut c = Cells::new(row, "processed message");
        Ok(ProcessedMessage {
            key: c.text()?.to_owned(),
            image_id: c.parse(ImageId::parse)?,
            face_id: c.opt_parse(FaceId::parse)?,
            at: Timestamp::from_millis(c.int()?),
        })
    })?
    .pop())
}

/// [`GraphStore::record_processed_messages`](crate::store::GraphStore::record_processed_messages).
pub(super) fn record_processed(
    tx: &Transaction<'_>,
    messages: &[ProcessedMessage],
) -> Result<(), StoreError> {
    const OP: &str = "record processed messages";
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO stream_messages (key, image_id, face_id, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key) DO NOTHING",
        )
        .map_err(backend(OP))?;
    for m in messages {
        stmt.execute(params![
            m.key,
            m.image_id.as_str(),
            m.face_id.as_ref().map(FaceId::as_str),
            m.at.millis()
        ])
        .map_err(backend(OP))?;
    }
    Ok(())
}

/// [`GraphStore::judgements_after`](crate::store::GraphStore::judgements_after): the verdict
/// history's rows in id order, which is commit order since the store has one writer.
pub(super) fn judgements_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<JudgementEntry>, StoreError> {
    const OP: &str = "read the judgement history";
    let mut stmt = conn
        .prepare_cached(
            "SELECT h.id, fa.face_id, fb.face_id, h.verdict, h.score, h.rule_set, h.reasons, h.at
             FROM verdict_history h
             JOIN faces fa ON fa.seq = h.face_a
             JOIN faces fb ON fb.seq = h.face_b
             WHERE h.id > ?1 ORDER BY h.id LIMIT ?2",
        )
        .map_err(backend(OP))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query(params![after, limit]).map_err(backend(OP))?;
    collect(rows, OP, |row| {
        let mut c = Cells::new(row, "judgement");
        let seq = c.int()?;
        let a = c.parse(FaceId::parse)?;
        let b = c.parse(FaceId::parse)?;
        let pair = FacePair::new(a.clone(), b)
            .ok_or_else(|| c.corrupt_last(format!("a judgement of face {a} with itself")))?;
        let verdict = c.parse(parse_verdict)?;
        let score = c.real()?;
        let rule_set = c.text()?.to_owned();
        let reasons = reasons_from_json(c.text()?)
            .map_err(|detail| c.corrupt_last(format!("judgement {seq}: {detail}")))?;
        let at = Timestamp::from_millis(c.int()?);
        Ok(JudgementEntry {
            seq,
            pair,
            judgement: Judgement {
                verdict,
                score,
                rule_set,
                reasons,
            },
            at,
        })
    })
}

fn parse_verdict(s: &str) -> Result<Verdict, ParseError> {
    Verdict::parse(s).ok_or_else(|| ParseError {
        what: "verdict",
        value: s.to_owned(),
        rule: "must be confirmed, review or rejected".to_owned(),
    })
}

/// [`GraphStore::stream_cursor`](crate::store::GraphStore::stream_cursor).
pub(super) fn cursor(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM stream_cursors WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |row| row.get(0)).optional())
        .map_err(backend("read a cursor"))
}

/// [`GraphStore::set_stream_cursor`](crate::store::GraphStore::set_stream_cursor).
pub(super) fn set_cursor(tx: &Transaction<'_>, name: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO stream_cursors (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [name, value],
    )
    .map_err(backend("set a cursor"))?;
    Ok(())
}

/// [`GraphStore::take_lease`](crate::store::GraphStore::take_lease).
pub(super) fn take_lease(
    tx: &Transaction<'_>,
    name: &str,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, StoreError> {
    let changed = tx
        .execute(
            "INSERT INTO stream_leases (name, holder, until) VALUES (?1, ?2, ?4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
             WHERE stream_leases.holder = ?2 OR stream_leases.until <= ?3",
            params![name, holder, now.millis(), until.millis()],
        )
        .map_err(backend("take a lease"))?;
    Ok(changed > 0)
}

/// [`GraphStore::release_lease`](crate::store::GraphStore::release_lease).
pub(super) fn release_lease(
    tx: &Transaction<'_>,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM stream_leases WHERE name = ?1 AND holder = ?2",
        [name, holder],
    )
    .map_err(backend("release a lease"))?;
    Ok(())
}

const EVENT_SELECT: &str =
    "SELECT event_id, face_a, face_b, verdict, judgement_seq, payload, sent_at FROM match_events";

fn event(row: &rusqlite::Row<'_>) -> Result<MatchEventRecord, StoreError> {
    let mut c = Cells::new(row, "match event");
    let event_id = c.text()?.to_owned();
    let a = c.parse(FaceId::parse)?;
    let b = c.parse(FaceId::parse)?;
    let pair = FacePair::new(a.clone(), b)
        .ok_or_else(|| c.corrupt_last(format!("an event of face {a} with itself")))?;
    Ok(MatchEventRecord {
        event_id,
        pair,
        verdict: c.parse(parse_verdict)?,
        judgement_seq: c.int()?,
        payload: c.text()?.to_owned(),
        sent_at: c.opt_int()?.map(Timestamp::from_millis),
    })
}

/// [`GraphStore::last_match_events`](crate::store::GraphStore::last_match_events).
pub(super) fn last_events(
    conn: &Connection,
    pairs: &[FacePair],
) -> Result<Vec<MatchEventRecord>, StoreError> {
    const OP: &str = "read match events";
    let sql = format!("{EVENT_SELECT} WHERE face_a = ?1 AND face_b = ?2 ORDER BY seq DESC LIMIT 1");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let mut out = Vec::new();
    for p in pairs {
        let rows = stmt
            .query([p.a().as_str(), p.b().as_str()])
            .map_err(backend(OP))?;
        out.extend(collect(rows, OP, event)?);
    }
    Ok(out)
}

/// [`GraphStore::enqueue_match_events`](crate::store::GraphStore::enqueue_match_events).
pub(super) fn enqueue(
    tx: &Transaction<'_>,
    cursor_name: &str,
    from: Option<&str>,
    to: &str,
    events: &[MatchEventRecord],
) -> Result<bool, StoreError> {
    const OP: &str = "enqueue match events";
    if cursor(tx, cursor_name)?.as_deref() != from {
        return Ok(false);
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO match_events (event_id, face_a, face_b, verdict, judgement_seq, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (event_id) DO NOTHING",
        )
        .map_err(backend(OP))?;
    for e in events {
        stmt.execute(params![
            e.event_id,
            e.pair.a().as_str(),
            e.pair.b().as_str(),
            e.verdict.as_str(),
            e.judgement_seq,
            e.payload
        ])
        .map_err(backend(OP))?;
    }
    set_cursor(tx, cursor_name, to)?;
    Ok(true)
}

/// [`GraphStore::unsent_match_events`](crate::store::GraphStore::unsent_match_events).
pub(super) fn unsent(conn: &Connection, limit: usize) -> Result<Vec<MatchEventRecord>, StoreError> {
    const OP: &str = "read match events";
    let sql = format!("{EVENT_SELECT} WHERE sent_at IS NULL ORDER BY seq LIMIT ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend(OP))?;
    let rows = stmt
        .query([i64::try_from(limit).unwrap_or(i64::MAX)])
        .map_err(backend(OP))?;
    collect(rows, OP, event)
}

/// [`GraphStore::mark_match_events_sent`](crate::store::GraphStore::mark_match_events_sent).
pub(super) fn mark_sent(
    tx: &Transaction<'_>,
    ids: &[String],
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE match_events SET sent_at = ?2 WHERE event_id = ?1 AND sent_at IS NULL",
        )
        .map_err(backend("mark match events sent"))?;
    for id in ids {
        stmt.execute(params![id, at.millis()])
            .map_err(backend("mark match events sent"))?;
    }
    Ok(())
}
