//! The streaming service (docs/streaming.md): uploads arrive on a Kafka topic; the index stage
//! indexes each and sends its largest face to the faces topic, the search stage searches it and
//! sends its hits to the hits topic, the adjudicate stage adjudicates what changed, and match events
//! derived from the stored judgements go out on the matches topic. Each stage is a consumer group of
//! its own (`<group>.index`, `<group>.search`, `<group>.adjudicate`), so each scales on its own.
//!
//! `messages` holds the JSON messages, `kafka` the clients, `worker` a stage's consumer loop (sync
//! and async modes, the commit watermark of `watermark`, dead letters, shutdown), `stages` the
//! three handlers, `events` the outbox of match events, `bloom` the persistent filter of message
//! keys, `metrics` the Prometheus metrics and `backfill` the manifest-driven catch-up.

pub mod backfill;
pub mod bloom;
pub mod events;
pub mod kafka;
pub mod messages;
pub mod metrics;
pub mod stages;
pub mod watermark;
pub mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::producer::Producer;
use tokio::sync::{watch, Notify};

use crate::engine::FaceEngine;
use crate::model::CollectionId;
use crate::service::{Facegraph, SearchOptions, ServiceError};
use crate::settings::KafkaSettings;
use crate::store::StoreError;

pub use metrics::StreamMetrics;

/// Errors of the stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// No brokers are configured.
    #[error(
        "no Kafka brokers are configured: set FACEGRAPH_KAFKA_BROKERS=HOST:PORT,... or brokers in \
         the [kafka] table of the config file"
    )]
    NoBrokers,
    /// A Kafka client failed.
    #[error("Kafka: cannot {action}")]
    Kafka {
        /// What the client was doing.
        action: &'static str,
        /// Why.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A topic could not be created.
    #[error("Kafka: cannot create topic {topic}: {code}")]
    Topic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: String,
    },
    /// A message was not acknowledged.
    #[error("Kafka: a message to {topic} was not delivered")]
    Send {
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A use case failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A stage needs the face engine and the process runs none.
    #[error("the {0} stage needs the face engine")]
    NoEngine(&'static str),
    /// The Bloom filter could not be opened or written.
    #[error(transparent)]
    Bloom(#[from] bloom::BloomError),
    /// A cursor in the store holds something else than expected.
    #[error("the store's cursor {name} holds {value:?}, which is not a position")]
    Cursor {
        /// The cursor.
        name: &'static str,
        /// What it holds.
        value: String,
    },
    /// A task of the stream failed.
    #[error("a stream task failed: {0}")]
    Task(String),
}

/// One of the stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Uploads in, faces out.
    Index,
    /// Faces in, hits out.
    Search,
    /// Hits in, match events out.
    Adjudicate,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 3] = [Stage::Index, Stage::Search, Stage::Adjudicate];

    /// Its name, in group ids, metrics and dead-letter headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Index => "index",
            Self::Search => "search",
            Self::Adjudicate => "adjudicate",
        }
    }

    /// Whether it runs the face engine.
    pub fn needs_engine(self) -> bool {
        matches!(self, Self::Index | Self::Search)
    }

    /// The topic it consumes.
    pub fn topic(self, kafka: &KafkaSettings) -> &str {
        match self {
            Self::Index => &kafka.uploads_topic,
            Self::Search => &kafka.faces_topic,
            Self::Adjudicate => &kafka.hits_topic,
        }
    }

    /// The consumer group of its consumers: the base group with the stage's name.
    pub fn group(self, kafka: &KafkaSettings) -> String {
        format!("{}.{}", kafka.group, self.as_str())
    }
}

/// How a stage takes messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// One message in flight per partition, in order.
    #[default]
    Sync,
    /// Up to the concurrency in flight across the partitions held, each partition committed up
    /// to its first unfinished message.
    Async,
}

/// What the stream runs.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// The brokers and topics.
    pub kafka: KafkaSettings,
    /// The stages this process runs.
    pub stages: Vec<Stage>,
    /// Sync or async.
    pub mode: Mode,
    /// In async mode, at most this many messages in flight per stage.
    pub concurrency: usize,
    /// The collection uploads are indexed into.
    pub collection_id: CollectionId,
    /// How faces are searched.
    pub search: SearchOptions,
    /// Where the Bloom filter of message keys lives.
    pub data_dir: PathBuf,
}

/// How long the last round of match events may take at shutdown.
const LAST_ROUND: Duration = Duration::from_secs(5);

