//! The rules that read the graph around an edge: rings and stars (faces that match many subjects),
//! transitivity (strong links their neighbourhood contradicts: a triangle's weak link, a bridge
//! between two groups) and graph support (strong paths through third faces). Each reads a bounded
//! neighbourhood: a face's `neighbourhood.max_degree` most similar faces at the review band.

use std::borrow::Cow;
use std::cmp::Ordering;

use rustc_hash::FxHashSet;

use super::rules::{num, sim, Outcome};
use super::view::{GraphView, ViewEdge, NO_SUBJECT};
use super::RuleSet;
use crate::model::{AgeRange, Reason, ReasonCode, Verdict};

/// What the graph rules know of a view: every face's bounded neighbours, hub shapes and the
/// closure of every confirm-band edge, computed once for [`super::Adjudicator::judge_all`], or on
/// demand when one edge is judged.
pub(super) struct Facts<'v> {
    view: &'v GraphView,
    near: Option<NearLists>,
    hubs: Option<Vec<Option<Box<Group>>>>,
    closures: Option<Vec<Closure>>,
}

/// A neighbour as the graph rules read it: (face, edge, the edge's similarity). The similarity is
/// kept beside the edge so that reading a neighbour list touches one block of memory.
type Nb = (u32, u32, f64);

/// Every face's neighbour list in one allocation: face `f`'s are `items[start[f]..start[f + 1]]`.
struct NearLists {
    start: Vec<u32>,
    items: Vec<Nb>,
}

impl<'v> Facts<'v> {
    /// Everything, for judging every edge of the view.
    pub(super) fn all(rules: &RuleSet, view: &'v GraphView) -> Self {
        let mut facts = Self::on_demand(view);
        let graph_rules =
            rules.hub.enabled || rules.transitivity.enabled || rules.graph_support.enabled;
        if graph_rules {
            let mut start = Vec::with_capacity(view.face_count() + 1);
            let mut items = Vec::new();
            start.push(0);
            for f in 0..view.face_count() as u32 {
                push_top_neighbours(
                    view,
                    f,
                    rules.bands.review_from,
                    rules.neighbourhood.max_degree,
                    &mut items,
                );
                start.push(items.len() as u32);
            }
            facts.near = Some(NearLists { start, items });
        }
        if rules.hub.enabled {
            let hubs = (0..view.face_count() as u32)
                .map(|f| hub_shape(rules, view, f, Some(&facts.near(rules, f))))
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
    /// `neighbourhood.max_degree` of them.
    fn near(&self, rules: &RuleSet, f: u32) -> Cow<'_, [Nb]> {
        match &self.near {
            Some(n) => Cow::Borrowed(
                &n.items[n.start[f as usize] as usize..n.start[f as usize + 1] as usize],
            ),
            None => {
                let mut v = Vec::new();
                push_top_neighbours(
                    self.view,
                    f,
                    rules.bands.review_from,
                    rules.neighbourhood.max_degree,
                    &mut v,
                );
                Cow::Owned(v)
            }
        }
    }

    fn hub(&self, rules: &RuleSet, f: u32) -> Option<Cow<'_, Group>> {
        match &self.hubs {
            Some(all) => all[f as usize].as_deref().map(Cow::Borrowed),
            None => hub_shape(rules, self.view, f, None).map(|g| Cow::Owned(*g)),
        }
    }

    fn closure(&self, rules: &RuleSet, i: u32) -> Closure {
        match &self.closures {
            Some(all) => all[i as usize],
            None => closure(rules, self, i),
        }
    }
}

/// Appends `f`'s neighbours at `min` or more to `out`, most similar first (ties by pair), at
/// most `max` of them.
fn push_top_neighbours(view: &GraphView, f: u32, min: f64, max: usize, out: &mut Vec<Nb>) {
    let from = out.len();
    out.extend(view.neighbours(f).iter().filter_map(|&(n, e)| {
        let s = view.edge_at(e).similarity;
        (s >= min).then_some((n, e, s))
    }));
    let mine = &mut out[from..];
    if mine.len() < 2 {
        return;
    }
    // Ties by the edges' pairs, not their place in the view, so that a partial view reads the
    // same neighbours as the whole graph.
    let order = |x: &Nb, y: &Nb| y.2.total_cmp(&x.2).then_with(|| view.edge_order(x.1, y.1));
    if mine.len() > max {
        mine.select_nth_unstable_by(max - 1, order);
        out.truncate(from + max);
    }
    out[from..].sort_unstable_by(order);
}

