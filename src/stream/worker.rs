//! A stage's consumer loop: it receives messages of the stage's topic, hands them to the stage's
//! handler (sync mode: one message in flight per partition, in order; async mode: up to N in
//! flight across the partitions it holds), sends what the handler produced and, only then, counts
//! the message finished. The committed offset of a partition is its watermark: the first message
//! not yet finished, so no offset is ever committed past unfinished work. Dead letters go to the
//! dead-letter topic with the original bytes and why. On shutdown it stops receiving, lets what is
//! in flight finish (within a deadline), commits and leaves the group.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::kafka::{send_all, Outgoing};
use super::metrics::StreamMetrics;
use super::stages::{Handler, Incoming, Outcome};
use super::watermark::{TopicPartition, Watermarks};
use super::{Mode, StreamError};
use crate::faults::crash_point;

/// How often finished offsets are committed.
const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// How often the lag and the rate are measured.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// At most this many messages in one adjudication: every message waiting says only that the graph
/// changed, so one adjudication finishes them all.
pub const BATCH: usize = 1_024;

/// How long shutdown waits for messages in flight.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// What a stage's consumer does.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Sync or async.
    pub mode: Mode,
    /// In async mode, at most this many messages in flight.
    pub concurrency: usize,
    /// The dead-letter topic.
    pub dlq_topic: String,
}

/// The consumer's context: on a rebalance it commits what is finished of the partitions taken
/// away and forgets them, and starts a new generation so that the loop drops their messages.
#[derive(Debug, Clone)]
pub struct StageContext {
    stage: &'static str,
    watermarks: Arc<Mutex<Watermarks>>,
    generation: Arc<AtomicU64>,
}

impl ClientContext for StageContext {}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            let mut w = lock(&self.watermarks);
            let mut commit = TopicPartitionList::new();
            for e in revoked.elements() {
                let tp = (e.topic().to_owned(), e.partition());
                if let Some(pos) = w.partition(&tp).position() {
                    let _ = commit.add_partition_offset(&tp.0, tp.1, Offset::Offset(pos));
                }
                w.forget(&tp);
            }
            self.generation.fetch_add(1, Ordering::SeqCst);
            if commit.count() > 0 {
                if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                    tracing::warn!(stage = self.stage, error = %e, "cannot commit the partitions taken away; their new holder processes their last messages again");
                }
            }
            tracing::info!(
                stage = self.stage,
                partitions = revoked.count(),
                "partitions taken away"
            );
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(assigned) = rebalance {
            tracing::info!(
                stage = self.stage,
                partitions = assigned.count(),
                "partitions assigned"
            );
        }
    }
}

/// A stage's consumer, subscribed to its topic.
pub type StageConsumer = StreamConsumer<StageContext>;

/// Creates a stage's consumer in `group` from `config`, subscribed to `topic`.
pub fn consumer(
    config: &rdkafka::ClientConfig,
    stage: &'static str,
    topic: &str,
) -> Result<Arc<StageConsumer>, StreamError> {
    let context = StageContext {
        stage,
        watermarks: Arc::new(Mutex::new(Watermarks::default())),
        generation: Arc::new(AtomicU64::new(0)),
    };
    let consumer: StageConsumer =
        config
            .create_with_context(context)
            .map_err(|source| StreamError::Kafka {
                action: "create a consumer",
                source,
            })?;
    consumer
        .subscribe(&[topic])
        .map_err(|source| StreamError::Kafka {
            action: "subscribe",
            source,
        })?;
    Ok(Arc::new(consumer))
}

/// What a task in flight returns: the generation its messages belong to, and each message's
/// place and whether it finished.
struct Completed {
    generation: u64,
    messages: Vec<(TopicPartition, i64, bool)>,
}

/// The loop's state: messages received and waiting, per partition, and how many run per partition.
struct Queue {
    waiting: BTreeMap<TopicPartition, VecDeque<Incoming>>,
    running: BTreeMap<TopicPartition, usize>,
    waiting_total: usize,
    generation: u64,
}

impl Queue {
    fn push(&mut self, m: Incoming) {
        self.waiting
            .entry((m.topic.clone(), m.partition))
            .or_default()
            .push_back(m);
        self.waiting_total += 1;
    }

    fn clear(&mut self, generation: u64) {
        self.waiting.clear();
        self.running.clear();
        self.waiting_total = 0;
        self.generation = generation;
    }

