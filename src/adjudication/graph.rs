//! The rules that read the graph around an edge: rings and stars (faces that match many subjects),
//! transitivity (strong links their neighbourhood contradicts: a triangle's weak link, a bridge
//! between two groups) and graph support (strong paths through third faces). Each reads a bounded
//! neighbourhood: a face's `neighbourhood.max_degree` most similar faces at the review band.

use std::borrow::Cow;
use std::cmp::Ordering;

use rustc_hash::FxHashSet;

use super::rules::{num, Outcome};
use super::view::{GraphView, ViewEdge, NO_SUBJECT};
use super::RuleSet;
use crate::model::{AgeRange, Reason, ReasonCode, Verdict};

/// What the graph rules know of a view: every face's bounded neighbours, hub shapes and the
/// closure of every confirm-band edge, computed once for [`super::Adjudicator::judge_all`], or on
/// demand when one edge is judged.
pub(super) struct Facts<'v> {
    view: &'v GraphView,
    near: Option<Vec<Vec<(u32, u32)>>>,
    hubs: Option<Vec<HubShape>>,
    closures: Option<Vec<Closure>>,
}

impl<'v> Facts<'v> {
    /// Everything, for judging every edge of the view.
    pub(super) fn all(rules: &RuleSet, view: &'v GraphView) -> Self {
        let mut facts = Self::on_demand(view);
        let graph_rules =
            rules.hub.enabled || rules.transitivity.enabled || rules.graph_support.enabled;
        if graph_rules {
            facts.near = Some(
                (0..view.face_count() as u32)
                    .map(|f| near_of(rules, view, f))
                    .collect(),
            );
        }
        if rules.hub.enabled {
            let hubs = (0..view.face_count() as u32)
                .map(|f| hub_shape(rules, view, f))
                .collect();
            facts.hubs = Some(hubs);
        }
        if rules.transitivity.enabled {
            let closures = (0..view.edge_count() as u32)
                .map(|i| facts.closure(rules, i))
                .collect();
            facts.closures = Some(closures);
        }
        facts
    }

    /// Nothing yet: each fact is computed when a rule asks for it.
    pub(super) fn on_demand(view: &'v GraphView) -> Self {
        Self {
            view,
            near: None,
            hubs: None,
            closures: None,
        }
    }

    /// The face's most similar neighbours at or above the review band, most similar first, at most
    /// `neighbourhood.max_degree` of them, as (face, edge) pairs.
    fn near(&self, rules: &RuleSet, f: u32) -> Cow<'_, [(u32, u32)]> {
        match &self.near {
            Some(all) => Cow::Borrowed(&all[f as usize]),
            None => Cow::Owned(near_of(rules, self.view, f)),
        }
    }

    fn hub(&self, rules: &RuleSet, f: u32) -> Cow<'_, HubShape> {
        match &self.hubs {
            Some(all) => Cow::Borrowed(&all[f as usize]),
            None => Cow::Owned(hub_shape(rules, self.view, f)),
        }
    }

    fn closure(&self, rules: &RuleSet, i: u32) -> Closure {
        match &self.closures {
            Some(all) => all[i as usize],
            None => closure(rules, self, i),
        }
    }
}

fn near_of(rules: &RuleSet, view: &GraphView, f: u32) -> Vec<(u32, u32)> {
    top_neighbours(
        view,
        f,
        rules.bands.review_from,
        rules.neighbourhood.max_degree,
    )
}

/// `f`'s neighbours at `min` or more, most similar first (ties by edge order), at most `max`.
fn top_neighbours(view: &GraphView, f: u32, min: f64, max: usize) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = view
        .neighbours(f)
        .iter()
        .copied()
        .filter(|&(_, e)| view.edge_at(e).similarity >= min)
        .collect();
    let order = |x: &(u32, u32), y: &(u32, u32)| {
        view.edge_at(y.1)
            .similarity
            .total_cmp(&view.edge_at(x.1).similarity)
            .then(x.1.cmp(&y.1))
    };
    if v.len() > max {
        v.select_nth_unstable_by(max - 1, order);
        v.truncate(max);
    }
    v.sort_unstable_by(order);
    v
}

