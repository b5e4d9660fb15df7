//! Analyst decisions: append-only history of "same person" and "different people" on a pair of faces.

use super::{FacePair, Timestamp};

/// What an analyst decided about a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// The two faces are one person (must-link).
    Same,
    /// The two faces are different people (cannot-link).
    Different,
}

impl DecisionKind {
    /// The stable name: `same` or `different`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Different => "different",
        }
    }

    /// Parses `same` or `different`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "same" => Some(Self::Same),
            "different" => Some(Self::Different),
            _ => None,
        }
    }
}

/// One analyst decision; a later decision on the same pair supersedes it, and both stay on record.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The pair decided on.
    pub pair: FacePair,
    /// What was decided.
    pub kind: DecisionKind,
    /// Who decided.
    pub analyst: String,
    /// When.
    pub at: Timestamp,
    /// The analyst's note.
    pub note: Option<String>,
}
