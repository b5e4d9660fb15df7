//! `facegraph stream` (the stages on Kafka until SIGTERM, metrics on `--listen`) and `facegraph
//! backfill` (a manifest of past uploads, one day at a time): both build the application with
//! [`App::build`], pick the face engine, and call into [`crate::stream`].

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::photos::{parse_threshold, progress_bar};
use super::serve::shutdown_signal;
use super::{output, Shell, EXIT_SOME_REJECTED};
use crate::engine::local::generated::GeneratedAnalyzer;
use crate::engine::local::LocalEngine;
use crate::engine::FaceEngine;
use crate::model::{CollectionId, Similarity};
use crate::service::{SearchOptions, DEFAULT_MAX_MATCHES};
use crate::startup::{Access, App};
use crate::stream::backfill::{self, Day, DayOptions};
use crate::stream::{self as pipeline, Mode, Stage, StreamConfig, StreamMetrics};

/// Where a stream's or a backfill's faces come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FacesArg {
    /// The face engine the settings name (`--engine`): the local engine with its models, or
    /// Rekognition.
    Models,
    /// The local engine's collections with faces generated from generated images instead of the
    /// models (no inference): for load and fault tests of the pipeline around the engine.
    Generated,
}

/// How a stage takes messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One message in flight per partition, in order.
    Sync,
    /// Up to --concurrency messages in flight across the partitions held.
    Async,
}

/// A stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum StageArg {
    /// Uploads in: index, the largest face out.
    Index,
    /// Faces in: search, the hits out.
    Search,
    /// Hits in: adjudicate, match events out.
    Adjudicate,
}

/// Options of the engine and the searches, shared by `stream`, `serve --stream` and `backfill`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The collection uploads are indexed into (default from the settings).
    #[arg(long, env = "FACEGRAPH_COLLECTION_ID", value_name = "ID")]
    pub collection_id: Option<String>,
    /// Searches return hits at or above this similarity, 0-100.
    #[arg(long, default_value = "80", value_parser = parse_threshold, value_name = "0-100")]
    pub match_confidence_threshold: Similarity,
    /// Where faces come from: the face engine the settings name (`--engine`), or faces generated
    /// from generated images (no inference, for load and fault tests).
    #[arg(long, value_enum, default_value_t = FacesArg::Models)]
    pub faces: FacesArg,
}

/// Arguments of `stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// sync: one message in flight per partition, in order; async: up to --concurrency.
    #[arg(long, value_enum, default_value_t = ModeArg::Sync)]
    pub mode: ModeArg,
    /// In async mode, at most this many messages in flight per stage.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// Serve the metrics on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Run only these stages (repeat the option or give a comma-separated list); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub stage: Vec<StageArg>,
    /// The engine and the searches.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Arguments of `backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The manifest: CSV with the header path,external_image_id,subject_id,uploaded_at (paths
    /// relative to the manifest's folder; uploaded_at RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The first day (YYYY-MM-DD); the manifest's first by default.
    #[arg(long, value_name = "DAY")]
    pub from: Option<String>,
    /// The last day (YYYY-MM-DD); the manifest's last by default.
    #[arg(long, value_name = "DAY")]
    pub to: Option<String>,
    /// Send the uploads to the uploads topic instead of processing them here.
    #[arg(long)]
    pub publish: bool,
    /// The engine and the searches.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

impl PipelineArgs {
    fn collection(&self, shell: &Shell) -> Result<CollectionId> {
        Ok(match &self.collection_id {
            Some(c) => CollectionId::parse(c)?,
            None => shell.settings.collection_id.clone(),
        })
    }

    fn search(&self) -> SearchOptions {
        SearchOptions {
            threshold: self.match_confidence_threshold,
            max_matches: DEFAULT_MAX_MATCHES,
        }
    }
}

/// The face engine for `which` over the data directory of `app`, which holds its lock.
pub(super) fn engine(app: &App, which: FacesArg) -> Result<Arc<dyn FaceEngine>> {
    Ok(match which {
        FacesArg::Models => app.engine()?,
        FacesArg::Generated => {
            assert!(
                app.holds_lock(),
                "the engine's collections need the data directory's lock"
            );
            Arc::new(LocalEngine::open(
                &app.settings().data_dir,
                Arc::new(GeneratedAnalyzer),
            )?)
        }
    })
}

/// The stream's configuration from the command line and the settings.
pub(super) fn config(
    shell: &Shell,
    stages: Vec<Stage>,
    mode: ModeArg,
    concurrency: usize,
    pipeline: &PipelineArgs,
) -> Result<StreamConfig> {
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    Ok(StreamConfig {
        kafka: shell.settings.kafka.clone(),
        stages,
        mode: match mode {
            ModeArg::Sync => Mode::Sync,
            ModeArg::Async => Mode::Async,
        },
        concurrency,
        collection_id: pipeline.collection(shell)?,
        search: pipeline.search(),
        data_dir: shell.settings.data_dir.clone(),
    })
}

