//! Adjudication scoped to the change: the faces a write marked are re-judged with the part of the
//! graph the rules read around them (docs/rules.md, "The scope of a change"), only the judgements
//! that changed are written, and only the clusters they touch are recomputed. `explain` reads the
//! same neighbourhood around one pair.

use std::collections::{HashMap, HashSet};

use crate::adjudication::{before_retention, GraphView, Reach};
use crate::cluster::ClusterGraph;
use crate::model::{
    Decision, DecisionKind, Edge, FaceId, FacePair, Judgement, SubjectId, Timestamp, Verdict,
};
use crate::store::{ClusterMembership, EdgeRecord, VerdictUpdate};

use super::{node, Facegraph, Readjudication, ServiceError, VerdictChange};

/// Above this many faces awaiting re-judging (a bulk ingest), judging the whole graph is cheaper
/// than finding the neighbourhood of each.
pub const FULL_REJUDGE_ABOVE: usize = 20_000;

/// What the scoped re-judging read: edges (light: similarities and the current verdict) by pair,
/// the faces whose every edge is among them, and each face's edges.
#[derive(Default)]
struct Loaded {
    edges: HashMap<FacePair, (Edge, Option<Verdict>)>,
    at: HashMap<FaceId, Vec<FacePair>>,
    complete: HashSet<FaceId>,
}

impl Loaded {
    /// Reads every edge of the faces among `faces` whose edges are not read yet.
    fn load(
        &mut self,
        app: &Facegraph,
        faces: impl IntoIterator<Item = FaceId>,
    ) -> Result<(), ServiceError> {
        let mut wanted: Vec<FaceId> = faces
            .into_iter()
            .filter(|f| !self.complete.contains(f))
            .collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        for (edge, verdict) in app.store.similar_edges(&wanted)? {
            if self.edges.contains_key(&edge.pair) {
                continue;
            }
            for f in [edge.pair.a(), edge.pair.b()] {
                self.at
                    .entry(f.clone())
                    .or_default()
                    .push(edge.pair.clone());
            }
            self.edges.insert(edge.pair.clone(), (edge, verdict));
        }
        self.complete.extend(wanted);
        Ok(())
    }

    /// The edges of a face read so far.
    fn edges_of(&self, f: &FaceId) -> impl Iterator<Item = &(Edge, Option<Verdict>)> {
        self.at
            .get(f)
            .into_iter()
            .flatten()
            .filter_map(|p| self.edges.get(p))
    }

    /// The faces one step from `f`: along an edge at or above `step_from`.
    fn steps<'a>(&'a self, f: &'a FaceId, step_from: f64) -> impl Iterator<Item = &'a FaceId> + 'a {
        self.edges_of(f).filter_map(move |(e, _)| {
            (e.similarity().get() >= step_from)
                .then(|| e.pair.other(f))
                .flatten()
        })
    }

    /// Reads what judging an edge reads around each of `centres`: with a budget of `k` steps, every
    /// edge of every face within `k` steps. Returns those faces and the faces one step further,
    /// which their edges name: the faces the rules can read.
    fn context(
        &mut self,
        app: &Facegraph,
        centres: HashMap<FaceId, usize>,
        step_from: f64,
    ) -> Result<HashSet<FaceId>, ServiceError> {
        let mut budget: HashMap<FaceId, usize> = HashMap::new();
        let mut frontier: Vec<(FaceId, usize)> = centres.into_iter().collect();
        while !frontier.is_empty() {
            // Keep only what raises a face's budget; read the new faces' edges in one query.
            frontier.retain(|(f, k)| budget.get(f).is_none_or(|&b| *k > b));
            for (f, k) in &frontier {
                budget.insert(f.clone(), *k);
            }
            self.load(app, frontier.iter().map(|(f, _)| f.clone()))?;
            let mut next = Vec::new();
            for (f, k) in &frontier {
                if *k == 0 {
                    continue;
                }
                for n in self.steps(f, step_from) {
                    if budget.get(n).is_none_or(|&b| k - 1 > b) {
                        next.push((n.clone(), k - 1));
                    }
                }
            }
            next.sort_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)));
            next.dedup_by(|x, y| x.0 == y.0);
            frontier = next;
        }
        let mut ball: HashSet<FaceId> = HashSet::with_capacity(budget.len() * 2);
        for f in budget.keys() {
            ball.extend(self.steps(f, step_from).cloned());
        }
        ball.extend(budget.into_keys());
        Ok(ball)
    }
}

