//! `facegraph neo4j bench`: the Neo4j store's write rate and query latencies on generated data, in
//! one run against the server `--store` names: edges written per second with batched `UNWIND`
//! transactions (the store's `ingest`) at each size, against one transaction per edge, then the
//! latency of the top-10 neighbours query and of the fraud-leads query at the largest size.
//!
//! It empties the database first and leaves the generated graph behind; it refuses to run unless
//! `--wipe` says that this is intended.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use serde_json::json;

use super::gen::Rng;
use super::ingest::Generated;
use super::{thousands, write_json, write_table, Figure, Goal, Machine, Section, Unit};
use crate::adjudication::Adjudicator;
use crate::service::Facegraph;
use crate::settings::{Settings, StoreLocation};
use crate::store::neo4j::{Login, Neo4jStore};
use crate::store::{GraphStore, IngestBatch};

/// The goal for batched writes.
const GOAL_EDGES_PER_SECOND: f64 = 20_000.0;

/// The investigation query the fraud-leads latency is measured on.
const FRAUD_LEADS: &str = include_str!("../../../cypher/browser/fraud_leads.cypher");

/// The neighbours query an analyst's tool runs for one face.
const TOP_NEIGHBOURS: &str = "MATCH (f:Face {face_id: $face_id})-[e:SIMILAR]-(g:Face)
    RETURN g.face_id AS face_id, e.similarity AS similarity, e.verdict AS verdict
    ORDER BY similarity DESC LIMIT 10";

/// Options of `facegraph neo4j bench`.
#[derive(Debug, Args)]
pub struct Neo4jBenchArgs {
    /// Confirms that the benchmark may delete everything in the database.
    #[arg(long)]
    pub wipe: bool,
    /// Sizes of the batched runs, in edges; the query latencies are measured at the largest.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub edges: Vec<usize>,
    /// Edges written with one transaction each (the rate is what matters).
    #[arg(long, default_value_t = 2_000)]
    pub single_edges: usize,
    /// Edges of an untimed batched run first, so that the server's JIT has compiled the write
    /// path before the timed runs (0: none).
    #[arg(long, default_value_t = 5_000)]
    pub warmup_edges: usize,
    /// How many times each query runs.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One JSON object per figure instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark against the settings' Bolt store and prints its figures.
pub fn run(settings: &Settings, args: &Neo4jBenchArgs, out: &mut impl Write) -> Result<()> {
    let url = check_args(settings, args)?;
    let login = Login::from_settings(url, &settings.neo4j);
    let store =
        Arc::new(Neo4jStore::connect(&login).with_context(|| format!("cannot connect to {url}"))?);
    let machine = Machine::detect();
    if !args.json {
        write_header(out, settings, args, url, &machine)?;
    }
    let mut sizes = args.edges.clone();
    sizes.sort_unstable();
    let mut section = Section {
        figures: Vec::new(),
        notes: Vec::new(),
    };
    batched_runs(&store, args, &sizes, &mut section)?;
    // Queries on the largest graph, adjudicated and clustered by the application first.
    let largest = *sizes.last().unwrap_or(&100_000);
    adjudicate(&store, settings, largest, &mut section.notes)?;
    query_latencies(&store, args, largest, &mut section)?;
    single_against_batched(&store, args, &mut section)?;
    if args.json {
        write_json(out, &section, args.seed, &machine)?;
    } else {
        write_table(out, std::slice::from_ref(&section))?;
    }
    Ok(())
}

/// The Bolt URL of the store, once the arguments say that wiping it is intended and name sizes the
/// benchmark can run.
fn check_args<'s>(settings: &'s Settings, args: &Neo4jBenchArgs) -> Result<&'s str> {
    let StoreLocation::Bolt(url) = &settings.store else {
        bail!("neo4j bench needs a Neo4j store: give --store bolt://HOST:PORT");
    };
    ensure!(
        args.wipe,
        "neo4j bench deletes everything in database {} at {url}; give --wipe to confirm",
        settings.neo4j.database
    );
    ensure!(
        !args.edges.is_empty() && args.edges.iter().all(|&n| n >= 100),
        "--edges must list sizes of at least 100 edges"
    );
    ensure!(
        args.single_edges > 0 && args.queries > 0,
        "--single-edges and --queries must be above 0"
    );
    Ok(url)
}

