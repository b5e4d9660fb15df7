//! `facegraph ingest-rekognition PATH...`: saved Rekognition responses into the graph, then one
//! adjudication. Files and folders are walked by the rules of [`crate::files`]; a file that cannot
//! be read or converted is reported by path and the rest is ingested (exit status 2).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::{output, Shell, EXIT_SOME_REJECTED};
use crate::files::walk;
use crate::model::CollectionId;
use crate::service::{read_subjects_csv, FileOutcome, RekognitionIngest};

/// Arguments of `ingest-rekognition`.
#[derive(Debug, Args)]
pub struct IngestRekognitionArgs {
    /// CSV with the header `external_image_id,subject_id`.
    #[arg(long, value_name = "CSV")]
    subjects: Option<PathBuf>,
    /// The collection the responses came from (saved responses do not name it).
    #[arg(long, env = "FACEGRAPH_COLLECTION_ID")]
    collection_id: Option<String>,
    /// Files or directories of saved responses.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Runs `ingest-rekognition`; exit status 2 when some files were rejected or skipped.
pub(super) fn run(
    shell: &Shell,
    args: &IngestRekognitionArgs,
    out: &mut impl Write,
) -> Result<i32> {
    let subjects = match &args.subjects {
        Some(p) => read_subjects_csv(p)?,
        None => Vec::new(),
    };
    let collection_id = match &args.collection_id {
        Some(c) => CollectionId::parse(c)?,
        None => shell.settings.collection_id.clone(),
    };
    let walked = walk(&args.paths);
    if walked.files.is_empty() && walked.skipped.is_empty() {
        bail!(
            "no files found in {}",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let app = shell.writer()?;
    let report = app.graph().ingest_rekognition(
        &walked.files,
        &RekognitionIngest {
            collection_id,
            subjects,
        },
    )?;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, o) in &report.files {
        if let FileOutcome::Ingested { kind, .. } = o {
            *kinds.entry(kind).or_default() += 1;
        }
    }
    output::saved_ingest_summary(
        &report,
        &kinds,
        &walked.skipped,
        app.graph().adjudicator(),
        out,
    )?;
    let clean = report.rejected().next().is_none()
        && report.conflicts().next().is_none()
        && walked.skipped.is_empty();
    Ok(if clean { 0 } else { EXIT_SOME_REJECTED })
}