/// Decisions read around some faces: every decision on a face of their must-link components, in
/// the store's order for each pair.
#[derive(Default)]
struct DecisionsRead {
    /// Faces whose decisions were read.
    faces: HashSet<FaceId>,
    history: Vec<Decision>,
    latest: HashMap<FacePair, DecisionKind>,
    /// The other faces of each face's latest "same person" decisions.
    same: HashMap<FaceId, Vec<FaceId>>,
}

impl DecisionsRead {
    /// Reads the decisions of `faces` not read yet, in one query. Every decision on a pair touches
    /// both its faces, so a pair's whole history comes back in the first read that names either.
    fn read(&mut self, app: &Facegraph, faces: &[FaceId]) -> Result<(), ServiceError> {
        let mut unread: Vec<FaceId> = faces
            .iter()
            .filter(|f| !self.faces.contains(*f))
            .cloned()
            .collect();
        unread.sort();
        unread.dedup();
        if unread.is_empty() {
            return Ok(());
        }
        let mut new_pairs: Vec<FacePair> = Vec::new();
        for d in app.store.decisions_touching(&unread)? {
            let known_before = self.latest.contains_key(&d.pair) && !new_pairs.contains(&d.pair);
            if known_before {
                continue;
            }
            if !self.latest.contains_key(&d.pair) {
                new_pairs.push(d.pair.clone());
            }
            self.latest.insert(d.pair.clone(), d.kind);
            self.history.push(d);
        }
        for pair in new_pairs {
            if self.latest.get(&pair) == Some(&DecisionKind::Same) {
                self.same
                    .entry(pair.a().clone())
                    .or_default()
                    .push(pair.b().clone());
                self.same
                    .entry(pair.b().clone())
                    .or_default()
                    .push(pair.a().clone());
            }
        }
        self.faces.extend(unread);
        Ok(())
    }

    /// Reads the decisions of `start`'s faces and, through "same person" decisions, of their
    /// must-link components; returns the faces of those components.
    fn components(
        &mut self,
        app: &Facegraph,
        start: impl IntoIterator<Item = FaceId>,
    ) -> Result<HashSet<FaceId>, ServiceError> {
        let mut reached: HashSet<FaceId> = HashSet::new();
        let mut todo: Vec<FaceId> = start.into_iter().collect();
        while !todo.is_empty() {
            self.read(app, &todo)?;
            let mut next = Vec::new();
            for f in todo.drain(..) {
                if !reached.insert(f.clone()) {
                    continue;
                }
                for other in self.same.get(&f).into_iter().flatten() {
                    if !reached.contains(other) {
                        next.push(other.clone());
                    }
                }
            }
            todo = next;
        }
        Ok(reached)
    }
}

/// What judging a set of edges afresh read and found.
struct Judged {
    /// The edges judged, with their judgement before band retention.
    fresh: HashMap<FacePair, Judgement>,
    /// Every edge read.
    loaded: Loaded,
    decisions: DecisionsRead,
    /// The subject of every face the view held.
    subjects: HashMap<FaceId, Option<SubjectId>>,
}

impl Facegraph {
    /// Re-judges what the changes since the last adjudication can have changed (an ingest, a
    /// decision, a stored match), and the clusters they touch: what every use case calls after a
    /// write. The faces awaiting re-judging were marked by the writes themselves, in their own
    /// transactions, so a crash between a write and this call is finished by the next call. Above
    /// [`FULL_REJUDGE_ABOVE`] such faces, or when a judgement it reads was made by another rule
    /// set, it judges the whole graph instead.
    pub fn adjudicate_changes(&self) -> Result<Readjudication, ServiceError> {
        let _one_at_a_time = self.rejudging();
        let dirty = self.store.dirty_faces(FULL_REJUDGE_ABOVE)?;
        if dirty.count == 0 {
            let totals = self.store.cluster_totals()?;
            return Ok(Readjudication {
                clusters: totals.clusters,
                fraud_leads: totals.fraud_leads,
                scoped: true,
                ..Readjudication::default()
            });
        }
        let result = if dirty.count > FULL_REJUDGE_ABOVE {
            None
        } else {
            self.rejudge_around(&dirty.faces)?
        };
        let result = match result {
            Some(r) => r,
            None => self.judge_everything()?,
        };
        self.store.clear_dirty(dirty.through)?;
        Ok(result)
    }

