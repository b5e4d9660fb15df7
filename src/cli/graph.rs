//! The commands on the stored graph: `matches`, `review`, `explain`, `decide`, `clusters`,
//! `what-if`, `rules`, `adjudicate` and `stats`. The reading ones work alongside a writer; `decide`
//! and `adjudicate` write and take the data directory's lock when the store is embedded.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use super::output;
use super::{Shell, EXIT_SOME_REJECTED};
use crate::adjudication::Adjudicator;
use crate::model::{DecisionKind, FaceId, Verdict};
use crate::service::read_decision_sheet;
use crate::settings::load_rule_set;

/// A verdict on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VerdictArg {
    /// Confirmed.
    Confirmed,
    /// Review.
    Review,
    /// Rejected.
    Rejected,
}

impl From<VerdictArg> for Verdict {
    fn from(v: VerdictArg) -> Self {
        match v {
            VerdictArg::Confirmed => Verdict::Confirmed,
            VerdictArg::Review => Verdict::Review,
            VerdictArg::Rejected => Verdict::Rejected,
        }
    }
}

/// A decision on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    /// The same person.
    Same,
    /// Different people.
    Different,
}

impl From<DecisionArg> for DecisionKind {
    fn from(d: DecisionArg) -> Self {
        match d {
            DecisionArg::Same => DecisionKind::Same,
            DecisionArg::Different => DecisionKind::Different,
        }
    }
}