/// A face that matches many subjects, and what its neighbours make of it.
#[derive(Clone, Debug, Default)]
pub(super) struct HubShape {
    /// Distinct other known subjects among its neighbours at the hub similarity (read up to the
    /// neighbourhood bound).
    subjects: usize,
    /// The structure of its neighbourhood, when it is a hub.
    group: Option<Box<Group>>,
}

/// The neighbourhood of a hub face.
#[derive(Clone, Debug)]
struct Group {
    /// Whether the neighbours match each other and agree: one person behind many accounts.
    ring: bool,
    /// Neighbours read.
    neighbours: usize,
    /// Pairs of neighbours that match at the review band.
    mutual: usize,
    /// `mutual` over the pairs of neighbours.
    density: f64,
    /// Faces of the group (the hub and its neighbours) whose gender and age agree with the group's.
    agreeing: usize,
    /// Each neighbour with the number of other neighbours it matches at the review band.
    members: Vec<(u32, u32)>,
}

impl Group {
    fn pairs(&self) -> usize {
        self.neighbours * self.neighbours.saturating_sub(1) / 2
    }

    fn agreement(&self) -> f64 {
        self.agreeing as f64 / (self.neighbours + 1) as f64
    }

    /// The share of the other neighbours that neighbour `f` matches, when it is one.
    fn share_of(&self, f: u32) -> Option<(u32, f64)> {
        let others = self.neighbours.saturating_sub(1).max(1) as f64;
        self.members
            .iter()
            .find(|&&(m, _)| m == f)
            .map(|&(_, k)| (k, f64::from(k) / others))
    }
}

fn hub_shape(rules: &RuleSet, view: &GraphView, f: u32) -> HubShape {
    let h = &rules.hub;
    if !h.enabled {
        return HubShape::default();
    }
    let hits = top_neighbours(view, f, h.min_similarity, rules.neighbourhood.max_degree);
    let own = view.subject_key(f);
    let mut seen: Vec<u32> = hits
        .iter()
        .map(|&(n, _)| view.subject_key(n))
        .filter(|&k| k != NO_SUBJECT && k != own)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let subjects = seen.len();
    if subjects < h.min_subjects {
        return HubShape {
            subjects,
            group: None,
        };
    }
    // How many of the other neighbours each neighbour matches at the review band.
    let review = rules.bands.review_from;
    let mut members: Vec<(u32, u32)> = hits.iter().map(|&(n, _)| (n, 0)).collect();
    let mut mutual = 0;
    for x in 0..members.len() {
        for y in x + 1..members.len() {
            let matched = view
                .edge_between(members[x].0, members[y].0)
                .is_some_and(|e| e.similarity >= review);
            if matched {
                mutual += 1;
                members[x].1 += 1;
                members[y].1 += 1;
            }
        }
    }
    let neighbours = members.len();
    let pairs = neighbours * neighbours.saturating_sub(1) / 2;
    let density = mutual as f64 / pairs.max(1) as f64;
    let mut group_faces: Vec<u32> = members.iter().map(|&(n, _)| n).collect();
    group_faces.push(f);
    let agreeing = agreeing(rules, view, &group_faces);
    let agreement = agreeing as f64 / group_faces.len() as f64;
    HubShape {
        subjects,
        group: Some(Box::new(Group {
            ring: density >= h.min_density && agreement >= h.min_agreement,
            neighbours,
            mutual,
            density,
            agreeing,
            members,
        })),
    }
}