    /// Re-judges the edges whose verdict a change at `dirty` can have changed and the clusters
    /// around them; `None` when a judgement it would build on was made by another rule set.
    fn rejudge_around(&self, dirty: &[FaceId]) -> Result<Option<Readjudication>, ServiceError> {
        let reach = self.adjudicator.reach();
        let mut decisions = DecisionsRead::default();
        // A decision's faces reach their must-link components: the implications run through them.
        let changed = decisions.components(self, dirty.iter().cloned())?;
        let mut loaded = Loaded::default();
        let distance = self.distances(&mut loaded, &changed, &reach)?;
        let near = |p: &FacePair| {
            [p.a(), p.b()]
                .iter()
                .filter_map(|f| distance.get(*f))
                .min()
                .copied()
        };
        // A face one step from the change can change its edges' judgements only through its hub
        // group, which needs enough strong neighbours (its edges are unchanged, so this holds
        // before the change exactly when it holds after).
        let hub_capable = |f: &FaceId| {
            loaded
                .edges_of(f)
                .filter(|(e, _)| e.similarity().get() >= reach.hub_min_similarity)
                .count()
                >= reach.hub_min_neighbours
        };
        let through_hub = |p: &FacePair| {
            [p.a(), p.b()].iter().any(|f| {
                distance
                    .get(*f)
                    .is_some_and(|&d| d <= reach.all_edges && (d == 0 || hub_capable(f)))
            })
        };
        let mut judged_pairs: Vec<FacePair> = loaded
            .edges
            .values()
            .filter(|(e, _)| match near(&e.pair) {
                Some(0) => true,
                Some(d) => {
                    (d <= reach.confirm_edges && e.similarity().get() >= reach.confirm_at)
                        || through_hub(&e.pair)
                }
                None => false,
            })
            .map(|(e, _)| e.pair.clone())
            .collect();
        judged_pairs.sort();
        let judged = self.judge_afresh(loaded, decisions, &judged_pairs, &reach)?;
        let Judged {
            fresh,
            mut loaded,
            mut decisions,
            subjects,
        } = judged;

        // The stored judgements of the edges judged, and of every edge band retention reads.
        let mut stored: HashMap<FacePair, EdgeRecord> = HashMap::new();
        let mut holders: Vec<FaceId> = judged_pairs
            .iter()
            .flat_map(|p| [p.a().clone(), p.b().clone()])
            .collect();
        holders.sort();
        holders.dedup();
        for r in self.store.edges_touching(&holders)? {
            stored.insert(r.edge.pair.clone(), r);
        }
        let version = self.adjudicator.version();
        let stale = |r: &EdgeRecord| r.judgement.as_ref().is_some_and(|j| j.rule_set != version);
        let before = |stored: &HashMap<FacePair, EdgeRecord>, p: &FacePair| {
            stored
                .get(p)
                .and_then(|r| r.judgement.as_ref())
                .map(before_retention)
        };
        // Retention ranks a face's hits: it changes at the faces whose edges changed.
        let changed_before: Vec<&FacePair> = judged_pairs
            .iter()
            .filter(|p| before(&stored, p).as_ref() != fresh.get(*p))
            .collect();
        let mut ranking: HashSet<FaceId> = dirty.iter().cloned().collect();
        ranking.extend(
            changed_before
                .iter()
                .flat_map(|p| [p.a().clone(), p.b().clone()]),
        );
        let ranking: Vec<FaceId> = ranking.into_iter().collect();
        loaded.load(self, ranking.iter().cloned())?;
        // Every edge whose final judgement can change, and every face whose ranking it depends on.
        let mut finals: HashSet<FacePair> = changed_before.iter().map(|p| (*p).clone()).collect();
        for f in &ranking {
            finals.extend(loaded.edges_of(f).map(|(e, _)| e.pair.clone()));
        }
        let mut rankers: Vec<FaceId> = finals
            .iter()
            .flat_map(|p| [p.a().clone(), p.b().clone()])
            .filter(|f| !stored_complete(&holders, f))
            .collect();
        rankers.sort();
        rankers.dedup();
        for r in self.store.edges_touching(&rankers)? {
            stored.entry(r.edge.pair.clone()).or_insert(r);
        }
        if stored.values().any(stale) {
            return Ok(None);
        }
        // Band retention over every edge of the faces that rank the edges in `finals`.
        let final_faces: HashSet<&FaceId> = finals.iter().flat_map(|p| [p.a(), p.b()]).collect();
        let mut retained_pairs: Vec<&FacePair> = stored
            .keys()
            .filter(|p| final_faces.contains(p.a()) || final_faces.contains(p.b()))
            .collect();
        retained_pairs.sort();
        let edges: Vec<&Edge> = retained_pairs.iter().map(|p| &stored[*p].edge).collect();
        let mut pre: Vec<Judgement> = Vec::with_capacity(edges.len());
        for p in &retained_pairs {
            match fresh.get(*p).cloned().or_else(|| before(&stored, p)) {
                Some(j) => pre.push(j),
                // An edge never judged that the scope did not reach: only a full re-judging
                // knows its judgement.
                None => return Ok(None),
            }
        }
        self.adjudicator.retain(&edges, &mut pre);
        let after: HashMap<&FacePair, Judgement> = retained_pairs.into_iter().zip(pre).collect();

        let at = Timestamp::now();
        let mut out = Readjudication {
            judged: judged_pairs.len(),
            scoped: true,
            ..Readjudication::default()
        };
        let mut updates = Vec::new();
        let mut sorted_finals: Vec<&FacePair> = finals.iter().collect();
        sorted_finals.sort();
        for pair in sorted_finals {
            let Some(j) = after.get(pair) else { continue };
            let was = stored.get(pair).and_then(|r| r.judgement.as_ref());
            if was == Some(j) {
                continue;
            }
            let before_verdict = was.map(|b| b.verdict);
            if before_verdict != Some(j.verdict) {
                out.changes.push(VerdictChange {
                    pair: pair.clone(),
                    before: before_verdict,
                    after: j.clone(),
                });
            }
            updates.push(VerdictUpdate {
                pair: pair.clone(),
                judgement: j.clone(),
                at,
            });
        }
        for p in &judged_pairs {
            let now = after
                .get(p)
                .or_else(|| stored.get(p).and_then(|r| r.judgement.as_ref()));
            if let Some(j) = now {
                out.counts.add(j);
            }
        }
        out.written = self.store.record_verdicts(&updates)?;
        crate::faults::crash_point("adjudicate.after_verdicts_commit");
        // What was read now holds the verdicts just written, for the clusters.
        for u in &updates {
            if let Some(slot) = loaded.edges.get_mut(&u.pair) {
                slot.1 = Some(u.judgement.verdict);
            }
        }

        // Clusters: every face whose confirmed edges or decisions can have changed, and the
        // components around them as they are now.
        let mut touched: HashSet<FaceId> = changed;
        touched.extend(holders.iter().cloned());
        self.update_clusters(&loaded, &mut decisions, &subjects, touched)?;
        crate::faults::crash_point("adjudicate.after_clusters_commit");
        let totals = self.store.cluster_totals()?;
        out.clusters = totals.clusters;
        out.fraud_leads = totals.fraud_leads;
        Ok(Some(out))
    }

