//! `facegraph eval --labels CSV`: the local engine's accuracy on a labelled set of photos. Each photo
//! is analysed (its largest face stands for it); the report gives detection recall, pair
//! verification accuracy at the match threshold with the false accepts and rejects, ROC AUC, the
//! best threshold on this set, and gender accuracy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use super::{parallel_map, parse_threshold};
use crate::engine::local::calibration::similarity_from_cosine;
use crate::engine::local::eval::{best_threshold, pair_accuracy, roc_auc};
use crate::engine::local::{AnalyzedFace, FaceAnalyzer, ImageLimits, LocalAnalyzer};
use crate::model::{GenderValue, Similarity};
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

/// One labelled photo: its faces left to right.
#[derive(Debug)]
struct Label {
    file: String,
    faces: Vec<LabelledFace>,
}

#[derive(Debug)]
struct LabelledFace {
    identity: String,
    gender: Option<GenderValue>,
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

fn read_labels(path: &Path) -> Result<Vec<Label>> {
    let bad = |msg: String| anyhow::anyhow!("labels file {}: {msg}", path.display());
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| bad(format!("cannot read the header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(file_col), Some(identity_col)) = (col("file"), col("identity")) else {
        bail!(bad(format!(
            "the header must name the columns file and identity (found: {})",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let gender_col = col("gender");
    let mut labels = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        let field = |c: usize| record.get(c).unwrap_or("").to_owned();
        let (file, identities) = (field(file_col), field(identity_col));
        if file.is_empty() || identities.is_empty() {
            bail!(bad(format!(
                "line {line}: file and identity must not be empty"
            )));
        }
        let identities: Vec<&str> = identities.split(';').map(str::trim).collect();
        let genders = gender_col.map(field).unwrap_or_default();
        let genders: Vec<&str> = if genders.is_empty() {
            vec![""; identities.len()]
        } else {
            genders.split(';').map(str::trim).collect()
        };
        if genders.len() != identities.len() || identities.iter().any(|i| i.is_empty()) {
            bail!(bad(format!(
                "line {line}: {} identities and {} genders; a photo of several faces lists both left to right, separated by ';'",
                identities.len(),
                genders.len()
            )));
        }
        let mut faces = Vec::with_capacity(identities.len());
        for (identity, g) in identities.into_iter().zip(genders) {
            let gender = match g {
                "" => None,
                g if g.eq_ignore_ascii_case("male") => Some(GenderValue::Male),
                g if g.eq_ignore_ascii_case("female") => Some(GenderValue::Female),
                g => bail!(bad(format!(
                    "line {line}: gender {g:?} is not male, female or empty"
                ))),
            };
            faces.push(LabelledFace {
                identity: identity.to_owned(),
                gender,
            });
        }
        labels.push(Label { file, faces });
    }
    if labels.is_empty() {
        bail!(bad("it has no rows".to_owned()));
    }
    Ok(labels)
}

/// Pairs a photo's labelled faces with its detected ones: the `labelled` largest detections, left
/// to right. `None` when fewer faces were detected than labelled (which one was missed is unknown).
fn assign(mut faces: Vec<AnalyzedFace>, labelled: usize) -> Option<Vec<AnalyzedFace>> {
    if faces.len() < labelled {
        return None;
    }
    faces.sort_by(|a, b| (b.bbox.width * b.bbox.height).total_cmp(&(a.bbox.width * a.bbox.height)));
    faces.truncate(labelled);
    faces.sort_by(|a, b| a.bbox.left.total_cmp(&b.bbox.left));
    Some(faces)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Runs `eval`.
pub fn run(settings: &Settings, args: &EvalArgs, out: &mut impl Write) -> Result<i32> {
    let labels = read_labels(&args.labels)?;
    let root = args.labels.parent().unwrap_or(Path::new("."));
    let analyzer = LocalAnalyzer::load(&settings.models_dir, ImageLimits::default())?;
    let started = Instant::now();
    let mut faces: Vec<Option<Result<Vec<AnalyzedFace>>>> =
        std::iter::repeat_with(|| None).take(labels.len()).collect();
    parallel_map(
        &labels,
        |l| -> Result<Vec<AnalyzedFace>> {
            let path = root.join(&l.file);
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let analysis = analyzer
                .analyze(&bytes)
                .with_context(|| path.display().to_string())?;
            Ok(analysis.faces)
        },
        |i, r| faces[i] = Some(r),
    );
    let seconds = started.elapsed().as_secs_f64();
    let mut notes: Vec<String> = Vec::new();
    // Every labelled face that was detected, with its photo.
    let mut detected: Vec<(&str, &LabelledFace, AnalyzedFace)> = Vec::new();
    for (label, found) in labels.iter().zip(faces) {
        match found.map(|r| r.map(|f| (f.len(), assign(f, label.faces.len())))) {
            Some(Ok((_, Some(assigned)))) => detected.extend(
                label
                    .faces
                    .iter()
                    .zip(assigned)
                    .map(|(l, f)| (label.file.as_str(), l, f)),
            ),
            Some(Ok((n, None))) => notes.push(format!(
                "missed: {} faces detected in {}, {} labelled",
                n,
                label.file,
                label.faces.len()
            )),
            Some(Err(e)) => notes.push(format!("error: {e:#}")),
            None => notes.push(format!("{} was not analysed", label.file)),
        }
    }

    let threshold = args.threshold.get();
    let mut pairs: Vec<(f64, bool)> = Vec::new();
    let (mut false_accepts, mut false_rejects) = (0, 0);
    for (i, (file_a, la, fa)) in detected.iter().enumerate() {
        for (file_b, lb, fb) in &detected[i + 1..] {
            let s = similarity_from_cosine(cosine(&fa.embedding, &fb.embedding)).get();
            let same = la.identity == lb.identity;
            pairs.push((s, same));
            if (s >= threshold) != same {
                if same {
                    false_rejects += 1;
                } else {
                    false_accepts += 1;
                }
                if args.verbose {
                    notes.push(format!(
                        "{} pair {} / {}: similarity {s:.2}",
                        if same {
                            "false reject:"
                        } else {
                            "false accept:"
                        },
                        file_a,
                        file_b
                    ));
                }
            }
        }
    }
    let (mut gender_labelled, mut gender_correct) = (0, 0);
    for (file, l, f) in &detected {
        let Some(want) = l.gender else { continue };
        gender_labelled += 1;
        let got = f.attributes.gender.map(|g| g.value);
        if got == Some(want) {
            gender_correct += 1;
        } else if args.verbose {
            notes.push(format!(
                "wrong gender: {} in {file} is {}, classified {}",
                l.identity,
                want.as_str(),
                f.attributes
                    .gender
                    .map_or("nothing".to_owned(), |g| format!(
                        "{} ({:.1}%)",
                        g.value.as_str(),
                        g.confidence.get()
                    ))
            ));
        }
    }
    let labelled_faces: usize = labels.iter().map(|l| l.faces.len()).sum();
    let mut identities: Vec<&str> = labels
        .iter()
        .flat_map(|l| l.faces.iter().map(|f| f.identity.as_str()))
        .collect();
    identities.sort_unstable();
    identities.dedup();
    let (best, best_acc) = best_threshold(&pairs);
    let genuine = pairs.iter().filter(|p| p.1).count();
    let report = Report {
        images: labels.len(),
        identities: identities.len(),
        labelled_faces,
        detected: detected.len(),
        detection_recall: detected.len() as f64 / labelled_faces as f64,
        genuine_pairs: genuine,
        impostor_pairs: pairs.len() - genuine,
        threshold,
        pair_accuracy: pair_accuracy(&pairs, threshold),
        false_accepts,
        false_rejects,
        roc_auc: roc_auc(&pairs),
        best_threshold: best,
        best_threshold_accuracy: best_acc.max(0.0),
        gender_labelled,
        gender_correct,
        gender_accuracy: (gender_labelled > 0)
            .then(|| gender_correct as f64 / gender_labelled as f64),
        seconds,
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        for n in &notes {
            eprintln!("{n}");
        }
        return Ok(0);
    }
    let pct = |x: f64| format!("{:.2}%", x * 100.0);
    let r = &report;
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
        pairs.len(),
        r.genuine_pairs,
        r.impostor_pairs
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
    for n in &notes {
        writeln!(out, "{n}")?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_need_file_and_identity_and_a_known_gender() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.csv");
        std::fs::write(
            &p,
            "file,identity,gender,note\na.jpg,ann,female,x\nb.jpg,bob,,\nc.jpg,ann;bob,female;male,\n",
        )
        .unwrap();
        let l = read_labels(&p).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].faces[0].gender, Some(GenderValue::Female));
        assert_eq!(l[1].faces[0].gender, None);
        assert_eq!(l[2].faces[1].identity, "bob");
        assert_eq!(l[2].faces[1].gender, Some(GenderValue::Male));
        std::fs::write(&p, "file,who\na.jpg,ann\n").unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("file and identity"), "{e}");
        std::fs::write(&p, "file,identity,gender\na.jpg,ann;bob,male\n").unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("2 identities and 1 genders"), "{e}");
        std::fs::write(&p, "file,identity,gender\na.jpg,ann,f\n").unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"f\""), "{e}");
    }
}
