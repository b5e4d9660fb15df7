//! `facegraph bench-rekognition`: what Rekognition's protocol costs per call. A collection of
//! generated faces (1,000 by default) is served by the Rekognition-compatible endpoint in this
//! process, and IndexFaces and SearchFaces are timed through the Rekognition engine
//! (aws-sdk-rekognition: SigV4, HTTP, JSON, base64) and on the local engine called directly, in
//! alternating turns so that load from other processes falls on both alike.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use secrecy::SecretString;

use super::search::{bench_face_id, bench_image, Generator};
use crate::api::rekognition::{self, AccessKeys, EndpointConfig};
use crate::engine::local::collections::{Collection, Manifest};
use crate::engine::local::models::samples_dir;
use crate::engine::local::FaceAnalyzer;
use crate::engine::local::{ImageLimits, LocalAnalyzer, LocalEngine};
use crate::engine::rekognition::{RekognitionConfig, RekognitionEngine};
use crate::engine::{FaceEngine, ImageSource, IndexFacesRequest, QualityFilter};
use crate::model::{CollectionId, ExternalImageId, FaceId, Similarity};
use crate::settings::AccessKeySetting;

/// Options of `facegraph bench-rekognition`.
#[derive(Debug, Args)]
pub struct BenchRekognitionArgs {
    /// Generated faces in the collection before the calls are timed.
    #[arg(long, default_value_t = 1000)]
    pub faces: usize,
    /// SearchFaces calls per engine.
    #[arg(long, default_value_t = 400)]
    pub searches: usize,
    /// Times every photo is indexed per engine (under a new external image id each time).
    #[arg(long, default_value_t = 8)]
    pub index_rounds: usize,
    /// FaceMatchThreshold of the searches.
    #[arg(long, default_value_t = 80.0)]
    pub threshold: f64,
    /// MaxFaces of the searches (what `ingest` asks for).
    #[arg(long, default_value_t = 100)]
    pub max_faces: u32,
    /// The photos to index (JPEG or PNG); default: the sample photos of the model cache.
    #[arg(long, value_name = "DIR")]
    pub photos: Option<PathBuf>,
}

/// Runs the benchmark and prints its figures.
pub fn run(
    models_dir: &std::path::Path,
    args: &BenchRekognitionArgs,
    out: &mut impl Write,
) -> Result<()> {
    if args.faces == 0 || args.searches == 0 || args.index_rounds == 0 {
        bail!("--faces, --searches and --index-rounds must be at least 1");
    }
    let threshold = Similarity::new(args.threshold).context("--threshold")?;
    let photos = read_photos(
        &args
            .photos
            .clone()
            .unwrap_or_else(|| samples_dir(models_dir)),
    )?;
    let data = tempfile_dir()?;
    let result = measure(models_dir, args, threshold, &photos, &data, out);
    let cleanup = std::fs::remove_dir_all(&data);
    result?;
    cleanup.with_context(|| format!("remove {}", data.display()))
}

