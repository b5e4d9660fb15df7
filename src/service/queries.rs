//! Read and write use cases the REST API needs beyond the CLI's: one face, the matches of a face or
//! a subject, one cluster in detail, adjudicating a candidate match given in full, and recording a
//! match between two stored faces.

use crate::adjudication::{FaceNode, GraphView};
use crate::model::{
    CollectionId, Edge, Face, FaceAttributes, FaceId, FacePair, ImageId, Judgement, Observation,
    Similarity, SubjectId, Timestamp, Verdict,
};
use crate::store::{FaceRecord, IngestBatch};

use super::{ClusterView, Facegraph, MatchView, Readjudication, ServiceError};

/// One face of a candidate match that the caller describes in full, for stateless adjudication.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateFace {
    /// The face's id (need not be stored).
    pub face_id: FaceId,
    /// What the classifiers said about it.
    pub attributes: FaceAttributes,
    /// Its image; two faces of one image are two people. `None` gives each face an image of its own.
    pub image_id: Option<ImageId>,
    /// The subject behind it; two faces of one subject are a self-match.
    pub subject: Option<SubjectId>,
}

/// A candidate match described in full: two faces and their similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// One face.
    pub face_a: CandidateFace,
    /// The other face.
    pub face_b: CandidateFace,
    /// How similar the engine found them.
    pub similarity: Similarity,
}

/// The collection that faces of a stateless candidate are placed in: they are in no real one.
pub const CANDIDATE_COLLECTION: &str = "facegraph-candidates";

/// The engine name recorded on matches submitted through the API rather than found by a search.
pub const SUBMITTED_ENGINE: &str = "api";

/// A match recorded between two stored faces, with the adjudication that followed.
#[derive(Clone, Debug)]
pub struct RecordedMatch {
    /// The stored match with its verdict.
    pub view: MatchView,
    /// What re-adjudicating the graph changed.
    pub adjudication: Readjudication,
}

/// A cluster with its faces and every stored edge between two of its faces.
#[derive(Clone, Debug)]
pub struct ClusterDetail {
    /// The cluster and its subjects.
    pub view: ClusterView,
    /// Its faces.
    pub faces: Vec<FaceRecord>,
    /// Edges between two of its faces, whatever their verdict.
    pub edges: Vec<MatchView>,
}

impl Facegraph {
    /// Judges a candidate match on its own: a graph of the two faces and their edge, no store.
    /// Rules that read the neighbourhood (hub faces, transitivity, analyst decisions, band retention)
    /// have nothing to read and do not fire.
    pub fn adjudicate_candidate(&self, c: &Candidate) -> Result<Judgement, ServiceError> {
        let pair = FacePair::new(c.face_a.face_id.clone(), c.face_b.face_id.clone())
            .ok_or_else(|| ServiceError::SamePair(c.face_a.face_id.clone()))?;
        let now = Timestamp::now();
        let collection = CollectionId::parse(CANDIDATE_COLLECTION)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let node = |f: &CandidateFace, seq: i64| FaceNode {
            face: Face {
                face_id: f.face_id.clone(),
                collection_id: collection.clone(),
                image_id: match &f.image_id {
                    Some(id) => id.clone(),
                    // A placeholder image of the face's own, so that only a caller's shared image id
                    // can make the two faces one image. The face id is a UUID, which is a valid image
                    // id, and no engine gives an image the id of one of its faces.
                    None => ImageId::parse(f.face_id.as_str())
                        .unwrap_or_else(|_| ImageId::of_bytes(f.face_id.as_str().as_bytes())),
                },
                external_image_id: None,
                bbox: Default::default(),
                detection_confidence: None,
                attributes: f.attributes,
                is_largest: true,
                indexed_at: now,
                raw: None,
            },
            subject: f.subject.clone(),
            seq,
            // A stateless candidate brings attributes, not bytes.
            content_sha256: None,
        };
        let observation = Observation {
            searched: c.face_a.face_id.clone(),
            found: c.face_b.face_id.clone(),
            similarity: c.similarity,
            engine: SUBMITTED_ENGINE.to_owned(),
            searched_at: now,
        };
        let edge = Edge::from_observation(&observation)
            .ok_or_else(|| ServiceError::SamePair(c.face_a.face_id.clone()))?;
        let view = GraphView::new(
            vec![node(&c.face_a, 1), node(&c.face_b, 2)],
            vec![(edge, None)],
            Vec::new(),
            Vec::new(),
        )?;
        self.adjudicator
            .judge(&view, &pair)
            .ok_or_else(|| ServiceError::Invalid("the candidate edge was not judged".to_owned()))
    }

