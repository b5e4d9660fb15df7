//! Measures a rule set against labelled faces: impostor and genuine pairs by verdict, the review
//! load, the engine alone at the same impostor count, and clusters against identities. Pure: the
//! caller ingests and judges; `facegraph eval-adjudication` and docs/rules.md use these figures.

use std::collections::HashMap;

use petgraph::unionfind::UnionFind;
use rustc_hash::FxHashMap;

use super::view::{GraphView, NO_SUBJECT};
use super::{in_review_queue, RuleSet};
use crate::cluster::ClusterGraph;
use crate::model::{FaceId, Judgement, Verdict};

/// Pairs of labelled faces of different subjects, by what the rules made of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairCounts {
    /// Every such pair, with an edge or not.
    pub total: usize,
    /// Pairs with a similarity edge (a search found them).
    pub with_edge: usize,
    /// Pairs whose edge is `confirmed`.
    pub confirmed: usize,
    /// Pairs whose edge is `review` (in the queue or held back by band retention).
    pub review: usize,
}

impl PairCounts {
    /// Confirmed or review.
    pub fn kept(&self) -> usize {
        self.confirmed + self.review
    }

    /// Rejected, or never found by a search.
    pub fn rejected(&self) -> usize {
        self.total - self.kept()
    }
}

/// The engine's similarity on its own, cut where it confirms as many impostor pairs as the rules do.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineAlone {
    /// The engine confirms every pair strictly above this similarity; `None` when every edge is
    /// above the cut (the rules confirmed at least as many impostor pairs as have edges).
    pub above: Option<f64>,
    /// Impostor pairs above the cut.
    pub impostors_confirmed: usize,
    /// Genuine pairs above the cut.
    pub genuine_confirmed: usize,
}

/// Match clusters (connected components over confirmed edges) against identities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterCounts {
    /// Clusters of two or more faces.
    pub clusters: usize,
    /// Clusters with two or more distinct known subjects: fraud leads.
    pub leads: usize,
    /// Clusters whose labelled faces carry more than one identity.
    pub mixed: usize,
    /// Pairs of labelled faces of different subjects inside one lead.
    pub lead_pairs: usize,
    /// Of those, pairs of one identity (pairwise precision = `lead_pairs_genuine / lead_pairs`).
    pub lead_pairs_genuine: usize,
    /// Identities whose faces belong to two or more known subjects.
    pub identities: usize,
    /// Of those, identities whose faces are exactly one lead, with no other identity in it.
    pub identities_as_one_lead: usize,
    /// Sets of an identity's faces that confirm-band edges alone join, each of two or more known
    /// subjects.
    pub band_groups: usize,
    /// Of those, sets lying inside one cluster that is a fraud lead.
    pub band_groups_in_one_lead: usize,
}

/// Everything measured for one rule set.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// The rule set's version.
    pub rule_set: String,
    /// Labelled faces in the graph.
    pub faces: usize,
    /// Pairs of different identities.
    pub impostor: PairCounts,
    /// Pairs of one identity.
    pub genuine: PairCounts,
    /// Genuine pairs joined by a path of edges at or above the review band through faces of the
    /// same identity: the pairs the rules should keep.
    pub genuine_joined: usize,
    /// Of those, pairs kept (confirmed or review).
    pub genuine_joined_kept: usize,
    /// Every `review` verdict, labelled or not.
    pub review: usize,
    /// `review` verdicts in the analysts' queue (not held back, not self-matches).
    pub review_queue: usize,
    /// The engine's similarity alone at the rules' impostor count.
    pub engine_alone: EngineAlone,
    /// Clusters against identities.
    pub clusters: ClusterCounts,
}

/// A target of issue 12 and whether the figures meet it.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetCheck {
    /// What is required.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Whether it holds.
    pub met: bool,
}

