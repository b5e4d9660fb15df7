//! The `facegraph` command line, the shell around the library: clap definitions and the command
//! handlers, one file per command family, every printed shape in [`output`]. Each handler builds
//! the application with [`crate::startup::App::build`], makes one call into the library, and prints
//! the result for people (tables), scripts (JSON lines) or spreadsheets (CSV).
//!
//! Nothing below this module imports clap, anyhow or the CLI; `tests/architecture.rs` checks it.

mod bench;
mod collections;
mod graph;
mod models;
mod neo4j;
pub mod output;
mod photos;
mod saved;
mod serve;
mod stream;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::settings::{Overrides, Settings};
use crate::startup::{Access, App, Holder, LockWait};

/// facegraph: graph-augmented face-match adjudication.
#[derive(Debug, Parser)]
#[command(name = "facegraph", version, about, long_about = None)]
pub struct Cli {
    /// Where the graph, the local engine's collections and other state live.
    #[arg(long, global = true, env = "FACEGRAPH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML settings file: data_dir, rules, collection_id, listen, models_dir, store, engine,
    /// api_keys, a [neo4j] table (user, password, database), [rekognition] (region, endpoint,
    /// requests_per_second, max_attempts, prefilter, prefilter_min_confidence, currency,
    /// price_per_1000), [rekognition_endpoint] (listen, access_keys) and [[routes]]
    /// (collection_id, key, separator, max_faces, search); see the README.
    #[arg(long, global = true, env = "FACEGRAPH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A rule set TOML file to adjudicate with instead of the built-in default.
    #[arg(long, global = true, env = "FACEGRAPH_RULES", value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Where the local engine's models are cached (default: the user's cache directory).
    #[arg(long, global = true, env = "FACEGRAPH_MODELS_DIR", value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Where the match graph lives: `sqlite` (the embedded store in the data directory, the default)
    /// or a Neo4j server, `bolt://HOST:PORT` or `neo4j://HOST:PORT`, with its login from
    /// FACEGRAPH_NEO4J_USER, FACEGRAPH_NEO4J_PASSWORD and FACEGRAPH_NEO4J_DATABASE.
    #[arg(long, global = true, env = "FACEGRAPH_STORE", value_name = "STORE")]
    pub store: Option<String>,
    /// The face engine that indexes and searches faces: `local` (the models in-process, the
    /// default) or `rekognition` (AWS Rekognition through its SDK: credentials and region from the
    /// AWS default chain, the endpoint from AWS_ENDPOINT_URL_REKOGNITION or the [rekognition]
    /// table of the settings).
    #[arg(long, global = true, env = "FACEGRAPH_ENGINE", value_name = "ENGINE")]
    pub engine: Option<String>,
    /// When another process writes to the data directory, fail at once naming it instead of
    /// waiting for it to finish.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest saved Rekognition responses (IndexFaces, SearchFaces, SearchFacesByImage, ListFaces;
    /// PascalCase or the Java SDK's camelCase), then adjudicate.
    IngestRekognition(saved::IngestRekognitionArgs),
    /// The whole pipeline on a directory of photos with the face engine: index, search every new
    /// face, store, adjudicate, cluster.
    Ingest(photos::ingest::IngestPhotosArgs),
    /// Index every face of a directory of photos into a collection, search each face against it, and
    /// print the matches.
    MatchFaces(photos::match_faces::MatchFacesArgs),
    /// The face engine's collections: list, create, describe, delete (a routed id with its family).
    Collections {
        /// What to do.
        #[command(subcommand)]
        action: collections::CollectionsCommand,
    },
    /// Search a collection (a routed id: its family) for a face, by its id or by an image.
    Search(collections::SearchArgs),
    /// The local engine's accuracy on labelled photos: detection recall, pair accuracy, ROC AUC,
    /// gender accuracy.
    Eval(photos::eval::EvalArgs),
    /// What the rules add to the engine's similarity on labelled photos: impostor and genuine pairs
    /// confirmed, kept and rejected, the review load, the engine alone at the same impostor count,
    /// and fraud leads against identities, for the default rule set and others.
    EvalAdjudication(photos::eval_adjudication::EvalAdjudicationArgs),
    /// List candidate matches with their verdicts.
    Matches(graph::MatchesArgs),
    /// Explain the verdict on a pair of faces.
    Explain(graph::ExplainArgs),
    /// Record an analyst's decision on a pair and re-adjudicate what it touches.
    Decide(graph::DecideArgs),
    /// List match clusters; two or more subjects make a fraud lead.
    Clusters(graph::ClustersArgs),
    /// The review queue after band retention.
    Review(graph::ReviewArgs),
    /// Which verdicts would change under another rule set; changes nothing.
    WhatIf(graph::WhatIfArgs),
    /// Print the effective rule set and its version.
    Rules,
    /// Re-adjudicate the whole graph under the effective rule set.
    Adjudicate,
    /// Counts of what the graph holds.
    Stats,
    /// Benchmarks on generated data: rule evaluation, store ingest, clustering.
    Bench(bench::BenchArgs),
    /// Serve the REST API until SIGTERM or SIGINT (in-flight requests finish); with --stream, run
    /// the stream in the same process.
    Serve(serve::ServeArgs),
    /// The streaming service on Kafka until SIGTERM or SIGINT: uploads in, match events out, each
    /// stage a consumer group of its own (docs/streaming.md).
    Stream(stream::StreamArgs),
    /// Process a manifest of past uploads one day at a time, each day adjudicated before the next,
    /// resuming at the day a stopped run was in (or publish them to the uploads topic).
    Backfill(stream::BackfillArgs),
    /// Make or hash API keys for the config file.
    #[command(subcommand)]
    ApiKey(serve::ApiKeyCommand),
    /// Local engine search figures on generated vectors: latency at 100k and 1M faces, memory and
    /// disk per face.
    BenchSearch(bench::search::BenchSearchArgs),
    /// The local engine's models: fetch them into the cache, verify them, print where they are.
    Models {
        /// What to do.
        #[command(subcommand)]
        action: models::ModelsCommand,
    },
    /// Benchmarks the local engine on a directory of photos: images per second, embeddings as JSON.
    BenchEngine(bench::engine::BenchEngineArgs),
    /// Uploads per second end to end through the stream (the broker in FACEGRAPH_KAFKA_BROKERS,
    /// every stage, the embedded store), with generated faces or the local engine.
    BenchStream(bench::stream::BenchStreamArgs),
    /// What Rekognition's protocol costs per call: IndexFaces and SearchFaces through the
    /// Rekognition engine and the compatible endpoint against the local engine called directly.
    BenchRekognition(bench::rekognition::BenchRekognitionArgs),
    /// A search fanned out over a routed collection's family against one collection of the same
    /// faces, on generated vectors (4 x 250k against 1M by default).
    BenchRouting(bench::routing::BenchRoutingArgs),
    /// The Neo4j store (`--store bolt://HOST:PORT`): apply the schema, benchmark writes and queries.
    Neo4j {
        /// What to do.
        #[command(subcommand)]
        action: neo4j::Neo4jCommand,
    },
}

