//! Adjudication scoped to the change: on a generated graph stored in SQLite (people with a
//! power-law number of photos, hub faces, look-alikes, searches and analysts' decisions), the
//! milliseconds one new image's store and adjudication take (no face engine: its faces and hits are
//! generated), and one analyst decision's, at several graph sizes, to show they do not grow with it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use super::gen::{self, Hit, Rng};
use super::ingest::TempDir;
use super::{thousands, Figure, Goal, Section, Unit};
use crate::adjudication::{Adjudicator, RuleSet};
use crate::model::{
    DecisionKind, ExternalImageId, Face, FaceId, Image, ImageId, Observation, SearchRecord,
    Similarity, SubjectId, Timestamp,
};
use crate::service::Facegraph;
use crate::store::sqlite::SqliteStore;
use crate::store::{GraphStore, IngestBatch};

/// The goals of the issue at a million faces: one image's store and adjudication, p50 and p99.
const GOAL_IMAGE_P50: f64 = 0.020;
const GOAL_IMAGE_P99: f64 = 0.100;
/// One decision.
const GOAL_DECIDE: f64 = 0.050;

/// Faces per ingest batch while the graph is set up.
const SETUP_BATCH: usize = 50_000;

/// One size's timings.
struct Timed {
    faces: usize,
    edges: usize,
    decisions: usize,
    setup_s: f64,
    images: Vec<f64>,
    decides: Vec<f64>,
    /// Edges the image adjudications judged, on average.
    judged_per_image: f64,
    judged_per_decide: f64,
}

/// Sets up each size's graph (untimed, then judged whole), then times `images` new images and
/// `decides` decisions on it.
pub(super) fn run(
    seed: u64,
    parent: &Path,
    sizes: &[usize],
    images: usize,
    decides: usize,
) -> Result<Section> {
    let mut timed = Vec::new();
    for &faces in sizes {
        tracing::info!(faces, "setting up the scoped adjudication benchmark");
        timed.push(one_size(seed, parent, faces, images, decides)?);
    }
    Ok(Section {
        figures: figures(&timed),
        notes: notes(&timed),
    })
}

fn one_size(
    seed: u64,
    parent: &Path,
    faces: usize,
    images: usize,
    decides: usize,
) -> Result<Timed> {
    let dir = TempDir::new(parent)?;
    let store: Arc<dyn GraphStore> =
        Arc::new(SqliteStore::open(&dir.path().join("graph.sqlite")).context("opening the store")?);
    let app = Facegraph::new(store.clone(), Adjudicator::new(RuleSet::default()));
    let started = Instant::now();
    let mut rng = Rng::new(seed, 4);
    let pop = gen::population(&mut rng, faces).context("generating faces")?;
    let hits = gen::hits(&mut rng, &pop, faces * 2).context("generating search hits")?;
    let searches = gen::searches(&mut rng, &pop).context("generating searches")?;
    let decisions = gen::decisions(&mut rng, &pop, &hits);
    let observations = gen::observations(&pop, &hits).context("generating observations")?;
    store_graph(store.as_ref(), &pop, observations, searches, &decisions)?;
    app.readjudicate().context("judging the whole graph")?;
    let setup_s = started.elapsed().as_secs_f64();
    tracing::info!(faces, setup_s, "set up; timing images and decisions");

    let hubs = hub_faces(&hits, faces);
    let mut image_times = Vec::with_capacity(images);
    let mut judged_images = 0;
    let mut next_seq = faces as i64;
    for i in 0..images {
        let upload = new_image(&mut rng, &pop, &hubs, i)?;
        next_seq += 1;
        let started = Instant::now();
        let r = store_image(&app, upload, next_seq)?;
        image_times.push(started.elapsed().as_secs_f64());
        judged_images += r;
    }
    let mut decide_times = Vec::with_capacity(decides);
    let mut judged_decides = 0;
    let review: Vec<&Hit> = hits
        .iter()
        .filter(|h| (90.0..98.5).contains(&h.similarity()))
        .collect();
    for _ in 0..decides.min(review.len()) {
        let h = review[rng.below(review.len())];
        let (a, b) = (
            &pop.faces[h.x as usize].face_id,
            &pop.faces[h.y as usize].face_id,
        );
        let kind = if pop.person[h.x as usize] == pop.person[h.y as usize] {
            DecisionKind::Same
        } else {
            DecisionKind::Different
        };
        let started = Instant::now();
        let r = app
            .decide(a, b, kind, "bench", None)
            .context("recording a decision")?;
        decide_times.push(started.elapsed().as_secs_f64());
        judged_decides += r.judged;
    }
    Ok(Timed {
        faces,
        edges: hits.len(),
        decisions: decisions.len(),
        setup_s,
        judged_per_image: judged_images as f64 / image_times.len().max(1) as f64,
        judged_per_decide: judged_decides as f64 / decide_times.len().max(1) as f64,
        images: image_times,
        decides: decide_times,
    })
}

