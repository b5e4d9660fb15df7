//! What the graph commands print: `matches`, `review`, `explain`, `decide`, `clusters`, `what-if`,
//! `rules`, `adjudicate` and `stats`, as tables, JSON lines, CSV and text.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::{json_lines, reason, similarity, table};
use crate::adjudication::{Adjudicator, RuleSet};
use crate::api::wire::{ChangeOut, ClusterSummary, ExplanationOut, MatchOut};
use crate::model::{DecisionKind, Evidence, FaceId, Judgement};
use crate::service::{
    ClusterView, DecisionImport, Explanation, MatchView, Readjudication, VerdictChange,
};
use crate::store::{FaceRecord, StoreStats};

/// Matches as JSON lines.
pub fn match_lines(matches: &[MatchView], out: &mut impl Write) -> Result<()> {
    json_lines(matches.iter().map(MatchOut::from), out)
}

/// Verdict changes as JSON lines.
pub fn change_lines(changes: &[VerdictChange], out: &mut impl Write) -> Result<()> {
    json_lines(changes.iter().map(ChangeOut::from), out)
}

/// Clusters as JSON lines.
pub fn cluster_lines(clusters: &[ClusterView], out: &mut impl Write) -> Result<()> {
    json_lines(clusters.iter().map(ClusterSummary::from), out)
}

/// The reason codes of a judgement, joined by commas, the similarity band left out.
pub fn codes(j: &Judgement) -> String {
    let codes: Vec<&str> = j
        .reasons
        .iter()
        .map(|r| r.code.as_str())
        .filter(|c| *c != "similarity_band")
        .collect();
    if codes.is_empty() {
        "-".to_owned()
    } else {
        codes.join(",")
    }
}

fn face_label(f: &Option<FaceRecord>) -> String {
    match f {
        Some(f) => {
            let ext = f
                .face
                .external_image_id
                .as_ref()
                .map_or("-", |e| e.as_str());
            let subject = f.subject.as_ref().map_or("-", |s| s.as_str());
            format!("{ext} ({subject})")
        }
        None => "?".to_owned(),
    }
}

/// Matches as a table for people.
pub fn match_table(matches: &[MatchView], out: &mut impl Write) -> Result<()> {
    let rows: Vec<Vec<String>> = matches
        .iter()
        .map(|m| {
            let j = m.judgement.as_ref();
            vec![
                m.edge.pair.a().to_string(),
                face_label(&m.face_a),
                m.edge.pair.b().to_string(),
                face_label(&m.face_b),
                similarity(m.edge.similarity().get()),
                j.map_or("-".to_owned(), |j| j.verdict.to_string()),
                j.map_or("-".to_owned(), |j| similarity(j.score)),
                j.map_or("-".to_owned(), codes),
            ]
        })
        .collect();
    let header = [
        "Face A",
        "Image A (subject)",
        "Face B",
        "Image B (subject)",
        "Similarity",
        "Verdict",
        "Score",
        "Reasons",
    ];
    write!(out, "{}", table(&header, &rows))?;
    Ok(())
}

fn change_table(changes: &[VerdictChange]) -> String {
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.pair.a().to_string(),
                c.pair.b().to_string(),
                c.before.map_or("-".to_owned(), |v| v.to_string()),
                c.after.verdict.to_string(),
                codes(&c.after),
            ]
        })
        .collect();
    table(&["Face A", "Face B", "Before", "After", "Reasons"], &rows)
}