/// Exit status when some inputs were rejected, skipped or in conflict but the others were
/// processed.
pub const EXIT_SOME_REJECTED: i32 = 2;

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> Result<i32> {
    let overrides = Overrides {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        rules: cli.rules.clone(),
        models_dir: cli.models_dir.clone(),
        store: cli.store.clone(),
        engine: cli.engine.clone(),
    };
    let settings = Settings::load(&overrides)?;
    let shell = Shell {
        settings,
        wait: if cli.no_wait {
            LockWait::NoWait
        } else {
            LockWait::Wait
        },
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    let code = match cli.command {
        Command::IngestRekognition(args) => saved::run(&shell, &args, &mut out)?,
        Command::Ingest(args) => photos::ingest::run(&shell, &args, &mut out)?,
        Command::MatchFaces(args) => photos::match_faces::run(&shell, &args, &mut out)?,
        Command::Collections { action } => collections::collections(&shell, &action, &mut out)?,
        Command::Search(args) => collections::search(&shell, &args, &mut out)?,
        Command::Eval(args) => photos::eval::run(&shell.settings, &args, &mut out)?,
        Command::EvalAdjudication(args) => photos::eval_adjudication::run(&shell, &args, &mut out)?,
        Command::Matches(args) => graph::matches(&shell, &args, &mut out)?,
        Command::Explain(args) => graph::explain(&shell, &args, &mut out)?,
        Command::Decide(args) => graph::decide(&shell, &args, &mut out)?,
        Command::Clusters(args) => graph::clusters(&shell, &args, &mut out)?,
        Command::Review(args) => graph::review(&shell, &args, &mut out)?,
        Command::WhatIf(args) => graph::what_if(&shell, &args, &mut out)?,
        Command::Rules => graph::rules(&shell, &mut out)?,
        Command::Adjudicate => graph::adjudicate(&shell, &mut out)?,
        Command::Stats => graph::stats(&shell, &mut out)?,
        Command::Bench(args) => bench::run(&args, &mut out).map(|()| 0)?,
        Command::Serve(args) => serve::run(&shell, &args)?,
        Command::Stream(args) => stream::run(&shell, &args)?,
        Command::Backfill(args) => stream::backfill(&shell, &args, &mut out)?,
        Command::ApiKey(cmd) => serve::api_key(&cmd, &mut out)?,
        Command::BenchSearch(args) => bench::search::run(&args, &mut out).map(|()| 0)?,
        Command::Models { action } => models::run(&shell.settings, action, &mut out)?,
        Command::BenchEngine(args) => {
            bench::engine::run(&shell.settings.models_dir, &args, &mut out).map(|()| 0)?
        }
        Command::BenchRekognition(args) => {
            bench::rekognition::run(&shell.settings.models_dir, &args, &mut out).map(|()| 0)?
        }
        Command::BenchRouting(args) => bench::routing::run(&args, &mut out).map(|()| 0)?,
        Command::Neo4j { action } => neo4j::run(&shell.settings, &action, &mut out)?,
        Command::BenchStream(args) => bench::stream::run(&shell, &args, &mut out).map(|()| 0)?,
    };
    out.flush()?;
    Ok(code)
}

/// What every command handler gets: the settings and how to wait for the data directory.
#[derive(Debug)]
struct Shell {
    settings: Settings,
    wait: LockWait,
}

impl Shell {
    /// Builds the application for a command that only reads the graph.
    fn reader(&self) -> Result<App> {
        Ok(App::build(&self.settings, Access::read(), &waiting)?)
    }

    /// Builds the application for a command that writes the graph, creating it when missing.
    fn writer(&self) -> Result<App> {
        Ok(App::build(
            &self.settings,
            Access::write(self.wait),
            &waiting,
        )?)
    }

    /// Builds the application for a command that changes an existing graph.
    fn updater(&self) -> Result<App> {
        Ok(App::build(
            &self.settings,
            Access::update(self.wait),
            &waiting,
        )?)
    }

    /// Builds the application for a command that writes the graph through the face engine.
    fn engine_writer(&self) -> Result<App> {
        Ok(App::build(
            &self.settings,
            Access::write(self.wait).with_engine(),
            &waiting,
        )?)
    }
}

/// Says on standard error whom a writer waits for.
fn waiting(holder: &Holder) {
    eprintln!(
        "facegraph: waiting for another facegraph writing to this data directory: {holder} \
         (--no-wait fails at once instead)"
    );
}

/// Whether an error ends in a closed standard output (`facegraph matches | head -1`): such a
/// command ends quietly with status 0, as pipelines expect.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            .or_else(|| match cause.downcast_ref::<csv::Error>()?.kind() {
                csv::ErrorKind::Io(io) => Some(io.kind()),
                _ => None,
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}
