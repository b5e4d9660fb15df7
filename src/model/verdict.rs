//! Verdicts and the reasons behind them: every verdict says which rule set produced it and which rules
//! fired, each with a stable code, a sentence an analyst can read, and the numbers it used.

use std::borrow::Cow;
use std::fmt;

/// The outcome of adjudicating a candidate match, from strongest to weakest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The same person: emitted downstream.
    Confirmed,
    /// Doubtful: an analyst should look.
    Review,
    /// Not a match.
    Rejected,
}

impl Verdict {
    /// All verdicts, strongest first.
    pub const ALL: [Verdict; 3] = [Verdict::Confirmed, Verdict::Review, Verdict::Rejected];

    /// The verdict's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Review => "review",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a verdict name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The weaker of two verdicts (a cap).
    pub fn at_most(self, cap: Verdict) -> Verdict {
        self.max(cap)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable codes of the built-in rules; scripts and dashboards key on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// Where the similarity falls among the bands.
    SimilarityBand,
    /// Both faces confidently classified with different genders.
    GenderContradiction,
    /// Age ranges too far apart.
    AgeContradiction,
    /// Both faces are in one image.
    SameImage,
    /// Both faces belong to one subject.
    SameSubject,
    /// The same image bytes uploaded twice: one photo, so one person, whatever the quality.
    ReusedPhoto,
    /// An analyst decided (directly or by implication) that the faces are one person.
    AnalystSame,
    /// An analyst decided the faces are different people.
    AnalystDifferent,
    /// Analyst decisions elsewhere in the graph imply different people.
    ImpliedDifferent,
    /// A confirm-band link that its neighbourhood contradicts: a triangle's weaker link, or a
    /// bridge between two groups whose other pairs across are far apart.
    Transitivity,
    /// A face that matches many distinct subjects who do not look like one person (a star).
    HubFace,
    /// A face that matches many distinct subjects who also match each other: one person behind
    /// several accounts; its matches keep their band's verdict.
    Ring,
    /// Strong paths through third faces raise a pair below the review band to review.
    GraphSupport,
    /// A small, dark, blurred or extreme-pose face.
    LowQuality,
    /// Held back from the review queue by band retention.
    BandRetention,
}

impl ReasonCode {
    /// Every code.
    pub const ALL: [ReasonCode; 15] = [
        Self::SimilarityBand,
        Self::GenderContradiction,
        Self::AgeContradiction,
        Self::SameImage,
        Self::SameSubject,
        Self::ReusedPhoto,
        Self::AnalystSame,
        Self::AnalystDifferent,
        Self::ImpliedDifferent,
        Self::Transitivity,
        Self::HubFace,
        Self::Ring,
        Self::GraphSupport,
        Self::LowQuality,
        Self::BandRetention,
    ];

    /// The code's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SimilarityBand => "similarity_band",
            Self::GenderContradiction => "gender_contradiction",
            Self::AgeContradiction => "age_contradiction",
            Self::SameImage => "same_image",
            Self::SameSubject => "same_subject",
            Self::ReusedPhoto => "reused_photo",
            Self::AnalystSame => "analyst_same",
            Self::AnalystDifferent => "analyst_different",
            Self::ImpliedDifferent => "implied_different",
            Self::Transitivity => "transitivity",
            Self::HubFace => "hub_face",
            Self::Ring => "ring",
            Self::GraphSupport => "graph_support",
            Self::LowQuality => "low_quality",
            Self::BandRetention => "band_retention",
        }
    }

    /// Parses a code name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One number or name a rule used, such as `("similarity", 97.99)`.
#[derive(Clone, Debug, PartialEq)]
pub enum Evidence {
    /// A number.
    Number(f64),
    /// A name or id.
    Text(String),
}

impl From<f64> for Evidence {
    fn from(v: f64) -> Self {
        Self::Number(v)
    }
}

impl From<f32> for Evidence {
    fn from(v: f32) -> Self {
        // Through the shortest decimal form, so that 97.99f32 reads back as 97.99 and not 97.98999786.
        Self::Number(v.to_string().parse().unwrap_or(f64::from(v)))
    }
}

impl From<crate::model::Similarity> for Evidence {
    fn from(v: crate::model::Similarity) -> Self {
        Self::Number(v.get())
    }
}

impl From<crate::model::Confidence> for Evidence {
    fn from(v: crate::model::Confidence) -> Self {
        Self::Number(v.get())
    }
}

impl From<u32> for Evidence {
    fn from(v: u32) -> Self {
        Self::Number(f64::from(v))
    }
}

impl From<usize> for Evidence {
    fn from(v: usize) -> Self {
        Self::Number(v as f64)
    }
}

impl From<String> for Evidence {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for Evidence {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

/// Why a rule affected a verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    /// The rule's stable code.
    pub code: ReasonCode,
    /// A sentence an analyst can read.
    pub message: String,
    /// The numbers and names the rule used, in a stable order. Keys are static for the built-in rules
    /// (no allocation on the hot path) and owned when read back from a store.
    pub evidence: Vec<(Cow<'static, str>, Evidence)>,
}

impl Reason {
    /// A reason with its evidence.
    pub fn new(
        code: ReasonCode,
        message: impl Into<String>,
        evidence: Vec<(&'static str, Evidence)>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            evidence: evidence
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect(),
        }
    }
}

/// The result of adjudicating one edge.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// A ranking score, 0-100: the similarity adjusted by the rules' penalties.
    pub score: f64,
    /// The version of the rule set that produced it.
    pub rule_set: String,
    /// The rules that fired, the similarity band first.
    pub reasons: Vec<Reason>,
}

impl Judgement {
    /// Whether a rule with this code fired.
    pub fn has(&self, code: ReasonCode) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        for c in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(Verdict::Confirmed.at_most(Verdict::Review), Verdict::Review);
        assert_eq!(
            Verdict::Rejected.at_most(Verdict::Review),
            Verdict::Rejected
        );
    }
}
