//! The use cases: adjudicate the stored graph, list matches and the review queue, explain a pair,
//! record analyst decisions, compute clusters and preview another rule set. Each takes the store as a
//! `GraphStore` and the rules as an `Adjudicator`, so any adapter serves.

mod collections;
mod decisions;
mod ingest_images;
mod ingest_rekognition;
mod queries;
mod scoped;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use collections::{
    create_collection, delete_collection, describe_collection, list_collections, search_engine,
    CollectionView, RouteView, SearchBy, SearchHit, SearchReport, SearchRequest,
};
pub use decisions::{
    read_decision_sheet, DecisionImport, DecisionSheet, SheetDecision, SheetRowError,
};
pub use ingest_images::{
    FacePolicy, ImageIngest, ImageIngestReport, IndexedUpload, ResumeReport, SearchOptions,
    StagedImage, DEFAULT_MAX_MATCHES, DEFAULT_SEARCH_THRESHOLD,
};
pub use ingest_rekognition::{
    read_subjects_csv, FaceConflict, FileOutcome, IngestReport, RekognitionIngest, SavedFileError,
    MAX_SAVED_RESPONSE_BYTES,
};
pub use queries::{
    Candidate, CandidateFace, ClusterDetail, RecordedMatch, CANDIDATE_COLLECTION, SUBMITTED_ENGINE,
};
pub use scoped::FULL_REJUDGE_ABOVE;

use crate::adjudication::{in_review_queue, Adjudicator, FaceNode, GraphView, MissingFace};
use crate::cluster::{Cluster, ClusterGraph};
use crate::model::{
    Decision, DecisionKind, Edge, FaceId, FacePair, Judgement, SubjectId, Timestamp, Verdict,
};
use crate::store::{
    ClusterMembership, EdgeRecord, FaceRecord, GraphStore, QueuePosition, StoreError, VerdictUpdate,
};

/// Errors of the use cases.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store holds an edge whose face it does not hold.
    #[error("the graph is inconsistent")]
    Inconsistent(#[from] MissingFace),
    /// A face named by the caller is not stored.
    #[error("face {0} is not in the graph")]
    UnknownFace(FaceId),
    /// The caller named the same face twice.
    #[error("a face cannot be matched against itself ({0})")]
    SamePair(FaceId),
    /// An argument is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The face engine failed or refused the request.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// A candidate match as analysts and downstream systems see it: the edge, its verdict and both faces.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchView {
    /// The edge.
    pub edge: Edge,
    /// Its current judgement, when adjudicated.
    pub judgement: Option<Judgement>,
    /// The first face.
    pub face_a: Option<FaceRecord>,
    /// The second face.
    pub face_b: Option<FaceRecord>,
}

/// Everything known of one pair.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The stored match, when the pair has an edge.
    pub stored: Option<MatchView>,
    /// The faces.
    pub face_a: FaceRecord,
    /// The faces.
    pub face_b: FaceRecord,
    /// The judgement under the current rule set, computed now (with band retention).
    pub current: Option<Judgement>,
    /// Analyst decisions on the pair, oldest first.
    pub decisions: Vec<Decision>,
}

/// A verdict that changed or would change.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictChange {
    /// The pair.
    pub pair: FacePair,
    /// The verdict before, if any.
    pub before: Option<Verdict>,
    /// The judgement after.
    pub after: Judgement,
}

/// The outcome of re-adjudicating the graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readjudication {
    /// Edges judged.
    pub judged: usize,
    /// Judgements written because they changed.
    pub written: usize,
    /// Edges whose verdict changed.
    pub changes: Vec<VerdictChange>,
    /// Verdict counts afterwards over the edges judged: every edge, or with `scoped` the edges the
    /// changes could reach.
    pub counts: VerdictCounts,
    /// Clusters afterwards.
    pub clusters: usize,
    /// Clusters with two or more subjects.
    pub fraud_leads: usize,
    /// Whether only what the changes since the last adjudication can have changed was judged.
    pub scoped: bool,
}