    /// The next messages to start: in sync mode the first waiting message of each partition with
    /// none running; in async mode waiting messages round the partitions, up to `room`.
    fn take(&mut self, mode: Mode, room: usize) -> Vec<Incoming> {
        let mut out = Vec::new();
        loop {
            let before = out.len();
            for (tp, q) in &mut self.waiting {
                if out.len() >= room {
                    break;
                }
                let running = self.running.entry(tp.clone()).or_default();
                if mode == Mode::Sync && *running > 0 {
                    continue;
                }
                if let Some(m) = q.pop_front() {
                    *running += 1;
                    out.push(m);
                }
            }
            if out.len() == before || out.len() >= room || mode == Mode::Sync {
                break;
            }
        }
        self.waiting.retain(|_, q| !q.is_empty());
        self.waiting_total -= out.len();
        out
    }

    fn done(&mut self, tp: &TopicPartition) {
        if let Some(n) = self.running.get_mut(tp) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Runs a stage until `shutdown` turns true.
pub async fn run(
    consumer: Arc<StageConsumer>,
    producer: FutureProducer,
    handler: Arc<dyn Handler>,
    options: StageOptions,
    metrics: StreamMetrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StreamError> {
    let stage = handler.stage().as_str();
    let context = consumer.context().clone();
    let concurrency = options.concurrency.max(1);
    // Messages held beyond those in flight: enough to keep every slot busy, or to fill the next
    // batch while one runs.
    let max_waiting = if handler.coalesces() {
        BATCH * 2
    } else {
        concurrency.max(16) * 2
    };
    let mut queue = Queue {
        waiting: BTreeMap::new(),
        running: BTreeMap::new(),
        waiting_total: 0,
        generation: context.generation.load(Ordering::SeqCst),
    };
    let mut tasks: JoinSet<Completed> = JoinSet::new();
    let mut commit_tick = tokio::time::interval(COMMIT_EVERY);
    let mut measure_tick = tokio::time::interval(MEASURE_EVERY);
    let mut finished_before = metrics.finished_total(stage);
    let mut measured_at = Instant::now();
    loop {
        let generation = context.generation.load(Ordering::SeqCst);
        if generation != queue.generation {
            queue.clear(generation);
        }
        start(
            &mut queue,
            &mut tasks,
            &handler,
            &producer,
            &options,
            &metrics,
            &shutdown,
            concurrency,
        );
        metrics.set_in_flight(stage, tasks.len());
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = commit_tick.tick() => commit(&consumer, &context, CommitMode::Async),
            _ = measure_tick.tick() => {
                let total = metrics.finished_total(stage);
                let secs = measured_at.elapsed().as_secs_f64().max(1e-3);
                metrics.set_rate(stage, (total - finished_before) as f64 / secs);
                finished_before = total;
                measured_at = Instant::now();
                // Measured aside: a slow broker must not hold the loop.
                tokio::spawn(measure_lag(Arc::clone(&consumer), StageContext::clone(&context), stage, metrics.clone()));
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                finish(done, &mut queue, &context);
            }
            received = consumer.recv(), if queue.waiting_total < max_waiting => {
                match received {
                    Ok(m) => {
                        let m = incoming(&m);
                        let generation = context.generation.load(Ordering::SeqCst);
                        if generation != queue.generation {
                            queue.clear(generation);
                        }
                        lock(&context.watermarks)
                            .partition(&(m.topic.clone(), m.partition))
                            .received(m.offset);
                        queue.push(m);
                    }
                    Err(e) => {
                        tracing::warn!(stage, error = %e, "the consumer reported an error");
                    }
                }
            }
        }
    }
    // Shutdown: nothing new starts; what runs finishes within the deadline.
    let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(done)) => finish(done, &mut queue, &context),
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(stage, in_flight = tasks.len(), "shutdown deadline: leaving messages in flight unfinished; they are processed again at the next start");
                tasks.abort_all();
                break;
            }
        }
    }
    let consumer_for_close = Arc::clone(&consumer);
    let context_for_close = context.clone();
    tokio::task::spawn_blocking(move || {
        commit(&consumer_for_close, &context_for_close, CommitMode::Sync);
        consumer_for_close.unsubscribe();
    })
    .await
    .map_err(|e| StreamError::Task(e.to_string()))?;
    metrics.set_in_flight(stage, 0);
    tracing::info!(stage, "stage stopped");
    Ok(())
}

