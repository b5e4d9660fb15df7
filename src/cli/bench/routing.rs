//! `facegraph bench-routing`: a search fanned out over a routed collection's family (4
//! collections of 250k faces by default) against the same faces in one collection (1M), on the
//! local engine with generated unit vectors persisted as collections, and searched by face id as
//! the ingest pipeline searches a new face. The answers of the two are compared too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Args;

use super::search::{bench_face_id, bench_image, cpu_time, median, ms, percentile, Generator};
use crate::engine::local::collections::{Collection, Manifest};
use crate::engine::local::{FaceAnalyzer, ImageAnalysis, LocalEngine};
use crate::engine::routing::{Route, RouteKey, RoutedEngine, Routes, SearchScope};
use crate::engine::{EngineError, FaceEngine, FaceMatch, HeldFace};
use crate::model::{CollectionId, FaceId, Similarity};

/// Options of `facegraph bench-routing`.
#[derive(Debug, Args)]
pub struct BenchRoutingArgs {
    /// Faces in all: the one collection holds them all, the family splits them.
    #[arg(long, default_value_t = 1_000_000)]
    pub faces: usize,
    /// Collections in the routed family.
    #[arg(long, default_value_t = 4)]
    pub parts: usize,
    /// Searches of each kind; medians and the 90th percentile are reported.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// FaceMatchThreshold of the searches (0-100); the pipeline's default.
    #[arg(long, default_value_t = 80.0)]
    pub threshold: f64,
    /// MaxFaces of the searches; the pipeline's default.
    #[arg(long, default_value_t = 100)]
    pub max_faces: u32,
    /// Embedding dimension (SFace: 128).
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where the collections are written (and removed after); the system's temporary directory by
    /// default.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
}

/// The engine's analyzer in this benchmark: its collections hold generated embeddings, and it is
/// only searched by face id, so it analyses no image.
#[derive(Debug)]
struct GeneratedFaces {
    dim: usize,
}

impl FaceAnalyzer for GeneratedFaces {
    fn analyze(&self, _bytes: &[u8]) -> Result<ImageAnalysis, EngineError> {
        Err(EngineError::InvalidParameter(
            "bench-routing's collections hold generated embeddings; it analyses no image"
                .to_owned(),
        ))
    }

    fn model_version(&self) -> &str {
        MODEL
    }

    fn embedding_dim(&self) -> usize {
        self.dim
    }
}

const MODEL: &str = "bench";
const SINGLE: &str = "single";
const ROUTED: &str = "fan";
const KEY: &str = "bench";

/// Runs the benchmark and prints its figures.
pub fn run(args: &BenchRoutingArgs, out: &mut impl Write) -> Result<()> {
    ensure!(
        args.faces >= args.parts && args.parts >= 1 && args.queries >= 1 && args.dim >= 1,
        "--faces must be at least --parts, and --parts, --queries and --dim at least 1"
    );
    let threshold = Similarity::new(args.threshold).context("--threshold")?;
    let base = args.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = base.join(format!("facegraph-bench-routing-{}", uuid::Uuid::new_v4()));
    let result = measure(args, threshold, &root, out);
    let cleanup = std::fs::remove_dir_all(&root);
    result?;
    cleanup.with_context(|| format!("remove {}", root.display()))
}

