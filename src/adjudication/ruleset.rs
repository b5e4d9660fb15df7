//! Rule sets: every threshold and weight of the built-in rules, read from TOML, checked, and versioned
//! by the hash of their normalised content so that every verdict can say which rules produced it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a rule set was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    /// The TOML did not parse or named an unknown setting.
    #[error("rule set is not valid TOML for facegraph: {0}")]
    Toml(#[from] toml::de::Error),
    /// A setting is out of range or inconsistent with another.
    #[error("rule set setting {field} = {value} is invalid: {rule}")]
    Invalid {
        /// The setting, as `section.key`.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        rule: &'static str,
    },
}

/// The thresholds and weights of every built-in rule. Missing settings take the built-in defaults;
/// unknown ones are refused, so that a typo never silently falls back to a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSet {
    /// Similarity bands.
    pub bands: Bands,
    /// Gender contradiction.
    pub gender: GenderRule,
    /// Age contradiction.
    pub age: AgeRule,
    /// Faces in one image.
    pub same_image: Toggle,
    /// Faces of one subject.
    pub same_subject: Toggle,
    /// The same bytes uploaded twice: confirmed past the caps, a fraud lead across subjects.
    pub reused_photo: Toggle,
    /// What follows from analyst decisions through the graph.
    pub analyst: AnalystRule,
    /// How much of the graph around an edge the graph rules read.
    pub neighbourhood: Neighbourhood,
    /// Strong links that the faces around them contradict: weak links of triangles and bridges.
    pub transitivity: TransitivityRule,
    /// Faces that match many subjects: rings (one person behind many accounts) and stars.
    pub hub: HubRule,
    /// Low similarities that strong paths through third faces raise to review.
    pub graph_support: GraphSupportRule,
    /// Small, dark, blurred or turned faces.
    pub quality: QualityRule,
    /// How many hits per searched face and band reach the review queue.
    pub band_retention: BandRetention,
}

/// Similarity bands: at or above `confirm_at` a hit is confirmed, from `review_from` it is reviewed,
/// below it is no match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bands {
    /// Auto-confirm at or above this similarity.
    pub confirm_at: f64,
    /// Review from this similarity.
    pub review_from: f64,
}

/// A rule that is only switched on or off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Toggle {
    /// Whether the rule runs.
    pub enabled: bool,
}

/// Gender contradiction: both faces classified with at least `min_confidence` and different.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenderRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The classifier confidence both faces need for the contradiction to count.
    pub min_confidence: f64,
    /// Score points taken off.
    pub penalty: f64,
}

/// Age contradiction: ranges further apart than `tolerance_years`, which allows for estimation error
/// and for time between the photos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgeRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The gap in years between the two ranges that is still consistent.
    pub tolerance_years: u32,
    /// Score points taken off.
    pub penalty: f64,
}

/// Analyst decisions propagated through the graph (A same as B, B different from C: A different from C).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalystRule {
    /// Whether decisions are followed through must-link chains; direct decisions always count.
    pub follow_implications: bool,
}

/// The bounded neighbourhood every graph rule reads, so that judging one edge stays cheap and a
/// change's effects stay local: a face's neighbours are its `max_degree` most similar faces at or
/// above the review band, and the rules look at most `max_hops` such steps from the edge's faces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Neighbourhood {
    /// How many steps from an edge's faces the transitivity rule looks for faces that tie both
    /// sides together (1: common neighbours; 2: also neighbours of neighbours).
    pub max_hops: usize,
    /// How many of a face's most similar neighbours any graph rule reads.
    pub max_degree: usize,
}

/// Transitivity: a confirm-band edge whose two faces' other neighbours are known to be far apart
/// (below `far_below`) far more often than they match (the share of matching cross pairs, common
/// neighbours included, is below `min_support`) is a weak link or a bridge between two groups. It
/// goes to review when one of the confirm-band edges it competes with at its faces stands on more
/// support, or on as much support and a higher similarity (in a bare triangle: the weaker link).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransitivityRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// A pair below this similarity (an edge, or a search's silence) is far apart and contradicts
    /// the link; the default is the review band's start, so that only pairs the rules would not
    /// review count against a link.
    pub far_below: f64,
    /// The share of supporting cross pairs (of those known to match or to be far apart) at or
    /// above which an edge sits in a dense group and is never doubted, 0-1.
    pub min_support: f64,
    /// Score points taken off.
    pub penalty: f64,
}

