//! `facegraph bench`: benchmarks on generated data, printed as figures against the goals:
//! rule evaluation (edges per second), SQLite ingest (edges per second, batched and one transaction
//! each), clustering (seconds for 1M faces and 2M confirmed edges) and adjudication scoped to the
//! change (one image's and one decision's milliseconds, at growing graph sizes).

mod clustering;
pub mod engine;
mod gen;
mod ingest;
pub mod neo4j;
pub mod rekognition;
pub mod routing;
mod rules;
mod scoped;
pub mod search;
pub mod stream;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{ensure, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{Map, Value};

/// Options of `facegraph bench`. The default sizes are the sizes the goals are stated for.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run only these benchmarks (repeat the option or give a comma-separated list); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Benchmark>,
    /// Edges to adjudicate in the rule benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub rule_edges: usize,
    /// Faces those edges join.
    #[arg(long, default_value_t = 200_000)]
    pub rule_faces: usize,
    /// Edges to ingest in one batch.
    #[arg(long, default_value_t = 100_000)]
    pub ingest_edges: usize,
    /// Edges to ingest with one transaction per observation (slow; the rate is what matters).
    #[arg(long, default_value_t = 5_000)]
    pub single_edges: usize,
    /// Faces in the clustering benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub cluster_faces: usize,
    /// Confirmed edges in the clustering benchmark.
    #[arg(long, default_value_t = 2_000_000)]
    pub cluster_edges: usize,
    /// Graph sizes (faces; edges are twice as many) of the scoped adjudication benchmark, smallest
    /// first: the figures show how one image's and one decision's time grow with the graph.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000, 1_000_000])]
    pub scoped_faces: Vec<usize>,
    /// New images to store and adjudicate at each size.
    #[arg(long, default_value_t = 200)]
    pub scoped_images: usize,
    /// Decisions to record at each size.
    #[arg(long, default_value_t = 100)]
    pub scoped_decides: usize,
    /// Seed of the data generator: one seed, one data set.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the ingest benchmark creates (and then removes) its stores; the system's temporary
    /// directory by default. Put it on the disk the real store lives on.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// One JSON object per figure instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One of the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Benchmark {
    /// Rule evaluation.
    Rules,
    /// SQLite ingest.
    Ingest,
    /// Clustering.
    Cluster,
    /// Adjudication scoped to the change (SQLite).
    Scoped,
}

/// Runs the chosen benchmarks and prints their figures: a header and a table, or JSON lines.
pub fn run(args: &BenchArgs, out: &mut impl Write) -> Result<()> {
    ensure!(
        args.rule_edges > 0 && args.rule_faces >= 10,
        "--rule-edges must be above 0 and --rule-faces at least 10"
    );
    ensure!(
        args.ingest_edges > 0 && args.single_edges > 0,
        "--ingest-edges and --single-edges must be above 0"
    );
    ensure!(
        args.cluster_edges > 0 && args.cluster_faces >= 10,
        "--cluster-edges must be above 0 and --cluster-faces at least 10"
    );
    ensure!(
        args.scoped_faces.iter().all(|&n| n >= 100) && args.scoped_images > 0,
        "--scoped-faces must each be at least 100 and --scoped-images above 0"
    );
    let mut chosen = if args.only.is_empty() {
        vec![
            Benchmark::Rules,
            Benchmark::Ingest,
            Benchmark::Cluster,
            Benchmark::Scoped,
        ]
    } else {
        args.only.clone()
    };
    chosen.sort();
    chosen.dedup();
    let machine = Machine::detect();
    if args.json {
        if machine.debug {
            tracing::warn!(
                "a debug build: the figures are not representative; benchmark a release build"
            );
        }
    } else {
        write_header(out, args, &machine)?;
        out.flush()?;
    }
    let temp_dir = args.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut sections = Vec::new();
    for b in chosen {
        tracing::info!(benchmark = ?b, "running");
        let section = match b {
            Benchmark::Rules => rules::run(args.seed, args.rule_faces, args.rule_edges)?,
            Benchmark::Ingest => {
                ingest::run(args.seed, &temp_dir, args.ingest_edges, args.single_edges)?
            }
            Benchmark::Cluster => {
                clustering::run(args.seed, args.cluster_faces, args.cluster_edges)?
            }
            Benchmark::Scoped => scoped::run(
                args.seed,
                &temp_dir,
                &args.scoped_faces,
                args.scoped_images,
                args.scoped_decides,
            )?,
        };
        if args.json {
            write_json(out, &section, args.seed, &machine)?;
        }
        sections.push(section);
    }
    if !args.json {
        write_table(out, &sections)?;
    }
    Ok(())
}