/// Measures `judged` (the judgements of every edge of `view`, in the order of [`GraphView::pairs`],
/// as [`super::Adjudicator::judge_all`] returns them) against `identity_of`, the identity of each
/// labelled face. Faces without a label are left out of the pair and cluster figures; `rules` gives
/// the bands that define "joined" pairs and band groups.
pub fn evaluate(
    view: &GraphView,
    judged: &[Judgement],
    identity_of: &HashMap<FaceId, String>,
    rules: &RuleSet,
) -> Figures {
    let n = view.face_count();
    // Identities interned per face; `None` for unlabelled faces.
    let mut identities: FxHashMap<&str, u32> = FxHashMap::default();
    let identity: Vec<Option<u32>> = (0..n as u32)
        .map(|f| {
            identity_of.get(&view.node(f).face.face_id).map(|name| {
                let next = identities.len() as u32;
                *identities.entry(name.as_str()).or_insert(next)
            })
        })
        .collect();
    let subject = |f: u32| view.subject_key(f);
    let labelled: Vec<u32> = (0..n as u32)
        .filter(|&f| identity[f as usize].is_some())
        .collect();
    let different_subjects = |a: u32, b: u32| {
        let (sa, sb) = (subject(a), subject(b));
        sa == NO_SUBJECT || sa != sb
    };

    let (genuine_total, impostor_total) = pair_totals(&labelled, &identity, view);
    let mut genuine = PairCounts {
        total: genuine_total,
        ..PairCounts::default()
    };
    let mut impostor = PairCounts {
        total: impostor_total,
        ..PairCounts::default()
    };
    let review_from = rules.bands.review_from;
    let confirm_at = rules.bands.confirm_at;
    // Faces of one identity joined by edges at or above the review band (and, for band groups, at
    // or above the confirm threshold) through faces of that identity.
    let mut joined = UnionFind::<u32>::new(n);
    let mut band = UnionFind::<u32>::new(n);
    let mut impostor_sims = Vec::new();
    let mut genuine_sims = Vec::new();
    let (mut review, mut review_queue) = (0, 0);
    for (i, j) in judged.iter().enumerate() {
        let e = view.edge_at(i as u32);
        if j.verdict == Verdict::Review {
            review += 1;
            review_queue += usize::from(in_review_queue(j));
        }
        let (Some(ia), Some(ib)) = (identity[e.a as usize], identity[e.b as usize]) else {
            continue;
        };
        // A self-match is a path through photos of one person, but not a pair to count.
        if ia == ib && e.similarity >= review_from {
            joined.union(e.a, e.b);
        }
        if ia == ib && e.similarity >= confirm_at {
            band.union(e.a, e.b);
        }
        if !different_subjects(e.a, e.b) {
            continue;
        }
        let counts = if ia == ib {
            genuine_sims.push(e.similarity);
            &mut genuine
        } else {
            impostor_sims.push(e.similarity);
            &mut impostor
        };
        counts.with_edge += 1;
        match j.verdict {
            Verdict::Confirmed => counts.confirmed += 1,
            Verdict::Review => counts.review += 1,
            Verdict::Rejected => {}
        }
    }
    let joined = joined.into_labeling();
    let genuine_joined = joined_pairs(&labelled, &joined, view);
    let genuine_joined_kept = judged
        .iter()
        .enumerate()
        .filter(|(i, j)| {
            let e = view.edge_at(*i as u32);
            j.verdict != Verdict::Rejected
                && identity[e.a as usize].is_some()
                && identity[e.a as usize] == identity[e.b as usize]
                && different_subjects(e.a, e.b)
                && joined[e.a as usize] == joined[e.b as usize]
        })
        .count();
    let engine_alone = engine_alone(impostor.confirmed, impostor_sims, &genuine_sims);
    let clusters = clusters(view, judged, &identity, &labelled, band.into_labeling());
    Figures {
        rule_set: judged
            .first()
            .map_or_else(|| rules.version(), |j| j.rule_set.clone()),
        faces: labelled.len(),
        impostor,
        genuine,
        genuine_joined,
        genuine_joined_kept,
        review,
        review_queue,
        engine_alone,
        clusters,
    }
}

