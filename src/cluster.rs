//! Match clusters: connected components over confirmed edges and analysts' must-links (petgraph),
//! split where an analyst's cannot-link falls inside by cutting the weakest edges on the paths between
//! the two faces. A cluster's id is a hash of its sorted members, so it is stable while they are.

use std::collections::HashMap;

use petgraph::algo::astar;
use petgraph::graphmap::UnGraphMap;
use petgraph::unionfind::UnionFind;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::model::{FaceId, FacePair, SubjectId};

/// A link in a cluster: a confirmed similarity edge or an analyst's must-link.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterEdge {
    /// The two faces.
    pub pair: FacePair,
    /// The edge's similarity; `None` for a must-link with no similarity edge.
    pub similarity: Option<f64>,
    /// Whether an analyst decided the two faces are one person.
    pub must_link: bool,
}

/// One match cluster: faces believed to be one person.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Stable id: `cl-` and 16 hex digits of the SHA-256 of the sorted member ids.
    pub id: String,
    /// Member faces, sorted.
    pub faces: Vec<FaceId>,
    /// The links that hold it together.
    pub edges: Vec<ClusterEdge>,
    /// Confirmed edges cut from this cluster's component to honour a cannot-link.
    pub cut: Vec<FacePair>,
    /// Cannot-links between members that must-links alone hold together (an analyst contradiction).
    pub conflicts: Vec<FacePair>,
}

impl Cluster {
    /// The distinct subjects behind the cluster's faces, sorted; two or more make a fraud lead.
    pub fn subjects(&self, subject_of: &HashMap<FaceId, SubjectId>) -> Vec<SubjectId> {
        let mut subjects: Vec<SubjectId> = self
            .faces
            .iter()
            .filter_map(|f| subject_of.get(f).cloned())
            .collect();
        subjects.sort();
        subjects.dedup();
        subjects
    }
}

/// Builds clusters from links. Faces are interned to integers (keyed by their UUID's 128-bit value)
/// so that a million faces and two million edges cluster in well under two seconds.
#[derive(Debug, Default)]
pub struct ClusterGraph {
    index: FxHashMap<u128, u32>,
    ids: Vec<FaceId>,
    keys: Vec<u128>,
    links: Vec<(u32, u32, f64)>,
    cannot: Vec<(u32, u32)>,
}

/// The weight of a must-link: never cut.
const MUST: f64 = f64::INFINITY;

impl ClusterGraph {
    /// An empty graph with room for this many faces and links.
    pub fn with_capacity(faces: usize, links: usize) -> Self {
        Self {
            index: FxHashMap::with_capacity_and_hasher(faces, Default::default()),
            ids: Vec::with_capacity(faces),
            keys: Vec::with_capacity(faces),
            links: Vec::with_capacity(links),
            cannot: Vec::new(),
        }
    }

    fn intern(&mut self, id: &FaceId) -> u32 {
        let key = id.to_u128();
        let next = self.ids.len() as u32;
        let i = *self.index.entry(key).or_insert(next);
        if i == next {
            self.ids.push(id.clone());
            self.keys.push(key);
        }
        i
    }

    /// Adds a confirmed similarity edge.
    pub fn add_confirmed(&mut self, pair: &FacePair, similarity: f64) {
        let (a, b) = (self.intern(pair.a()), self.intern(pair.b()));
        self.links.push((a, b, similarity));
    }

    /// Adds an analyst's must-link ("same person").
    pub fn add_must_link(&mut self, pair: &FacePair) {
        let (a, b) = (self.intern(pair.a()), self.intern(pair.b()));
        self.links.push((a, b, MUST));
    }

    /// Adds an analyst's cannot-link ("different people").
    pub fn add_cannot_link(&mut self, pair: &FacePair) {
        let (a, b) = (self.intern(pair.a()), self.intern(pair.b()));
        self.cannot.push((a, b));
    }

    /// The clusters of two or more faces, largest first, then by id.
    pub fn clusters(&self) -> Vec<Cluster> {
        let n = self.ids.len();
        let mut uf = UnionFind::<u32>::new(n);
        for &(a, b, _) in &self.links {
            uf.union(a, b);
        }
        // Components holding a cannot-link are split; the rest are clusters as they are.
        let mut troubled: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
        for &(a, b) in &self.cannot {
            if uf.equiv(a, b) {
                troubled.entry(uf.find(a)).or_default().push((a, b));
            }
        }
        let labels = uf.into_labeling();
        // Group faces and links by component with a counting sort: two passes over flat arrays.
        let members = group(
            n,
            labels
                .iter()
                .enumerate()
                .map(|(face, &root)| (root, face as u32)),
        );
        let links_of = group(
            n,
            self.links
                .iter()
                .map(|&(a, b, w)| (labels[a as usize], (a, b, w))),
        );
        let mut out = Vec::new();
        for root in 0..n as u32 {
            let faces = members.get(root);
            if faces.len() < 2 {
                continue;
            }
            let links = links_of.get(root);
            match troubled.get(&root) {
                None => out.push(self.make(faces.to_vec(), links, vec![], vec![])),
                Some(cannot) => out.extend(self.split(links, cannot)),
            }
        }
        out.sort_by(|x, y| {
            y.faces
                .len()
                .cmp(&x.faces.len())
                .then_with(|| x.id.cmp(&y.id))
        });
        out
    }

