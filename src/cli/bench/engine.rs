//! `facegraph bench-engine`: the local engine's speed on a directory of photos (images per second
//! for detect + embed, and for the whole analysis with attributes, on all cores), and every face it
//! found as JSON for comparison with the reference implementation (`scripts/compare-opencv`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::engine::local::analyzer::LocalAnalyzer;
use crate::engine::local::image::{decode, ImageLimits};
use crate::engine::local::ImageAnalysis;
use crate::files::{read_bounded, walk};

/// Arguments of `bench-engine`.
#[derive(Debug, Args)]
pub struct BenchEngineArgs {
    /// A directory of JPEG and PNG photos (searched recursively).
    #[arg(long, value_name = "DIR")]
    pub photos: PathBuf,
    /// Write every face found (box, landmarks, embedding, attributes) as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// How many timed passes over the photos (the first also builds per-size detector plans).
    #[arg(long, default_value_t = 3)]
    pub passes: usize,
    /// Detection score threshold, 0-1.
    #[arg(long, default_value_t = 0.8)]
    pub score_threshold: f32,
}

#[derive(Serialize)]
struct ImageJson {
    file: String,
    width: u32,
    height: u32,
    error: Option<String>,
    faces: Vec<FaceJson>,
}

#[derive(Serialize)]
struct FaceJson {
    bbox: [f32; 4],
    score: f64,
    landmarks: [(f32, f32); 5],
    embedding: Vec<f32>,
    gender: Option<&'static str>,
    gender_confidence: Option<f64>,
    age_low: Option<u32>,
    age_high: Option<u32>,
    brightness: Option<f32>,
    sharpness: Option<f32>,
    yaw: Option<f32>,
    pitch: Option<f32>,
    roll: Option<f32>,
}

/// The JPEG and PNG files under a directory, sorted, by the rules of [`crate::files::walk`].
fn photo_files(dir: &Path) -> Vec<PathBuf> {
    let walked = walk(&[dir.to_owned()]);
    for skipped in &walked.skipped {
        tracing::warn!(error = %crate::errors::Chain(skipped), "skipped");
    }
    walked
        .files
        .into_iter()
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect()
}

/// Runs the benchmark and prints its figures.
pub fn run(models_dir: &Path, args: &BenchEngineArgs, out: &mut impl Write) -> Result<()> {
    let t = Instant::now();
    let analyzer = LocalAnalyzer::load(models_dir, ImageLimits::default())?
        .with_score_threshold(args.score_threshold);
    writeln!(
        out,
        "models loaded in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    )?;
    let files = photo_files(&args.photos);
    let limit = ImageLimits::default().max_bytes as u64;
    let bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|f| read_bounded(f, limit))
        .collect::<Result<_, _>>()?;
    let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    writeln!(out, "{} photos, {threads} threads", files.len())?;
    for pass in 1..=args.passes.max(1) {
        let t = Instant::now();
        let faces: usize = parallel(&slices, |b| {
            decode(b, ImageLimits::default())
                .ok()
                .and_then(|img| analyzer.detect_and_embed(&img).ok())
                .map_or(0, |f| f.len())
        })
        .iter()
        .sum();
        let de = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let results = analyzer.analyze_many(&slices);
        let full = t.elapsed().as_secs_f64();
        writeln!(
            out,
            "pass {pass}: detect+embed {:.2} images/s ({faces} faces); detect+embed+attributes {:.2} images/s",
            files.len() as f64 / de,
            files.len() as f64 / full
        )?;
        if pass == args.passes.max(1) {
            if let Some(path) = &args.json_out {
                let images: Vec<ImageJson> = files
                    .iter()
                    .zip(results)
                    .map(|(f, r)| to_json(&args.photos, f, r))
                    .collect();
                let text = serde_json::to_string(&images)?;
                std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                writeln!(out, "faces written to {}", path.display())?;
            }
        }
    }
    Ok(())
}

fn to_json(
    root: &Path,
    file: &Path,
    r: Result<ImageAnalysis, crate::engine::EngineError>,
) -> ImageJson {
    let name = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    match r {
        Err(e) => ImageJson {
            file: name,
            width: 0,
            height: 0,
            error: Some(format!("{:#}", anyhow::Error::from(e))),
            faces: vec![],
        },
        Ok(a) => {
            let (w, h) = (a.width as f32, a.height as f32);
            let faces = a
                .faces
                .into_iter()
                .map(|f| {
                    let at = f.attributes;
                    FaceJson {
                        bbox: [
                            f.bbox.left * w,
                            f.bbox.top * h,
                            f.bbox.width * w,
                            f.bbox.height * h,
                        ],
                        score: f.confidence.get() / 100.0,
                        landmarks: f.landmarks,
                        embedding: f.embedding,
                        gender: at.gender.map(|g| g.value.as_str()),
                        gender_confidence: at.gender.map(|g| g.confidence.get()),
                        age_low: at.age.map(|a| a.low()),
                        age_high: at.age.map(|a| a.high()),
                        brightness: at.quality.map(|q| q.brightness()),
                        sharpness: at.quality.map(|q| q.sharpness()),
                        yaw: at.pose.map(|p| p.yaw()),
                        pitch: at.pose.map(|p| p.pitch()),
                        roll: at.pose.map(|p| p.roll()),
                    }
                })
                .collect();
            ImageJson {
                file: name,
                width: a.width,
                height: a.height,
                error: None,
                faces,
            }
        }
    }
}

fn parallel<T: Send>(items: &[&[u8]], f: impl Fn(&[u8]) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                out.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(r);
            });
        }
    });
    out.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