/// Stores the generated graph in batches: faces with their images and subjects, then the hits,
/// then the searches, then the decisions.
fn store_graph(
    store: &dyn GraphStore,
    pop: &gen::Population,
    observations: Vec<Observation>,
    searches: Vec<SearchRecord>,
    decisions: &[crate::model::Decision],
) -> Result<()> {
    let mut image_at = 0;
    for (i, chunk) in pop.faces.chunks(SETUP_BATCH).enumerate() {
        // The images of this chunk's faces: each face's image, in order, once.
        let last_image = chunk
            .last()
            .and_then(|f| pop.images.iter().position(|img| img.image_id == f.image_id))
            .map_or(image_at, |p| p + 1);
        let images: Vec<Image> = pop.images[image_at..last_image.max(image_at)].to_vec();
        image_at = last_image.max(image_at);
        let externals: std::collections::HashSet<ExternalImageId> = images
            .iter()
            .filter_map(|img| img.external_image_id.clone())
            .collect();
        store
            .ingest(&IngestBatch {
                collections: if i == 0 {
                    vec![pop.collection.clone()]
                } else {
                    Vec::new()
                },
                images,
                faces: chunk.to_vec(),
                subjects: pop
                    .subject_links
                    .iter()
                    .filter(|(e, _)| externals.contains(e))
                    .cloned()
                    .collect(),
                ..IngestBatch::default()
            })
            .context("storing faces")?;
    }
    for chunk in observations.chunks(SETUP_BATCH * 2) {
        store
            .ingest(&IngestBatch {
                observations: chunk.to_vec(),
                ..IngestBatch::default()
            })
            .context("storing hits")?;
    }
    for chunk in searches.chunks(SETUP_BATCH * 2) {
        store
            .ingest(&IngestBatch {
                searches: chunk.to_vec(),
                ..IngestBatch::default()
            })
            .context("storing searches")?;
    }
    for d in decisions {
        store.record_decision(d).context("storing a decision")?;
    }
    Ok(())
}

/// The faces with the most hits: the generator's hub faces, which a new image hits now and then.
fn hub_faces(hits: &[Hit], faces: usize) -> Vec<u32> {
    let mut degree = vec![0u32; faces];
    for h in hits {
        degree[h.x as usize] += 1;
        degree[h.y as usize] += 1;
    }
    let mut by_degree: Vec<u32> = (0..faces as u32).collect();
    by_degree.sort_by_key(|&f| std::cmp::Reverse(degree[f as usize]));
    by_degree.truncate((faces / 2_000).max(1));
    by_degree
}

/// A new upload: another photo of a person of the population (their attributes, a new face and
/// image id), with the hits a search would return: most of the person's photos in the confirm
/// band, a few look-alikes, and one time in ten a hub face.
struct Upload {
    image: Image,
    face: Face,
    subject: Option<(ExternalImageId, SubjectId)>,
    hits: Vec<(FaceId, f64)>,
}