impl Figures {
    /// The targets of issue 12, checked against `band_alone`, the figures of the similarity band
    /// alone ([`RuleSet::band_alone`]) on the same graph.
    pub fn targets(&self, band_alone: &Figures) -> Vec<TargetCheck> {
        let pct = |x: usize, of: usize| {
            if of == 0 {
                0.0
            } else {
                100.0 * x as f64 / of as f64
            }
        };
        let c = &self.clusters;
        let genuine_floor = pct(band_alone.genuine.confirmed, self.genuine.total) - 2.0;
        vec![
            TargetCheck {
                target: "impostor pairs confirmed: 0".into(),
                measured: format!("{} of {}", self.impostor.confirmed, self.impostor.total),
                met: self.impostor.confirmed == 0,
            },
            TargetCheck {
                target: "impostor pairs in review: at most 1%".into(),
                measured: format!(
                    "{} of {} ({:.2}%)",
                    self.impostor.review,
                    self.impostor.total,
                    pct(self.impostor.review, self.impostor.total)
                ),
                met: pct(self.impostor.review, self.impostor.total) <= 1.0,
            },
            TargetCheck {
                target: format!(
                    "genuine pairs confirmed: at least the band alone's less 2 points ({genuine_floor:.1}%)"
                ),
                measured: format!(
                    "{} of {} ({:.1}%; band alone {})",
                    self.genuine.confirmed,
                    self.genuine.total,
                    pct(self.genuine.confirmed, self.genuine.total),
                    band_alone.genuine.confirmed
                ),
                met: pct(self.genuine.confirmed, self.genuine.total) >= genuine_floor,
            },
            TargetCheck {
                target: "genuine pairs joined through the same person at the review band: at least 99% kept".into(),
                measured: format!(
                    "{} of {} ({:.1}%)",
                    self.genuine_joined_kept,
                    self.genuine_joined,
                    pct(self.genuine_joined_kept, self.genuine_joined)
                ),
                met: self.genuine_joined == 0
                    || pct(self.genuine_joined_kept, self.genuine_joined) >= 99.0,
            },
            TargetCheck {
                target: "every set of an identity's faces the band alone joins is in one fraud lead".into(),
                measured: format!("{} of {}", c.band_groups_in_one_lead, c.band_groups),
                met: c.band_groups_in_one_lead == c.band_groups,
            },
            TargetCheck {
                target: "no cluster mixes identities".into(),
                measured: format!("{} of {} clusters mixed", c.mixed, c.clusters),
                met: c.mixed == 0,
            },
        ]
    }
}

/// Genuine and impostor pair totals among labelled faces of different subjects, by inclusion and
/// exclusion over group sizes rather than pair by pair.
fn pair_totals(labelled: &[u32], identity: &[Option<u32>], view: &GraphView) -> (usize, usize) {
    let pairs = |k: usize| k * k.saturating_sub(1) / 2;
    let mut by_identity: FxHashMap<u32, usize> = FxHashMap::default();
    let mut by_subject: FxHashMap<u32, usize> = FxHashMap::default();
    let mut by_both: FxHashMap<(u32, u32), usize> = FxHashMap::default();
    for &f in labelled {
        let id = identity[f as usize].unwrap_or(u32::MAX);
        *by_identity.entry(id).or_default() += 1;
        let s = view.subject_key(f);
        // Faces without a subject are each their own customer.
        if s != NO_SUBJECT {
            *by_subject.entry(s).or_default() += 1;
            *by_both.entry((id, s)).or_default() += 1;
        }
    }
    let all = pairs(labelled.len());
    let same_identity: usize = by_identity.values().map(|&k| pairs(k)).sum();
    let same_subject: usize = by_subject.values().map(|&k| pairs(k)).sum();
    let same_both: usize = by_both.values().map(|&k| pairs(k)).sum();
    let genuine = same_identity - same_both;
    let impostor = all - same_identity - same_subject + same_both;
    (genuine, impostor)
}

/// Pairs of different subjects inside the components of `labels`, over the labelled faces.
fn joined_pairs(labelled: &[u32], labels: &[u32], view: &GraphView) -> usize {
    let pairs = |k: usize| k * k.saturating_sub(1) / 2;
    let mut by_component: FxHashMap<u32, usize> = FxHashMap::default();
    let mut by_subject: FxHashMap<(u32, u32), usize> = FxHashMap::default();
    for &f in labelled {
        let c = labels[f as usize];
        *by_component.entry(c).or_default() += 1;
        let s = view.subject_key(f);
        if s != NO_SUBJECT {
            *by_subject.entry((c, s)).or_default() += 1;
        }
    }
    by_component.values().map(|&k| pairs(k)).sum::<usize>()
        - by_subject.values().map(|&k| pairs(k)).sum::<usize>()
}