    /// The distance of every face within [`Reach::confirm_edges`] steps of `changed`, with every
    /// edge of those faces read.
    fn distances(
        &self,
        loaded: &mut Loaded,
        changed: &HashSet<FaceId>,
        reach: &Reach,
    ) -> Result<HashMap<FaceId, usize>, ServiceError> {
        let mut distance: HashMap<FaceId, usize> = changed.iter().map(|f| (f.clone(), 0)).collect();
        let mut level: Vec<FaceId> = changed.iter().cloned().collect();
        let last = reach.confirm_edges.max(reach.all_edges);
        for d in 0..=last {
            loaded.load(self, level.iter().cloned())?;
            if d == last {
                break;
            }
            let mut next = Vec::new();
            for f in &level {
                for n in loaded.steps(f, reach.step_from) {
                    if !distance.contains_key(n) {
                        distance.insert(n.clone(), d + 1);
                        next.push(n.clone());
                    }
                }
            }
            level = next;
        }
        Ok(distance)
    }

    /// Judges `pairs` afresh (before band retention), reading what the rules read around them.
    fn judge_afresh(
        &self,
        mut loaded: Loaded,
        mut decisions: DecisionsRead,
        pairs: &[FacePair],
        reach: &Reach,
    ) -> Result<Judged, ServiceError> {
        let rules = self.adjudicator.rules();
        let mut centres: HashMap<FaceId, usize> = HashMap::new();
        for p in pairs {
            let Some((e, _)) = loaded.edges.get(p) else {
                continue;
            };
            let confirm = e.similarity().get() >= reach.confirm_at;
            let k = if confirm && rules.transitivity.enabled {
                reach.confirm_context.max(1)
            } else {
                usize::from(rules.hub.enabled)
            };
            for f in [p.a(), p.b()] {
                let slot = centres.entry(f.clone()).or_insert(0);
                *slot = (*slot).max(k);
            }
        }
        let endpoints: Vec<FaceId> = centres.keys().cloned().collect();
        let ball = loaded.context(self, centres, reach.step_from)?;
        decisions.components(self, endpoints)?;
        let (view, subjects) = self.view_of(&loaded, &ball, &decisions)?;
        let judged = self.adjudicator.judge_edges(&view, pairs);
        let fresh = pairs
            .iter()
            .cloned()
            .zip(judged)
            .filter_map(|(p, j)| j.map(|j| (p, j)))
            .collect();
        Ok(Judged {
            fresh,
            loaded,
            decisions,
            subjects,
        })
    }