/// Runs the stages of `config` until `shutdown` resolves, then stops within 30 seconds: nothing
/// new is fetched, what is in flight finishes, offsets are committed, the groups are left, the
/// last match events are sent and the Bloom filter is written.
pub async fn run(
    graph: Facegraph,
    engine: Option<Arc<dyn FaceEngine>>,
    config: StreamConfig,
    metrics: StreamMetrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StreamError> {
    for s in &config.stages {
        if s.needs_engine() && engine.is_none() {
            return Err(StreamError::NoEngine(s.as_str()));
        }
    }
    let kafka = &config.kafka;
    kafka::ensure_topics(
        kafka,
        &[
            &kafka.uploads_topic,
            &kafka.faces_topic,
            &kafka.hits_topic,
            &kafka.matches_topic,
            &kafka.dlq_topic,
        ],
    )
    .await?;
    if let Some(engine) = &engine {
        resume(&graph, engine, config.search).await?;
    }
    let filter = if config.stages.contains(&Stage::Index) {
        let path = config.data_dir.join(bloom::FILE_NAME);
        let (items, rate) = (kafka.bloom_items, kafka.bloom_false_positive_rate);
        let filter =
            tokio::task::spawn_blocking(move || bloom::KeyFilter::open(&path, items, rate))
                .await
                .map_err(|e| StreamError::Task(e.to_string()))??;
        Some(Arc::new(Mutex::new(filter)))
    } else {
        None
    };
    let relay_wake = Arc::new(Notify::new());
    let shared = Arc::new(stages::Shared {
        graph: graph.clone(),
        engine,
        kafka: kafka.clone(),
        collection_id: config.collection_id.clone(),
        search: config.search,
        filter: filter.clone(),
        adjudication: Mutex::new(()),
        relay: Arc::clone(&relay_wake),
        metrics: metrics.clone(),
    });
    let producer = kafka::producer(kafka)?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let options = worker::StageOptions {
        mode: config.mode,
        concurrency: config.concurrency,
        dlq_topic: kafka.dlq_topic.clone(),
    };
    for &stage in &config.stages {
        let consumer = worker::consumer(
            &kafka::consumer_config(kafka, &stage.group(kafka))?,
            stage.as_str(),
            stage.topic(kafka),
        )?;
        tasks.spawn(worker::run(
            consumer,
            producer.clone(),
            stages::handler(stage, &shared),
            options.clone(),
            metrics.clone(),
            stopped.clone(),
        ));
        tracing::info!(stage = stage.as_str(), group = %stage.group(kafka), topic = stage.topic(kafka), mode = ?config.mode, "stage started");
    }
    let relay = config.stages.contains(&Stage::Adjudicate).then(|| {
        let relay = events::Relay::new(
            graph.clone(),
            producer.clone(),
            kafka.matches_topic.clone(),
            metrics.clone(),
        );
        tokio::spawn(relay.run(Arc::clone(&relay_wake), stopped.clone()))
    });
    let flusher = filter
        .clone()
        .map(|f| tokio::spawn(flush_every_second(f, stopped.clone())));
    shutdown.await;
    tracing::info!("stopping the stream: finishing what is in flight");
    let _ = stop.send(true);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %crate::errors::Chain(&e), "a stage failed"),
            Err(e) => tracing::error!(error = %e, "a stage task failed"),
        }
    }
    if let Some(relay) = relay {
        if tokio::time::timeout(LAST_ROUND, relay).await.is_err() {
            tracing::warn!(
                "the last round of match events did not finish; the next start sends them"
            );
        }
    }
    if let Some(flusher) = flusher {
        let _ = flusher.await;
    }
    if let Some(filter) = filter {
        // The stages may have added keys since the flusher's last round.
        let flushed = tokio::task::spawn_blocking(move || {
            filter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .flush()
        })
        .await
        .map_err(|e| StreamError::Task(e.to_string()))?;
        flushed?;
    }
    let flushed = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(3))).await;
    if let Ok(Err(e)) = flushed {
        tracing::warn!(error = %e, "the producer did not flush");
    }
    tracing::info!("stream stopped");
    Ok(())
}

/// Completes the uploads a crash left pending, and adjudicates what they changed.
async fn resume(
    graph: &Facegraph,
    engine: &Arc<dyn FaceEngine>,
    search: SearchOptions,
) -> Result<(), StreamError> {
    let graph = graph.clone();
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || {
        let report = graph.resume_uploads(engine.as_ref(), search)?;
        if !report.completed.is_empty() {
            tracing::info!(
                completed = report.completed.len(),
                "completed uploads a crash left unfinished"
            );
            graph.adjudicate_changes()?;
        }
        Ok::<_, StreamError>(())
    })
    .await
    .map_err(|e| StreamError::Task(e.to_string()))?
}

/// Writes the Bloom filter's changed pages every second, and once more at the end.
async fn flush_every_second(
    filter: Arc<Mutex<bloom::KeyFilter>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let stop = tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = stopped.changed() => true,
        };
        let f = Arc::clone(&filter);
        let flushed = tokio::task::spawn_blocking(move || {
            f.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .flush()
        })
        .await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %crate::errors::Chain(&e), "cannot write the Bloom filter; it is written again at the next flush");
        }
        if stop {
            break;
        }
    }
}