/// Arguments of `matches`.
#[derive(Debug, Args)]
pub struct MatchesArgs {
    /// Only matches with this verdict.
    #[arg(long, value_enum)]
    verdict: Option<VerdictArg>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// One face.
    face_a: String,
    /// The other face.
    face_b: String,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Arguments of `decide`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// One face.
    #[arg(required_unless_present = "from")]
    face_a: Option<String>,
    /// The other face.
    #[arg(required_unless_present = "from")]
    face_b: Option<String>,
    /// Whether the two faces are the same person.
    #[arg(value_enum, required_unless_present = "from")]
    decision: Option<DecisionArg>,
    /// A filled review sheet (`review --csv` with its `decision` column set to same or different,
    /// and an optional `note`): every decided row is recorded, then the graph is adjudicated once.
    #[arg(long, value_name = "CSV", conflicts_with_all = ["face_a", "face_b", "decision", "note"])]
    from: Option<PathBuf>,
    /// Who decides.
    #[arg(long)]
    analyst: String,
    /// Why.
    #[arg(long)]
    note: Option<String>,
    /// Print the changed verdicts as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Arguments of `clusters`.
#[derive(Debug, Args)]
pub struct ClustersArgs {
    /// Only clusters with at least this many distinct subjects.
    #[arg(long, default_value_t = 0)]
    min_subjects: usize,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// CSV for a spreadsheet instead of a table, with an empty `decision` column (same or
    /// different) and `note` column for `decide --from`.
    #[arg(long)]
    csv: bool,
}

/// Arguments of `what-if`.
#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// The other rule set.
    rules_file: PathBuf,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// `matches`.
pub(super) fn matches(shell: &Shell, args: &MatchesArgs, out: &mut impl Write) -> Result<i32> {
    let app = shell.reader()?;
    let matches = app.graph().matches(args.verdict.map(Verdict::from))?;
    if args.json {
        output::match_lines(&matches, out)?;
    } else {
        output::match_table(&matches, out)?;
        writeln!(out, "{} matches", matches.len())?;
    }
    Ok(0)
}

/// `review`.
pub(super) fn review(shell: &Shell, args: &ReviewArgs, out: &mut impl Write) -> Result<i32> {
    let app = shell.reader()?;
    let queue = app.graph().review_queue()?;
    if args.csv {
        output::review_csv(&queue, out)?;
    } else {
        output::match_table(&queue, out)?;
        writeln!(out, "{} matches to review", queue.len())?;
    }
    Ok(0)
}

/// `explain`.
pub(super) fn explain(shell: &Shell, args: &ExplainArgs, out: &mut impl Write) -> Result<i32> {
    let app = shell.reader()?;
    let (a, b) = (parse_face(&args.face_a)?, parse_face(&args.face_b)?);
    let ex = app.graph().explain(&a, &b)?;
    if args.json {
        output::explanation_json(&ex, out)?;
    } else {
        output::explanation_text(&ex, out)?;
    }
    Ok(0)
}

/// `decide`: one decision, or a filled review sheet with `--from` (exit status 2 when some of its
/// rows were refused).
pub(super) fn decide(shell: &Shell, args: &DecideArgs, out: &mut impl Write) -> Result<i32> {
    if let Some(sheet) = &args.from {
        let sheet = read_decision_sheet(sheet)?;
        let app = shell.updater()?;
        let import = app.graph().import_decisions(sheet, &args.analyst)?;
        if args.json {
            if let Some(r) = &import.adjudication {
                output::change_lines(&r.changes, out)?;
            }
        } else {
            output::decision_import_summary(&import, out)?;
        }
        return Ok(if import.refused.is_empty() {
            0
        } else {
            EXIT_SOME_REJECTED
        });
    }
    let (Some(a), Some(b), Some(decision)) = (&args.face_a, &args.face_b, args.decision) else {
        bail!("give FACE_A FACE_B same|different, or --from SHEET.csv");
    };
    let app = shell.updater()?;
    let (a, b) = (parse_face(a)?, parse_face(b)?);
    let kind = DecisionKind::from(decision);
    let result = app
        .graph()
        .decide(&a, &b, kind, &args.analyst, args.note.clone())?;
    if args.json {
        output::change_lines(&result.changes, out)?;
    } else {
        output::decision_summary(&args.analyst, &a, &b, kind, &result, out)?;
    }
    Ok(0)
}

/// `clusters`.
pub(super) fn clusters(shell: &Shell, args: &ClustersArgs, out: &mut impl Write) -> Result<i32> {
    let app = shell.reader()?;
    let clusters = app.graph().clusters(args.min_subjects)?;
    if args.json {
        output::cluster_lines(&clusters, out)?;
    } else {
        output::cluster_table(&clusters, out)?;
    }
    Ok(0)
}

/// `what-if`.
pub(super) fn what_if(shell: &Shell, args: &WhatIfArgs, out: &mut impl Write) -> Result<i32> {
    let app = shell.reader()?;
    let other = Adjudicator::new(load_rule_set(&args.rules_file)?);
    let changes = app.graph().what_if(&other)?;
    if args.json {
        output::change_lines(&changes, out)?;
    } else {
        output::what_if_summary(&changes, &other, app.graph().adjudicator(), out)?;
    }
    Ok(0)
}

/// `rules`: the effective rule set, every setting spelled out.
pub(super) fn rules(shell: &Shell, out: &mut impl Write) -> Result<i32> {
    let rules = shell.settings.rule_set()?;
    output::rule_set(&rules, shell.settings.rules_file.as_deref(), out)?;
    Ok(0)
}

/// `adjudicate`: the full re-judge.
pub(super) fn adjudicate(shell: &Shell, out: &mut impl Write) -> Result<i32> {
    let app = shell.updater()?;
    let r = app.graph().readjudicate()?;
    output::adjudication_summary(&r, app.graph().adjudicator(), out)?;
    Ok(0)
}

/// `stats`: one `name count` line per kind; scripts read these lines.
pub(super) fn stats(shell: &Shell, out: &mut impl Write) -> Result<i32> {
    let app = shell.reader()?;
    output::stats(&app.graph().store().stats()?, out)?;
    Ok(0)
}

fn parse_face(s: &str) -> Result<FaceId> {
    Ok(FaceId::parse(s.trim())?)
}
