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

use crate::model::{Edge, FacePair, Judgement, ReasonCode};

/// How far a change reaches through the rules: which edges' judgements can depend on a face whose
/// data, edges, searches or decisions changed, and how much of the graph judging them reads. Steps
/// are taken along edges at or above [`Reach::step_from`]; docs/rules.md derives the numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reach {
    /// Every edge with a face this many steps or fewer from a changed face may be judged anew (0:
    /// the changed faces' own edges; 1 with the hub rule, whose groups hold a face's neighbours).
    /// One step away, only through that face's group: a face with fewer than
    /// [`Reach::hub_min_neighbours`] edges at [`Reach::hub_min_similarity`] has none, before the
    /// change or after, since its own edges did not change.
    pub all_edges: usize,
    /// The hub rule's `min_similarity`.
    pub hub_min_similarity: f64,
    /// The hub rule's `min_subjects`: a group needs at least as many neighbours.
    pub hub_min_neighbours: usize,
    /// A confirm-band edge with a face this many steps or fewer from a changed face may be judged
    /// anew: the transitivity rule weighs the closures of the edges it competes with, one step
    /// further out than its own.
    pub confirm_edges: usize,
    /// Judging a confirm-band edge reads the neighbour lists of the faces this many steps from its
    /// faces (the transitivity rule's competitors and its `max_hops` reach), and the faces, edges
    /// and searches one step beyond. Judging any other edge reads the neighbour lists of its two
    /// faces, and the faces and edges one step beyond (the hub rule's groups).
    pub confirm_context: usize,
    /// The similarity a step needs: the lower of the review band and the hub rule's
    /// `min_similarity`, the weakest edge any graph rule reads as a neighbour.
    pub step_from: f64,
    /// The confirm band's start: the edges [`Reach::confirm_edges`] and
    /// [`Reach::confirm_context`] are about.
    pub confirm_at: f64,
}

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

    /// How far a change reaches under this rule set.
    pub fn reach(&self) -> Reach {
        let r = &self.rules;
        let hops = r.neighbourhood.max_hops.max(1);
        let all_edges = usize::from(r.hub.enabled);
        let step_from = if r.hub.enabled {
            r.bands.review_from.min(r.hub.min_similarity)
        } else {
            r.bands.review_from
        };
        Reach {
            all_edges,
            // A competitor's closure reads one step past the competitor, which is one step from
            // the edge: max(hops - 1, 1) + 1.
            confirm_edges: if r.transitivity.enabled {
                hops.max(2)
            } else {
                all_edges
            },
            confirm_context: if r.transitivity.enabled { hops } else { 0 },
            step_from,
            confirm_at: r.bands.confirm_at,
            hub_min_similarity: r.hub.min_similarity,
            hub_min_neighbours: r.hub.min_subjects,
        }
    }

    /// Judges some edges of the view, without band retention, exactly as [`Adjudicator::judge_all`]
    /// judges them before band retention, provided the view holds what [`Reach`] says judging
    /// them reads. `None` for a pair the view has no edge for.
    pub fn judge_edges(&self, view: &GraphView, pairs: &[FacePair]) -> Vec<Option<Judgement>> {
        let facts = graph::Facts::on_demand(view);
        pairs
            .iter()
            .map(|p| {
                view.edge_id(p)
                    .map(|i| rules::judge_edge(self, view, &facts, i))
            })
            .collect()
    }

    /// Band retention over edges given with their judgements before retention: each face's hits
    /// are the given edges that name it, so an edge's result is the whole graph's when `edges`
    /// holds every edge of both its faces.
    pub fn retain(&self, edges: &[&Edge], judged: &mut [Judgement]) {
        rules::band_retention_of(&self.rules, edges, judged);
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

/// A judgement as it stood before band retention: the same without the reason band retention adds,
/// which is the only thing retention changes.
pub fn before_retention(j: &Judgement) -> Judgement {
    Judgement {
        verdict: j.verdict,
        score: j.score,
        rule_set: j.rule_set.clone(),
        reasons: j
            .reasons
            .iter()
            .filter(|r| r.code != ReasonCode::BandRetention)
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests;
