//! Similarity edges: one per unordered pair of faces, folding both search directions, and the record
//! of each search, whose silence about a face is evidence too.

use super::{CollectionId, FaceId, Similarity, Timestamp};

/// An unordered pair of distinct faces, kept in a canonical order (`a < b`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FacePair {
    a: FaceId,
    b: FaceId,
}

impl FacePair {
    /// The pair of two faces in either order; `None` when both are the same face.
    pub fn new(x: FaceId, y: FaceId) -> Option<Self> {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => Some(Self { a: x, b: y }),
            std::cmp::Ordering::Greater => Some(Self { a: y, b: x }),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// The smaller face id.
    pub fn a(&self) -> &FaceId {
        &self.a
    }

    /// The larger face id.
    pub fn b(&self) -> &FaceId {
        &self.b
    }

    /// The other face of the pair, when `face` is one of them.
    pub fn other(&self, face: &FaceId) -> Option<&FaceId> {
        if *face == self.a {
            Some(&self.b)
        } else if *face == self.b {
            Some(&self.a)
        } else {
            None
        }
    }
}

/// One search result: searching `searched` found `found` with this similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The face that was searched for.
    pub searched: FaceId,
    /// The face the search returned.
    pub found: FaceId,
    /// The similarity the engine reported.
    pub similarity: Similarity,
    /// Which engine reported it (`rekognition`, `local`).
    pub engine: String,
    /// When the search ran.
    pub searched_at: Timestamp,
}

/// The SIMILAR edge between two faces, with the similarity each search direction observed.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// The two faces.
    pub pair: FacePair,
    /// The similarity observed when `pair.a()` was searched and found `pair.b()`.
    pub similarity_ab: Option<Similarity>,
    /// The similarity observed when `pair.b()` was searched and found `pair.a()`.
    pub similarity_ba: Option<Similarity>,
    /// The engine that observed it.
    pub engine: String,
    /// When it was last observed.
    pub searched_at: Timestamp,
}

impl Edge {
    /// An edge from its first observation.
    pub fn from_observation(obs: &Observation) -> Option<Self> {
        let pair = FacePair::new(obs.searched.clone(), obs.found.clone())?;
        let mut edge = Self {
            pair,
            similarity_ab: None,
            similarity_ba: None,
            engine: obs.engine.clone(),
            searched_at: obs.searched_at,
        };
        edge.fold(obs);
        Some(edge)
    }

    /// Folds another observation of the same pair into the edge: each direction keeps its own value.
    pub fn fold(&mut self, obs: &Observation) {
        if obs.searched == *self.pair.a() {
            self.similarity_ab = Some(obs.similarity);
        } else {
            self.similarity_ba = Some(obs.similarity);
        }
        self.searched_at = self.searched_at.max(obs.searched_at);
    }

    /// The similarity the rules judge: the higher of the two directions (they differ only in the last
    /// digits; Rekognition reports 74.834282 one way and 74.834274 the other).
    pub fn similarity(&self) -> Similarity {
        match (self.similarity_ab, self.similarity_ba) {
            (Some(x), Some(y)) => {
                if x.get() >= y.get() {
                    x
                } else {
                    y
                }
            }
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => Similarity::new(0.0).unwrap_or_else(|_| unreachable!("0 is in range")),
        }
    }
}

/// A search that ran: which face, against which collection, with what threshold. Faces that were in
/// the collection then and that the search did not return are less similar than `bound`.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRecord {
    /// The face searched for.
    pub face_id: FaceId,
    /// The collection searched.
    pub collection_id: CollectionId,
    /// The similarity below which every face the search did not return must lie: the threshold, or
    /// the lowest returned similarity when the result was cut at the maximum count. `None` when
    /// unknown (a saved response with no results and no recorded threshold).
    pub bound: Option<Similarity>,
    /// How many faces the collection held when the search ran (the store's face sequence number then):
    /// only faces indexed up to that point are covered by the search's silence.
    pub collection_seq: i64,
    /// When the search ran.
    pub searched_at: Timestamp,
}
