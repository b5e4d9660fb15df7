//! The adjudication rule engine: pure functions from a candidate edge, both faces and the graph around
//! them to a verdict with reasons. Each built-in rule contributes a score penalty, a cap on the
//! verdict, a veto or an analyst override, always with a stable code, a sentence and its numbers.

mod eval;
mod graph;
mod rules;
mod ruleset;
mod view;

pub use eval::{evaluate, ClusterCounts, EngineAlone, Figures, PairCounts, TargetCheck};
pub use rules::in_review_queue;
pub use ruleset::{
    AgeRule, AnalystRule, BandRetention, Bands, GenderRule, GraphSupportRule, HubRule,
    Neighbourhood, QualityRule, RuleSet, RuleSetError, Toggle, TransitivityRule,
};
pub use view::{FaceNode, GraphView, MissingFace};

use crate::model::{FacePair, Judgement};

/// A rule set ready to judge, with its version computed once.
#[derive(Clone, Debug)]
pub struct Adjudicator {
    rules: RuleSet,
    version: String,
    band_texts: rules::BandTexts,
}

impl Adjudicator {
    /// An adjudicator for a checked rule set.
    pub fn new(rules: RuleSet) -> Self {
        let version = rules.version();
        let band_texts = rules::BandTexts::new(&rules);
        Self {
            rules,
            version,
            band_texts,
        }
    }

    /// The rule set.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    fn band_texts(&self) -> &rules::BandTexts {
        &self.band_texts
    }

    /// The rule set's version, recorded with every verdict.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Judges one edge of the view on its own, without band retention (which ranks an edge against
    /// its siblings and so needs [`Adjudicator::judge_all`]). `None` when the view has no such edge.
    pub fn judge(&self, view: &GraphView, pair: &FacePair) -> Option<Judgement> {
        let i = view.edge_id(pair)?;
        let facts = graph::Facts::on_demand(view);
        Some(rules::judge_edge(self, view, &facts, i))
    }

    /// Judges every edge of the view, then applies band retention; the judgements come in the order of
    /// [`GraphView::pairs`].
    pub fn judge_all(&self, view: &GraphView) -> Vec<Judgement> {
        let facts = graph::Facts::all(&self.rules, view);
        let mut judged: Vec<Judgement> = (0..view.edge_count() as u32)
            .map(|i| rules::judge_edge(self, view, &facts, i))
            .collect();
        rules::apply_band_retention(&self.rules, view, &mut judged);
        judged
    }
}

#[cfg(test)]
mod tests;
