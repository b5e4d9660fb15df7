//! `facegraph bench-stream`: end-to-end uploads per second through the stream — the broker, every
//! stage, offsets committed, the embedded store, match events out — with the generated engine (the
//! local engine's collections without inference) or the local engine on photos. It runs the same
//! `stream::run` as `facegraph stream`, on topics and a data directory of its own.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::cli::stream::{engine, FacesArg, ModeArg};
use crate::cli::Shell;
use crate::engine::local::generated::generated_image;
use crate::engine::local::models;
use crate::files::walk;
use crate::model::{Similarity, Verdict};
use crate::service::{SearchOptions, DEFAULT_MAX_MATCHES, DEFAULT_SEARCH_THRESHOLD};
use crate::settings::{KafkaSettings, StoreLocation};
use crate::startup::{Access, App, LockWait};
use crate::stream::kafka::{send_all, Outgoing};
use crate::stream::messages::{UploadMessage, VERSION};
use crate::stream::{self as pipeline, Mode, Stage, StreamConfig, StreamMetrics};

/// Arguments of `bench-stream`.
#[derive(Debug, Args)]
pub struct BenchStreamArgs {
    /// Uploads to send.
    #[arg(long, default_value_t = 20_000)]
    pub uploads: usize,
    /// generated: faces derived from generated images (no inference); models: the face engine the
    /// settings name, on --photos.
    #[arg(long, value_enum, default_value_t = FacesArg::Generated)]
    pub faces: FacesArg,
    /// With --faces models, the photos uploaded (each under as many external ids as it takes);
    /// the sample photos of the model cache by default.
    #[arg(long, value_name = "DIR")]
    pub photos: Option<PathBuf>,
    /// How the stages take messages.
    #[arg(long, value_enum, default_value_t = ModeArg::Async)]
    pub mode: ModeArg,
    /// In async mode, at most this many messages in flight per stage.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Partitions of the benchmark's topics.
    #[arg(long, default_value_t = 6)]
    pub partitions: u32,
    /// Where the benchmark's data directory and images go (removed after); the system's
    /// temporary directory by default.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
}

