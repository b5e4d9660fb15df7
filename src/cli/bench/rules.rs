//! Rule evaluation: how many edges one thread adjudicates per second with `Adjudicator::judge_all`
//! on a generated graph, with the verdicts and reasons it produced as evidence that the rules ran.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use super::gen::{self, Rng};
use super::{Figure, Goal, Section, Unit};
use crate::adjudication::{Adjudicator, FaceNode, GraphView, RuleSet};
use crate::model::{ReasonCode, Verdict};

/// The goal of the issue: at least this many edges adjudicated per second on one thread.
const GOAL_EDGES_PER_SECOND: f64 = 500_000.0;

/// Generates `edges` edges over `faces` faces, builds the view (untimed) and times `judge_all`.
pub(super) fn run(seed: u64, faces: usize, edges: usize) -> Result<Section> {
    let (view, decision_count) = graph_view(seed, faces, edges)?;
    let adjudicator = Adjudicator::new(RuleSet::default());

    let started = Instant::now();
    let judged = adjudicator.judge_all(std::hint::black_box(&view));
    let seconds = started.elapsed().as_secs_f64();

    let mut verdicts: BTreeMap<&'static str, usize> =
        Verdict::ALL.iter().map(|v| (v.as_str(), 0)).collect();
    let mut reasons: BTreeMap<&'static str, usize> =
        ReasonCode::ALL.iter().map(|c| (c.as_str(), 0)).collect();
    for j in &judged {
        *verdicts.entry(j.verdict.as_str()).or_default() += 1;
        for r in &j.reasons {
            *reasons.entry(r.code.as_str()).or_default() += 1;
        }
    }
    let n = judged.len();
    // Dropping a million judgements takes a while; it is not part of adjudicating them.
    drop(judged);
    let rate = n as f64 / seconds.max(f64::MIN_POSITIVE);
    let figure = Figure {
        key: "rules.edges_per_second",
        label: "rule evaluation (judge_all, 1 thread)".to_owned(),
        value: rate,
        unit: Unit::PerSecond("edges"),
        goal: Some(Goal::AtLeast(GOAL_EDGES_PER_SECOND)),
        context: vec![
            ("edges", json!(n)),
            ("faces", json!(view.face_count())),
            ("searches", json!(faces)),
            ("decisions", json!(decision_count)),
            ("seconds", json!(seconds)),
            ("rule_set", json!(adjudicator.version())),
            ("verdicts", json!(verdicts)),
            ("reasons", json!(reasons)),
        ],
    };
    let fired = |m: &BTreeMap<&str, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {}", super::thousands(*v as f64)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let notes = vec![
        format!(
            "rule evaluation: {} edges over {} faces ({} analyst decisions) judged in {:.3} s under rule set {}",
            super::thousands(n as f64),
            super::thousands(faces as f64),
            super::thousands(decision_count as f64),
            seconds,
            adjudicator.version()
        ),
        format!("  verdicts: {}", fired(&verdicts)),
        format!("  reasons fired: {}", fired(&reasons)),
    ];
    Ok(Section {
        figures: vec![figure],
        notes,
    })
}

/// A generated graph of `edges` edges over `faces` faces, with searches and analyst decisions, as
/// the view the rules read; and how many decisions it holds.
fn graph_view(seed: u64, faces: usize, edges: usize) -> Result<(GraphView, usize)> {
    let mut rng = Rng::new(seed, 1);
    let pop = gen::population(&mut rng, faces).context("generating faces")?;
    let hits = gen::hits(&mut rng, &pop, edges).context("generating search hits")?;
    let searches = gen::searches(&mut rng, &pop).context("generating searches")?;
    let decisions = gen::decisions(&mut rng, &pop, &hits);
    let decision_count = decisions.len();
    let view_edges = gen::edges(&pop, &hits).context("generating edges")?;
    drop(hits);
    let nodes: Vec<FaceNode> = pop
        .faces
        .into_iter()
        .zip(pop.subjects)
        .enumerate()
        .map(|(i, (face, subject))| FaceNode {
            face,
            subject,
            seq: i as i64 + 1,
            content_sha256: None,
        })
        .collect();
    let view = GraphView::new(
        nodes,
        view_edges.into_iter().map(|e| (e, None)).collect(),
        searches,
        decisions,
    )
    .context("building the graph view")?;
    Ok((view, decision_count))
}