/// How many edges hold each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerdictCounts {
    /// Confirmed.
    pub confirmed: usize,
    /// Review (all, including those held back from the queue).
    pub review: usize,
    /// Rejected.
    pub rejected: usize,
    /// Review verdicts that are in the review queue.
    pub queued: usize,
}

impl VerdictCounts {
    fn add(&mut self, j: &Judgement) {
        match j.verdict {
            Verdict::Confirmed => self.confirmed += 1,
            Verdict::Review => self.review += 1,
            Verdict::Rejected => self.rejected += 1,
        }
        if in_review_queue(j) {
            self.queued += 1;
        }
    }
}

/// A cluster with the subjects behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterView {
    /// The cluster.
    pub cluster: Cluster,
    /// Its distinct subjects, sorted.
    pub subjects: Vec<SubjectId>,
}

/// The application: a store and the rules, behind a cheap cloneable handle.
#[derive(Clone, Debug)]
pub struct Facegraph {
    store: Arc<dyn GraphStore>,
    adjudicator: Arc<Adjudicator>,
    /// Held while the graph is re-judged: two re-judgings at once could each write what it
    /// judged from what it read before the other wrote.
    rejudge: Arc<Mutex<()>>,
}

impl Facegraph {
    /// The application over a store with these rules.
    pub fn new(store: Arc<dyn GraphStore>, adjudicator: Adjudicator) -> Self {
        Self {
            store,
            adjudicator: Arc::new(adjudicator),
            rejudge: Arc::new(Mutex::new(())),
        }
    }

    fn rejudging(&self) -> MutexGuard<'_, ()> {
        // A panic while re-judging left nothing half-written that the next re-judging would not
        // redo: the marks it read are still there.
        self.rejudge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn GraphStore> {
        &self.store
    }

    /// The rules.
    pub fn adjudicator(&self) -> &Adjudicator {
        &self.adjudicator
    }

    /// Loads the whole graph into a view for the rules, with each edge's stored judgement.
    pub fn load_view(&self) -> Result<GraphView, ServiceError> {
        // Edges first: faces are only ever added, so every face an edge names is among the faces
        // read after it, even while other writers (the stream's stages) store faces and hits.
        let edges = self.store.edges(None)?;
        let decisions = self.store.decisions()?;
        let faces = self.store.all_faces()?;
        let ids: Vec<FaceId> = faces.iter().map(|f| f.face.face_id.clone()).collect();
        let searches = self.store.searches(&ids)?;
        Ok(GraphView::new(
            faces.into_iter().map(node).collect(),
            edges.into_iter().map(|e| (e.edge, e.judgement)).collect(),
            searches,
            decisions,
        )?)
    }

    /// Judges every edge under the current rules and writes the judgements that changed; then
    /// recomputes and stores the clusters, and clears the faces awaiting re-judging. Running it
    /// twice writes nothing the second time.
    pub fn readjudicate(&self) -> Result<Readjudication, ServiceError> {
        let _one_at_a_time = self.rejudging();
        let dirty = self.store.dirty_faces(0)?;
        let out = self.judge_everything()?;
        self.store.clear_dirty(dirty.through)?;
        Ok(out)
    }

