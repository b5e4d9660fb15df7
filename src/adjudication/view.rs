//! An in-memory view of the match graph that the rules read: faces with their subjects, edges with
//! adjacency, searches, and analyst decisions folded into must-link components and cannot-links.

use std::collections::HashMap;

use rustc_hash::{FxHashMap, FxHashSet};

use petgraph::unionfind::UnionFind;

use crate::model::{
    ContentHash, Decision, DecisionKind, Edge, Face, FaceId, FacePair, Judgement, SearchRecord,
    SubjectId,
};

/// A face as the rules see it: the face, the subject behind its image, and its insertion order.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceNode {
    /// The face.
    pub face: Face,
    /// The subject behind the face's image, when known.
    pub subject: Option<SubjectId>,
    /// The order in which the face was stored; a search covers the faces stored up to its own mark.
    pub seq: i64,
    /// The SHA-256 of its image's bytes, when facegraph read them: faces of two images with the
    /// same hash are one photo uploaded twice.
    pub content_sha256: Option<ContentHash>,
}

/// The graph the rules read. Built once, then judged edge by edge.
#[derive(Debug, Default)]
pub struct GraphView {
    faces: Vec<FaceNode>,
    index: FxHashMap<FaceId, u32>,
    image_key: Vec<u32>,
    subject_key: Vec<u32>,
    collection_key: Vec<u32>,
    edges: Vec<ViewEdge>,
    edge_index: FxHashMap<(u32, u32), u32>,
    adjacency: Vec<Vec<(u32, u32)>>,
    searches: Vec<Vec<SearchMark>>,
    decisions: Decisions,
}

/// A search whose silence is evidence, as the rules read it: faces of `collection` stored up to
/// `seq` that it did not return are below `bound`. Searches with no known bound are left out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SearchMark {
    pub(crate) collection: u32,
    pub(crate) bound: f64,
    pub(crate) seq: i64,
}

/// An edge in the view, with its endpoints as face indices.
#[derive(Clone, Debug)]
pub(crate) struct ViewEdge {
    pub(crate) a: u32,
    pub(crate) b: u32,
    pub(crate) similarity: f64,
    pub(crate) edge: Edge,
    pub(crate) stored: Option<Judgement>,
}

/// Analyst decisions: the latest decision per pair, must-link components and cannot-links between them.
/// Faces that decisions name but the view does not hold take numbers after the view's own, so that a
/// chain of "same person" decisions through a face outside a partial view still links its ends.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    latest: FxHashMap<(u32, u32), Decision>,
    components: Vec<u32>,
    cannot: FxHashSet<(u32, u32)>,
    /// For each pair of separated components, the decided pair named in the reason: the smallest,
    /// so that the sentence does not depend on the order faces were loaded in.
    cannot_pairs: FxHashMap<(u32, u32), FacePair>,
}
/// Why an edge could not be placed in the view.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("edge {pair_a}~{pair_b} names face {missing}, which the view does not hold")]
pub struct MissingFace {
    /// The edge's first face.
    pub pair_a: FaceId,
    /// The edge's second face.
    pub pair_b: FaceId,
    /// The face that is missing.
    pub missing: FaceId,
}