/// The review queue as CSV for a spreadsheet, with the empty `decision` and `note` columns that
/// `decide --from` reads back.
pub fn review_csv(queue: &[MatchView], out: &mut impl Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "rank",
        "face_a",
        "face_b",
        "similarity",
        "score",
        "verdict",
        "external_image_id_a",
        "external_image_id_b",
        "subject_a",
        "subject_b",
        "reason_codes",
        "reasons",
        "rule_set",
        "decision",
        "note",
    ])?;
    for (i, m) in queue.iter().enumerate() {
        let j = m.judgement.as_ref();
        let ext = |f: &Option<FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.face.external_image_id.as_ref())
                .map_or(String::new(), |e| e.to_string())
        };
        let subject = |f: &Option<FaceRecord>| {
            f.as_ref()
                .and_then(|f| f.subject.as_ref())
                .map_or(String::new(), |s| s.to_string())
        };
        let messages = j.map_or(String::new(), |j| {
            j.reasons
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        });
        w.write_record([
            (i + 1).to_string(),
            m.edge.pair.a().to_string(),
            m.edge.pair.b().to_string(),
            similarity(m.edge.similarity().get()),
            j.map_or(String::new(), |j| similarity(j.score)),
            j.map_or(String::new(), |j| j.verdict.to_string()),
            ext(&m.face_a),
            ext(&m.face_b),
            subject(&m.face_a),
            subject(&m.face_b),
            j.map_or(String::new(), codes),
            messages,
            j.map_or(String::new(), |j| j.rule_set.clone()),
            String::new(),
            String::new(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// The explanation of a pair as one pretty JSON object.
pub fn explanation_json(ex: &Explanation, out: &mut impl Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, &ExplanationOut::from(ex))?;
    out.write_all(b"\n")?;
    Ok(())
}

fn describe_face(f: &FaceRecord) -> String {
    let a = &f.face.attributes;
    let mut parts = vec![
        f.face.face_id.to_string(),
        format!(
            "image {}",
            f.face
                .external_image_id
                .as_ref()
                .map_or(f.face.image_id.as_str(), |e| e.as_str())
        ),
        format!(
            "subject {}",
            f.subject.as_ref().map_or("unknown", |s| s.as_str())
        ),
    ];
    if let Some(g) = a.gender {
        parts.push(format!(
            "{} {:.1}%",
            g.value.as_str().to_lowercase(),
            g.confidence.get()
        ));
    }
    if let Some(r) = a.age {
        parts.push(format!("age {}-{}", r.low(), r.high()));
    }
    if let Some(q) = a.quality {
        parts.push(format!(
            "brightness {:.0} sharpness {:.0}",
            q.brightness(),
            q.sharpness()
        ));
    }
    parts.join(", ")
}

fn judgement_text(j: &Judgement, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "  verdict {} (score {}, rule set {})",
        j.verdict,
        similarity(j.score),
        j.rule_set
    )?;
    for r in &j.reasons {
        let ev: Vec<String> = r
            .evidence
            .iter()
            .map(|(k, v)| match v {
                Evidence::Number(n) => format!("{k}={n}"),
                Evidence::Text(t) => format!("{k}={t}"),
            })
            .collect();
        writeln!(out, "  - {}: {}", r.code, r.message)?;
        if !ev.is_empty() {
            writeln!(out, "      [{}]", ev.join(", "))?;
        }
    }
    Ok(())
}

/// The explanation of a pair for people.
pub fn explanation_text(ex: &Explanation, out: &mut impl Write) -> Result<()> {
    writeln!(out, "Face A: {}", describe_face(&ex.face_a))?;
    writeln!(out, "Face B: {}", describe_face(&ex.face_b))?;
    match &ex.stored {
        None => writeln!(
            out,
            "No search has found these two faces similar: there is no match to judge."
        )?,
        Some(m) => {
            let dir = |s: Option<crate::model::Similarity>| {
                s.map_or("not searched".to_owned(), |s| similarity(s.get()))
            };
            writeln!(
                out,
                "Similarity {} (searching A found B: {}; searching B found A: {})",
                similarity(m.edge.similarity().get()),
                dir(m.edge.similarity_ab),
                dir(m.edge.similarity_ba)
            )?;
            match &m.judgement {
                Some(j) => {
                    writeln!(out, "Stored verdict:")?;
                    judgement_text(j, out)?;
                }
                None => writeln!(out, "Not adjudicated yet.")?,
            }
            if let Some(cur) = &ex.current {
                if m.judgement.as_ref() != Some(cur) {
                    writeln!(out, "Under the current rule set it would be:")?;
                    judgement_text(cur, out)?;
                }
            }
        }
    }
    if ex.decisions.is_empty() {
        writeln!(out, "No analyst decisions on this pair.")?;
    } else {
        writeln!(out, "Analyst decisions (oldest first):")?;
        for d in &ex.decisions {
            let note = d
                .note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {} {} decided {}{}",
                d.at,
                d.analyst,
                d.kind.as_str(),
                note
            )?;
        }
    }
    Ok(())
}