    fn judge_everything(&self) -> Result<Readjudication, ServiceError> {
        let view = self.load_view()?;
        let judged = self.adjudicator.judge_all(&view);
        let at = Timestamp::now();
        let mut out = Readjudication {
            judged: judged.len(),
            ..Readjudication::default()
        };
        let mut updates = Vec::new();
        for (pair, j) in view.pairs().cloned().zip(judged) {
            out.counts.add(&j);
            let before = view.stored(&pair);
            if before != Some(&j) {
                let before_verdict = before.map(|b| b.verdict);
                if before_verdict != Some(j.verdict) {
                    out.changes.push(VerdictChange {
                        pair: pair.clone(),
                        before: before_verdict,
                        after: j.clone(),
                    });
                }
                updates.push(VerdictUpdate {
                    pair,
                    judgement: j,
                    at,
                });
            }
        }
        out.written = self.store.record_verdicts(&updates)?;
        crate::faults::crash_point("adjudicate.after_verdicts_commit");
        let clusters = self.clusters(0)?;
        out.clusters = clusters.len();
        out.fraud_leads = clusters.iter().filter(|c| c.subjects.len() >= 2).count();
        let membership: Vec<ClusterMembership> = clusters
            .iter()
            .map(|c| ClusterMembership {
                cluster_id: c.cluster.id.clone(),
                faces: c.cluster.faces.clone(),
                fraud_lead: c.subjects.len() >= 2,
            })
            .collect();
        self.store.replace_clusters(&membership)?;
        crate::faults::crash_point("adjudicate.after_clusters_commit");
        Ok(out)
    }

    /// Stored matches, optionally only those with one verdict: confirmed first, then review, then
    /// rejected, each by score.
    pub fn matches(&self, verdict: Option<Verdict>) -> Result<Vec<MatchView>, ServiceError> {
        let edges = self.store.edges(verdict)?;
        self.match_views(edges)
    }

    /// The whole review queue: review verdicts that band retention kept and that are not
    /// self-matches, highest score first, read page by page (see [`Facegraph::review_page`]).
    pub fn review_queue(&self) -> Result<Vec<MatchView>, ServiceError> {
        const PAGE: usize = 1_000;
        let mut queue: Vec<MatchView> = Vec::new();
        loop {
            let after = queue.last().and_then(|m| {
                m.judgement.as_ref().map(|j| QueuePosition {
                    score: j.score,
                    pair: m.edge.pair.clone(),
                })
            });
            let page = self.review_page(after.as_ref(), PAGE)?;
            let last = page.len() < PAGE;
            queue.extend(page);
            if last {
                return Ok(queue);
            }
        }
    }

    /// A page of the review queue, read from the stored verdicts: at most `limit` matches after
    /// `after`, highest score first, then by pair. Reads only the page, whatever the graph's size.
    pub fn review_page(
        &self,
        after: Option<&QueuePosition>,
        limit: usize,
    ) -> Result<Vec<MatchView>, ServiceError> {
        let edges = self.store.review_page(after, limit)?;
        // The store's order (score descending, then pair) is the order `match_views` sorts in.
        self.match_views(edges)
    }

    fn match_views(&self, edges: Vec<EdgeRecord>) -> Result<Vec<MatchView>, ServiceError> {
        let mut ids: Vec<FaceId> = edges
            .iter()
            .flat_map(|e| [e.edge.pair.a().clone(), e.edge.pair.b().clone()])
            .collect();
        ids.sort();
        ids.dedup();
        let faces: HashMap<FaceId, FaceRecord> = self
            .store
            .faces(&ids)?
            .into_iter()
            .map(|f| (f.face.face_id.clone(), f))
            .collect();
        let mut views: Vec<MatchView> = edges
            .into_iter()
            .map(|e| MatchView {
                face_a: faces.get(e.edge.pair.a()).cloned(),
                face_b: faces.get(e.edge.pair.b()).cloned(),
                edge: e.edge,
                judgement: e.judgement,
            })
            .collect();
        // Strongest verdict first, then the highest score: the order an analyst reads in.
        let key = |m: &MatchView| {
            m.judgement
                .as_ref()
                .map_or((3, m.edge.similarity().get()), |j| {
                    (j.verdict as u8, j.score)
                })
        };
        views.sort_by(|x, y| {
            let (vx, sx) = key(x);
            let (vy, sy) = key(y);
            vx.cmp(&vy)
                .then(sy.total_cmp(&sx))
                .then_with(|| x.edge.pair.cmp(&y.edge.pair))
        });
        Ok(views)
    }