/// The lines above the table: the build, the seed, the server and the machine.
fn write_header(
    out: &mut impl Write,
    settings: &Settings,
    args: &Neo4jBenchArgs,
    url: &str,
    machine: &Machine,
) -> Result<()> {
    writeln!(
        out,
        "facegraph neo4j bench: {} build, seed {}, server {url} (database {})",
        machine.build, args.seed, settings.neo4j.database
    )?;
    writeln!(
        out,
        "machine: {} CPUs ({}), load average {}; the server runs on the same machine",
        machine.cpus,
        machine.cpu,
        machine
            .load
            .map_or_else(|| "unknown".to_owned(), |l| format!("{l:.2}"))
    )?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The untimed warm-up, then a timed batched run at each size, smallest first.
fn batched_runs(
    store: &Neo4jStore,
    args: &Neo4jBenchArgs,
    sizes: &[usize],
    section: &mut Section,
) -> Result<()> {
    if args.warmup_edges > 0 {
        let seed = args.seed.wrapping_add(1);
        let edges = args.warmup_edges.max(100);
        batched(store, seed, edges)?;
        section.notes.push(format!(
            "warm-up, untimed: {} edges batched with seed {seed} before the timed runs",
            thousands(edges as f64)
        ));
    }
    for &edges in sizes {
        let (figure, note) = batched(store, args.seed, edges)?;
        section.figures.push(figure);
        section.notes.push(note);
    }
    Ok(())
}

/// Adjudicates and clusters the graph the last run left, as the application does.
fn adjudicate(
    store: &Arc<Neo4jStore>,
    settings: &Settings,
    largest: usize,
    notes: &mut Vec<String>,
) -> Result<()> {
    let started = Instant::now();
    let app = Facegraph::new(store.clone(), Adjudicator::new(settings.rule_set()?));
    let r = app
        .readjudicate()
        .context("adjudicating the benchmark graph")?;
    notes.push(format!(
        "queries: on {} edges, adjudicated and clustered by facegraph first ({:.1} s: {} clusters, {} fraud leads)",
        thousands(largest as f64),
        started.elapsed().as_secs_f64(),
        r.clusters,
        r.fraud_leads
    ));
    Ok(())
}

/// The p50 and p99 latencies of the top-10 neighbours query on random faces with a match and of
/// the fraud-leads query.
fn query_latencies(
    store: &Neo4jStore,
    args: &Neo4jBenchArgs,
    largest: usize,
    section: &mut Section,
) -> Result<()> {
    let faces = matched_faces(store)?;
    let (mut neighbours, neighbour_rows) = time_neighbours(store, &faces, args)?;
    section.notes.push(format!(
        "  top-10 neighbours of {} random faces among the {} with a match: {} rows in all; fraud leads as \
         cypher/browser/fraud_leads.cypher",
        neighbours.len(),
        faces.len(),
        neighbour_rows
    ));
    let (mut leads, lead_rows) = time_fraud_leads(store, args.queries.min(50))?;
    for (keys, label, samples, rows) in [
        (
            ["neo4j.top10_neighbours.p50", "neo4j.top10_neighbours.p99"],
            "top-10 neighbours of a face",
            &mut neighbours,
            neighbour_rows,
        ),
        (
            ["neo4j.fraud_leads.p50", "neo4j.fraud_leads.p99"],
            "fraud leads (25 largest)",
            &mut leads,
            lead_rows,
        ),
    ] {
        samples.sort_by(f64::total_cmp);
        for (key, (q, name)) in keys.into_iter().zip([(0.5, "p50"), (0.99, "p99")]) {
            let value = samples[((samples.len() - 1) as f64 * q).round() as usize];
            section.figures.push(Figure {
                key,
                label: format!("{label}, {name} at {} edges", thousands(largest as f64)),
                value,
                unit: Unit::Latency,
                goal: None,
                context: vec![
                    ("quantile", json!(name)),
                    ("runs", json!(samples.len())),
                    ("rows", json!(rows)),
                    ("edges", json!(largest)),
                ],
            });
        }
    }
    Ok(())
}

/// Faces with at least one match: the faces an analyst opens.
fn matched_faces(store: &Neo4jStore) -> Result<Vec<String>> {
    let mut faces: Vec<String> = store
        .edges(None)?
        .into_iter()
        .flat_map(|e| {
            [
                e.edge.pair.a().as_str().to_owned(),
                e.edge.pair.b().as_str().to_owned(),
            ]
        })
        .collect();
    faces.sort_unstable();
    faces.dedup();
    ensure!(!faces.is_empty(), "the benchmark graph has no edges");
    Ok(faces)
}

/// Runs the neighbours query `--queries` times on random faces; returns each run's seconds and the
/// rows returned in all.
fn time_neighbours(
    store: &Neo4jStore,
    faces: &[String],
    args: &Neo4jBenchArgs,
) -> Result<(Vec<f64>, usize)> {
    let mut rng = Rng::new(args.seed, 9);
    let mut neighbours = Vec::with_capacity(args.queries);
    let mut neighbour_rows = 0;
    for _ in 0..args.queries {
        let face = &faces[rng.below(faces.len())];
        let params = [("face_id".into(), face.as_str().into())]
            .into_iter()
            .collect();
        let t = Instant::now();
        let found = store.read_rows(TOP_NEIGHBOURS, params)?;
        neighbours.push(t.elapsed().as_secs_f64());
        ensure!(
            (1..=10).contains(&found.len()),
            "the neighbours query returned {} rows for a face with a match",
            found.len()
        );
        neighbour_rows += found.len();
    }
    Ok((neighbours, neighbour_rows))
}

/// Runs the fraud-leads query `runs` times; returns each run's seconds and the rows of the last.
fn time_fraud_leads(store: &Neo4jStore, runs: usize) -> Result<(Vec<f64>, usize)> {
    let mut leads = Vec::with_capacity(runs);
    let mut lead_rows = 0;
    for _ in 0..runs {
        let params = [
            ("min_subjects".into(), 2_i64.into()),
            ("limit".into(), 25_i64.into()),
        ]
        .into_iter()
        .collect();
        let t = Instant::now();
        lead_rows = store
            .read_rows(FRAUD_LEADS.trim().trim_end_matches(';'), params)?
            .len();
        leads.push(t.elapsed().as_secs_f64());
    }
    Ok((leads, lead_rows))
}

/// The rate of one transaction per edge, and how many times faster the largest batched run was.
fn single_against_batched(
    store: &Neo4jStore,
    args: &Neo4jBenchArgs,
    section: &mut Section,
) -> Result<()> {
    let batched_rate = section
        .figures
        .iter()
        .rfind(|f| f.key == "neo4j.batched.edges_per_second")
        .map_or(0.0, |f| f.value);
    let (figure, note) = single(store, args.seed, args.single_edges)?;
    let single_rate = figure.value;
    section.figures.push(figure);
    section.notes.push(note);
    section.figures.push(Figure {
        key: "neo4j.batched_over_single",
        label: "  batched vs one transaction per edge".to_owned(),
        value: batched_rate / single_rate.max(f64::MIN_POSITIVE),
        unit: Unit::Times,
        goal: None,
        context: vec![],
    });
    Ok(())
}

/// Generated faces and search hits for `edges` edges, as in `facegraph bench`'s ingest benchmark:
/// the faces' batch, the observations' batch and how many edges they make.
fn data(seed: u64, edges: usize) -> Result<(IngestBatch, IngestBatch, usize)> {
    let g = Generated::new(seed, edges, 0)?;
    let observations = IngestBatch {
        observations: g.observations,
        ..IngestBatch::default()
    };
    Ok((g.faces_batch, observations, g.hits.len()))
}

/// An empty database holding the faces (untimed), then every observation in one `ingest`.
fn batched(store: &Neo4jStore, seed: u64, edges: usize) -> Result<(Figure, String)> {
    let (faces, observations, expected) = data(seed, edges)?;
    store.delete_everything()?;
    store.ingest(&faces).context("ingesting the faces")?;
    let started = Instant::now();
    let outcome = store
        .ingest(std::hint::black_box(&observations))
        .context("ingesting the observations")?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        outcome.new_edges == expected,
        "batched ingest stored {} edges, expected {expected}",
        outcome.new_edges
    );
    let rate = expected as f64 / seconds.max(f64::MIN_POSITIVE);
    let note = format!(
        "batched: {} faces stored first (untimed), then {} edges from {} observations in one transaction \
         of UNWIND statements of up to {} rows: {seconds:.3} s",
        thousands(faces.faces.len() as f64),
        thousands(expected as f64),
        thousands(observations.observations.len() as f64),
        thousands(crate::store::neo4j::BATCH_ROWS as f64),
    );
    Ok((
        Figure {
            key: "neo4j.batched.edges_per_second",
            label: format!("Neo4j store, batched, {} edges", thousands(expected as f64)),
            value: rate,
            unit: Unit::PerSecond("edges"),
            goal: Some(Goal::AtLeast(GOAL_EDGES_PER_SECOND)),
            context: vec![
                ("edges", json!(expected)),
                ("observations", json!(observations.observations.len())),
                ("faces", json!(faces.faces.len())),
                ("seconds", json!(seconds)),
            ],
        },
        note,
    ))
}

