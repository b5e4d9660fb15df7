//! The three stages as handlers of the messages a consumer hands them, each run on a blocking
//! thread: the index stage (an upload: deduplicate by message key, read the file, the service's
//! index stage, a face message out), the search stage (a face message: the service's search stage,
//! a hits message out) and the adjudicate stage (hits messages, several at once: one
//! `adjudicate_changes()`; the match events follow from the stored judgements, see
//! [`super::events`]). A message that cannot succeed is a dead letter with a reason; one that fails
//! on a transient error is tried again with backoff before it is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::bloom::KeyFilter;
use super::kafka::Outgoing;
use super::messages::{
    FaceMessage, HitOut, HitsMessage, ImageSource, MessageError, UploadMessage, VERSION,
};
use super::metrics::StreamMetrics;
use super::Stage;
use crate::engine::calls::{AvoidedBy, Operation};
use crate::engine::local::ImageLimits;
use crate::engine::{EngineError, FaceEngine};
use crate::errors::chain;
use crate::files::{read_bounded, FileError};
use crate::model::{CollectionId, ContentHash, FaceId, ImageId, Timestamp};
use crate::service::{Facegraph, ImageIngest, SearchOptions, ServiceError};
use crate::settings::KafkaSettings;
use crate::store::{ProcessedMessage, StoreError};

/// How often a message that fails on a transient error is tried in all.
pub const ATTEMPTS: u32 = 5;

/// The pause before the second attempt; it doubles before each later one.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// A message as a stage receives it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Where it came from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub payload: Vec<u8>,
}

/// What became of a message.
#[derive(Debug)]
pub enum Outcome {
    /// Its result is stored; these messages go out before it counts as finished.
    Done {
        /// The messages to send.
        outputs: Vec<Outgoing>,
        /// Whether it was a duplicate (nothing was processed).
        duplicate: bool,
    },
    /// It cannot succeed (or kept failing): it goes to the dead-letter topic.
    DeadLetter {
        /// A short code.
        reason: &'static str,
        /// What happened, for people.
        detail: String,
        /// How often it was tried.
        attempts: u32,
    },
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    /// Trying again cannot help.
    Permanent {
        reason: &'static str,
        detail: String,
    },
    /// Trying again may help (the engine or the store was unavailable).
    Transient {
        reason: &'static str,
        detail: String,
    },
}