/// The neighbourhood of a face that matches many subjects, and what it makes of the face.
#[derive(Clone, Debug)]
pub(super) struct Group {
    /// Distinct other known subjects among the neighbours read.
    subjects: usize,
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

/// The group around `f` when it matches at least `hub.min_subjects` distinct other subjects;
/// `near` is the face's neighbour list when it is at hand.
fn hub_shape(rules: &RuleSet, view: &GraphView, f: u32, near: Option<&[Nb]>) -> Option<Box<Group>> {
    let h = &rules.hub;
    if !h.enabled {
        return None;
    }
    // Most faces have a handful of hits: count before gathering anything.
    let candidates = match near {
        // The neighbour list is complete below its bound, and at the bound there are enough.
        Some(list) if h.min_similarity >= rules.bands.review_from => list
            .iter()
            .take_while(|&&(_, _, s)| s >= h.min_similarity)
            .count(),
        _ => view
            .neighbours(f)
            .iter()
            .filter(|&&(_, e)| view.edge_at(e).similarity >= h.min_similarity)
            .count(),
    };
    if candidates < h.min_subjects {
        return None;
    }
    let mut hits = Vec::new();
    push_top_neighbours(
        view,
        f,
        h.min_similarity,
        rules.neighbourhood.max_degree,
        &mut hits,
    );
    let own = view.subject_key(f);
    let mut seen: Vec<u32> = hits
        .iter()
        .map(|&(n, _, _)| view.subject_key(n))
        .filter(|&k| k != NO_SUBJECT && k != own)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let subjects = seen.len();
    if subjects < h.min_subjects {
        return None;
    }
    // How many of the other neighbours each neighbour matches at the review band.
    let review = rules.bands.review_from;
    let mut members: Vec<(u32, u32)> = hits.iter().map(|&(n, _, _)| (n, 0)).collect();
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
    Some(Box::new(Group {
        subjects,
        ring: density >= h.min_density && agreement >= h.min_agreement,
        neighbours,
        mutual,
        density,
        agreeing,
        members,
    }))
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
        .map(|a| (a.low() + a.high()) / 2)
        .collect();
    middles.sort_unstable();
    let median = middles
        .get(middles.len() / 2)
        .and_then(|&m| AgeRange::new(m, m).ok());
    faces
        .iter()
        .filter(|&&f| {
            let gender_ok = confident(f).is_none_or(|g| Some(g) == majority);
            let age_ok = !rules.age.enabled
                || match (attrs(f).age, median) {
                    (Some(a), Some(m)) => a.gap(&m) <= rules.age.tolerance_years,
                    _ => true,
                };
            gender_ok && age_ok
        })
        .count()
}

/// Rings and stars: an edge at a star is capped at review; a ring's edges keep their band's
/// verdict, with a `ring` reason when the other face belongs to the ring (matches at least
/// `min_density` of the ring's other faces).
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
        let Some(g) = facts.hub(rules, f) else {
            continue;
        };
        let face = &view.node(f).face.face_id;
        let mut evidence = vec![
            ("face_id", face.as_str().into()),
            ("distinct_subjects", g.subjects.into()),
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
        if g.ring {
            // A ring's edges keep their band's verdict. An edge to a face that matches few of the
            // ring's other faces gets no ring reason; whether it is a weak link is the
            // transitivity rule's to say, as for any edge.
            let belongs = member.is_some_and(|(_, share)| share >= h.min_density);
            if belongs && ring_reason.is_none() {
                ring_reason = Some(Reason::new(
                    ReasonCode::Ring,
                    format!(
                        "face {face} matches {} distinct subjects whose faces also match each other: {numbers}. \
                         One person behind several accounts, a ring: the match keeps its band's verdict",
                        g.subjects
                    ),
                    evidence,
                ));
            }
            continue;
        }
        let message = format!(
            "face {face} matches {} distinct subjects at {}% or more, but they do not look like one person: \
             {numbers}. A poster, a generic or low-quality face (a star): at most review",
            g.subjects, h.min_similarity
        );
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
    let mut out = Closure {
        side_a: 1,
        side_b: 1,
        ..Closure::default()
    };
    if rules.transitivity.enabled && facts.view.edge_at(i).similarity >= rules.bands.confirm_at {
        let (common, side_a, side_b) = across_pairs(rules, facts, i, |_, _, known| match known {
            Known::Match => out.support += 1,
            Known::Far(_) => out.far += 1,
            Known::Unknown => {}
        });
        out.support += common;
        out.side_a = side_a;
        out.side_b = side_b;
    }
    out
}

/// The first far pair across edge `i`, for the sentence that explains a doubt.
fn far_example(rules: &RuleSet, facts: &Facts<'_>, i: u32) -> Option<(u32, u32, Far)> {
    let mut example = None;
    across_pairs(rules, facts, i, |x, y, known| {
        if let (None, Known::Far(far)) = (&example, known) {
            example = Some((x, y, far));
        }
    });
    example
}

/// Visits what is known of every pair across edge `i` = (a, b): a or a neighbour of a only, with
/// b or a neighbour of b only. Returns how many faces both sides share (within `max_hops`) and the
/// size of each side.
fn across_pairs(
    rules: &RuleSet,
    facts: &Facts<'_>,
    i: u32,
    mut pair: impl FnMut(u32, u32, Known),
) -> (u32, u32, u32) {
    let view = facts.view;
    let e = view.edge_at(i);
    let near_a = facts.near(rules, e.a);
    let near_b = facts.near(rules, e.b);
    if near_a.len() <= 1 && near_b.len() <= 1 {
        // Only each other: nothing around the edge to bear on it.
        return (0, 1, 1);
    }
    let in_list = |list: &[Nb], f: u32| list.iter().any(|&(n, _, _)| n == f);
    // Faces that tie both sides together: common neighbours, or with more hops, common reach.
    let reached = (rules.neighbourhood.max_hops > 1)
        .then(|| (reach(rules, facts, e.a, e.b), reach(rules, facts, e.b, e.a)));
    let common = |f: u32| match &reached {
        None => in_list(&near_a, f) && in_list(&near_b, f),
        Some((ra, rb)) => ra.contains(&f) && rb.contains(&f),
    };
    let common_count = match &reached {
        None => near_a
            .iter()
            .filter(|&&(f, _, _)| f != e.b && in_list(&near_b, f))
            .count() as u32,
        Some((ra, rb)) => ra.intersection(rb).count() as u32,
    };
    // Each side: its face and its own neighbours, common faces left out.
    fn side<'a>(
        face: u32,
        list: &'a [Nb],
        other: u32,
        common: &'a impl Fn(u32) -> bool,
    ) -> impl Iterator<Item = u32> + 'a {
        std::iter::once(face).chain(
            list.iter()
                .map(|&(f, _, _)| f)
                .filter(move |&f| f != other && !common(f)),
        )
    }
    let side_b_size = side(e.b, &near_b, e.a, &common).count() as u32;
    let mut side_a_size = 0;
    for x in side(e.a, &near_a, e.b, &common) {
        side_a_size += 1;
        for y in side(e.b, &near_b, e.a, &common) {
            if (x, y) != (e.a, e.b) && x != y {
                pair(x, y, known_far(rules, view, x, y));
            }
        }
    }
    (common_count, side_a_size, side_b_size)
}

