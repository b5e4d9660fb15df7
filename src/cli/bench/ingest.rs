//! Store ingest: edges per second written into a fresh SQLite store in one batch, and with one
//! transaction per search result, side by side, with the size of the file they make.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use super::gen::{self, Rng};
use super::{thousands, Figure, Goal, Section, Unit};
use crate::model::Observation;
use crate::store::sqlite::SqliteStore;
use crate::store::{GraphStore, IngestBatch, IngestOutcome};

/// The goal of the issue: at least this many edges per second in batched ingest.
const GOAL_EDGES_PER_SECOND: f64 = 100_000.0;

/// Times one batch of `edges` edges' observations, then `single_edges` edges' observations one
/// transaction each, each into a fresh store under `parent` that already holds the faces.
pub(super) fn run(seed: u64, parent: &Path, edges: usize, single_edges: usize) -> Result<Section> {
    let data = Generated::new(seed, edges, single_edges)?;
    let dir = TempDir::new(parent)?;
    let edges = data.hits.len();
    let batched = time_batched(
        &dir.path().join("batched").join("graph.sqlite"),
        &data.faces_batch,
        data.observations,
        edges,
    )?;
    let single = time_single(
        &dir.path().join("single").join("graph.sqlite"),
        &data.faces_batch,
        data.prefix,
        data.prefix_edges,
    )?;
    Ok(Section {
        figures: figures(data.faces, edges, &batched, &single),
        notes: notes(data.faces, edges, &batched, &single, parent),
    })
}

/// A timed ingest of every observation in one batch, and the store's size before and after.
struct BatchedRun {
    seconds: f64,
    observations: usize,
    /// The store's bytes holding the faces alone.
    faces_bytes: u64,
    /// The store's bytes holding the faces and the edges.
    total_bytes: u64,
}

/// A timed ingest of one transaction per observation.
struct SingleRun {
    seconds: f64,
    transactions: usize,
    edges: usize,
    /// Edges that a second direction's observation folded into an edge already stored.
    changed_edges: usize,
}

/// Batched: the faces first (untimed), then every observation in one ingest, which must store
/// `edges` edges.
fn time_batched(
    path: &Path,
    faces_batch: &IngestBatch,
    observations: Vec<Observation>,
    edges: usize,
) -> Result<BatchedRun> {
    let store = open(path)?;
    store.ingest(faces_batch).context("ingesting the faces")?;
    drop(store);
    let faces_bytes = store_bytes(path)?;
    let store = open(path)?;
    let batch = IngestBatch {
        observations,
        ..IngestBatch::default()
    };
    let started = Instant::now();
    let outcome = store
        .ingest(std::hint::black_box(&batch))
        .context("ingesting the observations")?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        outcome.new_edges == edges,
        "batched ingest stored {} edges, expected {}",
        outcome.new_edges,
        edges
    );
    // Closing checkpoints the WAL into the file, so the size below is the store at rest.
    drop(store);
    Ok(BatchedRun {
        seconds,
        observations: batch.observations.len(),
        faces_bytes,
        total_bytes: store_bytes(path)?,
    })
}

/// One transaction per observation, as an ingest that writes each search result when it arrives;
/// the observations must make `edges` edges.
fn time_single(
    path: &Path,
    faces_batch: &IngestBatch,
    observations: Vec<Observation>,
    edges: usize,
) -> Result<SingleRun> {
    let store = open(path)?;
    store.ingest(faces_batch).context("ingesting the faces")?;
    let batches: Vec<IngestBatch> = observations
        .into_iter()
        .map(|o| IngestBatch {
            observations: vec![o],
            ..IngestBatch::default()
        })
        .collect();
    let mut single = IngestOutcome::default();
    let started = Instant::now();
    for b in &batches {
        let o = store
            .ingest(std::hint::black_box(b))
            .context("ingesting one observation")?;
        single.new_edges += o.new_edges;
        single.changed_edges += o.changed_edges;
    }
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        single.new_edges == edges,
        "one-per-transaction ingest stored {} edges, expected {edges}",
        single.new_edges
    );
    drop(store);
    Ok(SingleRun {
        seconds,
        transactions: batches.len(),
        edges,
        changed_edges: single.changed_edges,
    })
}