impl Failure {
    fn permanent(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::Permanent {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        let detail = chain(&e);
        match &e {
            ServiceError::Store(s) => store_failure(s, detail),
            ServiceError::Engine(EngineError::InvalidImage(_)) => {
                Self::permanent("invalid_image", detail)
            }
            ServiceError::Engine(EngineError::InvalidParameter(_)) => {
                Self::permanent("refused_by_engine", detail)
            }
            ServiceError::Engine(_) => Self::Transient {
                reason: "engine_unavailable",
                detail,
            },
            ServiceError::Invalid(_) | ServiceError::SamePair(_) => {
                Self::permanent("invalid_request", detail)
            }
            ServiceError::UnknownFace(_) | ServiceError::Inconsistent(_) => {
                Self::permanent("inconsistent_graph", detail)
            }
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let detail = chain(&e);
        store_failure(&e, detail)
    }
}

fn store_failure(e: &StoreError, detail: String) -> Failure {
    match e {
        StoreError::Backend { .. } => Failure::Transient {
            reason: "store_unavailable",
            detail,
        },
        StoreError::Conflict { .. } => Failure::permanent("conflict", detail),
        StoreError::UnknownFace(_) => Failure::permanent("inconsistent_graph", detail),
        StoreError::Corrupt { .. } | StoreError::SchemaTooNew { .. } => {
            Failure::permanent("store_refused", detail)
        }
    }
}

impl From<MessageError> for Failure {
    fn from(e: MessageError) -> Self {
        Self::permanent("invalid_message", chain(&e))
    }
}

/// Runs `attempt` until it succeeds, fails for good, or has failed transiently [`ATTEMPTS`]
/// times; returns the value or the dead letter with how often it was tried.
fn with_retries<T>(mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T, Outcome> {
    let mut pause = FIRST_PAUSE;
    for n in 1..=ATTEMPTS {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(Failure::Permanent { reason, detail }) => {
                return Err(Outcome::DeadLetter {
                    reason,
                    detail,
                    attempts: n,
                })
            }
            Err(Failure::Transient { reason, detail }) => {
                if n == ATTEMPTS {
                    return Err(Outcome::DeadLetter {
                        reason,
                        detail,
                        attempts: n,
                    });
                }
                tracing::warn!(attempt = n, %reason, %detail, "a transient failure; trying again");
                std::thread::sleep(pause);
                pause *= 2;
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// What the stages of one process share.
#[derive(Debug)]
pub struct Shared {
    /// The graph.
    pub graph: Facegraph,
    /// The engine, for the index and search stages.
    pub engine: Option<Arc<dyn FaceEngine>>,
    /// The topics.
    pub kafka: KafkaSettings,
    /// The collection uploads are indexed into.
    pub collection_id: CollectionId,
    /// How faces are searched.
    pub search: SearchOptions,
    /// The Bloom filter of message keys, for the index stage.
    pub filter: Option<Arc<Mutex<KeyFilter>>>,
    /// One adjudication at a time in this process: two at once would each judge from a view
    /// the other is changing.
    pub adjudication: Mutex<()>,
    /// Woken after an adjudication, so that match events go out at once.
    pub relay: Arc<Notify>,
    /// The metrics.
    pub metrics: StreamMetrics,
}

/// A stage's handler.
pub trait Handler: Send + Sync + std::fmt::Debug + 'static {
    /// Which stage it is.
    fn stage(&self) -> Stage;

    /// Whether it takes several messages at once.
    fn coalesces(&self) -> bool {
        false
    }

    /// Processes messages (one, unless it coalesces) on a blocking thread: one outcome each.
    fn handle(&self, batch: &[Incoming]) -> Vec<Outcome>;
}

/// The index stage.
#[derive(Debug)]
pub struct IndexStage(pub Arc<Shared>);

/// The search stage.
#[derive(Debug)]
pub struct SearchStage(pub Arc<Shared>);

/// The adjudicate stage.
#[derive(Debug)]
pub struct AdjudicateStage(pub Arc<Shared>);

impl Handler for IndexStage {
    fn stage(&self) -> Stage {
        Stage::Index
    }

    fn handle(&self, batch: &[Incoming]) -> Vec<Outcome> {
        batch.iter().map(|m| self.one(m)).collect()
    }
}

impl IndexStage {
    fn engine(&self) -> Result<&dyn FaceEngine, Failure> {
        self.0
            .engine
            .as_deref()
            .ok_or_else(|| Failure::permanent("no_engine", "this process runs no face engine"))
    }

    fn one(&self, m: &Incoming) -> Outcome {
        let shared = &self.0;
        let upload = match UploadMessage::parse(&m.payload) {
            Ok(u) => u,
            Err(e) => return dead(Failure::from(e)),
        };
        let path = match &upload.source {
            ImageSource::File(p) => p.clone(),
            ImageSource::S3 { bucket, key } => {
                return dead(Failure::permanent(
                    "unsupported_source",
                    format!(
                        "s3://{bucket}/{key}: the local engine reads files; S3 images need the \
                         Rekognition engine"
                    ),
                ))
            }
        };
        // The producer's key is checked before the file is read.
        let given = upload.idempotency_key.as_ref().map(|k| format!("key:{k}"));
        if let Some(key) = &given {
            match with_retries(|| self.seen(key)) {
                Ok(Some(done)) => return self.replay(&done, key),
                Ok(None) => {}
                Err(dead) => return dead,
            }
        }
        let limit = ImageLimits::default().max_bytes as u64;
        let bytes = match read_bounded(&path, limit) {
            Ok(b) => b,
            Err(e) => return dead(file_failure(&e)),
        };
        let content = ContentHash::of_bytes(&bytes);
        let image_id = ImageId::of_upload(&content, Some(&upload.external_image_id));
        let key = given.unwrap_or_else(|| format!("upload:{image_id}"));
        if upload.idempotency_key.is_none() {
            match with_retries(|| self.seen(&key)) {
                Ok(Some(done)) => return self.replay(&done, &key),
                Ok(None) => {}
                Err(dead) => return dead,
            }
        }
        let source = path.display().to_string();
        let req = ImageIngest {
            external_image_id: Some(&upload.external_image_id),
            subject_id: upload.subject_id.as_ref(),
            source: Some(&source),
            content: Some(&content),
            search_threshold: shared.search.threshold,
            max_matches: shared.search.max_matches,
            ..ImageIngest::new(&shared.collection_id, &bytes)
        };
        let indexed = match with_retries(|| {
            let engine = self.engine()?;
            Ok(shared.graph.index_upload(engine, &req)?)
        }) {
            Ok(i) => i,
            Err(dead) => return dead,
        };
        let record = ProcessedMessage {
            key: key.clone(),
            image_id: indexed.image.image_id.clone(),
            face_id: indexed.face_ids.first().cloned(),
            at: Timestamp::now(),
        };
        if let Err(dead) = with_retries(|| {
            shared
                .graph
                .store()
                .record_processed_messages(std::slice::from_ref(&record))?;
            Ok(())
        }) {
            return dead;
        }
        if let Some(filter) = &shared.filter {
            lock(filter).insert(key.as_bytes());
        }
        if indexed.duplicate {
            // A complete upload: its search stage ran, and sent its hits.
            return Outcome::Done {
                outputs: Vec::new(),
                duplicate: true,
            };
        }
        Outcome::Done {
            outputs: vec![self.face_message(&record, Some(upload.external_image_id.as_str()))],
            duplicate: false,
        }
    }

    /// The record of a message key processed before: the Bloom filter's "certainly new" answers
    /// without the store; "maybe seen" asks the store.
    fn seen(&self, key: &str) -> Result<Option<ProcessedMessage>, Failure> {
        let shared = &self.0;
        if let Some(filter) = &shared.filter {
            if !lock(filter).may_contain(key.as_bytes()) {
                shared.metrics.bloom("certainly_new");
                return Ok(None);
            }
        }
        shared.metrics.bloom("maybe_seen");
        let found = shared.graph.store().processed_message(key)?;
        if found.is_none() && shared.filter.is_some() {
            shared.metrics.bloom("false_positive");
        }
        Ok(found)
    }

    /// A message whose key was processed: when its upload is still pending, the face message may
    /// never have reached the broker (a crash came first), so it goes out again; otherwise
    /// nothing does.
    fn replay(&self, done: &ProcessedMessage, key: &str) -> Outcome {
        // The message is not analysed again: an engine that keeps a bill counts the call saved.
        if let Ok(engine) = self.engine() {
            engine.note_avoided(Operation::IndexFaces, AvoidedBy::BloomFilter, 1);
        }
        let store = self.0.graph.store();
        match with_retries(|| Ok(store.images(std::slice::from_ref(&done.image_id))?)) {
            Ok(found) if found.first().is_some_and(|i| i.pending) => Outcome::Done {
                outputs: vec![self.face_message(
                    &ProcessedMessage {
                        key: key.to_owned(),
                        ..done.clone()
                    },
                    found[0].external_image_id.as_ref().map(|e| e.as_str()),
                )],
                duplicate: true,
            },
            Ok(_) => Outcome::Done {
                outputs: Vec::new(),
                duplicate: true,
            },
            Err(dead) => dead,
        }
    }

    fn face_message(&self, record: &ProcessedMessage, external: Option<&str>) -> Outgoing {
        json_message(
            &self.0.kafka.faces_topic,
            record.image_id.as_str(),
            &FaceMessage {
                version: VERSION,
                image_id: record.image_id.as_str().to_owned(),
                external_image_id: external.map(str::to_owned),
                face_id: record.face_id.as_ref().map(|f| f.as_str().to_owned()),
                key: record.key.clone(),
            },
        )
    }
}

impl Handler for SearchStage {
    fn stage(&self) -> Stage {
        Stage::Search
    }

    fn handle(&self, batch: &[Incoming]) -> Vec<Outcome> {
        batch.iter().map(|m| self.one(m)).collect()
    }
}

impl SearchStage {
    fn one(&self, m: &Incoming) -> Outcome {
        let shared = &self.0;
        let (image_id, face_id) = match FaceMessage::parse(&m.payload) {
            Ok(v) => v,
            Err(e) => return dead(Failure::from(e)),
        };
        let staged = with_retries(|| {
            let engine = shared.engine.as_deref().ok_or_else(|| {
                Failure::permanent("no_engine", "this process runs no face engine")
            })?;
            let faces: Vec<FaceId> = face_id.iter().cloned().collect();
            let upload = shared
                .graph
                .indexed_upload(&image_id, faces)?
                .ok_or_else(|| {
                    Failure::permanent(
                        "unknown_upload",
                        format!("upload {image_id} is not in the graph"),
                    )
                })?;
            Ok(shared
                .graph
                .search_upload(engine, &upload, None, shared.search)?)
        });
        let staged = match staged {
            Ok(s) => s,
            Err(dead) => return dead,
        };
        let mut hits: Vec<HitOut> = staged
            .stored_hits
            .iter()
            .map(|o| HitOut {
                face_id: o.found.as_str().to_owned(),
                similarity: o.similarity.get(),
            })
            .collect();
        hits.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
        Outcome::Done {
            outputs: vec![json_message(
                &shared.kafka.hits_topic,
                image_id.as_str(),
                &HitsMessage {
                    version: VERSION,
                    image_id: image_id.as_str().to_owned(),
                    face_id: face_id.map(|f| f.as_str().to_owned()),
                    hits,
                },
            )],
            duplicate: staged.duplicate,
        }
    }
}

impl Handler for AdjudicateStage {
    fn stage(&self) -> Stage {
        Stage::Adjudicate
    }

    fn coalesces(&self) -> bool {
        true
    }

    fn handle(&self, batch: &[Incoming]) -> Vec<Outcome> {
        let shared = &self.0;
        let parsed: Vec<Result<HitsMessage, MessageError>> = batch
            .iter()
            .map(|m| HitsMessage::parse(&m.payload))
            .collect();
        let adjudicated = if parsed.iter().any(Result::is_ok) {
            // One adjudication covers every message of the batch: each only says that the graph
            // changed, and the changes are recorded in the store.
            let _one_at_a_time = lock(&shared.adjudication);
            let result = with_retries(|| Ok(shared.graph.adjudicate_changes()?));
            shared.relay.notify_one();
            result.map(|_| ())
        } else {
            Ok(())
        };
        parsed
            .into_iter()
            .map(|p| match (p, &adjudicated) {
                (Err(e), _) => dead(Failure::from(e)),
                (Ok(_), Ok(())) => Outcome::Done {
                    outputs: Vec::new(),
                    duplicate: false,
                },
                (
                    Ok(_),
                    Err(Outcome::DeadLetter {
                        reason,
                        detail,
                        attempts,
                    }),
                ) => Outcome::DeadLetter {
                    reason,
                    detail: detail.clone(),
                    attempts: *attempts,
                },
                (Ok(_), Err(Outcome::Done { .. })) => {
                    unreachable!("with_retries fails only with a dead letter")
                }
            })
            .collect()
    }
}

/// The handler of a stage.
pub fn handler(stage: Stage, shared: &Arc<Shared>) -> Arc<dyn Handler> {
    match stage {
        Stage::Index => Arc::new(IndexStage(Arc::clone(shared))),
        Stage::Search => Arc::new(SearchStage(Arc::clone(shared))),
        Stage::Adjudicate => Arc::new(AdjudicateStage(Arc::clone(shared))),
    }
}

fn dead(f: Failure) -> Outcome {
    match f {
        Failure::Permanent { reason, detail } | Failure::Transient { reason, detail } => {
            Outcome::DeadLetter {
                reason,
                detail,
                attempts: 1,
            }
        }
    }
}

fn file_failure(e: &FileError) -> Failure {
    let reason = match e {
        FileError::Missing { .. } => "missing_file",
        FileError::Unreadable { .. } | FileError::Loop { .. } => "unreadable_file",
        FileError::NotRegular { .. } => "not_a_regular_file",
        FileError::TooLarge { .. } => "file_too_large",
    };
    Failure::permanent(reason, chain(e))
}

fn json_message(topic: &str, key: &str, value: &impl serde::Serialize) -> Outgoing {
    Outgoing {
        topic: topic.to_owned(),
        key: key.as_bytes().to_vec(),
        // A message of plain strings and numbers always serialises.
        payload: serde_json::to_vec(value).unwrap_or_default(),
        headers: Vec::new(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while the lock was held left the filter with some bits set, which is harmless.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