/// An empty database holding the faces, then `edges` edges' observations, one transaction each.
fn single(store: &Neo4jStore, seed: u64, edges: usize) -> Result<(Figure, String)> {
    let (faces, observations, _) = data(seed, edges.max(100))?;
    store.delete_everything()?;
    store.ingest(&faces).context("ingesting the faces")?;
    let mut written = 0;
    let mut transactions = 0;
    let started = Instant::now();
    for obs in &observations.observations {
        if written >= edges {
            break;
        }
        let one = IngestBatch {
            observations: vec![obs.clone()],
            ..IngestBatch::default()
        };
        written += store.ingest(std::hint::black_box(&one))?.new_edges;
        transactions += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = written as f64 / seconds.max(f64::MIN_POSITIVE);
    Ok((
        Figure {
            key: "neo4j.single.edges_per_second",
            label: "Neo4j store, one transaction per edge".to_owned(),
            value: rate,
            unit: Unit::PerSecond("edges"),
            goal: None,
            context: vec![
                ("edges", json!(written)),
                ("transactions", json!(transactions)),
                ("seconds", json!(seconds)),
            ],
        },
        format!(
            "one transaction per observation: {} edges from {} transactions: {seconds:.3} s",
            thousands(written as f64),
            thousands(transactions as f64)
        ),
    ))
}