impl GraphView {
    /// Builds a view. Edges and searches may only name faces in `faces`. Decisions may name faces the
    /// view does not hold: a chain of "same person" decisions through them still links faces of the
    /// view, so a partial view gives its edges the analyst verdicts of the whole graph when it is given
    /// every decision of the must-link components of its faces.
    pub fn new(
        faces: Vec<FaceNode>,
        edges: Vec<(Edge, Option<Judgement>)>,
        searches: Vec<SearchRecord>,
        decisions: Vec<Decision>,
    ) -> Result<Self, MissingFace> {
        let index: FxHashMap<FaceId, u32> = faces
            .iter()
            .enumerate()
            .map(|(i, f)| (f.face.face_id.clone(), i as u32))
            .collect();
        // Images and subjects are compared on every edge: integers make that a register compare.
        let mut images: HashMap<&str, u32> = HashMap::new();
        let mut subjects: HashMap<&str, u32> = HashMap::new();
        let mut collections: HashMap<String, u32> = HashMap::new();
        let mut image_key = Vec::with_capacity(faces.len());
        let mut subject_key = Vec::with_capacity(faces.len());
        let mut collection_key = Vec::with_capacity(faces.len());
        for f in &faces {
            let next = collections.len() as u32;
            collection_key.push(
                *collections
                    .entry(f.face.collection_id.as_str().to_owned())
                    .or_insert(next),
            );
            let next = images.len() as u32;
            image_key.push(*images.entry(f.face.image_id.as_str()).or_insert(next));
            subject_key.push(match &f.subject {
                Some(s) => {
                    let next = subjects.len() as u32;
                    *subjects.entry(s.as_str()).or_insert(next)
                }
                None => NO_SUBJECT,
            });
        }
        drop((images, subjects));
        let mut adjacency = vec![Vec::new(); faces.len()];
        let mut view_edges = Vec::with_capacity(edges.len());
        let mut edge_index = FxHashMap::with_capacity_and_hasher(edges.len(), Default::default());
        for (edge, stored) in edges {
            let lookup = |id: &FaceId| {
                index.get(id).copied().ok_or_else(|| MissingFace {
                    pair_a: edge.pair.a().clone(),
                    pair_b: edge.pair.b().clone(),
                    missing: id.clone(),
                })
            };
            let (a, b) = (lookup(edge.pair.a())?, lookup(edge.pair.b())?);
            let i = view_edges.len() as u32;
            adjacency[a as usize].push((b, i));
            adjacency[b as usize].push((a, i));
            edge_index.insert(key(a, b), i);
            view_edges.push(ViewEdge {
                a,
                b,
                similarity: edge.similarity().get(),
                edge,
                stored,
            });
        }
        // Searches are read for every pair the transitivity rule weighs: integers, not strings.
        let mut per_face_searches = vec![Vec::new(); faces.len()];
        for s in searches {
            let (Some(&i), Some(bound)) = (index.get(&s.face_id), s.bound) else {
                continue;
            };
            // A search of a collection no face of the view is in covers none of them.
            let Some(&collection) = collections.get(s.collection_id.as_str()) else {
                continue;
            };
            per_face_searches[i as usize].push(SearchMark {
                collection,
                bound: bound.get(),
                seq: s.collection_seq,
            });
        }
        let decisions = Decisions::new(&index, faces.len(), decisions);
        Ok(Self {
            faces,
            index,
            image_key,
            subject_key,
            collection_key,
            edges: view_edges,
            edge_index,
            adjacency,
            searches: per_face_searches,
            decisions,
        })
    }

    /// How many edges the view holds.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The pairs of every edge, in the view's order.
    pub fn pairs(&self) -> impl Iterator<Item = &FacePair> {
        self.edges.iter().map(|e| &e.edge.pair)
    }

    /// The judgement stored with an edge when the view was loaded.
    pub fn stored(&self, pair: &FacePair) -> Option<&Judgement> {
        self.edge_id(pair)
            .and_then(|i| self.edges[i as usize].stored.as_ref())
    }

    /// A face of the view.
    pub fn face(&self, id: &FaceId) -> Option<&FaceNode> {
        self.index.get(id).map(|&i| &self.faces[i as usize])
    }

    /// The view's index of a face.
    pub(crate) fn face_index(&self, id: &FaceId) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub(crate) fn node(&self, i: u32) -> &FaceNode {
        &self.faces[i as usize]
    }

    /// An integer standing for the face's image: equal for two faces exactly when their images are.
    pub(crate) fn image_key(&self, i: u32) -> u32 {
        self.image_key[i as usize]
    }

    /// An integer standing for the face's subject, [`NO_SUBJECT`] when unknown.
    pub(crate) fn subject_key(&self, i: u32) -> u32 {
        self.subject_key[i as usize]
    }

    pub(crate) fn face_count(&self) -> usize {
        self.faces.len()
    }

    pub(crate) fn edge_at(&self, i: u32) -> &ViewEdge {
        &self.edges[i as usize]
    }

    pub(crate) fn edges_slice(&self) -> &[ViewEdge] {
        &self.edges
    }

    pub(crate) fn edge_id(&self, pair: &FacePair) -> Option<u32> {
        let a = *self.index.get(pair.a())?;
        let b = *self.index.get(pair.b())?;
        self.edge_index.get(&key(a, b)).copied()
    }

