//! `facegraph bench-search`: figures for the local engine's exact search on generated unit vectors:
//! median latency of one search in collections of 100k and 1M faces, resident memory per face, and
//! on-disk bytes per face of a persisted collection. `scripts/compare-faiss` runs it side by side
//! with faiss on the same vectors (`--dump`).
//!
//! Each collection size is measured in a child process of its own, so that its resident memory is
//! not blurred by what an earlier size left in the allocator.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::engine::local::collections::{
    Collection, ImageDoc, Manifest, MemoryCollection, NewFace, NewImage,
};
use crate::engine::local::{calibration, AnalyzedFace};
use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, FaceAttributes, Gender, GenderValue, Pose,
    Quality, Similarity,
};

/// Options of `facegraph bench-search`.
#[derive(Debug, Args)]
pub struct BenchSearchArgs {
    /// Collection sizes to build in memory, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub sizes: Vec<usize>,
    /// Searches per size; the median is reported.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Faces per search (MaxFaces).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// FaceMatchThreshold of the thresholded searches (0-100).
    #[arg(long, default_value_t = 80.0)]
    pub threshold: f64,
    /// Embedding dimension (SFace: 128).
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Threads per search; default: every core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Faces in the persisted collection whose bytes per face are measured; 0 skips it.
    #[arg(long, default_value_t = 100_000)]
    pub persisted: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the base vectors of the largest size, then the queries, as raw little-endian f32 to
    /// this file (for scripts/compare_faiss.py) and stop.
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,
    /// Measure in this process rather than one child process per size.
    #[arg(long, hide = true)]
    pub in_process: bool,
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &BenchSearchArgs, out: &mut impl Write) -> Result<()> {
    if args.dim == 0 || args.k == 0 || args.queries == 0 {
        bail!("--dim, --k and --queries must be at least 1");
    }
    let threshold = Similarity::new(args.threshold).context("--threshold")?;
    let gen = Generator {
        seed: args.seed,
        dim: args.dim,
    };
    if let Some(path) = &args.dump {
        return dump(&gen, args, threshold, path, out);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !args.in_process {
        writeln!(
            out,
            "# bench-search: {}-d unit vectors (seed {}), {} queries, top-{}, threshold {} (cosine {:.4}), {} threads",
            args.dim,
            args.seed,
            args.queries,
            args.k,
            args.threshold,
            calibration::cosine_for_similarity(threshold),
            threads
        )?;
        writeln!(
            out,
            "{:>9}  {:>14}  {:>14}  {:>14}  {:>11}  {:>10}  {:>10}",
            "faces",
            "median thresh",
            "median top-k",
            "1 thread top-k",
            "p90 thresh",
            "RSS/face",
            "build"
        )?;
        out.flush()?;
    }
    for &n in &args.sizes {
        if args.in_process {
            measure_size(&gen, args, n, threads, threshold, out)?;
        } else {
            // A fresh process per size: its resident memory is its own.
            let exe = std::env::current_exe().context("find the facegraph executable")?;
            let status = std::process::Command::new(exe)
                .arg("bench-search")
                .arg("--in-process")
                .args(["--sizes", &n.to_string()])
                .args(["--queries", &args.queries.to_string()])
                .args(["--k", &args.k.to_string()])
                .args(["--threshold", &args.threshold.to_string()])
                .args(["--dim", &args.dim.to_string()])
                .args(["--threads", &threads.to_string()])
                .args(["--seed", &args.seed.to_string()])
                .args(["--persisted", "0"])
                .status()
                .context("run bench-search for one size")?;
            if !status.success() {
                bail!("bench-search for {n} faces failed with {status}");
            }
        }
    }
    if args.persisted > 0 && !args.in_process {
        measure_disk(&gen, args, threads, out)?;
    }
    Ok(())
}

/// Builds a collection of `n` faces in memory and prints one row of figures.
fn measure_size(
    gen: &Generator,
    args: &BenchSearchArgs,
    n: usize,
    threads: usize,
    threshold: Similarity,
    out: &mut impl Write,
) -> Result<()> {
    let queries = gen.queries(args.queries);
    let rss_before = rss_bytes()?;
    let started = Instant::now();
    let mut coll = MemoryCollection::new(args.dim, threads);
    let mut row = vec![0.0; args.dim];
    for i in 0..n {
        gen.base_row(i, &mut row);
        coll.add(&bench_image(i, &row, false))?;
    }
    let build = started.elapsed();
    let rss_after = rss_bytes()?;
    let huge = huge_page_bytes();
    let per_face = (rss_after.saturating_sub(rss_before)) as f64 / n.max(1) as f64;

    let min_cos = calibration::cosine_for_similarity(threshold);
    // The three kinds of search take turns on slices of the queries, so that load from other
    // processes on a shared machine falls on all three alike.
    let (mut thresh, mut topk, mut single) =
        (Timing::default(), Timing::default(), Timing::default());
    let slice = (args.queries.div_ceil(ROUNDS)).max(1) * args.dim;
    for qs in queries.chunks(slice) {
        coll.set_threads(threads);
        thresh.add(qs, args.dim, |q| {
            std::hint::black_box(coll.search_vector(q, args.k, min_cos));
        })?;
        topk.add(qs, args.dim, |q| {
            std::hint::black_box(coll.search_vector(q, args.k, -1.0));
        })?;
        coll.set_threads(1);
        single.add(qs, args.dim, |q| {
            std::hint::black_box(coll.search_vector(q, args.k, -1.0));
        })?;
    }
    let (thresh_cpu, topk_cpu, single_cpu) = (thresh.cpu(), topk.cpu(), single.cpu());
    let hits_found: usize = queries
        .chunks_exact(args.dim)
        .map(|q| coll.search_vector(q, args.k, min_cos).len())
        .sum();
    let (thresh, topk, single) = (thresh.sorted(), topk.sorted(), single.sorted());
    writeln!(
        out,
        "{:>9}  {:>11.3} ms  {:>11.3} ms  {:>11.3} ms  {:>8.3} ms  {:>8.0} B  {:>8.1} s   CPU per search {:.2} / {:.2} / {:.2} ms; {} faces, {} hits over the threshold (at most k per search); {} MiB in huge pages",
        n,
        ms(median(&thresh)),
        ms(median(&topk)),
        ms(median(&single)),
        ms(percentile(&thresh, 0.9)),
        per_face,
        build.as_secs_f64(),
        ms(thresh_cpu),
        ms(topk_cpu),
        ms(single_cpu),
        coll.face_count(),
        hits_found,
        huge / (1024 * 1024)
    )?;
    out.flush()?;
    Ok(())
}

/// Persists a collection through the log, then prints its bytes per face and how long reopening
/// (replaying the log) takes.
fn measure_disk(
    gen: &Generator,
    args: &BenchSearchArgs,
    threads: usize,
    out: &mut impl Write,
) -> Result<()> {
    let root =
        std::env::temp_dir().join(format!("facegraph-bench-search-{}", uuid::Uuid::new_v4()));
    let result = persist_and_reopen(gen, args, threads, &root, out);
    let cleanup = std::fs::remove_dir_all(&root);
    result?;
    cleanup.with_context(|| format!("remove {}", root.display()))
}

fn persist_and_reopen(
    gen: &Generator,
    args: &BenchSearchArgs,
    threads: usize,
    root: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let id = CollectionId::parse("bench-search")?;
    let manifest = Manifest {
        format: 1,
        collection_id: id.as_str().to_owned(),
        engine: "local".to_owned(),
        created_at_ms: 0,
        face_model_version: "bench".to_owned(),
        embedding_dim: u32::try_from(args.dim)?,
    };
    let coll = Collection::create(root, &id, manifest, threads)?;
    let started = Instant::now();
    let mut row = vec![0.0; args.dim];
    let mut batch = Vec::with_capacity(1000);
    for i in 0..args.persisted {
        gen.base_row(i, &mut row);
        batch.push(bench_image(i, &row, true));
        if batch.len() == 1000 || i + 1 == args.persisted {
            coll.append_images_bulk(&batch)?;
            batch.clear();
        }
    }
    let written = started.elapsed();
    let bytes = coll.log_bytes()?;
    drop(coll);
    let started = Instant::now();
    let reopened = Collection::open(root, &id, threads)?;
    let reopen = started.elapsed();
    writeln!(
        out,
        "persisted {} faces: {:.0} bytes/face on disk (log {:.1} MiB; written in {:.1} s with an fsync per 1000 images), reopened (log replayed) in {:.2} s, {} faces",
        args.persisted,
        bytes as f64 / args.persisted.max(1) as f64,
        bytes as f64 / (1024.0 * 1024.0),
        written.as_secs_f64(),
        reopen.as_secs_f64(),
        reopened.face_count()?
    )?;
    Ok(())
}

/// Writes the base rows of the largest size, then the queries, as raw little-endian f32.
fn dump(
    gen: &Generator,
    args: &BenchSearchArgs,
    threshold: Similarity,
    path: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let n = args.sizes.iter().copied().max().unwrap_or(0);
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut row = vec![0.0; args.dim];
    for i in 0..n {
        gen.base_row(i, &mut row);
        for x in &row {
            w.write_all(&x.to_le_bytes())?;
        }
    }
    for q in gen.queries(args.queries).chunks_exact(args.dim) {
        for x in q {
            w.write_all(&x.to_le_bytes())?;
        }
    }
    w.flush()
        .with_context(|| format!("write {}", path.display()))?;
    // The comparison must cut at the engine's own calibration of the threshold, not a copy of it.
    let cosine_path = path.with_extension("cosine");
    std::fs::write(
        &cosine_path,
        format!("{}\n", calibration::cosine_for_similarity(threshold)),
    )
    .with_context(|| format!("write {}", cosine_path.display()))?;
    writeln!(
        out,
        "wrote {n} base vectors and {} queries of {} f32 to {}, the threshold's cosine to {}",
        args.queries,
        args.dim,
        path.display(),
        cosine_path.display()
    )?;
    Ok(())
}

/// Deterministic unit vectors: row `i` comes from its own SplitMix64 stream, so any row can be
/// regenerated without the others.
#[derive(Debug)]
pub(super) struct Generator {
    pub(super) seed: u64,
    pub(super) dim: usize,
}

impl Generator {
    fn fill(&self, stream: u64, row: &mut [f32]) {
        let mut state = self.seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        for x in row.iter_mut() {
            // Uniform in [-1, 1): fine for directions once normalised.
            *x = (splitmix64(&mut state) >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        }
        normalise(row);
    }

    pub(super) fn base_row(&self, i: usize, row: &mut [f32]) {
        self.fill(i as u64, row);
    }

    /// Queries: even ones are a base row (among the first 100k) plus noise, so that they have one
    /// close match; odd ones are random, as most searches of new faces find nobody.
    fn queries(&self, count: usize) -> Vec<f32> {
        let mut all = Vec::with_capacity(count * self.dim);
        let mut noise = vec![0.0; self.dim];
        let mut row = vec![0.0; self.dim];
        for q in 0..count {
            self.fill(u64::MAX - q as u64, &mut noise);
            if q % 2 == 0 {
                self.base_row((q * 7919) % 100_000, &mut row);
                for (r, n) in row.iter_mut().zip(&noise) {
                    *r += 0.5 * n;
                }
                normalise(&mut row);
                all.extend_from_slice(&row);
            } else {
                all.extend_from_slice(&noise);
            }
        }
        all
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn normalise(v: &mut [f32]) {
    let norm = crate::engine::local::index::dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// A one-face image record with the fields a real one has: an external image id, and (when
/// `with_record`) a full IndexFaces face record, so that bytes per face on disk are realistic.
pub(super) fn bench_image(i: usize, embedding: &[f32], with_record: bool) -> NewImage {
    let mut image_id = [0u8; 32];
    image_id[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let id = bench_face_id(i);
    let ext = format!("customer-{i:08}-selfie.jpg");
    let mut doc = ImageDoc {
        width: 1280,
        height: 960,
        detected: 1,
        ..ImageDoc::default()
    };
    if with_record {
        let face = AnalyzedFace {
            bbox: BoundingBox {
                left: 0.312_345,
                top: 0.198_765,
                width: 0.287_654,
                height: 0.401_234,
            },
            confidence: Confidence::new(99.998_123).unwrap_or_else(|_| unreachable!()),
            landmarks: [
                (500.1, 380.2),
                (640.3, 381.4),
                (570.5, 450.6),
                (515.7, 520.8),
                (625.9, 522.1),
            ],
            embedding: Vec::new(),
            attributes: FaceAttributes {
                gender: Some(Gender {
                    value: GenderValue::Female,
                    confidence: Confidence::new(99.612_345).unwrap_or_else(|_| unreachable!()),
                }),
                age: AgeRange::new(24, 32).ok(),
                quality: Quality::new(78.123_45, 86.543_21).ok(),
                pose: Pose::new(-3.217_5, 5.871_2, -1.093_4).ok(),
            },
        };
        let record = crate::engine::local::face_record(
            &id,
            &hex::encode(image_id),
            Some(&ext),
            &face,
            (doc.width, doc.height),
            "yunet-sface-2023mar",
        );
        if let Ok(raw) = serde_json::value::to_raw_value(&record) {
            doc.face_records.push(raw);
        }
    }
    NewImage {
        image_id,
        external_image_id: Some(ext),
        indexed_at_ms: 1_790_000_000_000 + i as i64,
        faces: vec![NewFace {
            id,
            largest: true,
            embedding: embedding.to_vec(),
        }],
        doc,
    }
}

/// The face id of generated image `i`'s face: a version 4 UUID, as the engine assigns.
pub(super) fn bench_face_id(i: usize) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(i as u64).to_le_bytes());
    id[6] = 0x40;
    id[8] = 0x80;
    id
}

/// How many turns each kind of search takes.
const ROUNDS: usize = 4;

/// Wall-clock times of searches, and their CPU time (all threads): on a shared machine the second
/// is the figure that other processes do not blur.
#[derive(Debug, Default)]
struct Timing {
    times: Vec<Duration>,
    cpu: Duration,
}

impl Timing {
    fn add(&mut self, queries: &[f32], dim: usize, mut search: impl FnMut(&[f32])) -> Result<()> {
        // One untimed search warms caches and pages.
        if let Some(q) = queries.chunks_exact(dim).next() {
            search(q);
        }
        let cpu_before = cpu_time()?;
        for q in queries.chunks_exact(dim) {
            let t = Instant::now();
            search(q);
            self.times.push(t.elapsed());
        }
        self.cpu += cpu_time()?.saturating_sub(cpu_before);
        Ok(())
    }

    fn cpu(&self) -> Duration {
        self.cpu / u32::try_from(self.times.len().max(1)).unwrap_or(u32::MAX)
    }

    fn sorted(mut self) -> Vec<Duration> {
        self.times.sort();
        self.times
    }
}

/// CPU time of the whole process (user and system, every thread, ended ones included), from
/// /proc/self/stat in clock ticks of 10 ms (Linux reports them at 100 Hz).
pub(super) fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("odd /proc/self/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short /proc/self/stat")?
            .parse::<u64>()
            .context("odd /proc/self/stat")
    };
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the command name.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

pub(super) fn median(sorted: &[Duration]) -> Duration {
    percentile(sorted, 0.5)
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The process's resident memory, from /proc/self/status.
fn rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS has no value")?
        .parse()
        .context("VmRSS is not a number")?;
    Ok(kb * 1024)
}

/// Anonymous memory backed by transparent huge pages (0 where the kernel does not say).
fn huge_page_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}