    /// Everything known of a pair: stored verdict, the verdict the current rules give now, decisions.
    pub fn explain(&self, a: &FaceId, b: &FaceId) -> Result<Explanation, ServiceError> {
        let pair =
            FacePair::new(a.clone(), b.clone()).ok_or_else(|| ServiceError::SamePair(a.clone()))?;
        let (face_a, face_b) = self.two_faces(&pair)?;
        let stored = match self.store.edge(&pair)? {
            Some(e) => self.match_views(vec![e])?.pop(),
            None => None,
        };
        // Judged from the pair's neighbourhood, as the whole graph would judge it.
        let current = if stored.is_some() {
            self.judge_pair_now(&pair)?
        } else {
            None
        };
        let decisions = self
            .store
            .decisions_touching(&[pair.a().clone(), pair.b().clone()])?
            .into_iter()
            .filter(|d| d.pair == pair)
            .collect();
        Ok(Explanation {
            stored,
            face_a,
            face_b,
            current,
            decisions,
        })
    }

    fn two_faces(&self, pair: &FacePair) -> Result<(FaceRecord, FaceRecord), ServiceError> {
        let mut found = self.store.faces(&[pair.a().clone(), pair.b().clone()])?;
        let take = |found: &mut Vec<FaceRecord>, id: &FaceId| {
            let i = found
                .iter()
                .position(|f| f.face.face_id == *id)
                .ok_or_else(|| ServiceError::UnknownFace(id.clone()))?;
            Ok::<_, ServiceError>(found.swap_remove(i))
        };
        let fa = take(&mut found, pair.a())?;
        let fb = take(&mut found, pair.b())?;
        Ok((fa, fb))
    }

    /// Match clusters with at least `min_subjects` distinct subjects, largest first.
    pub fn clusters(&self, min_subjects: usize) -> Result<Vec<ClusterView>, ServiceError> {
        let confirmed = self.store.edges(Some(Verdict::Confirmed))?;
        let decisions = self.store.decisions()?;
        let mut latest: HashMap<FacePair, DecisionKind> = HashMap::new();
        for d in decisions {
            latest.insert(d.pair, d.kind);
        }
        let mut g =
            ClusterGraph::with_capacity(confirmed.len() * 2, confirmed.len() + latest.len());
        for e in &confirmed {
            g.add_confirmed(&e.edge.pair, e.edge.similarity().get());
        }
        for (pair, kind) in &latest {
            match kind {
                DecisionKind::Same => g.add_must_link(pair),
                DecisionKind::Different => g.add_cannot_link(pair),
            }
        }
        let clusters = g.clusters();
        let mut ids: Vec<FaceId> = clusters
            .iter()
            .flat_map(|c| c.faces.iter().cloned())
            .collect();
        ids.sort();
        let subject_of: HashMap<FaceId, SubjectId> = self
            .store
            .faces(&ids)?
            .into_iter()
            .filter_map(|f| f.subject.map(|s| (f.face.face_id, s)))
            .collect();
        Ok(clusters
            .into_iter()
            .map(|cluster| {
                let subjects = cluster.subjects(&subject_of);
                ClusterView { cluster, subjects }
            })
            .filter(|c| c.subjects.len() >= min_subjects)
            .collect())
    }

    /// The verdicts that another rule set would change, without changing anything.
    pub fn what_if(&self, other: &Adjudicator) -> Result<Vec<VerdictChange>, ServiceError> {
        let view = self.load_view()?;
        Ok(other
            .judge_all(&view)
            .into_iter()
            .zip(view.pairs())
            .filter_map(|(after, pair)| {
                let pair = pair.clone();
                let before = view.stored(&pair).map(|j| j.verdict);
                (before != Some(after.verdict)).then_some(VerdictChange {
                    pair,
                    before,
                    after,
                })
            })
            .collect())
    }
}

fn node(f: FaceRecord) -> FaceNode {
    FaceNode {
        face: f.face,
        subject: f.subject,
        seq: f.seq,
        content_sha256: f.content_sha256,
    }
}