/// Runs the benchmark and prints its figures.
pub(crate) fn run(shell: &Shell, args: &BenchStreamArgs, out: &mut impl Write) -> Result<()> {
    if args.uploads == 0 || args.partitions == 0 || args.concurrency == 0 {
        bail!("--uploads, --partitions and --concurrency must be at least 1");
    }
    if shell.settings.kafka.brokers.is_none() {
        return Err(pipeline::StreamError::NoBrokers.into());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("bench-stream-{}-{nanos}", std::process::id());
    let root = args
        .temp_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(&name);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let result = measure(shell, args, &name, &root, out);
    if let Err(e) = std::fs::remove_dir_all(&root) {
        tracing::warn!(error = %e, dir = %root.display(), "cannot remove the benchmark's directory");
    }
    result
}

fn measure(
    shell: &Shell,
    args: &BenchStreamArgs,
    name: &str,
    root: &std::path::Path,
    out: &mut impl Write,
) -> Result<()> {
    let mut settings = shell.settings.clone();
    settings.data_dir = root.join("data");
    settings.store = StoreLocation::Sqlite;
    settings.kafka = KafkaSettings {
        group: name.to_owned(),
        uploads_topic: format!("{name}.uploads"),
        faces_topic: format!("{name}.faces"),
        hits_topic: format!("{name}.hits"),
        matches_topic: format!("{name}.matches"),
        dlq_topic: format!("{name}.dlq"),
        partitions: args.partitions,
        ..settings.kafka.clone()
    };
    let kafka = settings.kafka.clone();
    let app = App::build(
        &settings,
        Access::write(LockWait::NoWait).with_engine(),
        &crate::cli::waiting,
    )?;
    let engine = engine(&app, args.faces)?;
    let uploads = write_uploads(args, &settings.models_dir, root, &kafka.uploads_topic)?;
    let load_before = load_average();
    let registry = prometheus::Registry::new();
    let metrics = StreamMetrics::register(&registry)?;
    let config = StreamConfig {
        kafka: kafka.clone(),
        stages: Stage::ALL.to_vec(),
        mode: match args.mode {
            ModeArg::Sync => Mode::Sync,
            ModeArg::Async => Mode::Async,
        },
        concurrency: args.concurrency,
        collection_id: settings.collection_id.clone(),
        search: SearchOptions {
            threshold: Similarity::new(DEFAULT_SEARCH_THRESHOLD)?,
            max_matches: DEFAULT_MAX_MATCHES,
        },
        data_dir: settings.data_dir.clone(),
    };
    let graph = app.graph().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let timing = runtime.block_on(async {
        pipeline::kafka::ensure_topics(
            &kafka,
            &[
                &kafka.uploads_topic,
                &kafka.faces_topic,
                &kafka.hits_topic,
                &kafka.matches_topic,
                &kafka.dlq_topic,
            ],
        )
        .await?;
        let producer = pipeline::kafka::producer(&kafka)?;
        let sent = Instant::now();
        send_all(&producer, &uploads).await?;
        let produce_secs = sent.elapsed().as_secs_f64();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stream = tokio::spawn(pipeline::run(
            graph.clone(),
            Some(Arc::clone(&engine)),
            config,
            metrics.clone(),
            async move {
                let _ = stopped.clone().wait_for(|s| *s).await;
            },
        ));
        let started = Instant::now();
        let watcher = Watcher::new(&kafka)?;
        let mut first = None;
        let mut stages_done: [Option<Duration>; 3] = [None; 3];
        loop {
            if first.is_none() && metrics.finished_total(Stage::Index.as_str()) > 0 {
                first = Some(started.elapsed());
            }
            for (i, done) in watcher.drained()?.into_iter().enumerate() {
                if done && stages_done[i].is_none() {
                    stages_done[i] = Some(started.elapsed());
                } else if !done {
                    stages_done[i] = None;
                }
            }
            let graph = graph.clone();
            let drained = stages_done.iter().all(Option::is_some)
                && tokio::task::spawn_blocking(move || outbox_drained(graph.store().as_ref()))
                    .await??;
            if drained {
                break;
            }
            if stream.is_finished() {
                bail!("the stream stopped before it finished the uploads");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let total = started.elapsed();
        let _ = stop.send(true);
        stream.await??;
        Ok::<_, anyhow::Error>((produce_secs, first.unwrap_or_default(), stages_done, total))
    })?;
    runtime.shutdown_background();
    let (produce_secs, first, stages_done, total) = timing;
    let load_after = load_average();
    let stats = app.graph().store().stats()?;
    let confirmed = app.graph().store().edges(Some(Verdict::Confirmed))?.len();
    let busy = (total - first).as_secs_f64();
    let rate = args.uploads as f64 / busy.max(1e-9);
    let dead = |stage: Stage| {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "facegraph_stream_dead_letters_total")
            .flat_map(|f| f.get_metric())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "stage" && l.value() == stage.as_str())
            })
            .map(|m| m.get_counter().get_value())
            .sum::<f64>() as u64
    };
    writeln!(
        out,
        "bench-stream: {} uploads, {} engine, {} mode, concurrency {}, {} partitions; {} build, \
         {} cores, load average {} before, {} after",
        args.uploads,
        match args.faces {
            FacesArg::Generated => "generated",
            FacesArg::Models => "models",
        },
        match args.mode {
            ModeArg::Sync => "sync",
            ModeArg::Async => "async",
        },
        args.concurrency,
        args.partitions,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_before.map_or_else(|| "unknown".to_owned(), |l| format!("{l:.2}")),
        load_after.map_or_else(|| "unknown".to_owned(), |l| format!("{l:.2}")),
    )?;
    writeln!(
        out,
        "  produced in {produce_secs:.2} s; the groups joined in {:.2} s; every stage finished \
         {:.2} s after the first upload",
        first.as_secs_f64(),
        busy
    )?;
    let after = |d: Option<Duration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.2} s", d.saturating_sub(first).as_secs_f64()),
        )
    };
    writeln!(
        out,
        "  each stage had committed everything: index {}, search {}, adjudicate {} after the \
         first upload (the uploads through index and search: {:.0}/s)",
        after(stages_done[0]),
        after(stages_done[1]),
        after(stages_done[2]),
        args.uploads as f64
            / stages_done[1]
                .map_or(busy, |d| d.saturating_sub(first).as_secs_f64())
                .max(1e-9)
    )?;
    match args.faces {
        FacesArg::Generated => writeln!(
            out,
            "  {rate:.0} uploads/s end to end (goal for the generated engine: 2,000/s, {})",
            if rate >= 2000.0 { "met" } else { "not met" }
        )?,
        FacesArg::Models => writeln!(out, "  {rate:.0} uploads/s end to end")?,
    }
    writeln!(
        out,
        "  stored: {} images, {} faces, {} edges ({confirmed} confirmed); dead letters: {} at \
         index",
        stats.images,
        stats.faces,
        stats.edges,
        dead(Stage::Index)
    )?;
    drop(app);
    Ok(())
}

