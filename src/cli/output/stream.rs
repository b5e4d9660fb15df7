//! What `backfill` prints for each day it replays; `stream` prints only notices.

use std::io::Write;

use anyhow::Result;

use super::{cluster_counts, verdict_counts};
use crate::adjudication::Adjudicator;

/// What `backfill` did on one day: uploads ingested, already stored and refused (each with why),
/// then the day's adjudication.
pub fn backfill_day(
    day: crate::stream::backfill::Day,
    report: &crate::stream::backfill::DayReport,
    rules: &Adjudicator,
    out: &mut impl Write,
) -> Result<()> {
    writeln!(
        out,
        "{day}: {} ingested ({} without a face), {} already stored, {} refused",
        report.ingested,
        report.faceless,
        report.duplicates,
        report.rejected.len()
    )?;
    for (row, why) in &report.rejected {
        writeln!(out, "  refused line {}: {why}", row.line)?;
    }
    writeln!(
        out,
        "  {}; {}",
        verdict_counts(&report.adjudication, rules, None),
        cluster_counts(&report.adjudication)
    )?;
    Ok(())
}