/// What one benchmark measured: its figures and sentences that describe the data it ran on.
#[derive(Debug)]
struct Section {
    figures: Vec<Figure>,
    notes: Vec<String>,
}

/// One measured figure.
#[derive(Debug)]
struct Figure {
    /// A stable name for scripts, such as `rules.edges_per_second`.
    key: &'static str,
    /// The name people read; a leading indent marks a detail of the figure above.
    label: String,
    value: f64,
    unit: Unit,
    goal: Option<Goal>,
    /// What was measured on: sizes, counts, the verdict distribution.
    context: Vec<(&'static str, Value)>,
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    PerSecond(&'static str),
    Seconds,
    /// A latency, shown in milliseconds; the value is in seconds.
    Latency,
    Bytes,
    Times,
    Count,
    Faces,
}

#[derive(Debug, Clone, Copy)]
enum Goal {
    AtLeast(f64),
    Below(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(g) => value >= g,
            Goal::Below(g) => value < g,
        }
    }
}

impl Unit {
    fn name(self) -> String {
        match self {
            Unit::PerSecond(what) => format!("{what}/s"),
            Unit::Seconds | Unit::Latency => "s".to_owned(),
            Unit::Bytes => "bytes".to_owned(),
            Unit::Times => "times".to_owned(),
            Unit::Count => "count".to_owned(),
            Unit::Faces => "faces".to_owned(),
        }
    }

    fn show(self, v: f64) -> String {
        match self {
            Unit::PerSecond(what) => format!("{} {what}/s", thousands(v)),
            Unit::Seconds => format!("{v:.3} s"),
            Unit::Latency => format!("{:.2} ms", v * 1e3),
            Unit::Bytes => format!("{:.1} MB", v / 1e6),
            Unit::Times => format!("{v:.1}x"),
            Unit::Count => thousands(v),
            Unit::Faces => format!("{} faces", thousands(v)),
        }
    }
}

/// The machine and build the figures were measured on.
#[derive(Debug, Serialize)]
struct Machine {
    os: &'static str,
    arch: &'static str,
    kernel: String,
    cpu: String,
    cpus: usize,
    /// The one-minute load average when the run started: other processes competing for the CPUs
    /// make every figure worse.
    load: Option<f64>,
    build: &'static str,
    #[serde(skip)]
    debug: bool,
}

impl Machine {
    fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let kernel = read("/proc/sys/kernel/osrelease")
            .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
        let cpu = read("/proc/cpuinfo")
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let load = read("/proc/loadavg")
            .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()));
        let debug = cfg!(debug_assertions);
        Self {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            kernel,
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load,
            build: if debug { "debug" } else { "release" },
            debug,
        }
    }
}

/// A figure as one JSON line.
#[derive(Debug, Serialize)]
struct FigureJson<'a> {
    figure: &'static str,
    label: &'a str,
    value: f64,
    unit: String,
    goal: Option<GoalJson>,
    met: Option<bool>,
    context: Map<String, Value>,
    seed: u64,
    machine: &'a Machine,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum GoalJson {
    AtLeast(f64),
    Below(f64),
}

impl<'a> FigureJson<'a> {
    fn new(f: &'a Figure, seed: u64, machine: &'a Machine) -> Self {
        Self {
            figure: f.key,
            label: f.label.trim(),
            value: f.value,
            unit: f.unit.name(),
            goal: f.goal.map(|g| match g {
                Goal::AtLeast(v) => GoalJson::AtLeast(v),
                Goal::Below(v) => GoalJson::Below(v),
            }),
            met: f.goal.map(|g| g.met(f.value)),
            context: f
                .context
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            seed,
            machine,
        }
    }
}

/// The section's figures as JSON lines, flushed.
fn write_json(out: &mut impl Write, section: &Section, seed: u64, machine: &Machine) -> Result<()> {
    for f in &section.figures {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&FigureJson::new(f, seed, machine))?
        )?;
    }
    out.flush()?;
    Ok(())
}

