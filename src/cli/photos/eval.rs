//! `facegraph eval --labels CSV`: the local engine's accuracy on a labelled set of photos. Each photo
//! is analysed (its largest face stands for it); the report gives detection recall, pair
//! verification accuracy at the match threshold with the false accepts and rejects, ROC AUC, the
//! best threshold on this set, and gender accuracy.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::labels::{
    analyze_photos, photos_dir, read_labels, LabelledFace, LabelledPhoto, PhotoFaces,
};
use super::parse_threshold;
use crate::engine::local::calibration::similarity_from_cosine;
use crate::engine::local::eval::{best_threshold, pair_accuracy, roc_auc};
use crate::engine::local::{AnalyzedFace, ImageLimits, LocalAnalyzer};
use crate::model::Similarity;
use crate::settings::Settings;

/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// CSV with the header `file,identity[,gender,...]`; files are relative to the CSV's directory,
    /// gender is `male` or `female` (or empty).
    #[arg(long, value_name = "CSV")]
    pub labels: PathBuf,
    /// The match threshold that pair accuracy is measured at, 0-100.
    #[arg(long, default_value = "80", value_parser = parse_threshold, value_name = "0-100", allow_negative_numbers = true)]
    pub threshold: Similarity,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// List every missed detection, wrong pair and wrong gender.
    #[arg(long, short)]
    pub verbose: bool,
}

/// The figures of one evaluation.
#[derive(Debug, Serialize)]
struct Report {
    images: usize,
    identities: usize,
    labelled_faces: usize,
    detected: usize,
    detection_recall: f64,
    genuine_pairs: usize,
    impostor_pairs: usize,
    threshold: f64,
    pair_accuracy: f64,
    false_accepts: usize,
    false_rejects: usize,
    roc_auc: Option<f64>,
    best_threshold: f64,
    best_threshold_accuracy: f64,
    gender_labelled: usize,
    gender_correct: usize,
    gender_accuracy: Option<f64>,
    seconds: f64,
}

/// A labelled face that was detected, with its photo's file.
struct Detected<'a> {
    file: &'a str,
    label: &'a LabelledFace,
    face: AnalyzedFace,
}

/// The similarity of every pair of detected faces and whether they are the same person, with the
/// errors at the threshold.
struct Pairs {
    scored: Vec<(f64, bool)>,
    false_accepts: usize,
    false_rejects: usize,
}

/// How many detected faces have a gender label, and how many of those the analyzer got right.
struct GenderCount {
    labelled: usize,
    correct: usize,
}

/// Runs `eval`.
pub fn run(settings: &Settings, args: &EvalArgs, out: &mut impl Write) -> Result<i32> {
    let photos = read_labels(&args.labels)?;
    let analyzer = LocalAnalyzer::load(&settings.models_dir, ImageLimits::default())?;
    let started = Instant::now();
    let found = analyze_photos(&analyzer, photos_dir(&args.labels), &photos);
    let seconds = started.elapsed().as_secs_f64();
    let mut notes: Vec<String> = Vec::new();
    let detected = detected_faces(&photos, found, &mut notes);
    let threshold = args.threshold.get();
    let pairs = score_pairs(&detected, threshold, args.verbose, &mut notes);
    let genders = count_genders(&detected, args.verbose, &mut notes);
    let report = report(&photos, &detected, &pairs, &genders, threshold, seconds);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        for n in &notes {
            eprintln!("{n}");
        }
        return Ok(0);
    }
    write_report(out, &report, pairs.scored.len())?;
    for n in &notes {
        writeln!(out, "{n}")?;
    }
    Ok(0)
}

