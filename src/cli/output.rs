//! Every shape the CLI prints: JSON lines for scripts (the REST API's own types from
//! [`crate::api::wire`], so the two cannot drift), aligned tables and summaries for people, CSV for
//! spreadsheets. What scripts read is an interface: the `stats` lines and the JSON field names stay
//! as they are; fields are added, never renamed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::photos::eval_adjudication::EvalRun;
use super::photos::ingest::PhotoIngestSummary;
use super::photos::PhotoFile;
use crate::adjudication::{Adjudicator, RuleSet};
use crate::api::wire::{
    ChangeOut, ClusterSummary, CollectionOut, ExplanationOut, MatchOut, SearchOut,
};
use crate::engine::calls::{AvoidedBy, CallCounts, Operation, Prices};
use crate::files::FileError;
use crate::model::{similarity_decimals, DecisionKind, Evidence, FaceId, Judgement};
use crate::service::{
    ClusterView, CollectionView, DecisionImport, Explanation, IngestReport, MatchView,
    Readjudication, SavedFileError, SearchReport, StagedImage, VerdictChange,
};
use crate::store::{FaceRecord, StoreStats};

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

/// A similarity or score as people read it: two decimals, more near 100 where the local engine's
/// genuine pairs crowd, so that different values do not print alike.
pub fn similarity(v: f64) -> String {
    format!("{:.*}", similarity_decimals(v), v)
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

/// The clusters line shared by every command that adjudicates.
pub fn cluster_counts(r: &Readjudication) -> String {
    format!("Clusters: {}, fraud leads: {}", r.clusters, r.fraud_leads)
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

/// An error with its causes, for a line of a run's report.
pub fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    crate::errors::chain(e)
}

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

/// The Rekognition bill of a run: `Rekognition calls: N made, M avoided (…)`, then the calls made
/// by operation, the calls avoided by reason, and the estimated cost of both.
pub fn rekognition_calls(counts: &CallCounts, prices: &Prices, out: &mut impl Write) -> Result<()> {
    let reasons: Vec<String> = AvoidedBy::ALL
        .iter()
        .map(|r| {
            let name = match r {
                AvoidedBy::Prefilter => "pre-filter",
                AvoidedBy::Duplicate => "duplicates",
                AvoidedBy::BloomFilter => "Bloom filter",
            };
            format!("{name} {}", counts.avoided_by(*r))
        })
        .collect();
    writeln!(
        out,
        "Rekognition calls: {} made, {} avoided ({})",
        counts.made_total(),
        counts.avoided_total(),
        reasons.join(", ")
    )?;
    let by_op = |pick: &dyn Fn(Operation) -> u64| -> String {
        let parts: Vec<String> = Operation::ALL
            .iter()
            .filter_map(|op| {
                let n = pick(*op);
                (n > 0).then(|| format!("{} {n}", op.as_str()))
            })
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    };
    writeln!(
        out,
        "  made: {}",
        by_op(&|op| counts.made.get(&op).copied().unwrap_or(0))
    )?;
    for reason in AvoidedBy::ALL {
        if counts.avoided_by(reason) > 0 {
            writeln!(
                out,
                "  avoided {}: {}",
                reason.describe(),
                by_op(&|op| counts.avoided.get(&(reason, op)).copied().unwrap_or(0))
            )?;
        }
    }
    let cost = prices.estimate(counts);
    let priced: Vec<String> = Operation::ALL
        .iter()
        .filter(|op| prices.per_1000(**op) > 0.0)
        .map(|op| format!("{} {}", op.as_str(), prices.per_1000(*op)))
        .collect();
    writeln!(
        out,
        "  estimated cost: {:.4} {cur} made, {:.4} {cur} avoided (per 1,000 calls: {}; estimates, set [rekognition.price_per_1000] to the account's prices)",
        cost.made,
        cost.avoided,
        if priced.is_empty() { "all free".to_owned() } else { priced.join(", ") },
        cur = prices.currency,
    )?;
    Ok(())
}

/// Collections as JSON lines (the REST API's `CollectionOut`).
pub fn collection_lines(views: &[CollectionView], out: &mut impl Write) -> Result<()> {
    json_lines(views.iter().map(CollectionOut::from), out)
}

/// Collections as a table: id, faces, model version, created, and the routing of each.
pub fn collection_table(views: &[CollectionView], out: &mut impl Write) -> Result<()> {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.info.collection_id.to_string(),
                v.info.face_count.to_string(),
                v.info.face_model_version.clone(),
                v.info.created_at.to_string(),
                routing_note(v),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &["Collection", "Faces", "Face model", "Created", "Routing"],
            &rows
        )
    )?;
    Ok(())
}