/// Starts what the mode allows.
#[allow(clippy::too_many_arguments)]
fn start(
    queue: &mut Queue,
    tasks: &mut JoinSet<Completed>,
    handler: &Arc<dyn Handler>,
    producer: &FutureProducer,
    options: &StageOptions,
    metrics: &StreamMetrics,
    shutdown: &watch::Receiver<bool>,
    concurrency: usize,
) {
    if handler.coalesces() {
        // One batch at a time: it covers every message waiting (in sync mode, the first of each
        // partition), up to the limit.
        if !tasks.is_empty() {
            return;
        }
        let batch = queue.take(options.mode, BATCH);
        if !batch.is_empty() {
            spawn(
                tasks,
                queue.generation,
                batch,
                handler,
                producer,
                options,
                metrics,
                shutdown,
            );
        }
        return;
    }
    let room = match options.mode {
        Mode::Sync => usize::MAX,
        Mode::Async => concurrency.saturating_sub(tasks.len()),
    };
    for m in queue.take(options.mode, room) {
        spawn(
            tasks,
            queue.generation,
            vec![m],
            handler,
            producer,
            options,
            metrics,
            shutdown,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    tasks: &mut JoinSet<Completed>,
    generation: u64,
    batch: Vec<Incoming>,
    handler: &Arc<dyn Handler>,
    producer: &FutureProducer,
    options: &StageOptions,
    metrics: &StreamMetrics,
    shutdown: &watch::Receiver<bool>,
) {
    let handler = Arc::clone(handler);
    let producer = producer.clone();
    let options = options.clone();
    let metrics = metrics.clone();
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        let places: Vec<(TopicPartition, i64)> = batch
            .iter()
            .map(|m| ((m.topic.clone(), m.partition), m.offset))
            .collect();
        let stage = handler.stage().as_str();
        let for_handler = Arc::clone(&handler);
        let messages = batch.clone();
        let outcomes = match tokio::task::spawn_blocking(move || for_handler.handle(&messages)).await
        {
            Ok(o) => o,
            Err(e) => {
                // A bug, not the message: it goes to the dead letters so that the stream goes on.
                tracing::error!(stage, error = %e, "a stage handler panicked");
                batch
                    .iter()
                    .map(|_| Outcome::DeadLetter {
                        reason: "internal_error",
                        detail: e.to_string(),
                        attempts: 1,
                    })
                    .collect()
            }
        };
        let mut finished = Vec::with_capacity(places.len());
        for ((m, outcome), (tp, offset)) in batch.iter().zip(outcomes).zip(places) {
            let (outputs, label) = match outcome {
                Outcome::Done { outputs, duplicate } => {
                    (outputs, if duplicate { "duplicate" } else { "processed" })
                }
                Outcome::DeadLetter {
                    reason,
                    detail,
                    attempts,
                } => {
                    tracing::warn!(stage, %reason, %detail, topic = %m.topic, partition = m.partition, offset = m.offset, "dead letter");
                    metrics.dead_letter(stage, reason);
                    (
                        vec![dead_letter(m, &options.dlq_topic, stage, reason, &detail, attempts)],
                        "dead_letter",
                    )
                }
            };
            let sent = deliver(&producer, &outputs, &shutdown, stage).await;
            if sent {
                crash_point("stream.after_outputs");
                metrics.finished(stage, label);
            }
            finished.push((tp, offset, sent));
        }
        Completed {
            generation,
            messages: finished,
        }
    });
}

