//! Every shape the CLI prints, one submodule per command family re-exported here: JSON lines for
//! scripts (the REST API's own types from [`crate::api::wire`], so the two cannot drift), aligned
//! tables and summaries for people, CSV for spreadsheets. What scripts read is an interface: the
//! `stats` lines and the JSON field names stay as they are; fields are added, never renamed.

mod calls;
mod collections;
mod graph;
mod photos;
mod saved;
mod stream;

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::adjudication::Adjudicator;
use crate::model::similarity_decimals;
use crate::service::Readjudication;

pub use calls::rekognition_calls;
pub use collections::{
    collection_detail, collection_lines, collection_table, search_json, search_table,
};
pub use graph::{
    adjudication_summary, change_lines, cluster_lines, cluster_table, codes,
    decision_import_summary, decision_summary, explanation_json, explanation_text, match_lines,
    match_table, review_csv, rule_set, stats, what_if_summary,
};
pub use photos::{
    cross_match_table, eval_adjudication_json, eval_adjudication_report, faces_found, no_photos,
    photo_ingest_summary, CrossMatchRow,
};
pub use saved::saved_ingest_summary;
pub use stream::backfill_day;

/// Writes one JSON object per line.
pub fn json_lines<T: Serialize>(
    items: impl IntoIterator<Item = T>,
    out: &mut impl Write,
) -> Result<()> {
    for item in items {
        serde_json::to_writer(&mut *out, &item)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A similarity or score as people read it: two decimals, more near 100 where the local engine's
/// genuine pairs crowd, so that different values do not print alike.
pub fn similarity(v: f64) -> String {
    format!("{:.*}", similarity_decimals(v), v)
}

/// Renders rows as a left-aligned table with a header and a rule under it.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The verdict counts line shared by every command that adjudicates.
pub fn verdict_counts(r: &Readjudication, rules: &Adjudicator, secs: Option<f64>) -> String {
    let time = secs.map(|s| format!(", {s:.2} s")).unwrap_or_default();
    format!(
        "Verdicts ({} edges, rule set {}{time}): confirmed {}, review {} ({} in the review queue), rejected {}; {} changed",
        r.judged,
        rules.version(),
        r.counts.confirmed,
        r.counts.review,
        r.counts.queued,
        r.counts.rejected,
        r.changes.len()
    )
}

/// The clusters line shared by every command that adjudicates.
pub fn cluster_counts(r: &Readjudication) -> String {
    format!("Clusters: {}, fraud leads: {}", r.clusters, r.fraud_leads)
}

/// An error with its causes, for a line of a run's report.
pub fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    crate::errors::chain(e)
}

/// A line for the operator on standard error, prefixed with the program's name.
pub fn notice(message: &str) {
    eprintln!("facegraph: {message}");
}

/// A warning for the operator on standard error.
pub fn warning(message: &str) {
    eprintln!("facegraph: WARNING: {message}");
}