/// Hub face: a face that matches at least `min_subjects` distinct other subjects at
/// `min_similarity`. Its neighbours decide what it is: a ring (one person behind many accounts)
/// when at least `min_density` of their pairs match at the review band and at least
/// `min_agreement` of the group agrees on gender and age; a star (a poster, a generic or
/// low-quality face) otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Distinct other subjects that make a hub.
    pub min_subjects: usize,
    /// The similarity a hit needs to count.
    pub min_similarity: f64,
    /// The share of the neighbours' pairs that must match at the review band for a ring, 0-1; a
    /// neighbour belongs to the ring when it matches this share of the other neighbours.
    pub min_density: f64,
    /// The share of the group (the face and its neighbours) whose confident gender and estimated
    /// age agree with the group's for a ring, 0-1.
    pub min_agreement: f64,
    /// Score points taken off a star's edges.
    pub penalty: f64,
}

/// Graph support: an edge below the review band whose faces are both strongly similar (at
/// `min_similarity`) to at least `min_paths` third faces goes to review, never to confirmed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphSupportRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Third faces strongly similar to both faces that raise the pair.
    pub min_paths: usize,
    /// The similarity both legs of a path need.
    pub min_similarity: f64,
}

/// Face quality limits, on Rekognition's scales.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Brightness below this is too dark (0-100).
    pub min_brightness: f64,
    /// Sharpness below this is too blurred (0-100).
    pub min_sharpness: f64,
    /// Yaw beyond this many degrees either way is an extreme pose.
    pub max_yaw: f64,
    /// Pitch beyond this many degrees either way is an extreme pose.
    pub max_pitch: f64,
    /// A face narrower than this share of the image width is too small.
    pub min_face_width: f64,
    /// Score points taken off.
    pub penalty: f64,
}

/// Band retention: per searched face, only the `keep_per_band` best hits in each `band_width`-wide
/// similarity band reach the review queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BandRetention {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Width of a band in similarity points.
    pub band_width: f64,
    /// Hits kept per searched face and band.
    pub keep_per_band: usize,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self {
            bands: Bands::default(),
            gender: GenderRule::default(),
            age: AgeRule::default(),
            same_image: Toggle { enabled: true },
            same_subject: Toggle { enabled: true },
            reused_photo: Toggle { enabled: true },
            analyst: AnalystRule::default(),
            neighbourhood: Neighbourhood::default(),
            transitivity: TransitivityRule::default(),
            hub: HubRule::default(),
            graph_support: GraphSupportRule::default(),
            quality: QualityRule::default(),
            band_retention: BandRetention::default(),
        }
    }
}

impl Default for Bands {
    fn default() -> Self {
        Self {
            confirm_at: 98.5,
            review_from: 90.0,
        }
    }
}

impl Default for Toggle {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Default for GenderRule {
    fn default() -> Self {
        Self {
            enabled: true,
            min_confidence: 90.0,
            penalty: 10.0,
        }
    }
}

impl Default for AgeRule {
    fn default() -> Self {
        Self {
            enabled: true,
            tolerance_years: 10,
            penalty: 5.0,
        }
    }
}

impl Default for AnalystRule {
    fn default() -> Self {
        Self {
            follow_implications: true,
        }
    }
}

impl Default for Neighbourhood {
    fn default() -> Self {
        Self {
            max_hops: 1,
            max_degree: 32,
        }
    }
}

impl Default for TransitivityRule {
    fn default() -> Self {
        Self {
            enabled: true,
            far_below: 90.0,
            min_support: 0.25,
            penalty: 5.0,
        }
    }
}

impl Default for HubRule {
    fn default() -> Self {
        Self {
            enabled: true,
            min_subjects: 5,
            min_similarity: 90.0,
            min_density: 0.5,
            min_agreement: 0.8,
            penalty: 5.0,
        }
    }
}

impl Default for GraphSupportRule {
    fn default() -> Self {
        Self {
            enabled: true,
            min_paths: 2,
            min_similarity: 98.5,
        }
    }
}

impl Default for QualityRule {
    fn default() -> Self {
        Self {
            enabled: true,
            min_brightness: 20.0,
            min_sharpness: 10.0,
            max_yaw: 45.0,
            max_pitch: 35.0,
            min_face_width: 0.02,
            penalty: 5.0,
        }
    }
}

impl Default for BandRetention {
    fn default() -> Self {
        Self {
            enabled: true,
            band_width: 5.0,
            keep_per_band: 3,
        }
    }
}

impl RuleSet {
    /// Parses and checks a rule set from TOML; settings it does not name keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, RuleSetError> {
        let rules: RuleSet = toml::from_str(text)?;
        rules.validate()?;
        Ok(rules)
    }