/// Runs `stream` until SIGTERM or SIGINT.
pub(super) fn run(shell: &Shell, args: &StreamArgs) -> Result<i32> {
    let stages: Vec<Stage> = if args.stage.is_empty() {
        Stage::ALL.to_vec()
    } else {
        let mut s: Vec<Stage> = args
            .stage
            .iter()
            .map(|s| match s {
                StageArg::Index => Stage::Index,
                StageArg::Search => Stage::Search,
                StageArg::Adjudicate => Stage::Adjudicate,
            })
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let config = config(
        shell,
        stages.clone(),
        args.mode,
        args.concurrency,
        &args.pipeline,
    )?;
    if config.kafka.brokers.is_none() {
        return Err(pipeline::StreamError::NoBrokers.into());
    }
    let listen: Option<SocketAddr> = args
        .listen
        .as_deref()
        .map(|l| {
            l.parse()
                .with_context(|| format!("--listen {l:?} is not an address like 127.0.0.1:9100"))
        })
        .transpose()?;
    let needs_engine = stages.iter().any(|s| s.needs_engine());
    let mut access = Access::write(shell.wait);
    if needs_engine {
        access = access.with_engine();
    }
    let app = App::build(&shell.settings, access, &super::waiting)?;
    let engine = if needs_engine {
        Some(engine(&app, args.pipeline.faces)?)
    } else {
        None
    };
    let registry = prometheus::Registry::new();
    let metrics = StreamMetrics::register(&registry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let graph = app.graph().clone();
    let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
    runtime.block_on(async move {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = match listen {
            Some(addr) => Some(serve_metrics(addr, registry, stopped.clone()).await?),
            None => None,
        };
        output::notice(&format!(
            "streaming: stages {} (groups {}.<stage>), {} mode",
            names.join(", "),
            config.kafka.group,
            match config.mode {
                Mode::Sync => "sync",
                Mode::Async => "async",
            }
        ));
        let shutdown = async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        };
        pipeline::run(graph, engine, config, metrics, shutdown).await?;
        if let Some(server) = server {
            let _ = server.await;
        }
        output::notice("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    runtime.shutdown_background();
    drop(app);
    Ok(0)
}

/// Serves `registry` on http://ADDR/metrics until `stopped` turns true.
async fn serve_metrics(
    addr: SocketAddr,
    registry: prometheus::Registry,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("no local address")?;
    output::notice(&format!("metrics on http://{local}/metrics"));
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut buf = Vec::new();
                if let Err(e) = prometheus::Encoder::encode(
                    &prometheus::TextEncoder::new(),
                    &registry.gather(),
                    &mut buf,
                ) {
                    tracing::warn!(error = %e, "metrics could not be encoded");
                }
                String::from_utf8(buf).unwrap_or_default()
            }
        }),
    );
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let config = crate::api::ApiConfig {
            shutdown_deadline: std::time::Duration::from_secs(2),
            ..crate::api::ApiConfig::default()
        };
        crate::api::serve_router(listener, app, &config, shutdown).await;
    }))
}

/// Runs `backfill`: status 2 when some uploads were refused.
pub(super) fn backfill(shell: &Shell, args: &BackfillArgs, out: &mut impl Write) -> Result<i32> {
    let from = args.from.as_deref().map(Day::parse).transpose()?;
    let to = args.to.as_deref().map(Day::parse).transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            bail!("--from {f} is after --to {t}");
        }
    }
    let rows = backfill::read_manifest(&args.manifest)?;
    let plan = backfill::days(rows, from, to);
    let cursor = backfill::cursor_name(&args.manifest);
    let mut access = Access::write(shell.wait);
    if !args.publish {
        access = access.with_engine();
    }
    let app = App::build(&shell.settings, access, &super::waiting)?;
    let graph = app.graph();
    let done_until = backfill::last_day(graph, &cursor)?;
    if let Some(last) = done_until {
        writeln!(
            out,
            "Resuming after {last}, the last day this manifest finished."
        )?;
    }
    let todo: Vec<(&Day, &Vec<backfill::ManifestRow>)> = plan
        .iter()
        .filter(|(d, _)| done_until.is_none_or(|last| **d > last))
        .collect();
    if todo.is_empty() {
        writeln!(
            out,
            "Nothing to do: every day of the manifest in range is done."
        )?;
        return Ok(0);
    }
    if args.publish {
        return publish(shell, &app, &todo, &cursor, out);
    }
    let engine = engine(&app, args.pipeline.faces)?;
    let search = args.pipeline.search();
    // An upload a crash interrupted (the last run stopped inside a day) is completed first.
    let resumed = graph.resume_uploads(engine.as_ref(), search)?;
    if !resumed.completed.is_empty() {
        writeln!(
            out,
            "Completed {} uploads the last run left unfinished.",
            resumed.completed.len()
        )?;
    }
    let collection_id = args.pipeline.collection(shell)?;
    let options = DayOptions {
        collection_id: &collection_id,
        search,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cursor: &cursor,
    };
    let mut refused = 0;
    for (day, rows) in todo {
        let bar = progress_bar(rows.len(), &format!("uploads of {day}"));
        let report =
            backfill::run_day(graph, engine.as_ref(), *day, rows, options, &|| bar.inc(1))?;
        bar.finish_and_clear();
        refused += report.rejected.len();
        output::backfill_day(*day, &report, graph.adjudicator(), out)?;
        out.flush()?;
    }
    Ok(if refused == 0 { 0 } else { EXIT_SOME_REJECTED })
}

/// `backfill --publish`: each day's uploads to the uploads topic, the cursor moved per day.
fn publish(
    shell: &Shell,
    app: &App,
    todo: &[(&Day, &Vec<backfill::ManifestRow>)],
    cursor: &str,
    out: &mut impl Write,
) -> Result<i32> {
    let kafka = &shell.settings.kafka;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        pipeline::kafka::ensure_topics(kafka, &[&kafka.uploads_topic]).await?;
        let producer = pipeline::kafka::producer(kafka)?;
        for (day, rows) in todo {
            let n = backfill::publish_day(
                app.graph(),
                &producer,
                &kafka.uploads_topic,
                **day,
                rows,
                cursor,
            )
            .await?;
            writeln!(
                out,
                "{day}: published {n} uploads to {}",
                kafka.uploads_topic
            )?;
            out.flush()?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    runtime.shutdown_background();
    Ok(0)
}
