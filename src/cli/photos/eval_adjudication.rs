//! `facegraph eval-adjudication --labels CSV`: how much the rules add to the engine's similarity on
//! labelled photos. The photos with one labelled face are ingested into a scratch data directory
//! with the defaults, each its own customer, and the graph is judged by the similarity band alone,
//! the default rule set, and every rule set given; each is measured against the identities.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::labels::{photos_dir, read_labels};
use super::{parallel_map, parse_threshold, progress_bar};
use crate::adjudication::{evaluate, Adjudicator, Figures, RuleSet};
use crate::cli::output;
use crate::cli::{waiting, Shell};
use crate::engine::local::ImageLimits;
use crate::files::read_bounded;
use crate::model::{ExternalImageId, FaceId, Similarity, SubjectId};
use crate::service::{ImageIngest, DEFAULT_MAX_MATCHES};
use crate::settings::{load_rule_set, Settings, StoreLocation};
use crate::startup::{Access, App};

/// Arguments of `eval-adjudication`.
#[derive(Debug, Args)]
pub struct EvalAdjudicationArgs {
    /// CSV with the header `file,identity[,gender,...]`; files are relative to the CSV's directory.
    /// Photos with one labelled face are ingested, each as its own customer.
    #[arg(long, value_name = "CSV")]
    pub labels: PathBuf,
    /// More rule sets to measure beside the default (and beside `--rules`, when given); repeat it.
    #[arg(long = "compare", value_name = "RULES.toml")]
    pub compare: Vec<PathBuf>,
    /// Searches after indexing return hits at or above this similarity, 0-100.
    #[arg(long, default_value = "80", value_parser = parse_threshold, value_name = "0-100", allow_negative_numbers = true)]
    pub threshold: Similarity,
    /// Keep the scratch data directory here (created; must not hold a graph) instead of a temporary
    /// one that is removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// One JSON object per rule set instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// One rule set's figures, and the name it is reported under.
#[derive(Debug)]
pub struct EvalRun {
    /// `band alone`, `default`, `--rules FILE`, or a compared file.
    pub name: String,
    /// What was measured.
    pub figures: Figures,
}

/// Runs `eval-adjudication`.
pub(crate) fn run(shell: &Shell, args: &EvalAdjudicationArgs, out: &mut impl Write) -> Result<i32> {
    let photos = read_labels(&args.labels)?;
    let dir = photos_dir(&args.labels).to_owned();
    let single: Vec<(String, String)> = photos
        .iter()
        .filter(|p| p.faces.len() == 1)
        .map(|p| (p.file.clone(), p.faces[0].identity.clone()))
        .collect();
    if single.len() < 2 {
        bail!(
            "labels file {}: fewer than two photos with one labelled face",
            args.labels.display()
        );
    }
    let scratch = Scratch::new(args.keep.clone())?;
    let settings = Settings {
        data_dir: scratch.path.clone(),
        store: StoreLocation::Sqlite,
        ..shell.settings.clone()
    };
    let app = App::build(&settings, Access::write(shell.wait).with_engine(), &waiting)?;
    let identity_of = ingest(&app, &dir, &single, args.threshold)?;
    let graph = app.graph();
    graph.adjudicate_changes()?;
    let view = graph.load_view()?;
    let judge = |rules: &RuleSet| Adjudicator::new(rules.clone()).judge_all(&view);
    let defaults = RuleSet::default();
    let band = defaults.band_alone();
    let mut runs = vec![
        EvalRun {
            name: "band alone".to_owned(),
            figures: evaluate(&view, &judge(&band), &identity_of, &band),
        },
        EvalRun {
            name: "default".to_owned(),
            figures: evaluate(&view, &judge(&defaults), &identity_of, &defaults),
        },
    ];
    let mut others: Vec<(String, RuleSet)> = Vec::new();
    if let Some(file) = &shell.settings.rules_file {
        others.push((format!("--rules {}", file.display()), load_rule_set(file)?));
    }
    for file in &args.compare {
        others.push((file.display().to_string(), load_rule_set(file)?));
    }
    for (name, rules) in others {
        runs.push(EvalRun {
            name,
            figures: evaluate(&view, &judge(&rules), &identity_of, &rules),
        });
    }
    if args.json {
        output::eval_adjudication_json(&runs, out)?;
    } else {
        output::eval_adjudication_report(&runs, single.len(), &args.labels, out)?;
    }
    Ok(0)
}

/// Ingests every photo as its own customer with the defaults (largest face, the quality filter's
/// default, the threshold given) and returns the identity of each face indexed.
fn ingest(
    app: &App,
    dir: &std::path::Path,
    photos: &[(String, String)],
    threshold: Similarity,
) -> Result<HashMap<FaceId, String>> {
    let engine = app.engine()?;
    let collection = app.settings().collection_id.clone();
    let limit = ImageLimits::default().max_bytes as u64;
    let bar = progress_bar(photos.len(), "photos");
    let mut identity_of = HashMap::new();
    let mut failed = Vec::new();
    parallel_map(
        photos,
        |(file, _)| -> Result<Vec<FaceId>> {
            let path = dir.join(file);
            let bytes = read_bounded(&path, limit)?;
            let ext = ExternalImageId::from_file_name(&file.replace('/', ":"))?;
            let subject = SubjectId::parse(&format!("customer:{ext}"))?;
            let req = ImageIngest {
                external_image_id: Some(&ext),
                subject_id: Some(&subject),
                search_threshold: threshold,
                max_matches: DEFAULT_MAX_MATCHES,
                ..ImageIngest::new(&collection, &bytes)
            };
            let staged = app
                .graph()
                .stage_image(engine.as_ref(), &req)
                .with_context(|| path.display().to_string())?;
            Ok(staged.face_ids)
        },
        |i, r| {
            bar.inc(1);
            match r {
                Ok(faces) => {
                    for f in faces {
                        identity_of.insert(f, photos[i].1.clone());
                    }
                }
                Err(e) => failed.push(e),
            }
        },
    );
    bar.finish_and_clear();
    if let Some(e) = failed.into_iter().next() {
        return Err(e.context("a labelled photo could not be ingested"));
    }
    Ok(identity_of)
}

/// The scratch data directory: a temporary one removed on drop, or the one `--keep` names.
struct Scratch {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Scratch {
    fn new(keep: Option<PathBuf>) -> Result<Self> {
        match keep {
            Some(path) => {
                if path.join("facegraph.sqlite3").exists() {
                    bail!(
                        "{} already holds a graph: --keep needs a new or empty directory",
                        path.display()
                    );
                }
                std::fs::create_dir_all(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                Ok(Self { path, _temp: None })
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("facegraph-eval-")
                    .tempdir()
                    .context("cannot create a scratch directory")?;
                Ok(Self {
                    path: temp.path().to_owned(),
                    _temp: Some(temp),
                })
            }
        }
    }
}