/// Sends a message's outputs, trying again while the broker refuses them, until they are
/// acknowledged or the stream shuts down (then the message stays unfinished and comes again).
async fn deliver(
    producer: &FutureProducer,
    outputs: &[Outgoing],
    shutdown: &watch::Receiver<bool>,
    stage: &str,
) -> bool {
    let mut pause = Duration::from_millis(200);
    loop {
        match send_all(producer, outputs).await {
            Ok(()) => return true,
            Err(e) => {
                if *shutdown.borrow() {
                    return false;
                }
                tracing::warn!(stage, error = %crate::errors::Chain(&e), "cannot send a stage's output; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A message for the dead-letter topic: the original key and bytes, and why.
fn dead_letter(
    m: &Incoming,
    topic: &str,
    stage: &str,
    reason: &str,
    detail: &str,
    attempts: u32,
) -> Outgoing {
    Outgoing {
        topic: topic.to_owned(),
        key: m.key.clone().unwrap_or_default(),
        payload: m.payload.clone(),
        headers: vec![
            ("reason", reason.as_bytes().to_vec()),
            ("detail", detail.as_bytes().to_vec()),
            ("stage", stage.as_bytes().to_vec()),
            ("attempts", attempts.to_string().into_bytes()),
            ("source_topic", m.topic.as_bytes().to_vec()),
            ("source_partition", m.partition.to_string().into_bytes()),
            ("source_offset", m.offset.to_string().into_bytes()),
        ],
    }
}

/// Counts a task's messages finished (those of the current generation).
fn finish(
    done: Result<Completed, tokio::task::JoinError>,
    queue: &mut Queue,
    context: &StageContext,
) {
    let done = match done {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "a stage task failed; its messages come again at the next start");
            return;
        }
    };
    if done.generation != queue.generation {
        // Their partitions were taken away meanwhile: their new holder processes them again.
        return;
    }
    let mut w = lock(&context.watermarks);
    for (tp, offset, finished) in done.messages {
        queue.done(&tp);
        if finished {
            w.partition(&tp).finished(offset);
        }
    }
}

/// Commits the watermarks that moved.
fn commit(consumer: &StageConsumer, context: &StageContext, mode: CommitMode) {
    let moved = match mode {
        CommitMode::Sync => lock(&context.watermarks).positions(),
        CommitMode::Async => lock(&context.watermarks).to_commit(),
    };
    if moved.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in &moved {
        if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(error = %e, "cannot list an offset to commit");
        }
    }
    if let Err(e) = consumer.commit(&list, mode) {
        tracing::warn!(stage = context.stage, error = %e, "cannot commit offsets; the next commit carries them");
    }
}

/// Measures the lag of each partition held: its high watermark less the stage's position.
async fn measure_lag(
    consumer: Arc<StageConsumer>,
    context: StageContext,
    stage: &'static str,
    metrics: StreamMetrics,
) {
    let positions: BTreeMap<TopicPartition, i64> =
        lock(&context.watermarks).positions().into_iter().collect();
    let _ = tokio::task::spawn_blocking(move || {
        let Ok(assignment) = consumer.assignment() else {
            return;
        };
        let committed = consumer.committed(Duration::from_secs(2)).ok();
        for e in assignment.elements() {
            let tp = (e.topic().to_owned(), e.partition());
            let Ok((_, high)) = consumer.fetch_watermarks(&tp.0, tp.1, Duration::from_secs(2))
            else {
                continue;
            };
            let position = positions.get(&tp).copied().or_else(|| {
                committed
                    .as_ref()
                    .and_then(|c| c.find_partition(&tp.0, tp.1))
                    .and_then(|p| p.offset().to_raw())
                    .filter(|o| *o >= 0)
            });
            let lag = high - position.unwrap_or(0);
            metrics.set_lag(stage, &tp.0, tp.1, lag.max(0));
        }
    })
    .await;
}

fn incoming(m: &rdkafka::message::BorrowedMessage<'_>) -> Incoming {
    Incoming {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The watermarks are consistent after any panic: each change is one call.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(partition: i32, offset: i64) -> Incoming {
        Incoming {
            topic: "t".to_owned(),
            partition,
            offset,
            key: None,
            payload: Vec::new(),
        }
    }

    fn queue(messages: &[(i32, i64)]) -> Queue {
        let mut q = Queue {
            waiting: BTreeMap::new(),
            running: BTreeMap::new(),
            waiting_total: 0,
            generation: 0,
        };
        for (p, o) in messages {
            q.push(message(*p, *o));
        }
        q
    }

    fn places(taken: &[Incoming]) -> Vec<(i32, i64)> {
        taken.iter().map(|m| (m.partition, m.offset)).collect()
    }

    #[test]
    fn sync_mode_takes_one_message_per_idle_partition_in_order() {
        let mut q = queue(&[(0, 5), (0, 6), (1, 9), (1, 10)]);
        assert_eq!(places(&q.take(Mode::Sync, usize::MAX)), [(0, 5), (1, 9)]);
        assert!(
            q.take(Mode::Sync, usize::MAX).is_empty(),
            "both partitions busy"
        );
        q.done(&("t".to_owned(), 1));
        assert_eq!(places(&q.take(Mode::Sync, usize::MAX)), [(1, 10)]);
        q.done(&("t".to_owned(), 0));
        assert_eq!(places(&q.take(Mode::Sync, usize::MAX)), [(0, 6)]);
        assert_eq!(q.waiting_total, 0);
    }

    #[test]
    fn async_mode_takes_up_to_the_room_round_the_partitions() {
        let mut q = queue(&[(0, 1), (0, 2), (0, 3), (1, 7)]);
        assert_eq!(
            places(&q.take(Mode::Async, 3)),
            [(0, 1), (1, 7), (0, 2)],
            "beyond one per partition, partitions taking turns"
        );
        assert_eq!(places(&q.take(Mode::Async, 3)), [(0, 3)]);
        assert_eq!(q.waiting_total, 0);
    }
}