    /// Records that `a` and `b` are `similarity` similar (as a search of `a` would), re-adjudicates the
    /// graph and returns the stored match with its verdict. Both faces must be stored.
    #[tracing::instrument(skip_all, fields(face_a = %a, face_b = %b))]
    pub fn record_match(
        &self,
        a: &FaceId,
        b: &FaceId,
        similarity: Similarity,
    ) -> Result<RecordedMatch, ServiceError> {
        let pair =
            FacePair::new(a.clone(), b.clone()).ok_or_else(|| ServiceError::SamePair(a.clone()))?;
        self.two_faces(&pair)?;
        let batch = IngestBatch {
            observations: vec![Observation {
                searched: a.clone(),
                found: b.clone(),
                similarity,
                engine: SUBMITTED_ENGINE.to_owned(),
                searched_at: Timestamp::now(),
            }],
            ..IngestBatch::default()
        };
        self.store.ingest(&batch)?;
        let adjudication = self.adjudicate_changes()?;
        let edge = self
            .store
            .edge(&pair)?
            .ok_or_else(|| ServiceError::Invalid("the recorded match was not stored".to_owned()))?;
        let view = self
            .match_views(vec![edge])?
            .pop()
            .ok_or_else(|| ServiceError::Invalid("the recorded match was not stored".to_owned()))?;
        Ok(RecordedMatch { view, adjudication })
    }

    /// Which of these faces the store holds.
    pub fn stored_faces(&self, ids: &[FaceId]) -> Result<Vec<FaceRecord>, ServiceError> {
        Ok(self.store.faces(ids)?)
    }

    /// One stored face.
    pub fn face(&self, id: &FaceId) -> Result<FaceRecord, ServiceError> {
        self.store
            .faces(std::slice::from_ref(id))?
            .pop()
            .ok_or_else(|| ServiceError::UnknownFace(id.clone()))
    }

    /// The matches of one stored face, optionally only those with one verdict, strongest first.
    pub fn face_matches(
        &self,
        id: &FaceId,
        verdict: Option<Verdict>,
    ) -> Result<Vec<MatchView>, ServiceError> {
        self.face(id)?;
        let edges = self
            .store
            .edges_touching(std::slice::from_ref(id))?
            .into_iter()
            .filter(|e| verdict.is_none() || e.judgement.as_ref().map(|j| j.verdict) == verdict)
            .collect();
        self.match_views(edges)
    }

    /// The faces of a subject and every match of any of them, strongest first. No faces: the store
    /// does not know the subject.
    pub fn subject_matches(
        &self,
        subject: &SubjectId,
    ) -> Result<(Vec<FaceRecord>, Vec<MatchView>), ServiceError> {
        let faces = self.store.faces_of_subject(subject)?;
        if faces.is_empty() {
            return Ok((faces, Vec::new()));
        }
        let ids: Vec<FaceId> = faces.iter().map(|f| f.face.face_id.clone()).collect();
        let edges = self.store.edges_touching(&ids)?;
        Ok((faces, self.match_views(edges)?))
    }

    /// One cluster by id, with its faces and the edges between them; `None` when no current cluster
    /// has that id (its membership changed, or it never existed).
    pub fn cluster(&self, id: &str) -> Result<Option<ClusterDetail>, ServiceError> {
        let Some(view) = self.clusters(0)?.into_iter().find(|c| c.cluster.id == id) else {
            return Ok(None);
        };
        let members = &view.cluster.faces;
        let faces = self.store.faces(members)?;
        let inside = |f: &FaceId| members.binary_search(f).is_ok();
        let edges = self
            .store
            .edges_touching(members)?
            .into_iter()
            .filter(|e| inside(e.edge.pair.a()) && inside(e.edge.pair.b()))
            .collect();
        let edges = self.match_views(edges)?;
        Ok(Some(ClusterDetail { view, faces, edges }))
    }
}