    /// Cuts the weakest confirmed edge on a shortest path between each cannot-linked pair until the
    /// pair is apart, then returns the pieces.
    fn split(&self, links: &[(u32, u32, f64)], cannot: &[(u32, u32)]) -> Vec<Cluster> {
        // The paths found, and so the edges cut, depend on the order links and cannot-links are
        // visited in: visit them in the order of the faces' ids, so that a component splits the
        // same way whichever order its links were added in (a scoped recomputation and the whole
        // graph agree).
        let by_ids = |a: u32, b: u32| {
            let (ka, kb) = (self.keys[a as usize], self.keys[b as usize]);
            (ka.min(kb), ka.max(kb))
        };
        let mut links = links.to_vec();
        links.sort_by(|x, y| {
            by_ids(x.0, x.1)
                .cmp(&by_ids(y.0, y.1))
                .then(x.2.total_cmp(&y.2))
        });
        let mut cannot = cannot.to_vec();
        cannot.sort_by_key(|&(a, b)| by_ids(a, b));
        cannot.dedup_by_key(|&mut (a, b)| by_ids(a, b));
        let (links, cannot) = (&links[..], &cannot[..]);
        let mut g: UnGraphMap<u32, f64> = UnGraphMap::with_capacity(links.len() + 1, links.len());
        for &(a, b, w) in links {
            // Parallel links (an edge and a must-link on one pair) fold into the stronger.
            let w = g.edge_weight(a, b).map_or(w, |old| old.max(w));
            g.add_edge(a, b, w);
        }
        let mut cut = Vec::new();
        let mut conflicts = Vec::new();
        for &(x, y) in cannot {
            while let Some((_, path)) = astar(&g, x, |n| n == y, |_| 1.0, |_| 0.0) {
                let weakest = path
                    .windows(2)
                    .map(|w| {
                        (
                            w[0],
                            w[1],
                            g.edge_weight(w[0], w[1]).copied().unwrap_or(MUST),
                        )
                    })
                    .filter(|(_, _, w)| w.is_finite())
                    .min_by(|p, q| p.2.total_cmp(&q.2));
                match weakest {
                    Some((a, b, _)) => {
                        g.remove_edge(a, b);
                        cut.push((a, b));
                    }
                    None => {
                        conflicts.push((x, y));
                        break;
                    }
                }
            }
        }
        // Union-find over this component's own faces only, numbered locally.
        let nodes: Vec<u32> = g.nodes().collect();
        let local: FxHashMap<u32, u32> = nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i as u32))
            .collect();
        let mut local_uf = UnionFind::<u32>::new(nodes.len());
        for (a, b, _) in g.all_edges() {
            local_uf.union(local[&a], local[&b]);
        }
        let uf = Local {
            uf: local_uf,
            local,
        };
        let mut pieces: HashMap<u32, Vec<u32>> = HashMap::new();
        for &n in &nodes {
            pieces.entry(uf.find(n)).or_default().push(n);
        }
        let remaining: Vec<(u32, u32, f64)> = links
            .iter()
            .copied()
            .filter(|&(a, b, _)| g.contains_edge(a, b))
            .collect();
        pieces
            .into_values()
            .filter(|faces| faces.len() >= 2)
            .map(|faces| {
                let root = uf.find(faces[0]);
                let own = |&(a, _): &(u32, u32)| uf.find(a) == root;
                let links: Vec<_> = remaining
                    .iter()
                    .copied()
                    .filter(|&(a, _, _)| uf.find(a) == root)
                    .collect();
                let near = |&(a, b): &(u32, u32)| uf.find(a) == root || uf.find(b) == root;
                self.make(
                    faces,
                    &links,
                    cut.iter().copied().filter(near).collect(),
                    conflicts.iter().copied().filter(own).collect(),
                )
            })
            .collect()
    }

    fn make(
        &self,
        mut faces: Vec<u32>,
        links: &[(u32, u32, f64)],
        cut: Vec<(u32, u32)>,
        conflicts: Vec<(u32, u32)>,
    ) -> Cluster {
        faces.sort_unstable_by_key(|f| self.keys[*f as usize]);
        let mut hasher = Sha256::new();
        for &f in &faces {
            hasher.update(self.keys[f as usize].to_be_bytes());
        }
        let id = format!("cl-{}", &hex::encode(hasher.finalize())[..16]);
        let pair = |a: u32, b: u32| {
            FacePair::new(self.ids[a as usize].clone(), self.ids[b as usize].clone())
                .unwrap_or_else(|| unreachable!("links join two different faces"))
        };
        let mut links = links.to_vec();
        links.sort_unstable_by_key(|&(a, b, _)| {
            let (ka, kb) = (self.keys[a as usize], self.keys[b as usize]);
            (ka.min(kb), ka.max(kb))
        });
        let edges: Vec<ClusterEdge> = links
            .iter()
            .map(|&(a, b, w)| ClusterEdge {
                pair: pair(a, b),
                similarity: w.is_finite().then_some(w),
                must_link: !w.is_finite(),
            })
            .collect();
        Cluster {
            id,
            faces: faces
                .into_iter()
                .map(|f| self.ids[f as usize].clone())
                .collect(),
            edges,
            cut: cut.into_iter().map(|(a, b)| pair(a, b)).collect(),
            conflicts: conflicts.into_iter().map(|(a, b)| pair(a, b)).collect(),
        }
    }
}