/// The uploads: generated images (three photos of each person, every seventh under another
/// customer), or the photos of a folder, each under as many external ids as it takes.
fn write_uploads(
    args: &BenchStreamArgs,
    models_dir: &std::path::Path,
    root: &std::path::Path,
    topic: &str,
) -> Result<Vec<Outgoing>> {
    let images = root.join("images");
    std::fs::create_dir_all(&images)?;
    let photos: Vec<PathBuf> = match args.faces {
        FacesArg::Generated => Vec::new(),
        FacesArg::Models => {
            let dir = args
                .photos
                .clone()
                .unwrap_or_else(|| models::samples_dir(models_dir));
            let found = walk(std::slice::from_ref(&dir)).files;
            if found.is_empty() {
                bail!("no photos in {}", dir.display());
            }
            found
        }
    };
    let mut out = Vec::with_capacity(args.uploads);
    for i in 0..args.uploads {
        let person = (i / 3) as u64;
        let path = match args.faces {
            FacesArg::Generated => {
                let p = images.join(format!("u{i}"));
                std::fs::write(&p, generated_image(person, i as u64, 1))?;
                p
            }
            FacesArg::Models => photos[i % photos.len()].clone(),
        };
        let external = format!("u{i}");
        let subject = if i % 7 == 0 {
            format!("fraud-{i}")
        } else {
            format!("cust-{person}")
        };
        let m = UploadMessage {
            version: VERSION,
            image: path.display().to_string(),
            external_image_id: external.clone(),
            subject_id: Some(subject),
            idempotency_key: None,
        };
        out.push(Outgoing {
            topic: topic.to_owned(),
            key: external.into_bytes(),
            payload: serde_json::to_vec(&m)?,
            headers: Vec::new(),
        });
    }
    Ok(out)
}

/// Whether the outbox has derived and sent the events of every judgement.
fn outbox_drained(store: &dyn crate::store::GraphStore) -> Result<bool> {
    let cursor: i64 = match store.stream_cursor(pipeline::events::CURSOR)? {
        Some(c) => c.parse()?,
        None => 0,
    };
    Ok(store.judgements_after(cursor, 1)?.is_empty() && store.unsent_match_events(1)?.is_empty())
}

/// Reads the stage groups' committed offsets and the topics' ends.
struct Watcher {
    consumers: Vec<(BaseConsumer, String)>,
}

impl Watcher {
    fn new(kafka: &KafkaSettings) -> Result<Self> {
        let brokers = kafka.brokers.clone().unwrap_or_default();
        let consumers = Stage::ALL
            .iter()
            .map(|s| {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &brokers)
                    .set("group.id", s.group(kafka))
                    .create()?;
                Ok((consumer, s.topic(kafka).to_owned()))
            })
            .collect::<Result<_>>()?;
        Ok(Self { consumers })
    }

    /// Whether each stage (in pipeline order) has committed everything of its topic.
    fn drained(&self) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(self.consumers.len());
        'stages: for (consumer, topic) in &self.consumers {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len());
            let mut list = TopicPartitionList::new();
            for p in 0..partitions {
                list.add_partition(topic, i32::try_from(p)?);
            }
            let committed = consumer.committed_offsets(list, Duration::from_secs(5))?;
            for e in committed.elements() {
                let (_, high) =
                    consumer.fetch_watermarks(topic, e.partition(), Duration::from_secs(5))?;
                if e.offset().to_raw().unwrap_or(-1).max(0) < high {
                    out.push(false);
                    continue 'stages;
                }
            }
            out.push(true);
        }
        Ok(out)
    }
}

/// The one-minute load average.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