fn engine_alone(
    confirmed_impostors: usize,
    mut impostor_sims: Vec<f64>,
    genuine_sims: &[f64],
) -> EngineAlone {
    impostor_sims.sort_by(|x, y| y.total_cmp(x));
    // The engine confirms strictly above the first impostor similarity it must not confirm.
    let above = impostor_sims.get(confirmed_impostors).copied();
    let over = |s: &&f64| above.is_none_or(|a| **s > a);
    EngineAlone {
        above,
        impostors_confirmed: impostor_sims.iter().filter(over).count(),
        genuine_confirmed: genuine_sims.iter().filter(over).count(),
    }
}

fn clusters(
    view: &GraphView,
    judged: &[Judgement],
    identity: &[Option<u32>],
    labelled: &[u32],
    band: Vec<u32>,
) -> ClusterCounts {
    let mut g = ClusterGraph::default();
    for (i, j) in judged.iter().enumerate() {
        if j.verdict == Verdict::Confirmed {
            let e = view.edge_at(i as u32);
            g.add_confirmed(&e.edge.pair, e.similarity);
        }
    }
    let found = g.clusters();
    // The cluster of every face, by the view's face index.
    let mut cluster_of: Vec<Option<usize>> = vec![None; view.face_count()];
    let mut counts = ClusterCounts {
        clusters: found.len(),
        ..ClusterCounts::default()
    };
    let mut lead = vec![false; found.len()];
    for (ci, c) in found.iter().enumerate() {
        let members: Vec<u32> = c
            .faces
            .iter()
            .filter_map(|id| view.face_index(id))
            .collect();
        lead[ci] = spans_subjects(view, &members);
        let mut ids: Vec<u32> = members
            .iter()
            .filter_map(|&f| identity[f as usize])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        counts.mixed += usize::from(ids.len() > 1);
        counts.leads += usize::from(lead[ci]);
        for &f in &members {
            cluster_of[f as usize] = Some(ci);
        }
        if lead[ci] {
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    let (Some(ia), Some(ib)) = (identity[a as usize], identity[b as usize]) else {
                        continue;
                    };
                    let (sa, sb) = (view.subject_key(a), view.subject_key(b));
                    if sa != NO_SUBJECT && sa == sb {
                        continue;
                    }
                    counts.lead_pairs += 1;
                    counts.lead_pairs_genuine += usize::from(ia == ib);
                }
            }
        }
    }
    // Identities: their faces, and whether they are exactly one lead.
    let mut faces_of: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for &f in labelled {
        if let Some(id) = identity[f as usize] {
            faces_of.entry(id).or_default().push(f);
        }
    }
    for faces in faces_of.values() {
        if !spans_subjects(view, faces) {
            continue;
        }
        counts.identities += 1;
        let Some(ci) = cluster_of[faces[0] as usize] else {
            continue;
        };
        let whole = faces.iter().all(|&f| cluster_of[f as usize] == Some(ci));
        let labelled_in_cluster = found[ci]
            .faces
            .iter()
            .filter_map(|id| view.face_index(id))
            .filter(|&f| identity[f as usize].is_some())
            .count();
        let alone = labelled_in_cluster == faces.len();
        counts.identities_as_one_lead += usize::from(lead[ci] && whole && alone);
    }
    // Band groups: components of one identity's faces over confirm-band edges.
    let mut groups: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for &f in labelled {
        groups.entry(band[f as usize]).or_default().push(f);
    }
    for members in groups.values().filter(|m| spans_subjects(view, m)) {
        counts.band_groups += 1;
        let first = cluster_of[members[0] as usize];
        let together = members.iter().all(|&f| cluster_of[f as usize] == first);
        counts.band_groups_in_one_lead += usize::from(together && first.is_some_and(|c| lead[c]));
    }
    counts
}