/// Every labelled face that was detected, with its photo; a note for each photo whose faces were
/// not all detected or that failed.
fn detected_faces<'a>(
    photos: &'a [LabelledPhoto],
    found: Vec<PhotoFaces>,
    notes: &mut Vec<String>,
) -> Vec<Detected<'a>> {
    let mut detected = Vec::new();
    for (photo, found) in photos.iter().zip(found) {
        match found {
            PhotoFaces::Assigned(faces) => {
                detected.extend(photo.faces.iter().zip(faces).map(|(label, face)| Detected {
                    file: photo.file.as_str(),
                    label,
                    face,
                }));
            }
            PhotoFaces::Missed(n) => notes.push(format!(
                "missed: {} faces detected in {}, {} labelled",
                n,
                photo.file,
                photo.faces.len()
            )),
            PhotoFaces::Failed(e) => notes.push(format!("error: {e:#}")),
        }
    }
    detected
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scores every pair of detected faces; with `verbose`, a note for each pair on the wrong side of
/// the threshold.
fn score_pairs(
    detected: &[Detected<'_>],
    threshold: f64,
    verbose: bool,
    notes: &mut Vec<String>,
) -> Pairs {
    let mut pairs = Pairs {
        scored: Vec::new(),
        false_accepts: 0,
        false_rejects: 0,
    };
    for (i, a) in detected.iter().enumerate() {
        for b in &detected[i + 1..] {
            let s = similarity_from_cosine(cosine(&a.face.embedding, &b.face.embedding)).get();
            let same = a.label.identity == b.label.identity;
            pairs.scored.push((s, same));
            if (s >= threshold) != same {
                if same {
                    pairs.false_rejects += 1;
                } else {
                    pairs.false_accepts += 1;
                }
                if verbose {
                    notes.push(format!(
                        "{} pair {} / {}: similarity {s:.2}",
                        if same {
                            "false reject:"
                        } else {
                            "false accept:"
                        },
                        a.file,
                        b.file
                    ));
                }
            }
        }
    }
    pairs
}

/// Counts the gender labels the analyzer got right; with `verbose`, a note for each it got wrong.
fn count_genders(detected: &[Detected<'_>], verbose: bool, notes: &mut Vec<String>) -> GenderCount {
    let mut count = GenderCount {
        labelled: 0,
        correct: 0,
    };
    for Detected { file, label, face } in detected {
        let Some(want) = label.gender else { continue };
        count.labelled += 1;
        let got = face.attributes.gender.map(|g| g.value);
        if got == Some(want) {
            count.correct += 1;
        } else if verbose {
            notes.push(format!(
                "wrong gender: {} in {file} is {}, classified {}",
                label.identity,
                want.as_str(),
                face.attributes
                    .gender
                    .map_or("nothing".to_owned(), |g| format!(
                        "{} ({:.1}%)",
                        g.value.as_str(),
                        g.confidence.get()
                    ))
            ));
        }
    }
    count
}

/// The figures of the evaluation.
fn report(
    photos: &[LabelledPhoto],
    detected: &[Detected<'_>],
    pairs: &Pairs,
    genders: &GenderCount,
    threshold: f64,
    seconds: f64,
) -> Report {
    let labelled_faces: usize = photos.iter().map(|l| l.faces.len()).sum();
    let mut identities: Vec<&str> = photos
        .iter()
        .flat_map(|l| l.faces.iter().map(|f| f.identity.as_str()))
        .collect();
    identities.sort_unstable();
    identities.dedup();
    let scored = &pairs.scored;
    let (best, best_acc) = best_threshold(scored);
    let genuine = scored.iter().filter(|p| p.1).count();
    Report {
        images: photos.len(),
        identities: identities.len(),
        labelled_faces,
        detected: detected.len(),
        detection_recall: detected.len() as f64 / labelled_faces as f64,
        genuine_pairs: genuine,
        impostor_pairs: scored.len() - genuine,
        threshold,
        pair_accuracy: pair_accuracy(scored, threshold),
        false_accepts: pairs.false_accepts,
        false_rejects: pairs.false_rejects,
        roc_auc: roc_auc(scored),
        best_threshold: best,
        best_threshold_accuracy: best_acc.max(0.0),
        gender_labelled: genders.labelled,
        gender_correct: genders.correct,
        gender_accuracy: (genders.labelled > 0)
            .then(|| genders.correct as f64 / genders.labelled as f64),
        seconds,
    }
}

/// Writes the figures as text, one line each.
fn write_report(out: &mut impl Write, r: &Report, pairs: usize) -> Result<()> {
    let pct = |x: f64| format!("{:.2}%", x * 100.0);
    writeln!(
        out,
        "Photos: {} with {} labelled faces of {} identities, analysed in {:.2} s",
        r.images, r.labelled_faces, r.identities, r.seconds
    )?;
    writeln!(
        out,
        "Detection recall: {}/{} labelled faces = {}",
        r.detected,
        r.labelled_faces,
        pct(r.detection_recall)
    )?;
    writeln!(
        out,
        "Pairs: {} ({} genuine, {} impostor)",
        pairs, r.genuine_pairs, r.impostor_pairs
    )?;
    writeln!(
        out,
        "Pair accuracy at {}: {} ({} false accepts, {} false rejects)",
        r.threshold,
        pct(r.pair_accuracy),
        r.false_accepts,
        r.false_rejects
    )?;
    writeln!(
        out,
        "ROC AUC: {}",
        r.roc_auc.map_or(
            "n/a (needs genuine and impostor pairs)".to_owned(),
            |a| format!("{a:.4}")
        )
    )?;
    writeln!(
        out,
        "Best threshold on this set: {:.2} ({})",
        r.best_threshold,
        pct(r.best_threshold_accuracy)
    )?;
    writeln!(
        out,
        "Gender accuracy: {}",
        r.gender_accuracy
            .map_or("n/a (no gender labels)".to_owned(), |g| format!(
                "{}/{} = {}",
                r.gender_correct,
                r.gender_labelled,
                pct(g)
            ))
    )?;
    Ok(())
}