/// How many of `faces` agree with the group on gender (a confident classification that is not the
/// majority's disagrees) and on age (a range further than the age rule's tolerance from the
/// median age disagrees). A rule that is switched off does not count.
fn agreeing(rules: &RuleSet, view: &GraphView, faces: &[u32]) -> usize {
    use crate::model::GenderValue;
    let attrs = |f: u32| &view.node(f).face.attributes;
    let confident = |f: u32| {
        attrs(f)
            .gender
            .filter(|g| rules.gender.enabled && g.confidence.get() >= rules.gender.min_confidence)
            .map(|g| g.value)
    };
    let males = faces
        .iter()
        .filter(|&&f| confident(f) == Some(GenderValue::Male))
        .count();
    let females = faces
        .iter()
        .filter(|&&f| confident(f) == Some(GenderValue::Female))
        .count();
    // With no majority, every confident face disagrees with half the group.
    let majority = match males.cmp(&females) {
        Ordering::Greater => Some(GenderValue::Male),
        Ordering::Less => Some(GenderValue::Female),
        Ordering::Equal => None,
    };
    let mut middles: Vec<u32> = faces
        .iter()
        .filter_map(|&f| attrs(f).age)
        .map(|a| (a.low + a.high) / 2)
        .collect();
    middles.sort_unstable();
    let median = middles.get(middles.len() / 2).map(|&m| AgeRange::new(m, m));
    faces
        .iter()
        .filter(|&&f| {
            let gender_ok = confident(f).map_or(true, |g| Some(g) == majority);
            let age_ok = !rules.age.enabled
                || match (attrs(f).age, median) {
                    (Some(a), Some(m)) => a.gap(&m) <= rules.age.tolerance_years,
                    _ => true,
                };
            gender_ok && age_ok
        })
        .count()
}

/// Rings and stars: an edge at a hub face is capped at review unless the hub is a ring and the
/// other face belongs to it; a ring's edges keep their band's verdict, with a `ring` reason.
pub(super) fn hub(
    rules: &RuleSet,
    view: &GraphView,
    facts: &Facts<'_>,
    e: &ViewEdge,
    out: &mut Outcome,
) {
    let h = &rules.hub;
    if !h.enabled {
        return;
    }
    let mut ring_reason = None;
    for (f, other) in [(e.a, e.b), (e.b, e.a)] {
        let shape = facts.hub(rules, f);
        let Some(g) = &shape.group else { continue };
        let face = &view.node(f).face.face_id;
        let mut evidence = vec![
            ("face_id", face.as_str().into()),
            ("distinct_subjects", shape.subjects.into()),
            ("min_subjects", h.min_subjects.into()),
            ("neighbours", g.neighbours.into()),
            ("mutual_edges", g.mutual.into()),
            ("neighbour_pairs", g.pairs().into()),
            ("density", num(g.density)),
            ("min_density", num(h.min_density)),
            ("agreeing_faces", g.agreeing.into()),
            ("agreement", num(g.agreement())),
            ("min_agreement", num(h.min_agreement)),
            ("review_from", num(rules.bands.review_from)),
        ];
        let numbers = format!(
            "{} of {} neighbour pairs match at {}% or more (density {:.2}, a ring needs {}); gender and age agree \
             for {} of {} faces (a ring needs {:.0}%)",
            g.mutual,
            g.pairs(),
            rules.bands.review_from,
            g.density,
            h.min_density,
            g.agreeing,
            g.neighbours + 1,
            h.min_agreement * 100.0
        );
        let member = g.share_of(other);
        if let Some((k, share)) = member {
            evidence.push(("other_face_matches", k.into()));
            evidence.push(("other_face_share", num(share)));
        }
        let message = match member {
            Some((_, share)) if g.ring && share >= h.min_density => {
                if ring_reason.is_none() {
                    ring_reason = Some(Reason::new(
                        ReasonCode::Ring,
                        format!(
                            "face {face} matches {} distinct subjects whose faces also match each other: {numbers}. \
                             One person behind several accounts, a ring: the match keeps its band's verdict",
                            shape.subjects
                        ),
                        evidence,
                    ));
                }
                continue;
            }
            Some((k, share)) if g.ring => format!(
                "face {face} is at the centre of a ring of {} distinct subjects ({numbers}), but the other face \
                 matches only {k} of its {} other neighbours (share {share:.2}): it does not belong to the ring, \
                 at most review",
                shape.subjects,
                g.neighbours - 1
            ),
            _ if g.ring => format!(
                "face {face} is at the centre of a ring of {} distinct subjects ({numbers}), but the other face \
                 is not among its {} closest neighbours: at most review",
                shape.subjects, g.neighbours
            ),
            _ => format!(
                "face {face} matches {} distinct subjects at {}% or more, but they do not look like one person: \
                 {numbers}. A poster, a generic or low-quality face (a star): at most review",
                shape.subjects, h.min_similarity
            ),
        };
        out.cap(
            Verdict::Review,
            h.penalty,
            Reason::new(ReasonCode::HubFace, message, evidence),
        );
        return;
    }
    if let Some(reason) = ring_reason {
        out.reasons.push(reason);
    }
}