/// Whether faces belong to two or more known customers: what makes a cluster a fraud lead, as
/// [`crate::cluster::Cluster::subjects`] counts them.
fn spans_subjects(view: &GraphView, faces: &[u32]) -> bool {
    let mut subjects: Vec<u32> = faces
        .iter()
        .map(|&f| view.subject_key(f))
        .filter(|&s| s != NO_SUBJECT)
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects.len() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjudication::tests::{f, fid, graph, G};

    /// Identities by face number: X is faces 1-3 and 7 (7 under face 1's customer), Y is 4 and 5,
    /// Z is 6.
    fn labels() -> HashMap<FaceId, String> {
        [
            (1, "X"),
            (2, "X"),
            (3, "X"),
            (7, "X"),
            (4, "Y"),
            (5, "Y"),
            (6, "Z"),
        ]
        .into_iter()
        .map(|(n, id)| (fid(n), id.to_owned()))
        .collect()
    }

    /// X's photos match each other (1-3 only in the review band), Y's too; 3 looks like 4 (an
    /// impostor in the review band) and 5 a little like 6 (below it); 7 is face 1's customer again.
    fn labelled() -> G {
        graph(
            (1..=7)
                .map(|n| if n == 7 { f(7).subject("S1") } else { f(n) })
                .collect(),
        )
        .edge(1, 2, 99.9)
        .edge(2, 3, 99.5)
        .edge(1, 3, 95.0)
        .edge(4, 5, 99.7)
        .edge(3, 4, 92.0)
        .edge(5, 6, 85.0)
        .edge(1, 7, 99.9)
    }

    fn measure(g: &G) -> Figures {
        let (view, judged) = g.judge();
        evaluate(&view, &judged, &labels(), &g.rules)
    }

    #[test]
    fn pairs_are_counted_by_identity_and_verdict() {
        let m = measure(&labelled());
        assert_eq!(m.faces, 7);
        // 21 pairs: X has 6 (one, 1-7, a self-match left out), Y 1, the other 14 are impostors.
        assert_eq!(
            m.genuine,
            PairCounts {
                total: 6,
                with_edge: 4,
                confirmed: 3,
                review: 1
            }
        );
        assert_eq!(
            m.impostor,
            PairCounts {
                total: 14,
                with_edge: 2,
                confirmed: 0,
                review: 1
            }
        );
        assert_eq!((m.genuine.kept(), m.genuine.rejected()), (4, 2));
        // X's four faces are joined at the review band (7 through its self-match), Y's two: 5 pairs
        // of X across customers and 1 of Y, of which the 4 with an edge are kept.
        assert_eq!((m.genuine_joined, m.genuine_joined_kept), (6, 4));
        assert_eq!((m.review, m.review_queue), (2, 2));
        // The rules confirm no impostor; the engine alone then confirms above 92, the best impostor.
        assert_eq!(
            m.engine_alone,
            EngineAlone {
                above: Some(92.0),
                impostors_confirmed: 0,
                genuine_confirmed: 4
            }
        );
    }

    #[test]
    fn clusters_are_measured_against_identities() {
        let m = measure(&labelled());
        assert_eq!(
            m.clusters,
            ClusterCounts {
                clusters: 2,
                leads: 2,
                mixed: 0,
                // X's lead holds 1, 2, 3 and 7: six pairs less the self-match; Y's one pair.
                lead_pairs: 6,
                lead_pairs_genuine: 6,
                identities: 2,
                identities_as_one_lead: 2,
                band_groups: 2,
                band_groups_in_one_lead: 2,
            }
        );
        // A lax confirm threshold confirms the impostor 3~4 and mixes X and Y in one cluster.
        let lax = measure(&labelled().rules(|r| r.bands.confirm_at = 91.0));
        assert_eq!(lax.impostor.confirmed, 1);
        assert_eq!((lax.clusters.clusters, lax.clusters.mixed), (1, 1));
        // Pairs of the 6 faces across customers: 14, of which X's 5 and Y's 1 are genuine.
        assert_eq!(
            (lax.clusters.lead_pairs, lax.clusters.lead_pairs_genuine),
            (14, 6)
        );
        assert_eq!(lax.clusters.identities_as_one_lead, 0);
        // The engine alone at one impostor confirmed cuts above the next one, 85.
        assert_eq!(lax.engine_alone.above, Some(85.0));
        assert_eq!(lax.engine_alone.impostors_confirmed, 1);
    }

    #[test]
    fn targets_are_checked_against_the_band_alone() {
        let g = labelled();
        let alone = g.clone().rules(|r| *r = r.band_alone());
        let (rules, band) = (measure(&g), measure(&alone));
        let targets = rules.targets(&band);
        let met: Vec<bool> = targets.iter().map(|t| t.met).collect();
        // One impostor in review of 14 is 7%, above the 1% allowed; two genuine pairs have no edge.
        assert_eq!(
            met,
            vec![true, false, true, false, true, true],
            "{targets:#?}"
        );
        assert!(targets[1].measured.starts_with("1 of 14"), "{targets:#?}");
    }
}