/// The rates of both runs, their ratio and the store's size per edge.
fn figures(faces: usize, edges: usize, batched: &BatchedRun, single: &SingleRun) -> Vec<Figure> {
    let batched_rate = edges as f64 / batched.seconds.max(f64::MIN_POSITIVE);
    let single_rate = single.edges as f64 / single.seconds.max(f64::MIN_POSITIVE);
    let ratio = batched_rate / single_rate.max(f64::MIN_POSITIVE);
    let edge_bytes = edge_bytes(edges, batched);
    vec![
        Figure {
            key: "ingest.batched.edges_per_second",
            label: "SQLite ingest, one batch".to_owned(),
            value: batched_rate,
            unit: Unit::PerSecond("edges"),
            goal: Some(Goal::AtLeast(GOAL_EDGES_PER_SECOND)),
            context: vec![
                ("edges", json!(edges)),
                ("observations", json!(batched.observations)),
                ("faces", json!(faces)),
                ("seconds", json!(batched.seconds)),
                (
                    "observations_per_second",
                    json!(batched.observations as f64 / batched.seconds.max(f64::MIN_POSITIVE)),
                ),
            ],
        },
        Figure {
            key: "ingest.single.edges_per_second",
            label: "SQLite ingest, one transaction per observation".to_owned(),
            value: single_rate,
            unit: Unit::PerSecond("edges"),
            goal: None,
            context: vec![
                ("edges", json!(single.edges)),
                ("observations", json!(single.transactions)),
                ("transactions", json!(single.transactions)),
                (
                    "edges_changed_by_second_direction",
                    json!(single.changed_edges),
                ),
                ("seconds", json!(single.seconds)),
            ],
        },
        Figure {
            key: "ingest.batched_over_single",
            label: "  batched vs one transaction each".to_owned(),
            value: ratio,
            unit: Unit::Times,
            goal: None,
            context: vec![],
        },
        Figure {
            key: "ingest.file_bytes",
            label: "  store file after batched ingest".to_owned(),
            value: batched.total_bytes as f64,
            unit: Unit::Bytes,
            goal: None,
            context: vec![
                ("faces_only_bytes", json!(batched.faces_bytes)),
                ("bytes_per_edge", json!(edge_bytes)),
                ("faces", json!(faces)),
                ("edges", json!(edges)),
            ],
        },
    ]
}

/// What the edges add to the store's file, per edge.
fn edge_bytes(edges: usize, batched: &BatchedRun) -> f64 {
    batched.total_bytes.saturating_sub(batched.faces_bytes) as f64 / edges.max(1) as f64
}

/// The sentences that describe both runs and the store's file.
fn notes(
    faces: usize,
    edges: usize,
    batched: &BatchedRun,
    single: &SingleRun,
    parent: &Path,
) -> Vec<String> {
    let edge_bytes = edge_bytes(edges, batched);
    vec![
        format!(
            "ingest: {} faces stored first (untimed, with a raw engine record each); then {} edges from {} \
             observations (half of the pairs found in both directions) in one transaction: {:.3} s",
            thousands(faces as f64),
            thousands(edges as f64),
            thousands(batched.observations as f64),
            batched.seconds
        ),
        format!(
            "  one transaction per observation on a fresh store: {} edges from {} transactions ({} second \
             directions folded into a stored edge): {:.3} s",
            thousands(single.edges as f64),
            thousands(single.transactions as f64),
            thousands(single.changed_edges as f64),
            single.seconds
        ),
        format!(
            "  file: {:.1} MB with the faces alone, {:.1} MB with the edges ({edge_bytes:.0} bytes per edge); \
             stores in {}",
            batched.faces_bytes as f64 / 1e6,
            batched.total_bytes as f64 / 1e6,
            parent.display()
        ),
    ]
}

/// Generated faces and search hits for an ingest benchmark: about ten hits per face.
pub(super) struct Generated {
    /// How many faces.
    pub(super) faces: usize,
    /// The hits, shuffled, so that a prefix has the same mix of hits as the whole.
    pub(super) hits: Vec<gen::Hit>,
    /// The collection, images, faces and subject links, for one ingest.
    pub(super) faces_batch: IngestBatch,
    /// Every hit's observations (half of the pairs in both directions).
    pub(super) observations: Vec<Observation>,
    /// The observations of the first `prefix_edges` hits.
    pub(super) prefix: Vec<Observation>,
    /// How many hits the prefix covers.
    pub(super) prefix_edges: usize,
}

impl Generated {
    pub(super) fn new(seed: u64, edges: usize, prefix_edges: usize) -> Result<Self> {
        let mut rng = Rng::new(seed, 2);
        let faces = (edges / 5).max(200);
        let pop = gen::population(&mut rng, faces).context("generating faces")?;
        let mut hits = gen::hits(&mut rng, &pop, edges).context("generating search hits")?;
        rng.shuffle(&mut hits);
        let prefix_edges = prefix_edges.min(hits.len());
        let observations = gen::observations(&pop, &hits).context("generating observations")?;
        let prefix =
            gen::observations(&pop, &hits[..prefix_edges]).context("generating observations")?;
        let faces_batch = IngestBatch {
            collections: vec![pop.collection.clone()],
            images: pop.images.clone(),
            faces: pop.faces.clone(),
            subjects: pop.subject_links.clone(),
            ..IngestBatch::default()
        };
        Ok(Self {
            faces,
            hits,
            faces_batch,
            observations,
            prefix,
            prefix_edges,
        })
    }
}

fn open(path: &Path) -> Result<SqliteStore> {
    SqliteStore::open(path)
        .with_context(|| format!("opening a benchmark store at {}", path.display()))
}

/// The bytes of the store's file and its WAL and shared-memory files, if any.
fn store_bytes(path: &Path) -> Result<u64> {
    let mut total = 0;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::metadata(&p) {
            Ok(m) => total += m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("reading the size of {}", p.display()))
            }
        }
    }
    Ok(total)
}

/// A directory of its own under `parent`, removed with everything in it when dropped.
#[derive(Debug)]
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(parent: &Path) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!("facegraph-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)
            .with_context(|| format!("creating the benchmark directory {}", path.display()))?;
        Ok(Self(path))
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), %error, "could not remove the benchmark directory");
        }
    }
}
