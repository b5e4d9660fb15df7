//! The domain model: validated identifiers and values, faces, similarity edges, verdicts and analyst
//! decisions. Everything here is parsed at the edge and trusted afterwards; nothing here does I/O.

mod decision;
mod edge;
mod face;
mod ids;
mod values;
mod verdict;

pub use decision::{Decision, DecisionKind};
pub use edge::{Edge, FacePair, Observation, SearchRecord};
pub use face::{
    AgeRange, BoundingBox, Collection, Face, FaceAttributes, Gender, GenderValue, Image, Pose,
    Quality,
};
pub use ids::{CollectionId, ContentHash, ExternalImageId, FaceId, ImageId, SubjectId};
pub use values::{similarity_decimals, Confidence, Similarity, Timestamp};
pub use verdict::{Evidence, Judgement, Reason, ReasonCode, Verdict};

/// Why a value was refused at the edge of the domain; the message names the value and the rule it
/// broke, so that it can be shown to a user as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {rule}")]
pub struct ParseError {
    /// Which kind of value was being parsed ("similarity", "face id", ...).
    pub what: &'static str,
    /// The refused input, shortened when long.
    pub value: String,
    /// The rule it broke, as a sentence fragment.
    pub rule: String,
}

impl ParseError {
    pub(crate) fn new(
        what: &'static str,
        value: impl std::fmt::Display,
        rule: impl Into<String>,
    ) -> Self {
        let mut value = value.to_string();
        if value.len() > 80 {
            let cut = (0..=80)
                .rev()
                .find(|i| value.is_char_boundary(*i))
                .unwrap_or(0);
            value.truncate(cut);
            value.push('…');
        }
        Self {
            what,
            value,
            rule: rule.into(),
        }
    }
}