fn write_header(out: &mut impl Write, args: &BenchArgs, m: &Machine) -> Result<()> {
    writeln!(
        out,
        "facegraph bench: {} build, seed {}",
        m.build, args.seed
    )?;
    writeln!(
        out,
        "machine: {} {} (kernel {}), {} CPUs ({}), load average {}; every benchmark runs on one thread",
        m.os,
        m.arch,
        m.kernel,
        m.cpus,
        m.cpu,
        m.load.map_or_else(|| "unknown".to_owned(), |l| format!("{l:.2}"))
    )?;
    if m.load.is_some_and(|l| l >= 0.5) {
        writeln!(out, "note: other processes are using the CPUs; the figures will be lower and noisier than on an idle machine.")?;
    }
    if m.debug {
        writeln!(
            out,
            "WARNING: this is a debug build; its figures are far below what a release build does. Run \
             `cargo build --release` and `target/release/facegraph bench`."
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn write_table(out: &mut impl Write, sections: &[Section]) -> Result<()> {
    let rows: Vec<Vec<String>> = sections
        .iter()
        .flat_map(|s| &s.figures)
        .map(|f| {
            vec![
                f.label.clone(),
                f.unit.show(f.value),
                f.goal.map_or_else(String::new, |g| match g {
                    Goal::AtLeast(v) => format!(">= {}", f.unit.show(v)),
                    Goal::Below(v) => format!("< {}", f.unit.show(v)),
                }),
                f.goal.map_or_else(String::new, |g| {
                    if g.met(f.value) { "yes" } else { "NO" }.to_owned()
                }),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        crate::cli::output::table(&["figure", "value", "goal", "met?"], &rows)
    )?;
    writeln!(out)?;
    for s in sections {
        for n in &s.notes {
            writeln!(out, "{n}")?;
        }
    }
    Ok(())
}

/// A whole number with thousands separators: `1234567.8` as `1,234,568`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut s = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            s.push(',');
        }
        s.push(c);
    }
    if v < 0.0 {
        s.insert(0, '-');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(only: Vec<Benchmark>, json: bool, temp_dir: PathBuf) -> BenchArgs {
        BenchArgs {
            only,
            rule_edges: 1_000,
            rule_faces: 400,
            ingest_edges: 1_000,
            single_edges: 100,
            cluster_faces: 1_000,
            cluster_edges: 2_000,
            scoped_faces: vec![500, 1_000],
            scoped_images: 5,
            scoped_decides: 3,
            seed: 7,
            temp_dir: Some(temp_dir),
            json,
        }
    }

    fn figures(args: &BenchArgs) -> Vec<Value> {
        let mut out = Vec::new();
        run(args, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn every_benchmark_measures_something_at_a_tiny_size() {
        let dir = tempfile::tempdir().unwrap();
        let figs = figures(&tiny(vec![], true, dir.path().to_owned()));
        let keys: Vec<&str> = figs.iter().map(|f| f["figure"].as_str().unwrap()).collect();
        for key in [
            "rules.edges_per_second",
            "ingest.batched.edges_per_second",
            "ingest.single.edges_per_second",
            "ingest.batched_over_single",
            "ingest.file_bytes",
            "cluster.total_seconds",
            "cluster.clusters",
            "scoped.image.p50",
            "scoped.image.p99",
            "scoped.decide.p50",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        for f in &figs {
            assert!(f["value"].as_f64().unwrap() > 0.0, "{f}");
        }
        let rules = &figs[0];
        assert_eq!(rules["context"]["edges"], 1_000);
        assert_eq!(rules["context"]["reasons"]["similarity_band"], 1_000);
        // The generated data makes the rules fire, not just the similarity bands.
        let reasons = rules["context"]["reasons"].as_object().unwrap();
        let fired = reasons
            .iter()
            .filter(|(k, v)| *k != "similarity_band" && v.as_u64().unwrap() > 0)
            .count();
        assert!(fired >= 5, "only {fired} rules fired: {reasons:?}");
        let verdicts = rules["context"]["verdicts"].as_object().unwrap();
        assert!(
            verdicts.values().all(|v| v.as_u64().unwrap() > 0),
            "{verdicts:?}"
        );
        // The ingest benchmark removes its stores.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_table_shows_each_figure_against_its_goal() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        run(
            &tiny(
                vec![Benchmark::Cluster, Benchmark::Rules],
                false,
                dir.path().to_owned(),
            ),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("figure") && text.contains("met?"), "{text}");
        assert!(
            text.contains("rule evaluation") && text.contains(">= 500,000 edges/s"),
            "{text}"
        );
        assert!(
            text.contains("clustering") && text.contains("< 2.000 s"),
            "{text}"
        );
        assert!(!text.contains("SQLite ingest"), "{text}");
        assert!(text.contains("reasons fired:"), "{text}");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.0), "0");
    }
}