fn new_image(rng: &mut Rng, pop: &gen::Population, hubs: &[u32], i: usize) -> Result<Upload> {
    let model = rng.below(pop.faces.len());
    let person = pop.person[model] as usize;
    let ext = ExternalImageId::parse(&format!("new-{i:08}.jpg"))?;
    let image_id = ImageId::parse(&rng.uuid())?;
    let image = Image {
        image_id: image_id.clone(),
        external_image_id: Some(ext.clone()),
        content_sha256: None,
        collection_id: Some(pop.collection.collection_id.clone()),
        pending: false,
        source: Some("bench".to_owned()),
        width: Some(1080),
        height: Some(1440),
        face_count: 1,
        received_at: Timestamp::now(),
    };
    let mut face = pop.faces[model].clone();
    face.face_id = FaceId::parse(&rng.uuid())?;
    face.image_id = image_id;
    face.external_image_id = Some(ext.clone());
    face.raw = None;
    // Mostly a returning customer; one time in fifty another account, the fraud the graph finds.
    let subject = pop.subjects[model].clone().map(|s| {
        if rng.chance(0.02) {
            SubjectId::parse(&format!("N{i:08}")).map_err(anyhow::Error::from)
        } else {
            Ok(s)
        }
    });
    let subject = subject.transpose()?.map(|s| (ext, s));
    let mut hits: Vec<(FaceId, f64)> = Vec::new();
    for &f in &pop.persons[person] {
        if rng.chance(0.95) {
            hits.push((
                pop.faces[f as usize].face_id.clone(),
                rng.range(98.5, 100.0),
            ));
        }
    }
    for _ in 0..rng.below(4) {
        let f = rng.below(pop.faces.len());
        hits.push((pop.faces[f].face_id.clone(), rng.range(80.0, 95.0)));
    }
    if rng.chance(0.1) {
        let hub = hubs[rng.below(hubs.len())];
        hits.push((
            pop.faces[hub as usize].face_id.clone(),
            rng.range(90.0, 96.0),
        ));
    }
    hits.sort_by(|x, y| x.0.cmp(&y.0));
    hits.dedup_by(|x, y| x.0 == y.0);
    Ok(Upload {
        image,
        face,
        subject,
        hits,
    })
}

/// Stores an upload as `Facegraph::ingest_image` does once the engine has answered (the upload
/// recorded pending, its face stored, its hits and search stored with the upload completed), then
/// adjudicates the change. Returns how many edges the adjudication judged.
fn store_image(app: &Facegraph, upload: Upload, seq: i64) -> Result<usize> {
    let store = app.store();
    let pending = Image {
        pending: true,
        ..upload.image.clone()
    };
    store
        .ingest(&IngestBatch {
            images: vec![pending],
            subjects: upload.subject.into_iter().collect(),
            ..IngestBatch::default()
        })
        .context("recording the upload")?;
    let face_id = upload.face.face_id.clone();
    store
        .ingest(&IngestBatch {
            images: vec![upload.image.clone()],
            faces: vec![upload.face],
            ..IngestBatch::default()
        })
        .context("storing the face")?;
    let at = Timestamp::now();
    let found: Vec<FaceId> = upload.hits.iter().map(|(f, _)| f.clone()).collect();
    // The stored faces among the hits, as the upload checks before storing them.
    store.faces(&found).context("reading the hits' faces")?;
    let observations = upload
        .hits
        .into_iter()
        .map(|(found, s)| {
            Ok(Observation {
                searched: face_id.clone(),
                found,
                similarity: Similarity::new((s * 1e6).round() / 1e6)?,
                engine: "bench".to_owned(),
                searched_at: at,
            })
        })
        .collect::<Result<Vec<_>, crate::model::ParseError>>()?;
    store
        .ingest(&IngestBatch {
            observations,
            searches: vec![SearchRecord {
                face_id,
                collection_id: upload
                    .image
                    .collection_id
                    .clone()
                    .context("the upload names its collection")?,
                bound: Some(Similarity::new(gen::SEARCH_THRESHOLD)?),
                collection_seq: seq,
                searched_at: at,
            }],
            completed: vec![upload.image.image_id],
            ..IngestBatch::default()
        })
        .context("storing the hits")?;
    let r = app
        .adjudicate_changes()
        .context("adjudicating the change")?;
    Ok(r.judged)
}

