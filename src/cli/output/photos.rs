//! What the photo commands print: `ingest DIR`'s summary, `match-faces`'s cross-match as the proof
//! of concept printed it, and `eval-adjudication`'s figures for people and scripts.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{
    cluster_counts, json_lines, reason, rekognition_calls, similarity, table, verdict_counts,
};
use crate::adjudication::Adjudicator;
use crate::cli::photos::eval_adjudication::EvalRun;
use crate::cli::photos::ingest::PhotoIngestSummary;
use crate::cli::photos::PhotoFile;
use crate::service::StagedImage;

/// A directory with no photo, said as the proof of concept said it.
pub fn no_photos(dir: &Path, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "There are no images suitable for processing in {}",
        dir.display()
    )?;
    Ok(())
}

/// What `ingest DIR` did: photos, faces, searches, verdicts, clusters, the photos with no face,
/// and every photo rejected or skipped with the reason.
pub fn photo_ingest_summary(
    s: &PhotoIngestSummary<'_>,
    rules: &Adjudicator,
    out: &mut impl Write,
) -> Result<()> {
    let faces: usize = s.staged.iter().map(|(_, st)| st.face_ids.len()).sum();
    let unindexed: usize = s.staged.iter().map(|(_, st)| st.unindexed.len()).sum();
    let hits: usize = s.staged.iter().map(|(_, st)| st.hits).sum();
    if !s.resumed.completed.is_empty() {
        writeln!(
            out,
            "Resumed {} uploads that an earlier run left unfinished (indexed, not yet stored)",
            s.resumed.completed.len()
        )?;
    }
    writeln!(
        out,
        "Photos: {} files in {} ({} ingested, {} already ingested into collection {}, {} rejected{}) in {:.2} s",
        s.files,
        s.dir.display(),
        s.staged.len(),
        s.already,
        s.collection_id,
        s.rejected.len(),
        if s.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", s.skipped.len())
        },
        s.staged_secs
    )?;
    writeln!(
        out,
        "Faces: {faces} indexed, {unindexed} detected but not indexed; subject links: {}",
        s.linked
    )?;
    writeln!(
        out,
        "Searches: {faces} faces searched, {hits} hits at or above {}",
        s.threshold.get()
    )?;
    if let Some(calls) = &s.calls {
        rekognition_calls(calls, s.prices, out)?;
    }
    writeln!(
        out,
        "{}",
        verdict_counts(&s.adjudication, rules, Some(s.adjudicate_secs))
    )?;
    writeln!(out, "{}", cluster_counts(&s.adjudication))?;
    no_face_lines(&s.staged, out)?;
    for e in s.skipped {
        writeln!(out, "Skipped {}", reason(e))?;
    }
    for (_, e) in &s.rejected {
        writeln!(out, "Rejected {}", reason(e))?;
    }
    if s.pending_left > 0 {
        writeln!(
            out,
            "Pending: {} uploads were recorded but never indexed (a crash stopped them before the \
             engine saw them) and are not among these files; ingest their photos again",
            s.pending_left
        )?;
    }
    if s.subjects_given && s.linked == 0 && !s.staged.is_empty() {
        writeln!(
            out,
            "Note: no photo's external image id is in the subjects file; ids are paths under the directory with '/' as ':'"
        )?;
    }
    writeln!(
        out,
        "Next: facegraph matches | clusters | review | explain FACE_A FACE_B"
    )?;
    Ok(())
}

/// A line for each staged photo that had no face indexed: none detected, or why each detected
/// face was not indexed.
fn no_face_lines(staged: &[(&PhotoFile, StagedImage)], out: &mut impl Write) -> Result<()> {
    for (f, st) in staged {
        if st.face_ids.is_empty() {
            let reasons: Vec<String> = st
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
    Ok(())
}

/// One row of `match-faces`'s cross-match (the proof of concept's columns).
#[derive(Debug, Serialize)]
pub struct CrossMatchRow {
    /// The face searched.
    pub source_face_id: String,
    /// Its file.
    pub source_file: String,
    /// The face found.
    pub target_face_id: String,
    /// Its file.
    pub target_file: String,
    /// How similar, 0-100.
    pub similarity: f64,
}

/// The cross-match as the proof of concept's table.
pub fn cross_match_table(rows: &[CrossMatchRow], out: &mut impl Write) -> Result<()> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.source_face_id.clone(),
                r.source_file.clone(),
                r.target_face_id.clone(),
                r.target_file.clone(),
                similarity(r.similarity),
            ]
        })
        .collect();
    let header = [
        "Source Face ID",
        "Source File",
        "Target Face ID",
        "Target File",
        "Similarity",
    ];
    write!(out, "{}", table(&header, &cells))?;
    Ok(())
}

/// The proof of concept's line for an image: how many faces, how long.
pub fn faces_found(n: usize, name: &str, elapsed: std::time::Duration) -> String {
    format!(
        "Found {n} faces in image {name} in {} ms",
        elapsed.as_millis()
    )
}

fn percent(x: usize, of: usize) -> String {
    if of == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", 100.0 * x as f64 / of as f64)
    }
}