    /// The order of two edges that ties between them are broken by: their pairs' order, so that a
    /// judgement does not depend on the order the store returned the edges in (a partial view and
    /// the whole graph break ties alike).
    pub(crate) fn edge_order(&self, i: u32, j: u32) -> std::cmp::Ordering {
        if i == j {
            return std::cmp::Ordering::Equal;
        }
        self.edges[i as usize]
            .edge
            .pair
            .cmp(&self.edges[j as usize].edge.pair)
    }

    pub(crate) fn edge_between(&self, a: u32, b: u32) -> Option<&ViewEdge> {
        self.edge_index
            .get(&key(a, b))
            .map(|&i| &self.edges[i as usize])
    }

    pub(crate) fn neighbours(&self, i: u32) -> &[(u32, u32)] {
        &self.adjacency[i as usize]
    }

    /// The searches of a face that bound what they did not return.
    pub(crate) fn searches_of(&self, i: u32) -> &[SearchMark] {
        &self.searches[i as usize]
    }

    /// An integer standing for the face's collection.
    pub(crate) fn collection_key(&self, i: u32) -> u32 {
        self.collection_key[i as usize]
    }

    pub(crate) fn decisions(&self) -> &Decisions {
        &self.decisions
    }
}

/// The subject key of a face whose subject is unknown.
pub(crate) const NO_SUBJECT: u32 = u32::MAX;

pub(crate) fn key(a: u32, b: u32) -> (u32, u32) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Decisions {
    fn new(index: &FxHashMap<FaceId, u32>, face_count: usize, history: Vec<Decision>) -> Self {
        if history.is_empty() {
            return Self::default();
        }
        // Faces outside the view are numbered after the view's faces.
        let mut outside: FxHashMap<FaceId, u32> = FxHashMap::default();
        let mut number = |id: &FaceId| match index.get(id) {
            Some(&i) => i,
            None => {
                let next = (face_count + outside.len()) as u32;
                *outside.entry(id.clone()).or_insert(next)
            }
        };
        let mut latest: FxHashMap<(u32, u32), Decision> = FxHashMap::default();
        for d in history {
            let (a, b) = (number(d.pair.a()), number(d.pair.b()));
            // History comes oldest first, so a later decision on a pair replaces an earlier one.
            latest.insert(key(a, b), d);
        }
        let mut uf = UnionFind::<u32>::new(face_count + outside.len());
        for (&(a, b), d) in &latest {
            if d.kind == DecisionKind::Same {
                uf.union(a, b);
            }
        }
        let components = uf.into_labeling();
        let mut cannot = FxHashSet::default();
        let mut cannot_pairs: FxHashMap<(u32, u32), FacePair> = FxHashMap::default();
        for (&(a, b), d) in &latest {
            if d.kind == DecisionKind::Different {
                let k = key(components[a as usize], components[b as usize]);
                cannot.insert(k);
                let named = cannot_pairs.entry(k).or_insert_with(|| d.pair.clone());
                if d.pair < *named {
                    *named = d.pair.clone();
                }
            }
        }
        // Decisions between two faces outside the view bear on no edge of it directly.
        latest.retain(|&(a, b), _| (a as usize) < face_count && (b as usize) < face_count);
        Self {
            latest,
            components,
            cannot,
            cannot_pairs,
        }
    }

    /// The latest decision on exactly this pair.
    pub(crate) fn direct(&self, a: u32, b: u32) -> Option<&Decision> {
        if self.latest.is_empty() {
            return None;
        }
        self.latest.get(&key(a, b))
    }

    /// Whether a chain of "same" decisions joins the two faces.
    pub(crate) fn linked(&self, a: u32, b: u32) -> bool {
        !self.components.is_empty() && self.components[a as usize] == self.components[b as usize]
    }

    /// The decided-different pair that separates the must-link components of `a` and `b`, if any.
    pub(crate) fn separated_by(&self, a: u32, b: u32) -> Option<&FacePair> {
        if self.cannot.is_empty() {
            return None;
        }
        let k = key(self.components[a as usize], self.components[b as usize]);
        if self.cannot.contains(&k) {
            self.cannot_pairs.get(&k)
        } else {
            None
        }
    }
}
