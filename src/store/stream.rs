//! The records of the stream's bookkeeping that the stores keep beside the graph: processed
//! message keys, entries of the judgement history, and match events in the outbox.

use crate::model::{FaceId, FacePair, ImageId, Judgement, Timestamp, Verdict};

/// A stream message that a stage processed: its key (the upload's idempotency key, or one derived
/// from its external image id and its bytes), the upload, and its largest face.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedMessage {
    /// The message key.
    pub key: String,
    /// The upload it was about.
    pub image_id: ImageId,
    /// The largest face indexed from it; `None` for an image without a face.
    pub face_id: Option<FaceId>,
    /// When it was processed.
    pub at: Timestamp,
}

/// One judgement of the history, with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgementEntry {
    /// Its position in the history: positions grow in the order judgements are committed.
    pub seq: i64,
    /// The pair judged.
    pub pair: FacePair,
    /// The judgement.
    pub judgement: Judgement,
    /// When it was made.
    pub at: Timestamp,
}

/// A match event in the outbox: derived once from a judgement, kept with its exact bytes so that
/// sending it again sends the same event.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchEventRecord {
    /// The event's id, derived from the judgement.
    pub event_id: String,
    /// The pair.
    pub pair: FacePair,
    /// The verdict the event announces.
    pub verdict: Verdict,
    /// The position of the judgement it was derived from.
    pub judgement_seq: i64,
    /// The event as sent (JSON).
    pub payload: String,
    /// When it was sent; `None` while it waits in the outbox.
    pub sent_at: Option<Timestamp>,
}