/// What `eval-adjudication` measured, for people: one block per rule set, the band alone first,
/// each with the targets it is held to.
pub fn eval_adjudication_report(
    runs: &[EvalRun],
    photos: usize,
    labels: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let Some(yardstick) = runs.first() else {
        return Ok(());
    };
    writeln!(
        out,
        "{photos} photos of {} with one labelled face, each its own customer, ingested with the \
         defaults; pairs of faces of different customers, by identity:",
        labels.display()
    )?;
    for run in runs {
        let f = &run.figures;
        let c = &f.clusters;
        writeln!(out)?;
        writeln!(
            out,
            "== {} ({}), {} labelled faces",
            run.name, f.rule_set, f.faces
        )?;
        writeln!(
            out,
            "impostor pairs {}: confirmed {}, review {} ({}), with an edge {}",
            f.impostor.total,
            f.impostor.confirmed,
            f.impostor.review,
            percent(f.impostor.review, f.impostor.total),
            f.impostor.with_edge
        )?;
        writeln!(
            out,
            "genuine pairs {}: confirmed {} ({}), review {}, kept {} ({}), rejected or never found {}",
            f.genuine.total,
            f.genuine.confirmed,
            percent(f.genuine.confirmed, f.genuine.total),
            f.genuine.review,
            f.genuine.kept(),
            percent(f.genuine.kept(), f.genuine.total),
            f.genuine.rejected()
        )?;
        writeln!(
            out,
            "  joined through photos of the same person at the review band: {}, kept {} ({})",
            f.genuine_joined,
            f.genuine_joined_kept,
            percent(f.genuine_joined_kept, f.genuine_joined)
        )?;
        writeln!(
            out,
            "review load: {} review verdicts, {} in the analysts' queue",
            f.review, f.review_queue
        )?;
        let cut = f.engine_alone.above.map_or("every edge".to_owned(), |a| {
            format!("similarity above {}", similarity(a))
        });
        writeln!(
            out,
            "engine alone at the same impostor count ({cut}): genuine confirmed {} ({}), impostors {}",
            f.engine_alone.genuine_confirmed,
            percent(f.engine_alone.genuine_confirmed, f.genuine.total),
            f.engine_alone.impostors_confirmed
        )?;
        writeln!(
            out,
            "clusters {} ({} fraud leads, {} mixing identities); fraud-lead pairs: precision {} ({} of {}), recall {} ({} of {})",
            c.clusters,
            c.leads,
            c.mixed,
            percent(c.lead_pairs_genuine, c.lead_pairs),
            c.lead_pairs_genuine,
            c.lead_pairs,
            percent(c.lead_pairs_genuine, f.genuine.total),
            c.lead_pairs_genuine,
            f.genuine.total
        )?;
        writeln!(
            out,
            "identities with photos under two or more customers found as exactly one lead: {} of {}; \
             sets the band joins in one lead: {} of {}",
            c.identities_as_one_lead, c.identities, c.band_groups_in_one_lead, c.band_groups
        )?;
        if !std::ptr::eq(run, yardstick) {
            for t in f.targets(&yardstick.figures) {
                writeln!(
                    out,
                    "  [{}] {}: {}",
                    if t.met { "met" } else { "MISSED" },
                    t.target,
                    t.measured
                )?;
            }
        }
    }
    Ok(())
}

/// What `eval-adjudication` measured, for scripts: one JSON object per rule set.
pub fn eval_adjudication_json(runs: &[EvalRun], out: &mut impl Write) -> Result<()> {
    let yardstick = runs.first().map(|r| &r.figures);
    let pairs = |p: &crate::adjudication::PairCounts| {
        serde_json::json!({
            "total": p.total, "with_edge": p.with_edge, "confirmed": p.confirmed,
            "review": p.review, "kept": p.kept(), "rejected": p.rejected(),
        })
    };
    json_lines(
        runs.iter().map(|run| {
            let f = &run.figures;
            let c = &f.clusters;
            let targets: Vec<serde_json::Value> = match yardstick {
                Some(y) if !std::ptr::eq(y, f) => f
                    .targets(y)
                    .into_iter()
                    .map(|t| serde_json::json!({"target": t.target, "measured": t.measured, "met": t.met}))
                    .collect(),
                _ => Vec::new(),
            };
            serde_json::json!({
                "name": run.name,
                "rule_set": f.rule_set,
                "labelled_faces": f.faces,
                "impostor_pairs": pairs(&f.impostor),
                "genuine_pairs": pairs(&f.genuine),
                "genuine_joined": f.genuine_joined,
                "genuine_joined_kept": f.genuine_joined_kept,
                "review": f.review,
                "review_queue": f.review_queue,
                "engine_alone": {
                    "above": f.engine_alone.above,
                    "impostors_confirmed": f.engine_alone.impostors_confirmed,
                    "genuine_confirmed": f.engine_alone.genuine_confirmed,
                },
                "clusters": {
                    "clusters": c.clusters, "fraud_leads": c.leads, "mixed": c.mixed,
                    "lead_pairs": c.lead_pairs, "lead_pairs_genuine": c.lead_pairs_genuine,
                    "identities": c.identities, "identities_as_one_lead": c.identities_as_one_lead,
                    "band_groups": c.band_groups, "band_groups_in_one_lead": c.band_groups_in_one_lead,
                },
                "targets": targets,
            })
        }),
        out,
    )
}