/// What `decide` recorded and changed.
pub fn decision_summary(
    analyst: &str,
    a: &FaceId,
    b: &FaceId,
    kind: DecisionKind,
    result: &Readjudication,
    out: &mut impl Write,
) -> Result<()> {
    let what = match kind {
        DecisionKind::Same => "the same person",
        DecisionKind::Different => "different people",
    };
    writeln!(
        out,
        "Recorded: analyst {} decided {a} and {b} are {what}.",
        analyst.trim()
    )?;
    writeln!(out, "{} verdicts changed.", result.changes.len())?;
    if !result.changes.is_empty() {
        write!(out, "{}", change_table(&result.changes))?;
    }
    writeln!(
        out,
        "{} clusters, {} fraud leads.",
        result.clusters, result.fraud_leads
    )?;
    Ok(())
}

/// Clusters as a table for people.
pub fn cluster_table(clusters: &[ClusterView], out: &mut impl Write) -> Result<()> {
    let rows: Vec<Vec<String>> = clusters
        .iter()
        .map(|c| {
            vec![
                c.cluster.id.clone(),
                c.cluster.faces.len().to_string(),
                c.subjects.len().to_string(),
                if c.subjects.len() >= 2 { "yes" } else { "no" }.to_owned(),
                c.subjects
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    let header = ["Cluster", "Faces", "Subjects", "Fraud lead", "Subject ids"];
    write!(out, "{}", table(&header, &rows))?;
    writeln!(out, "{} clusters", clusters.len())?;
    Ok(())
}

/// What `what-if` found.
pub fn what_if_summary(
    changes: &[VerdictChange],
    other: &Adjudicator,
    current: &Adjudicator,
    out: &mut impl Write,
) -> Result<()> {
    if !changes.is_empty() {
        write!(out, "{}", change_table(changes))?;
    }
    writeln!(
        out,
        "{} verdicts would change under rule set {} (current {}); nothing was changed.",
        changes.len(),
        other.version(),
        current.version()
    )?;
    Ok(())
}

/// The effective rule set as TOML with its version and source.
pub fn rule_set(rules: &RuleSet, file: Option<&Path>, out: &mut impl Write) -> Result<()> {
    writeln!(out, "# facegraph rule set, version {}", rules.version())?;
    writeln!(
        out,
        "# source: {}",
        file.map_or("built-in default".to_owned(), |p| p.display().to_string())
    )?;
    write!(out, "{}", rules.to_toml())?;
    Ok(())
}

/// What `adjudicate` did.
pub fn adjudication_summary(
    r: &Readjudication,
    rules: &Adjudicator,
    out: &mut impl Write,
) -> Result<()> {
    writeln!(
        out,
        "Adjudicated {} edges under rule set {}: {} verdicts changed. confirmed {}, review {} ({} in the queue), \
         rejected {}; {} clusters, {} fraud leads.",
        r.judged,
        rules.version(),
        r.changes.len(),
        r.counts.confirmed,
        r.counts.review,
        r.counts.queued,
        r.counts.rejected,
        r.clusters,
        r.fraud_leads
    )?;
    Ok(())
}

/// `stats`: one `name count` line each.
pub fn stats(s: &StoreStats, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "collections {}\nimages {}\nfaces {}\nsubjects {}\nedges {}\ndecisions {}",
        s.collections, s.images, s.faces, s.subjects, s.edges, s.decisions
    )?;
    Ok(())
}

/// What `decide --from` did: rows applied, skipped as already applied, not decided, refused by
/// line, and the verdicts the one re-adjudication changed.
pub fn decision_import_summary(import: &DecisionImport, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "Decisions: {} applied, {} already applied, {} rows not decided, {} refused",
        import.applied.len(),
        import.already_applied.len(),
        import.undecided,
        import.refused.len()
    )?;
    for (line, e) in &import.refused {
        writeln!(out, "Refused line {line}: {}", reason(e))?;
    }
    match &import.adjudication {
        Some(r) => {
            writeln!(out, "{} verdicts changed.", r.changes.len())?;
            if !r.changes.is_empty() {
                write!(out, "{}", change_table(&r.changes))?;
            }
            writeln!(
                out,
                "{} clusters, {} fraud leads.",
                r.clusters, r.fraud_leads
            )?;
        }
        None => writeln!(out, "Nothing new to record; the graph is unchanged.")?,
    }
    Ok(())
}
