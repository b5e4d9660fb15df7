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
    let (faces, hits, faces_batch) = (data.faces, data.hits, data.faces_batch);
    let (batched_obs, single_obs, single_edges) =
        (data.observations, data.prefix, data.prefix_edges);
    let dir = TempDir::new(parent)?;

    // Batched: the faces first (untimed), then every observation in one ingest.
    let path = dir.path().join("batched").join("graph.sqlite");
    let store = open(&path)?;
    store.ingest(&faces_batch).context("ingesting the faces")?;
    drop(store);
    let faces_bytes = store_bytes(&path)?;
    let store = open(&path)?;
    let batch = IngestBatch {
        observations: batched_obs,
        ..IngestBatch::default()
    };
    let started = Instant::now();
    let outcome = store
        .ingest(std::hint::black_box(&batch))
        .context("ingesting the observations")?;
    let batched_s = started.elapsed().as_secs_f64();
    ensure!(
        outcome.new_edges == hits.len(),
        "batched ingest stored {} edges, expected {}",
        outcome.new_edges,
        hits.len()
    );
    // Closing checkpoints the WAL into the file, so the size below is the store at rest.
    drop(store);
    let total_bytes = store_bytes(&path)?;

    // One transaction per observation, as an ingest that writes each search result when it arrives.
    let path = dir.path().join("single").join("graph.sqlite");
    let store = open(&path)?;
    store.ingest(&faces_batch).context("ingesting the faces")?;
    let batches: Vec<IngestBatch> = single_obs
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
    let single_s = started.elapsed().as_secs_f64();
    ensure!(
        single.new_edges == single_edges,
        "one-per-transaction ingest stored {} edges, expected {single_edges}",
        single.new_edges
    );
    drop(store);

    let batched_rate = hits.len() as f64 / batched_s.max(f64::MIN_POSITIVE);
    let single_rate = single_edges as f64 / single_s.max(f64::MIN_POSITIVE);
    let ratio = batched_rate / single_rate.max(f64::MIN_POSITIVE);
    let edge_bytes = total_bytes.saturating_sub(faces_bytes) as f64 / hits.len().max(1) as f64;
    let figures = vec![
        Figure {
            key: "ingest.batched.edges_per_second",
            label: "SQLite ingest, one batch".to_owned(),
            value: batched_rate,
            unit: Unit::PerSecond("edges"),
            goal: Some(Goal::AtLeast(GOAL_EDGES_PER_SECOND)),
            context: vec![
                ("edges", json!(hits.len())),
                ("observations", json!(batch.observations.len())),
                ("faces", json!(faces)),
                ("seconds", json!(batched_s)),
                (
                    "observations_per_second",
                    json!(batch.observations.len() as f64 / batched_s.max(f64::MIN_POSITIVE)),
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
                ("edges", json!(single_edges)),
                ("observations", json!(batches.len())),
                ("transactions", json!(batches.len())),
                (
                    "edges_changed_by_second_direction",
                    json!(single.changed_edges),
                ),
                ("seconds", json!(single_s)),
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
            value: total_bytes as f64,
            unit: Unit::Bytes,
            goal: None,
            context: vec![
                ("faces_only_bytes", json!(faces_bytes)),
                ("bytes_per_edge", json!(edge_bytes)),
                ("faces", json!(faces)),
                ("edges", json!(hits.len())),
            ],
        },
    ];
    let notes = vec![
        format!(
            "ingest: {} faces stored first (untimed, with a raw engine record each); then {} edges from {} \
             observations (half of the pairs found in both directions) in one transaction: {:.3} s",
            thousands(faces as f64),
            thousands(hits.len() as f64),
            thousands(batch.observations.len() as f64),
            batched_s
        ),
        format!(
            "  one transaction per observation on a fresh store: {} edges from {} transactions ({} second \
             directions folded into a stored edge): {:.3} s",
            thousands(single_edges as f64),
            thousands(batches.len() as f64),
            thousands(single.changed_edges as f64),
            single_s
        ),
        format!(
            "  file: {:.1} MB with the faces alone, {:.1} MB with the edges ({edge_bytes:.0} bytes per edge); \
             stores in {}",
            faces_bytes as f64 / 1e6,
            total_bytes as f64 / 1e6,
            parent.display()
        ),
    ];
    Ok(Section { figures, notes })
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
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!("facegraph-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)
            .with_context(|| format!("creating the benchmark directory {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
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