    /// The rule set as TOML, every setting spelled out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("a rule set always serialises: {e}"))
    }

    /// The version: `rs-` and the first 12 hex digits of the SHA-256 of the normalised content (every
    /// setting, keys sorted, canonical JSON numbers), so that comments, order and spelled-out
    /// defaults do not change it but any changed value does.
    pub fn version(&self) -> String {
        let value = serde_json::to_value(self)
            .unwrap_or_else(|e| unreachable!("a rule set always serialises: {e}"));
        let mut canonical = String::new();
        canonical_json(&value, &mut canonical);
        let digest = Sha256::digest(canonical.as_bytes());
        format!("rs-{}", &hex::encode(digest)[..12])
    }

    /// The similarity band alone, the yardstick of the other rules: the same bands, every other
    /// rule switched off (analyst decisions still count, since nothing else overrides them).
    pub fn band_alone(&self) -> RuleSet {
        let mut r = self.clone();
        r.gender.enabled = false;
        r.age.enabled = false;
        r.same_image.enabled = false;
        r.same_subject.enabled = false;
        r.reused_photo.enabled = false;
        r.transitivity.enabled = false;
        r.hub.enabled = false;
        r.graph_support.enabled = false;
        r.quality.enabled = false;
        r.band_retention.enabled = false;
        r
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), RuleSetError> {
        let percent: [(&'static str, f64); 9] = [
            ("bands.confirm_at", self.bands.confirm_at),
            ("bands.review_from", self.bands.review_from),
            ("gender.min_confidence", self.gender.min_confidence),
            ("transitivity.far_below", self.transitivity.far_below),
            ("hub.min_similarity", self.hub.min_similarity),
            (
                "graph_support.min_similarity",
                self.graph_support.min_similarity,
            ),
            ("quality.min_brightness", self.quality.min_brightness),
            ("quality.min_sharpness", self.quality.min_sharpness),
            (
                "quality.min_face_width",
                self.quality.min_face_width * 100.0,
            ),
        ];
        for (field, value) in percent {
            if !(value.is_finite() && (0.0..=100.0).contains(&value)) {
                return Err(invalid(
                    field,
                    value,
                    "must be from 0 to 100 (min_face_width: from 0 to 1)",
                ));
            }
        }
        if self.bands.review_from > self.bands.confirm_at {
            return Err(invalid(
                "bands.review_from",
                self.bands.review_from,
                "must not be above bands.confirm_at",
            ));
        }
        let penalties = [
            ("gender.penalty", self.gender.penalty),
            ("age.penalty", self.age.penalty),
            ("transitivity.penalty", self.transitivity.penalty),
            ("hub.penalty", self.hub.penalty),
            ("quality.penalty", self.quality.penalty),
        ];
        for (field, value) in penalties {
            if !(value.is_finite() && (0.0..=100.0).contains(&value)) {
                return Err(invalid(field, value, "must be from 0 to 100 score points"));
            }
        }
        for (field, value) in [
            ("quality.max_yaw", self.quality.max_yaw),
            ("quality.max_pitch", self.quality.max_pitch),
        ] {
            if !(value.is_finite() && (0.0..=180.0).contains(&value)) {
                return Err(invalid(field, value, "must be from 0 to 180 degrees"));
            }
        }
        if !(self.band_retention.band_width.is_finite() && self.band_retention.band_width > 0.0) {
            return Err(invalid(
                "band_retention.band_width",
                self.band_retention.band_width,
                "must be above 0",
            ));
        }
        if self.band_retention.keep_per_band == 0 {
            return Err(invalid(
                "band_retention.keep_per_band",
                0,
                "must be at least 1",
            ));
        }
        if self.hub.min_subjects < 2 {
            return Err(invalid(
                "hub.min_subjects",
                self.hub.min_subjects,
                "must be at least 2",
            ));
        }
        for (field, value) in [
            ("transitivity.min_support", self.transitivity.min_support),
            ("hub.min_density", self.hub.min_density),
            ("hub.min_agreement", self.hub.min_agreement),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(invalid(field, value, "must be a share from 0 to 1"));
            }
        }
        if !(1..=MAX_HOPS).contains(&self.neighbourhood.max_hops) {
            return Err(invalid(
                "neighbourhood.max_hops",
                self.neighbourhood.max_hops,
                "must be from 1 to 3",
            ));
        }
        if !(2..=MAX_DEGREE).contains(&self.neighbourhood.max_degree) {
            return Err(invalid(
                "neighbourhood.max_degree",
                self.neighbourhood.max_degree,
                "must be from 2 to 1000",
            ));
        }
        if self.hub.min_subjects > self.neighbourhood.max_degree {
            return Err(invalid(
                "hub.min_subjects",
                self.hub.min_subjects,
                "must not be above neighbourhood.max_degree (a hub is counted among the neighbours read)",
            ));
        }
        if self.graph_support.min_paths == 0 {
            return Err(invalid("graph_support.min_paths", 0, "must be at least 1"));
        }
        if self.graph_support.min_similarity < self.bands.review_from {
            return Err(invalid(
                "graph_support.min_similarity",
                self.graph_support.min_similarity,
                "must not be below bands.review_from (a path through doubtful links supports nothing)",
            ));
        }
        Ok(())
    }
}