fn routing_note(v: &CollectionView) -> String {
    match (&v.route, &v.member_of) {
        (Some(r), _) => format!(
            "routed by {}, {} collections of at most {} faces, searches cover {}",
            r.key,
            r.collections.len(),
            r.max_faces,
            if r.search == "all" {
                "all of them"
            } else {
                "the face's own key"
            }
        ),
        (None, Some((routed, key))) => format!("{key} of {routed}"),
        (None, None) => "-".to_owned(),
    }
}

/// One collection for people: its figures, then a routed id's family collection by collection.
pub fn collection_detail(v: &CollectionView, out: &mut impl Write) -> Result<()> {
    writeln!(out, "Collection: {}", v.info.collection_id)?;
    writeln!(out, "Faces: {}", v.info.face_count)?;
    writeln!(out, "Face model: {}", v.info.face_model_version)?;
    writeln!(out, "Created: {}", v.info.created_at)?;
    writeln!(out, "Routing: {}", routing_note(v))?;
    if let Some(r) = &v.route {
        let rows: Vec<Vec<String>> = r
            .collections
            .iter()
            .map(|c| {
                vec![
                    c.collection_id.to_string(),
                    c.face_count.to_string(),
                    c.created_at.to_string(),
                ]
            })
            .collect();
        write!(out, "{}", table(&["Collection", "Faces", "Created"], &rows))?;
    }
    Ok(())
}

/// A search's result as JSON (the REST API's `SearchOut`).
pub fn search_json(report: &SearchReport, out: &mut impl Write) -> Result<()> {
    json_lines(std::iter::once(SearchOut::from(report)), out)
}

/// A search's result for people: what was searched, then the hits with what the graph knows.
pub fn search_table(report: &SearchReport, out: &mut impl Write) -> Result<()> {
    match (&report.searched_face, &report.searched_bbox) {
        (Some(face), _) => writeln!(
            out,
            "Searched collection {} for face {face}: {} faces found",
            report.collection_id,
            report.hits.len()
        )?,
        (None, Some(b)) => writeln!(
            out,
            "Searched collection {} for the largest face of the image (left {:.3}, top {:.3}, width {:.3}, height {:.3}): {} faces found",
            report.collection_id,
            b.left,
            b.top,
            b.width,
            b.height,
            report.hits.len()
        )?,
        (None, None) => writeln!(
            out,
            "Searched collection {}: {} faces found",
            report.collection_id,
            report.hits.len()
        )?,
    }
    let rows: Vec<Vec<String>> = report
        .hits
        .iter()
        .map(|h| {
            let f = h.face.as_ref();
            vec![
                h.found.face_id.to_string(),
                similarity(h.found.similarity.get()),
                h.found
                    .external_image_id
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
                f.and_then(|f| f.subject.as_ref())
                    .map_or("-".to_owned(), ToString::to_string),
                f.map_or("(not in the graph)".to_owned(), |f| {
                    f.face.collection_id.to_string()
                }),
            ]
        })
        .collect();
    if !rows.is_empty() {
        write!(
            out,
            "{}",
            table(
                &[
                    "Face ID",
                    "Similarity",
                    "External Image ID",
                    "Subject",
                    "Collection"
                ],
                &rows
            )
        )?;
    }
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

/// A line for the operator on standard error, prefixed with the program's name.
pub fn notice(message: &str) {
    eprintln!("facegraph: {message}");
}

/// A warning for the operator on standard error.
pub fn warning(message: &str) {
    eprintln!("facegraph: WARNING: {message}");
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