    /// A view of what the rules can read: the faces of `ball`, the edges between two of them, their
    /// searches, and the decisions read; with the subject of each face. An edge from the ball to a
    /// face outside it is below every similarity the rules step along and names a face no rule
    /// reads, so it is left out with that face.
    fn view_of(
        &self,
        loaded: &Loaded,
        ball: &HashSet<FaceId>,
        decisions: &DecisionsRead,
    ) -> Result<(GraphView, HashMap<FaceId, Option<SubjectId>>), ServiceError> {
        let mut ids: Vec<FaceId> = ball.iter().cloned().collect();
        ids.sort();
        let faces = self.store.faces(&ids)?;
        let searches = self.store.searches(&ids)?;
        let subjects = faces
            .iter()
            .map(|f| (f.face.face_id.clone(), f.subject.clone()))
            .collect();
        let mut edges: Vec<(Edge, Option<Judgement>)> = loaded
            .edges
            .values()
            .filter(|(e, _)| ball.contains(e.pair.a()) && ball.contains(e.pair.b()))
            .map(|(e, _)| (e.clone(), None))
            .collect();
        edges.sort_by(|x, y| x.0.pair.cmp(&y.0.pair));
        let view = GraphView::new(
            faces.into_iter().map(node).collect(),
            edges,
            searches,
            decisions.history.clone(),
        )?;
        Ok((view, subjects))
    }