/// The largest `neighbourhood.max_hops`: each hop multiplies what a rule may read by `max_degree`.
const MAX_HOPS: usize = 3;
/// The largest `neighbourhood.max_degree`.
const MAX_DEGREE: usize = 1000;

fn invalid(field: &'static str, value: impl std::fmt::Display, rule: &'static str) -> RuleSetError {
    RuleSetError::Invalid {
        field,
        value: value.to_string(),
        rule,
    }
}

/// Writes JSON with object keys sorted at every level, whatever map order serde_json was built with.
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Number(n) => match n.as_f64() {
            // Integers and floats of equal value hash alike: `keep_per_band = 3` and `3.0` are one rule set.
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => out.push_str(&format!("{}", f as i64)),
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml_with_the_same_version() {
        let rules = RuleSet::default();
        let again = RuleSet::from_toml(&rules.to_toml()).unwrap();
        assert_eq!(rules, again);
        assert_eq!(rules.version(), again.version());
        assert!(rules.version().starts_with("rs-"));
    }

    #[test]
    fn comments_order_and_spelled_out_defaults_do_not_change_the_version() {
        let a = RuleSet::from_toml("# mine\n[gender]\npenalty = 10\n[bands]\nconfirm_at = 98.5\n")
            .unwrap();
        assert_eq!(a.version(), RuleSet::default().version());
        let b = RuleSet::from_toml("[bands]\nconfirm_at = 99\n").unwrap();
        assert_ne!(b.version(), RuleSet::default().version());
    }

    #[test]
    fn unknown_and_out_of_range_settings_are_refused_by_name() {
        let err = RuleSet::from_toml("[bands]\nconfirm_att = 99\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("confirm_att"), "{err}");
        let err = RuleSet::from_toml("[bands]\nreview_from = 99.5\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bands.review_from") && err.contains("99.5"),
            "{err}"
        );
        let err = RuleSet::from_toml("[bands]\nconfirm_at = 101\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bands.confirm_at"), "{err}");
        for (toml, field) in [
            ("[hub]\nmin_density = 1.5\n", "hub.min_density"),
            ("[hub]\nmin_agreement = -0.1\n", "hub.min_agreement"),
            (
                "[transitivity]\nmin_support = 2\n",
                "transitivity.min_support",
            ),
            ("[neighbourhood]\nmax_hops = 0\n", "neighbourhood.max_hops"),
            ("[neighbourhood]\nmax_hops = 4\n", "neighbourhood.max_hops"),
            (
                "[neighbourhood]\nmax_degree = 1\n",
                "neighbourhood.max_degree",
            ),
            (
                "[graph_support]\nmin_paths = 0\n",
                "graph_support.min_paths",
            ),
            (
                "[graph_support]\nmin_similarity = 85\n",
                "graph_support.min_similarity",
            ),
        ] {
            let err = RuleSet::from_toml(toml).unwrap_err().to_string();
            assert!(err.contains(field), "{toml}: {err}");
        }
    }

    #[test]
    fn the_band_alone_keeps_the_bands_and_nothing_else() {
        let rules = RuleSet::from_toml("[bands]\nconfirm_at = 99\n").unwrap();
        let alone = rules.band_alone();
        assert_eq!(alone.bands, rules.bands);
        assert!(!alone.gender.enabled && !alone.transitivity.enabled && !alone.hub.enabled);
        assert!(!alone.graph_support.enabled && !alone.band_retention.enabled);
        assert_ne!(alone.version(), rules.version());
        alone.validate().unwrap();
    }
}