fn measure(
    args: &BenchRoutingArgs,
    threshold: Similarity,
    root: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    writeln!(
        out,
        "# bench-routing: {} faces of {}-d unit vectors (seed {}) in 1 collection and in a route of {} collections of {} faces; {} searches by face id each, threshold {}, MaxFaces {}; {} cores; load average {}",
        args.faces,
        args.dim,
        args.seed,
        args.parts,
        args.faces.div_ceil(args.parts),
        args.queries,
        args.threshold,
        args.max_faces,
        threads,
        load_average()
    )?;
    out.flush()?;
    let gen = Generator {
        seed: args.seed,
        dim: args.dim,
    };
    let routes = Routes::new(vec![Route {
        collection_id: CollectionId::parse(ROUTED)?,
        key: RouteKey::Tenant { separator: ':' },
        max_faces: args.faces.div_ceil(args.parts) as u64,
        search: SearchScope::Route,
    }])
    .map_err(anyhow::Error::msg)?;
    let route = routes.iter().next().context("the route just made")?.clone();
    let started = Instant::now();
    let collections = root.join("collections");
    let single = CollectionId::parse(SINGLE)?;
    write_collection(&collections, &single, args, &gen, 0..args.faces)?;
    let per = args.faces.div_ceil(args.parts);
    let mut members = Vec::with_capacity(args.parts);
    for p in 0..args.parts {
        let id = route
            .member_id(KEY, u32::try_from(p + 1)?)
            .context("a member id")?;
        write_collection(
            &collections,
            &id,
            args,
            &gen,
            p * per..((p + 1) * per).min(args.faces),
        )?;
        members.push(id);
    }
    let written = started.elapsed();
    let local = Arc::new(LocalEngine::open(
        root,
        Arc::new(GeneratedFaces { dim: args.dim }),
    )?);
    let routed = RoutedEngine::new(Arc::clone(&local) as Arc<dyn FaceEngine>, routes);
    let fan = CollectionId::parse(ROUTED)?;
    // Opening replays each log; the first search of each collection opens it, untimed.
    let started = Instant::now();
    for c in std::iter::once(&single).chain(&members) {
        local.describe_collection(c)?;
    }
    let opened = started.elapsed();
    writeln!(
        out,
        "written in {:.1} s (an fsync per 1000 faces), opened (logs replayed) in {:.1} s",
        written.as_secs_f64(),
        opened.as_secs_f64()
    )?;

    let mut state = args.seed | 1;
    let picks: Vec<usize> = (0..args.queries)
        .map(|_| (xorshift(&mut state) % args.faces as u64) as usize)
        .collect();
    let query = |i: usize| -> Result<(FaceId, CollectionId)> {
        let face = FaceId::parse(&uuid::Uuid::from_bytes(bench_face_id(i)).to_string())?;
        Ok((face, members[i / per].clone()))
    };
    let (mut one, mut fanned, mut by_id) =
        (Timing::default(), Timing::default(), Timing::default());
    let mut differ = 0;
    let mut hits = 0;
    // The kinds take turns query by query, so that load from other processes falls on all alike.
    for &i in &picks {
        let (face, home) = query(i)?;
        let held = HeldFace {
            face_id: &face,
            collection_id: &home,
            image: None,
        };
        let a = one.time(|| local.search_faces(&single, &face, threshold, args.max_faces))?;
        let b = fanned.time(|| routed.search_held_face(&fan, &held, threshold, args.max_faces))?;
        let c = by_id.time(|| routed.search_faces(&fan, &face, threshold, args.max_faces))?;
        hits += a.len();
        if same(&a, &b) && same(&a, &c) {
            continue;
        }
        differ += 1;
    }
    writeln!(
        out,
        "{:<44}  {:>10}  {:>10}  {:>12}",
        "search (by face id)", "median", "p90", "CPU/search"
    )?;
    for (name, t) in [
        ("one collection of all the faces", one),
        ("fanned out, the face's collection known", fanned),
        ("fanned out, its collection found first", by_id),
    ] {
        let cpu = t.cpu_per_search();
        let sorted = t.sorted();
        writeln!(
            out,
            "{:<44}  {:>7.2} ms  {:>7.2} ms  {:>9.2} ms",
            name,
            ms(median(&sorted)),
            ms(percentile(&sorted, 0.9)),
            ms(cpu)
        )?;
    }
    writeln!(
        out,
        "{} hits over the threshold in all; answers that differ from the one collection's: {differ}; load average after: {}",
        hits,
        load_average()
    )?;
    Ok(())
}

/// Writes a collection of the generated faces `range`, a thousand to a log record.
fn write_collection(
    root: &Path,
    id: &CollectionId,
    args: &BenchRoutingArgs,
    gen: &Generator,
    range: std::ops::Range<usize>,
) -> Result<()> {
    let manifest = Manifest {
        format: 1,
        collection_id: id.as_str().to_owned(),
        engine: "local".to_owned(),
        created_at_ms: 0,
        face_model_version: MODEL.to_owned(),
        embedding_dim: u32::try_from(args.dim)?,
    };
    let coll = Collection::create(root, id, manifest, 1)?;
    let mut row = vec![0.0; args.dim];
    let mut batch = Vec::with_capacity(1000);
    let end = range.end;
    for i in range {
        gen.base_row(i, &mut row);
        batch.push(bench_image(i, &row, false));
        if batch.len() == 1000 || i + 1 == end {
            coll.append_images_bulk(&batch)?;
            batch.clear();
        }
    }
    Ok(())
}

/// The same faces with the same similarities, in the same order.
fn same(a: &[FaceMatch], b: &[FaceMatch]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.face_id == y.face_id && x.similarity == y.similarity)
}

/// Wall-clock times of one kind of search, and the process's CPU time spent in them.
#[derive(Debug, Default)]
struct Timing {
    times: Vec<Duration>,
    cpu: Duration,
}

impl Timing {
    fn time<T>(&mut self, search: impl FnOnce() -> Result<T, EngineError>) -> Result<T> {
        let cpu = cpu_time()?;
        let t = Instant::now();
        let r = search()?;
        self.times.push(t.elapsed());
        self.cpu += cpu_time()?.saturating_sub(cpu);
        Ok(r)
    }

    fn cpu_per_search(&self) -> Duration {
        self.cpu / u32::try_from(self.times.len().max(1)).unwrap_or(u32::MAX)
    }

    fn sorted(mut self) -> Vec<Duration> {
        self.times.sort();
        self.times
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The machine's load averages over 1, 5 and 15 minutes, as /proc/loadavg gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}