/// The `q`-quantile of `times` (nearest rank), in seconds.
fn quantile(times: &[f64], q: f64) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn figures(timed: &[Timed]) -> Vec<Figure> {
    let largest = timed.iter().map(|t| t.faces).max().unwrap_or(0);
    let mut out = Vec::new();
    for t in timed {
        // The goals are stated for a million faces.
        let at_goal_size = t.faces == largest && t.faces >= 1_000_000;
        let size = super::clustering::short(t.faces as f64);
        let context = vec![
            ("faces", json!(t.faces)),
            ("edges", json!(t.edges)),
            ("decisions_stored", json!(t.decisions)),
            ("setup_seconds", json!(t.setup_s)),
            ("images", json!(t.images.len())),
            ("judged_per_image", json!(t.judged_per_image)),
            ("decides", json!(t.decides.len())),
            ("judged_per_decide", json!(t.judged_per_decide)),
        ];
        out.push(Figure {
            key: "scoped.image.p50",
            label: format!("one image, store + adjudication, {size} faces, p50"),
            value: quantile(&t.images, 0.5),
            unit: Unit::Latency,
            goal: at_goal_size.then_some(Goal::Below(GOAL_IMAGE_P50)),
            context: context.clone(),
        });
        out.push(Figure {
            key: "scoped.image.p99",
            label: format!("  p99, {size} faces"),
            value: quantile(&t.images, 0.99),
            unit: Unit::Latency,
            goal: at_goal_size.then_some(Goal::Below(GOAL_IMAGE_P99)),
            context: context.clone(),
        });
        out.push(Figure {
            key: "scoped.decide.p50",
            label: format!("one decide, {size} faces, p50"),
            value: quantile(&t.decides, 0.5),
            unit: Unit::Latency,
            goal: at_goal_size.then_some(Goal::Below(GOAL_DECIDE)),
            context: context.clone(),
        });
        out.push(Figure {
            key: "scoped.decide.p99",
            label: format!("  p99, {size} faces"),
            value: quantile(&t.decides, 0.99),
            unit: Unit::Latency,
            goal: None,
            context,
        });
    }
    out
}

fn notes(timed: &[Timed]) -> Vec<String> {
    let mut out = Vec::new();
    for t in timed {
        out.push(format!(
            "scoped adjudication: {} faces, {} edges, {} decisions in SQLite (set up and judged whole in {:.0} s); \
             {} images judged {:.0} edges each on average, {} decisions {:.0}",
            thousands(t.faces as f64),
            thousands(t.edges as f64),
            thousands(t.decisions as f64),
            t.setup_s,
            t.images.len(),
            t.judged_per_image,
            t.decides.len(),
            t.judged_per_decide,
        ));
    }
    if let (Some(first), Some(last)) = (timed.first(), timed.last()) {
        if timed.len() > 1 {
            let ratio = |f: &dyn Fn(&Timed) -> f64| f(last) / f(first).max(f64::MIN_POSITIVE);
            out.push(format!(
                "  from {} to {} faces ({:.0}x): image p50 x{:.2}, p99 x{:.2}; decide p50 x{:.2}, p99 x{:.2}",
                thousands(first.faces as f64),
                thousands(last.faces as f64),
                last.faces as f64 / first.faces.max(1) as f64,
                ratio(&|t| quantile(&t.images, 0.5)),
                ratio(&|t| quantile(&t.images, 0.99)),
                ratio(&|t| quantile(&t.decides, 0.5)),
                ratio(&|t| quantile(&t.decides, 0.99)),
            ));
        }
    }
    out
}
