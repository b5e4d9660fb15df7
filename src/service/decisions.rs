//! Analyst decisions: one at a time (`decide A B same`), or a filled review sheet at once (the
//! spreadsheet loop: `review --csv` out, a `decision` column filled in, `decide --from` back in),
//! each followed by one re-adjudication.

use std::collections::HashMap;
use std::path::Path;

use crate::model::{Decision, DecisionKind, FaceId, FacePair, ParseError, Timestamp};

use super::{Facegraph, Readjudication, ServiceError};

/// Why a row of a decision sheet was not applied; the other rows are.
#[derive(Debug, thiserror::Error)]
pub enum SheetRowError {
    /// A face column does not hold a face id.
    #[error("{column} is not a face id")]
    Face {
        /// `face_a` or `face_b`.
        column: &'static str,
        /// Why.
        #[source]
        source: ParseError,
    },
    /// Both columns name the same face.
    #[error("face_a and face_b are the same face ({0})")]
    SamePair(FaceId),
    /// A face is not in the graph.
    #[error("face {0} is not in the graph")]
    UnknownFace(FaceId),
    /// The decision is neither `same` nor `different`.
    #[error("decision {0:?} is not same or different (or empty, for a row not decided)")]
    Decision(String),
}

/// A decision sheet as read: the rows that say something, by line.
#[derive(Debug, Default)]
pub struct DecisionSheet {
    /// Rows with a decision, by line (the header is line 1).
    pub rows: Vec<(usize, Result<SheetDecision, SheetRowError>)>,
    /// Rows whose decision is empty: not decided yet.
    pub undecided: usize,
}

/// One decided row.
#[derive(Clone, Debug, PartialEq)]
pub struct SheetDecision {
    /// The pair.
    pub pair: FacePair,
    /// What the analyst decided.
    pub kind: DecisionKind,
    /// The analyst's note, if any.
    pub note: Option<String>,
}

/// What importing a sheet did.
#[derive(Debug, Default)]
pub struct DecisionImport {
    /// Lines recorded as decisions.
    pub applied: Vec<usize>,
    /// Lines skipped because the pair's latest decision is this one already (a sheet imported twice).
    pub already_applied: Vec<usize>,
    /// Rows not decided.
    pub undecided: usize,
    /// Lines refused, with why.
    pub refused: Vec<(usize, SheetRowError)>,
    /// The re-adjudication that followed, when anything was applied.
    pub adjudication: Option<Readjudication>,
}

/// Reads a decision sheet: a CSV with the columns `face_a`, `face_b` and `decision` (`same`,
/// `different` or empty), and optionally `note`, in any order among others (the review queue's
/// CSV with its two empty columns filled in). A bad row is kept with its error; a sheet without
/// those columns is refused whole.
pub fn read_decision_sheet(path: &Path) -> Result<DecisionSheet, ServiceError> {
    let bad =
        |msg: String| ServiceError::Invalid(format!("decision sheet {}: {msg}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(fa), Some(fb), Some(dc)) = (col("face_a"), col("face_b"), col("decision")) else {
        return Err(bad(format!(
            "the header must name the columns face_a, face_b and decision (found: {})",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let note_col = col("note");
    let mut sheet = DecisionSheet::default();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| bad(format!("line {line}: {e}")))?;
        let cell = |c: usize| row.get(c).unwrap_or_default();
        if cell(dc).is_empty() {
            sheet.undecided += 1;
            continue;
        }
        sheet.rows.push((
            line,
            parse_row(cell(fa), cell(fb), cell(dc), note_col.map(cell)),
        ));
    }
    Ok(sheet)
}

fn parse_row(
    a: &str,
    b: &str,
    decision: &str,
    note: Option<&str>,
) -> Result<SheetDecision, SheetRowError> {
    let face =
        |column, s: &str| FaceId::parse(s).map_err(|source| SheetRowError::Face { column, source });
    let (a, b) = (face("face_a", a)?, face("face_b", b)?);
    let kind = DecisionKind::parse(&decision.to_ascii_lowercase())
        .ok_or_else(|| SheetRowError::Decision(decision.to_owned()))?;
    let pair = FacePair::new(a.clone(), b).ok_or(SheetRowError::SamePair(a))?;
    Ok(SheetDecision {
        pair,
        kind,
        note: note.map(str::to_owned).filter(|n| !n.is_empty()),
    })
}

impl Facegraph {
    /// Records an analyst's decision and re-adjudicates what it touches; returns the verdicts that changed.
    pub fn decide(
        &self,
        a: &FaceId,
        b: &FaceId,
        kind: DecisionKind,
        analyst: &str,
        note: Option<String>,
    ) -> Result<Readjudication, ServiceError> {
        let pair =
            FacePair::new(a.clone(), b.clone()).ok_or_else(|| ServiceError::SamePair(a.clone()))?;
        let analyst = check_analyst(analyst)?;
        self.two_faces(&pair)?;
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        self.store.record_decision(&Decision {
            pair,
            kind,
            analyst: analyst.to_owned(),
            at: Timestamp::now(),
            note,
        })?;
        self.adjudicate_changes()
    }

    /// Records every decided row of a sheet as a decision by `analyst`, skipping rows whose pair's
    /// latest decision is already the same (kind, analyst and note), refusing bad rows by line, then
    /// re-adjudicates once.
    pub fn import_decisions(
        &self,
        sheet: DecisionSheet,
        analyst: &str,
    ) -> Result<DecisionImport, ServiceError> {
        let analyst = check_analyst(analyst)?;
        let mut latest: HashMap<FacePair, Decision> = HashMap::new();
        for d in self.store.decisions()? {
            latest.insert(d.pair.clone(), d);
        }
        let mut ids: Vec<FaceId> = sheet
            .rows
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .flat_map(|d| [d.pair.a().clone(), d.pair.b().clone()])
            .collect();
        ids.sort();
        ids.dedup();
        let known: std::collections::HashSet<FaceId> = self
            .store
            .faces(&ids)?
            .into_iter()
            .map(|f| f.face.face_id)
            .collect();
        let mut out = DecisionImport {
            undecided: sheet.undecided,
            ..DecisionImport::default()
        };
        for (line, row) in sheet.rows {
            let d = match row {
                Ok(d) => d,
                Err(e) => {
                    out.refused.push((line, e));
                    continue;
                }
            };
            if let Some(unknown) = [d.pair.a(), d.pair.b()]
                .into_iter()
                .find(|f| !known.contains(*f))
            {
                out.refused
                    .push((line, SheetRowError::UnknownFace(unknown.clone())));
                continue;
            }
            let same_as_latest = latest
                .get(&d.pair)
                .is_some_and(|l| l.kind == d.kind && l.analyst == analyst && l.note == d.note);
            if same_as_latest {
                out.already_applied.push(line);
                continue;
            }
            let decision = Decision {
                pair: d.pair.clone(),
                kind: d.kind,
                analyst: analyst.to_owned(),
                at: Timestamp::now(),
                note: d.note,
            };
            self.store.record_decision(&decision)?;
            latest.insert(d.pair, decision);
            out.applied.push(line);
        }
        if !out.applied.is_empty() {
            out.adjudication = Some(self.adjudicate_changes()?);
        }
        Ok(out)
    }
}

fn check_analyst(analyst: &str) -> Result<&str, ServiceError> {
    let analyst = analyst.trim();
    if analyst.is_empty() || analyst.chars().count() > 255 || analyst.chars().any(char::is_control)
    {
        return Err(ServiceError::Invalid(
            "the analyst name must be 1 to 255 printable characters".to_owned(),
        ));
    }
    Ok(analyst)
}