/// How the neighbourhood of a confirm-band edge (a, b) bears on it: the faces that tie its two
/// sides together against the pairs across that are known to be far apart.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Closure {
    /// Faces near both a and b (within `max_hops`), plus pairs across the sides that match.
    support: u32,
    /// Pairs across the sides (a or a neighbour of a only, with b or a neighbour of b only) known
    /// to be below `transitivity.far_below`.
    far: u32,
    /// Faces on a's side and on b's side, a and b included.
    side_a: u32,
    side_b: u32,
    /// One far pair, for the sentence: the faces and what is known of their similarity.
    example: Option<(u32, u32, Far)>,
}

impl Closure {
    /// Whether the far pairs outweigh the support: the edge is a weak link or a bridge candidate.
    fn doubted(&self, min_support: f64) -> bool {
        self.far > 0 && f64::from(self.support) < min_support * f64::from(self.support + self.far)
    }

    /// The share of the known pairs across that support the edge; 1 when none is known.
    fn share(&self) -> f64 {
        let known = self.support + self.far;
        if known == 0 {
            1.0
        } else {
            f64::from(self.support) / f64::from(known)
        }
    }
}

/// What is known of a pair that is far apart: an edge's value, or a search's silence.
#[derive(Clone, Copy, Debug)]
enum Far {
    Edge(f64),
    Silence { searched: u32, bound: f64 },
}

fn closure(rules: &RuleSet, facts: &Facts<'_>, i: u32) -> Closure {
    let view = facts.view;
    let e = view.edge_at(i);
    if !rules.transitivity.enabled || e.similarity < rules.bands.confirm_at {
        return Closure::default();
    }
    let near_a = facts.near(rules, e.a);
    let near_b = facts.near(rules, e.b);
    let na: Vec<u32> = near_a
        .iter()
        .map(|&(f, _)| f)
        .filter(|&f| f != e.b)
        .collect();
    let nb: Vec<u32> = near_b
        .iter()
        .map(|&(f, _)| f)
        .filter(|&f| f != e.a)
        .collect();
    if na.is_empty() && nb.is_empty() {
        return Closure {
            side_a: 1,
            side_b: 1,
            ..Closure::default()
        };
    }
    let common: Vec<u32> = if rules.neighbourhood.max_hops <= 1 {
        na.iter().copied().filter(|f| nb.contains(f)).collect()
    } else {
        let ra = reach(rules, facts, e.a, e.b);
        let rb = reach(rules, facts, e.b, e.a);
        ra.intersection(&rb).copied().collect()
    };
    let side_a: Vec<u32> = std::iter::once(e.a)
        .chain(na.iter().copied().filter(|f| !common.contains(f)))
        .collect();
    let side_b: Vec<u32> = std::iter::once(e.b)
        .chain(nb.iter().copied().filter(|f| !common.contains(f)))
        .collect();
    let mut out = Closure {
        support: common.len() as u32,
        side_a: side_a.len() as u32,
        side_b: side_b.len() as u32,
        ..Closure::default()
    };
    for &x in &side_a {
        for &y in &side_b {
            if (x, y) == (e.a, e.b) || x == y {
                continue;
            }
            match known_far(rules, view, x, y) {
                Known::Match => out.support += 1,
                Known::Far(far) => {
                    out.far += 1;
                    if out.example.is_none() {
                        out.example = Some((x, y, far));
                    }
                }
                Known::Unknown => {}
            }
        }
    }
    out
}