/// A union-find over a component's faces, looked up by their global numbers.
struct Local {
    uf: UnionFind<u32>,
    local: FxHashMap<u32, u32>,
}

impl Local {
    fn find(&self, n: u32) -> u32 {
        self.uf.find(self.local[&n])
    }
}

/// Items grouped by a dense key (0..n), in input order within a group.
struct Groups<T> {
    start: Vec<usize>,
    items: Vec<T>,
}

impl<T: Copy> Groups<T> {
    fn get(&self, key: u32) -> &[T] {
        &self.items[self.start[key as usize]..self.start[key as usize + 1]]
    }
}

fn group<T: Copy + Default>(n: usize, pairs: impl Iterator<Item = (u32, T)> + Clone) -> Groups<T> {
    let mut start = vec![0usize; n + 1];
    for (k, _) in pairs.clone() {
        start[k as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut next = start.clone();
    let mut items = vec![T::default(); start[n]];
    for (k, v) in pairs {
        items[next[k as usize]] = v;
        next[k as usize] += 1;
    }
    Groups { start, items }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fid(n: u32) -> FaceId {
        FaceId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
    }

    fn p(a: u32, b: u32) -> FacePair {
        FacePair::new(fid(a), fid(b)).unwrap()
    }

    fn members(c: &Cluster) -> Vec<u32> {
        c.faces
            .iter()
            .map(|f| f.as_str()[24..].parse().unwrap())
            .collect()
    }

    #[test]
    fn components_over_confirmed_edges_and_must_links() {
        let mut g = ClusterGraph::default();
        g.add_confirmed(&p(1, 2), 99.0);
        g.add_confirmed(&p(2, 3), 99.0);
        g.add_must_link(&p(3, 4));
        g.add_confirmed(&p(7, 8), 99.0);
        let cs = g.clusters();
        assert_eq!(
            cs.iter().map(members).collect::<Vec<_>>(),
            vec![vec![1, 2, 3, 4], vec![7, 8]]
        );
        assert!(cs[0]
            .edges
            .iter()
            .any(|e| e.must_link && e.similarity.is_none()));
    }

    #[test]
    fn a_cannot_link_cuts_the_weakest_edge_on_the_path() {
        let mut g = ClusterGraph::default();
        g.add_confirmed(&p(1, 2), 99.9);
        g.add_confirmed(&p(2, 3), 98.6);
        g.add_confirmed(&p(3, 4), 99.5);
        g.add_cannot_link(&p(1, 4));
        let cs = g.clusters();
        let mut got: Vec<Vec<u32>> = cs.iter().map(members).collect();
        got.sort();
        assert_eq!(got, vec![vec![1, 2], vec![3, 4]]);
        assert!(cs.iter().all(|c| c.cut == vec![p(2, 3)]));
    }

    #[test]
    fn must_links_are_never_cut_and_a_contradiction_is_reported() {
        let mut g = ClusterGraph::default();
        g.add_must_link(&p(1, 2));
        g.add_must_link(&p(2, 3));
        g.add_cannot_link(&p(1, 3));
        let cs = g.clusters();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].conflicts, vec![p(1, 3)]);
    }

    #[test]
    fn ids_are_stable_while_membership_is() {
        let mut a = ClusterGraph::default();
        a.add_confirmed(&p(1, 2), 99.0);
        a.add_confirmed(&p(2, 3), 99.0);
        let mut b = ClusterGraph::default();
        b.add_confirmed(&p(3, 1), 98.7);
        b.add_must_link(&p(2, 3));
        assert_eq!(a.clusters()[0].id, b.clusters()[0].id);
        let mut c = ClusterGraph::default();
        c.add_confirmed(&p(1, 2), 99.0);
        c.add_confirmed(&p(2, 4), 99.0);
        assert_ne!(a.clusters()[0].id, c.clusters()[0].id);
    }

    #[test]
    fn two_subjects_make_a_fraud_lead() {
        let mut g = ClusterGraph::default();
        g.add_confirmed(&p(1, 2), 99.0);
        let subjects: HashMap<FaceId, SubjectId> = [
            (fid(1), SubjectId::parse("C1").unwrap()),
            (fid(2), SubjectId::parse("C2").unwrap()),
        ]
        .into();
        assert_eq!(g.clusters()[0].subjects(&subjects).len(), 2);
    }
}