fn measure(
    models_dir: &std::path::Path,
    args: &BenchRekognitionArgs,
    threshold: Similarity,
    photos: &[(String, Vec<u8>)],
    data: &std::path::Path,
    out: &mut impl Write,
) -> Result<()> {
    let analyzer = Arc::new(LocalAnalyzer::load(models_dir, ImageLimits::default())?);
    let id = CollectionId::parse("bench-rekognition")?;
    fill(data, &id, analyzer.as_ref(), args.faces)?;
    let local: Arc<dyn FaceEngine> = Arc::new(LocalEngine::open(data, analyzer)?);

    // The endpoint, on a runtime of its own, with a key made for this run.
    let (key_id, secret) = ("AKIDBENCHREKOGNITION", uuid::Uuid::new_v4().to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the endpoint's runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("listen on 127.0.0.1")?;
    let url = format!("http://{}", listener.local_addr()?);
    let keys = AccessKeys::new(&[AccessKeySetting {
        access_key_id: key_id.to_owned(),
        secret_access_key: SecretString::from(secret.clone()),
    }]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(rekognition::run(
        listener,
        Arc::clone(&local),
        EndpointConfig::new(keys),
        async {
            let _ = stopped.await;
        },
    ));
    let sdk = RekognitionEngine::open(&RekognitionConfig {
        region: Some("us-east-1".to_owned()),
        endpoint: Some(url),
        credentials: Some((key_id.to_owned(), SecretString::from(secret))),
        ..RekognitionConfig::default()
    })?;

    writeln!(
        out,
        "# bench-rekognition: collection of {} generated faces; SearchFaces threshold {} MaxFaces {}; IndexFaces of {} photos x {} rounds; {} cores",
        args.faces,
        args.threshold,
        args.max_faces,
        photos.len(),
        args.index_rounds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )?;
    // One call of each kind first, so that connections, credentials and the collection are warm.
    let warm = FaceId::parse(&face_id(0))?;
    local.search_faces(&id, &warm, threshold, args.max_faces)?;
    sdk.search_faces(&id, &warm, threshold, args.max_faces)?;

    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for i in 0..args.searches {
        let face = FaceId::parse(&face_id((i * 7919) % args.faces))?;
        // Turns alternate, and which engine goes first alternates too.
        let order: [&dyn FaceEngine; 2] = if i % 2 == 0 {
            [local.as_ref(), &sdk]
        } else {
            [&sdk, local.as_ref()]
        };
        for engine in order {
            let t = Instant::now();
            std::hint::black_box(engine.search_faces(&id, &face, threshold, args.max_faces)?);
            let d = t.elapsed();
            if engine.name() == "local" {
                direct.push(d);
            } else {
                through.push(d);
            }
        }
    }
    report(out, "SearchFaces", direct, through)?;

    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 0..args.index_rounds {
        for (name, bytes) in photos {
            for (engine, label) in [(local.as_ref(), "direct"), (&sdk as &dyn FaceEngine, "sdk")] {
                let ext = ExternalImageId::from_file_name(&format!("{label}-{round}-{name}"))?;
                let t = Instant::now();
                let result = engine.index_faces(&IndexFacesRequest {
                    collection_id: &id,
                    image: ImageSource::Bytes(bytes),
                    external_image_id: Some(&ext),
                    subject_id: None,
                    max_faces: Some(1),
                    quality_filter: QualityFilter::Auto,
                })?;
                let d = t.elapsed();
                std::hint::black_box(result);
                if label == "direct" {
                    direct.push(d);
                } else {
                    through.push(d);
                }
            }
        }
    }
    report(out, "IndexFaces", direct, through)?;
    let _ = stop.send(());
    drop(sdk);
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// Prints the median and mean of both engines and the protocol's share.
fn report(
    out: &mut impl Write,
    what: &str,
    direct: Vec<Duration>,
    through: Vec<Duration>,
) -> Result<()> {
    let (d, t) = (stats(direct), stats(through));
    writeln!(
        out,
        "{what:<12} local engine direct: median {:.3} ms, mean {:.3} ms | through the SDK and the endpoint: median {:.3} ms, mean {:.3} ms | overhead per call: median {:+.3} ms ({:+.1}%), mean {:+.3} ms ({:+.1}%) | {} calls each",
        d.median,
        d.mean,
        t.median,
        t.mean,
        t.median - d.median,
        100.0 * (t.median - d.median) / d.median,
        t.mean - d.mean,
        100.0 * (t.mean - d.mean) / d.mean,
        d.count
    )?;
    out.flush()?;
    Ok(())
}

struct Stats {
    median: f64,
    mean: f64,
    count: usize,
}

fn stats(mut times: Vec<Duration>) -> Stats {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let count = times.len();
    Stats {
        median: times.get(count / 2).copied().map_or(0.0, ms),
        mean: times.iter().copied().map(ms).sum::<f64>() / count.max(1) as f64,
        count,
    }
}

/// Writes a collection of `n` generated one-face images under `<data>/collections/`, with the
/// analyzer's model version and embedding length, so that the local engine opens it as its own.
fn fill(
    data: &std::path::Path,
    id: &CollectionId,
    analyzer: &dyn FaceAnalyzer,
    n: usize,
) -> Result<()> {
    let root = data.join("collections");
    std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    let dim = analyzer.embedding_dim();
    let manifest = Manifest {
        format: 1,
        collection_id: id.as_str().to_owned(),
        engine: "local".to_owned(),
        created_at_ms: 0,
        face_model_version: analyzer.model_version().to_owned(),
        embedding_dim: u32::try_from(dim)?,
    };
    let coll = Collection::create(&root, id, manifest, 1)?;
    let gen = Generator { seed: 42, dim };
    let mut row = vec![0.0; dim];
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        gen.base_row(i, &mut row);
        batch.push(bench_image(i, &row, true));
        if batch.len() == 1000 || i + 1 == n {
            coll.append_images_bulk(&batch)?;
            batch.clear();
        }
    }
    Ok(())
}

/// The face id of generated face `i`.
fn face_id(i: usize) -> String {
    uuid::Uuid::from_bytes(bench_face_id(i))
        .hyphenated()
        .to_string()
}

/// The photos of a directory, by file name.
fn read_photos(dir: &std::path::Path) -> Result<Vec<(String, Vec<u8>)>> {
    let walked = crate::files::walk(&[dir.to_owned()]);
    let mut photos = Vec::new();
    for f in walked.files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        if [".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e)) {
            let bytes = std::fs::read(&f).with_context(|| format!("read {}", f.display()))?;
            photos.push((name, bytes));
        }
    }
    photos.sort();
    if photos.is_empty() {
        bail!("no JPEG or PNG photos in {}", dir.display());
    }
    Ok(photos)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "facegraph-bench-rekognition-{}",
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}