/// The faces within `max_hops` steps of `from` through neighbour lists, never through `not`.
fn reach(rules: &RuleSet, facts: &Facts<'_>, from: u32, not: u32) -> FxHashSet<u32> {
    let mut seen: FxHashSet<u32> = FxHashSet::default();
    let mut frontier = vec![from];
    for _ in 0..rules.neighbourhood.max_hops {
        let mut next = Vec::new();
        for f in frontier {
            for &(n, _) in facts.near(rules, f).iter() {
                if n != not && n != from && seen.insert(n) {
                    next.push(n);
                }
            }
        }
        frontier = next;
    }
    seen
}

enum Known {
    Match,
    Far(Far),
    Unknown,
}

fn known_far(rules: &RuleSet, view: &GraphView, u: u32, v: u32) -> Known {
    let far = rules.transitivity.far_below;
    if let Some(edge) = view.edge_between(u, v) {
        return if edge.similarity >= rules.bands.review_from {
            Known::Match
        } else if edge.similarity < far {
            Known::Far(Far::Edge(edge.similarity))
        } else {
            Known::Unknown
        };
    }
    for (searched, other) in [(u, v), (v, u)] {
        let target = view.node(other);
        for s in view.searches_of(searched) {
            let Some(bound) = s.bound else { continue };
            if bound.get() <= far
                && target.seq <= s.collection_seq
                && s.collection_id == target.face.collection_id
            {
                return Known::Far(Far::Silence {
                    searched,
                    bound: bound.get(),
                });
            }
        }
    }
    Known::Unknown
}

/// Transitivity: a doubted confirm-band edge goes to review when a confirm-band edge it competes
/// with (from a into a's side, or from b into b's side) stands on a larger share of support, or on
/// as large a share and a higher similarity.
pub(super) fn transitivity(
    rules: &RuleSet,
    view: &GraphView,
    facts: &Facts<'_>,
    i: u32,
    out: &mut Outcome,
) {
    let t = &rules.transitivity;
    let e = view.edge_at(i);
    if !t.enabled || e.similarity < rules.bands.confirm_at {
        return;
    }
    let mine = facts.closure(rules, i);
    if !mine.doubted(t.min_support) {
        return;
    }
    // Shares rather than counts: a competitor in a larger group knows of more pairs either way.
    let key = |c: &Closure, sim: f64, idx: u32| (c.share(), sim, std::cmp::Reverse(idx));
    let my_key = key(&mine, e.similarity, i);
    let mut best: Option<(u32, u32, Closure)> = None;
    for (pivot, far_end) in [(e.a, e.b), (e.b, e.a)] {
        let far_near = facts.near(rules, far_end);
        for &(x, xi) in facts.near(rules, pivot).iter() {
            // A competitor leads from the pivot into its own side: not to the far end, nor to a
            // face the far end matches too.
            if x == far_end || far_near.iter().any(|&(f, _)| f == x) {
                continue;
            }
            let other = view.edge_at(xi);
            if other.similarity < rules.bands.confirm_at {
                continue;
            }
            let theirs = facts.closure(rules, xi);
            let better = key(&theirs, other.similarity, xi) > my_key;
            let best_so_far = best.as_ref().map_or(true, |(_, bi, bc)| {
                key(&theirs, other.similarity, xi) > key(bc, view.edge_at(*bi).similarity, *bi)
            });
            if better && best_so_far {
                best = Some((x, xi, theirs));
            }
        }
    }
    let Some((x, xi, theirs)) = best else {
        return;
    };
    let id = |f: u32| view.node(f).face.face_id.as_str();
    let other_similarity = view.edge_at(xi).similarity;
    let what = match mine.example {
        Some((u, v, Far::Edge(s))) => format!("{} and {} are only {s:.2} similar", id(u), id(v)),
        Some((u, v, Far::Silence { searched, bound })) => format!(
            "searching face {} did not return face {}, so they are below {bound:.2}",
            id(searched),
            id(if searched == u { v } else { u })
        ),
        None => String::new(),
    };
    let bridge = mine.side_a > 1 && mine.side_b > 1;
    let message = if bridge {
        format!(
            "faces {} and {} match at {:.2}, but the groups around them do not: of the pairs across \
             ({} faces on one side, {} on the other), {} are far apart (below {}; {what}) and {} tie the \
             two sides together, a share under {}. The link to {} ({:.2}) stands on more support: \
             this is a bridge between two groups, at most review",
            id(e.a),
            id(e.b),
            e.similarity,
            mine.side_a,
            mine.side_b,
            mine.far,
            t.far_below,
            mine.support,
            t.min_support,
            id(x),
            other_similarity
        )
    } else {
        format!(
            "faces {} and {} match at {:.2}, but {what} ({} such pairs far apart, {} supporting), while \
             the link to {} ({:.2}) stands on more support: this is the weaker link",
            id(e.a),
            id(e.b),
            e.similarity,
            mine.far,
            mine.support,
            id(x),
            other_similarity
        )
    };
    out.cap(
        Verdict::Review,
        t.penalty,
        Reason::new(
            ReasonCode::Transitivity,
            message,
            vec![
                ("via_face", id(x).into()),
                ("similarity", num(e.similarity)),
                ("other_link_similarity", num(other_similarity)),
                ("far_pairs", mine.far.into()),
                ("supporting", mine.support.into()),
                ("other_link_far_pairs", theirs.far.into()),
                ("other_link_supporting", theirs.support.into()),
                ("side_a", mine.side_a.into()),
                ("side_b", mine.side_b.into()),
                ("far_below", num(t.far_below)),
                ("min_support", num(t.min_support)),
            ],
        ),
    );
}