    /// Recomputes the clusters around `touched` from the confirmed edges and decisions as stored
    /// now, and replaces the stored clusters that held any of their faces. `loaded` holds edges
    /// with their current verdicts; the edges of faces it did not read in full are read.
    fn update_clusters(
        &self,
        loaded: &Loaded,
        decisions: &mut DecisionsRead,
        subjects: &HashMap<FaceId, Option<SubjectId>>,
        touched: HashSet<FaceId>,
    ) -> Result<(), ServiceError> {
        // The components over confirmed edges and must-links that hold the touched faces.
        let mut members: HashSet<FaceId> = touched;
        let mut frontier: Vec<FaceId> = members.iter().cloned().collect();
        let mut confirmed: HashMap<FacePair, f64> = HashMap::new();
        let mut read: HashSet<FaceId> = HashSet::new();
        while !frontier.is_empty() {
            frontier.sort();
            frontier.dedup();
            read.extend(frontier.iter().cloned());
            let (known, unknown): (Vec<FaceId>, Vec<FaceId>) = frontier
                .iter()
                .cloned()
                .partition(|f| loaded.complete.contains(f));
            let mut edges: Vec<(Edge, Option<Verdict>)> = self.store.similar_edges(&unknown)?;
            for f in &known {
                edges.extend(loaded.edges_of(f).cloned());
            }
            let reached = decisions.components(self, frontier.iter().cloned())?;
            let mut next = Vec::new();
            for (e, verdict) in edges {
                if verdict == Some(Verdict::Confirmed) {
                    for f in [e.pair.a(), e.pair.b()] {
                        if members.insert(f.clone()) {
                            next.push(f.clone());
                        }
                    }
                    confirmed.insert(e.pair.clone(), e.similarity().get());
                }
            }
            for f in reached {
                if members.insert(f.clone()) {
                    next.push(f);
                }
            }
            frontier = next.into_iter().filter(|f| !read.contains(f)).collect();
        }
        let mut g = ClusterGraph::with_capacity(members.len(), confirmed.len());
        let mut links: Vec<(&FacePair, &f64)> = confirmed.iter().collect();
        links.sort_by(|x, y| x.0.cmp(y.0));
        for (pair, s) in links {
            g.add_confirmed(pair, *s);
        }
        let mut latest: Vec<(&FacePair, &DecisionKind)> = decisions
            .latest
            .iter()
            .filter(|(p, _)| members.contains(p.a()) && members.contains(p.b()))
            .collect();
        latest.sort_by(|x, y| x.0.cmp(y.0));
        for (pair, kind) in latest {
            match kind {
                DecisionKind::Same => g.add_must_link(pair),
                DecisionKind::Different => g.add_cannot_link(pair),
            }
        }
        let clusters = g.clusters();
        let mut ids: Vec<FaceId> = members.into_iter().collect();
        ids.sort();
        let old = self.store.clusters_of(&ids)?;
        // The subjects of the clusters' faces: those the view held, and the others read.
        let mut subject_of: HashMap<FaceId, SubjectId> = HashMap::new();
        let mut unknown: Vec<FaceId> = Vec::new();
        for f in clusters.iter().flat_map(|c| c.faces.iter()) {
            match subjects.get(f) {
                Some(Some(s)) => {
                    subject_of.insert(f.clone(), s.clone());
                }
                Some(None) => {}
                None => unknown.push(f.clone()),
            }
        }
        for f in self.store.faces(&unknown)? {
            if let Some(s) = f.subject {
                subject_of.insert(f.face.face_id, s);
            }
        }
        let new_ids: HashSet<&str> = clusters.iter().map(|c| c.id.as_str()).collect();
        let old_ids: HashSet<&str> = old.iter().map(|c| c.cluster_id.as_str()).collect();
        let removed: Vec<String> = old
            .iter()
            .filter(|c| !new_ids.contains(c.cluster_id.as_str()))
            .map(|c| c.cluster_id.clone())
            .collect();
        let added: Vec<ClusterMembership> = clusters
            .iter()
            .filter(|c| !old_ids.contains(c.id.as_str()))
            .map(|c| ClusterMembership {
                cluster_id: c.id.clone(),
                faces: c.faces.clone(),
                fraud_lead: c.subjects(&subject_of).len() >= 2,
            })
            .collect();
        // A cluster whose faces are the same keeps its id, but its faces' subjects may have
        // changed: store it again when its fraud-lead flag did.
        let reflagged: Vec<ClusterMembership> = clusters
            .iter()
            .filter_map(|c| {
                let was = old.iter().find(|o| o.cluster_id == c.id)?;
                let lead = c.subjects(&subject_of).len() >= 2;
                (was.fraud_lead != lead).then(|| ClusterMembership {
                    cluster_id: c.id.clone(),
                    faces: c.faces.clone(),
                    fraud_lead: lead,
                })
            })
            .collect();
        let mut removed = removed;
        removed.extend(reflagged.iter().map(|c| c.cluster_id.clone()));
        let mut added = added;
        added.extend(reflagged);
        if !removed.is_empty() || !added.is_empty() {
            self.store.replace_some_clusters(&removed, &added)?;
        }
        Ok(())
    }

    /// Judges one stored pair under the current rules now, band retention included, reading only
    /// the pair's neighbourhood: every edge of both faces is judged, so that their rankings are
    /// the whole graph's.
    pub(super) fn judge_pair_now(
        &self,
        pair: &FacePair,
    ) -> Result<Option<Judgement>, ServiceError> {
        let reach = self.adjudicator.reach();
        let mut loaded = Loaded::default();
        loaded.load(self, [pair.a().clone(), pair.b().clone()])?;
        if !loaded.edges.contains_key(pair) {
            return Ok(None);
        }
        let mut pairs: Vec<FacePair> = loaded
            .edges_of(pair.a())
            .chain(loaded.edges_of(pair.b()))
            .map(|(e, _)| e.pair.clone())
            .collect();
        pairs.sort();
        pairs.dedup();
        let judged = self.judge_afresh(loaded, DecisionsRead::default(), &pairs, &reach)?;
        let edges: Vec<&Edge> = pairs
            .iter()
            .filter_map(|p| judged.loaded.edges.get(p).map(|(e, _)| e))
            .collect();
        let mut pre: Vec<Judgement> = Vec::with_capacity(pairs.len());
        for p in &pairs {
            match judged.fresh.get(p) {
                Some(j) => pre.push(j.clone()),
                None => return Ok(None),
            }
        }
        self.adjudicator.retain(&edges, &mut pre);
        Ok(pairs
            .iter()
            .zip(pre)
            .find(|(p, _)| *p == pair)
            .map(|(_, j)| j))
    }
}

/// Whether the stored edges of `f` were all read with those of `holders` (sorted).
fn stored_complete(holders: &[FaceId], f: &FaceId) -> bool {
    holders.binary_search(f).is_ok()
}
