//! What `ingest-rekognition` prints: the summary of the saved responses read, with every file
//! skipped, rejected or in conflict.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use super::{cluster_counts, reason, verdict_counts};
use crate::adjudication::Adjudicator;
use crate::files::FileError;
use crate::service::{IngestReport, SavedFileError};

/// What `ingest-rekognition` did: files, faces, edges, verdicts, clusters, and every file skipped
/// or rejected with the reason.
pub fn saved_ingest_summary(
    report: &IngestReport,
    kinds: &BTreeMap<&str, usize>,
    skipped: &[FileError],
    rules: &Adjudicator,
    out: &mut impl Write,
) -> Result<()> {
    let a = &report.adjudication;
    let rejected: Vec<_> = report.rejected().collect();
    let conflicts: Vec<_> = report.conflicts().collect();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        "Files read: {} ({} ingested: {}; {} rejected; {} in conflict{})",
        report.files.len(),
        report.files.len() - rejected.len() - conflicts.len(),
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        rejected.len(),
        conflicts.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; {} entries skipped", skipped.len())
        }
    )?;
    writeln!(
        out,
        "Faces: {} in the files, {} new; subject links: {}",
        report.faces_seen, report.new_faces, report.subject_links
    )?;
    writeln!(
        out,
        "Edges: {} new, {} changed",
        report.new_edges, report.changed_edges
    )?;
    writeln!(out, "{}", verdict_counts(a, rules, None))?;
    writeln!(out, "{}", cluster_counts(a))?;
    for e in skipped {
        writeln!(out, "Skipped {}", reason(e))?;
    }
    for (path, e) in &rejected {
        match e {
            // A file error names its path itself.
            SavedFileError::File(f) => writeln!(out, "Rejected {}", reason(f))?,
            other => writeln!(out, "Rejected {}: {}", path.display(), reason(*other))?,
        }
    }
    for (path, c) in &conflicts {
        writeln!(
            out,
            "Conflict {}: face {}: {} differs (stored {}, this file {})",
            path.display(),
            c.face_id,
            c.field,
            c.stored,
            c.incoming
        )?;
    }
    Ok(())
}