/// The faces within `max_hops` steps of `from` through neighbour lists, never through `not`.
fn reach(rules: &RuleSet, facts: &Facts<'_>, from: u32, not: u32) -> FxHashSet<u32> {
    let mut seen: FxHashSet<u32> = FxHashSet::default();
    let mut frontier = vec![from];
    for _ in 0..rules.neighbourhood.max_hops {
        let mut next = Vec::new();
        for f in frontier {
            for &(n, _, _) in facts.near(rules, f).iter() {
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
        let (seq, collection) = (view.node(other).seq, view.collection_key(other));
        let silent = view
            .searches_of(searched)
            .iter()
            .find(|s| s.bound <= far && seq <= s.seq && s.collection == collection);
        if let Some(s) = silent {
            return Known::Far(Far::Silence {
                searched,
                bound: s.bound,
            });
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
    // Shares rather than counts: a competitor in a larger group knows of more pairs either way. A
    // tie goes to the edge whose pair sorts first.
    let outranks = |(c, sim, idx): (&Closure, f64, u32), (oc, osim, oidx): (&Closure, f64, u32)| {
        c.share()
            .total_cmp(&oc.share())
            .then(sim.total_cmp(&osim))
            .then_with(|| view.edge_order(oidx, idx))
            == Ordering::Greater
    };
    let mut best: Option<(u32, u32, f64, Closure)> = None;
    for (pivot, far_end) in [(e.a, e.b), (e.b, e.a)] {
        let far_near = facts.near(rules, far_end);
        for &(x, xi, sim) in facts.near(rules, pivot).iter() {
            // A competitor leads from the pivot into its own side: not to the far end, nor to a
            // face the far end matches too.
            if sim < rules.bands.confirm_at
                || x == far_end
                || far_near.iter().any(|&(f, _, _)| f == x)
            {
                continue;
            }
            let theirs = facts.closure(rules, xi);
            let best_so_far = best
                .as_ref()
                .is_none_or(|(_, bi, bs, bc)| outranks((&theirs, sim, xi), (bc, *bs, *bi)));
            if outranks((&theirs, sim, xi), (&mine, e.similarity, i)) && best_so_far {
                best = Some((x, xi, sim, theirs));
            }
        }
    }
    let Some((x, _, other_similarity, theirs)) = best else {
        return;
    };
    let id = |f: u32| view.node(f).face.face_id.as_str();
    let what = match far_example(rules, facts, i) {
        Some((u, v, Far::Edge(s))) => {
            format!("{} and {} are only {} similar", id(u), id(v), sim(s))
        }
        Some((u, v, Far::Silence { searched, bound })) => format!(
            "searching face {} did not return face {}, so they are below {}",
            id(searched),
            id(if searched == u { v } else { u }),
            sim(bound)
        ),
        None => String::new(),
    };
    let bridge = mine.side_a > 1 && mine.side_b > 1;
    let message = if bridge {
        format!(
            "faces {} and {} match at {}, but the groups around them do not: of the pairs across \
             ({} faces on one side, {} on the other), {} are far apart (below {}; {what}) and {} tie the \
             two sides together, a share under {}. The link to {} ({}) stands on more support: \
             this is a bridge between two groups, at most review",
            id(e.a),
            id(e.b),
            sim(e.similarity),
            mine.side_a,
            mine.side_b,
            mine.far,
            t.far_below,
            mine.support,
            t.min_support,
            id(x),
            sim(other_similarity)
        )
    } else {
        format!(
            "faces {} and {} match at {}, but {what} ({} such pairs far apart, {} supporting), while \
             the link to {} ({}) stands on more support: this is the weaker link",
            id(e.a),
            id(e.b),
            sim(e.similarity),
            mine.far,
            mine.support,
            id(x),
            sim(other_similarity)
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
    for &(x, _, leg_a) in facts.near(rules, e.a).iter() {
        if leg_a < g.min_similarity {
            // The list is most similar first: no later neighbour is strong enough either.
            break;
        }
        if x == e.b {
            continue;
        }
        if let Some(&(_, _, leg_b)) = near_b.iter().find(|&&(y, _, _)| y == x) {
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
        .map(|&(x, s1, s2)| {
            format!(
                "{} ({} and {})",
                view.node(x).face.face_id,
                sim(s1),
                sim(s2)
            )
        })
        .collect();
    out.floor = Verdict::Review;
    out.reasons.push(Reason::new(
        ReasonCode::GraphSupport,
        format!(
            "similarity {} is below the review band, but both faces match {} other faces at {}% or more \
             (through {}{}): raised to review, never to confirmed",
            sim(e.similarity),
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