/// Graph support: an edge below the review band whose faces are both strongly similar to at least
/// `min_paths` third faces is raised to review (never to confirmed).
pub(super) fn graph_support(
    rules: &RuleSet,
    view: &GraphView,
    facts: &Facts<'_>,
    e: &ViewEdge,
    out: &mut Outcome,
) {
    let g = &rules.graph_support;
    if !g.enabled || out.band != Verdict::Rejected {
        return;
    }
    let near_b = facts.near(rules, e.b);
    let mut via: Vec<(u32, f64, f64)> = Vec::new();
    for &(x, xi) in facts.near(rules, e.a).iter() {
        let leg_a = view.edge_at(xi).similarity;
        if x == e.b || leg_a < g.min_similarity {
            continue;
        }
        if let Some(&(_, yi)) = near_b.iter().find(|&&(y, _)| y == x) {
            let leg_b = view.edge_at(yi).similarity;
            if leg_b >= g.min_similarity {
                via.push((x, leg_a, leg_b));
            }
        }
    }
    if via.len() < g.min_paths {
        return;
    }
    let shown: Vec<String> = via
        .iter()
        .take(3)
        .map(|&(x, s1, s2)| format!("{} ({s1:.2} and {s2:.2})", view.node(x).face.face_id))
        .collect();
    out.floor = Verdict::Review;
    out.reasons.push(Reason::new(
        ReasonCode::GraphSupport,
        format!(
            "similarity {:.2} is below the review band, but both faces match {} other faces at {}% or more \
             (through {}{}): raised to review, never to confirmed",
            e.similarity,
            via.len(),
            g.min_similarity,
            shown.join(", "),
            if via.len() > shown.len() { ", ..." } else { "" }
        ),
        vec![
            ("paths", via.len().into()),
            ("min_paths", g.min_paths.into()),
            ("min_similarity", num(g.min_similarity)),
            (
                "via_face",
                view.node(via[0].0).face.face_id.as_str().into(),
            ),
        ],
    ));
}
