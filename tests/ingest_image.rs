//! The image ingest pipeline (`Facegraph::ingest_image`) over a small in-memory face engine that
//! follows the `FaceEngine` contract: collections created on demand, the largest-face policy, one
//! search per new face recorded with its bound and collection size, hits stored and adjudicated.
//! The real engines get their own end-to-end test when they land.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use facegraph::adjudication::{Adjudicator, RuleSet};
use facegraph::engine::{
    CollectionInfo, EngineError, FaceEngine, FaceMatch, FacePage, IndexFacesRequest,
    IndexFacesResult, SearchByImageResult, UnindexedFace, UnindexedReason,
};
use facegraph::model::{
    BoundingBox, CollectionId, ExternalImageId, Face, FaceAttributes, FaceId, Image, ImageId,
    Similarity, SubjectId, Timestamp, Verdict,
};
use facegraph::service::{FacePolicy, Facegraph, ImageIngest};
use facegraph::store::sqlite::SqliteStore;
use facegraph::store::GraphStore;

/// The faces of a collection: id, image and the number that stands for the face.
type Collections = HashMap<CollectionId, Vec<(FaceId, ImageId, f64)>>;

/// An engine whose "images" are text: `faces:10,12` holds two faces, the first the largest, whose
/// similarity to another face is 100 less the distance between their numbers.
#[derive(Debug, Default)]
struct TextEngine {
    state: Mutex<Collections>,
    created: Mutex<usize>,
    next: Mutex<u32>,
}

impl FaceEngine for TextEngine {
    fn name(&self) -> &'static str {
        "text"
    }
    fn create_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        *self.created.lock().unwrap() += 1;
        self.state.lock().unwrap().insert(id.clone(), Vec::new());
        self.describe_collection(id)
    }
    fn list_collections(&self) -> Result<Vec<CollectionId>, EngineError> {
        Ok(self.state.lock().unwrap().keys().cloned().collect())
    }
    fn describe_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        let state = self.state.lock().unwrap();
        let faces = state
            .get(id)
            .ok_or_else(|| EngineError::CollectionNotFound(id.clone()))?;
        Ok(CollectionInfo {
            collection_id: id.clone(),
            face_count: faces.len() as u64,
            face_model_version: "text-1".to_owned(),
            created_at: Timestamp::from_millis(1),
        })
    }
    fn delete_collection(&self, _id: &CollectionId) -> Result<(), EngineError> {
        unimplemented!("not used by the pipeline")
    }
    fn index_faces(&self, req: &IndexFacesRequest<'_>) -> Result<IndexFacesResult, EngineError> {
        let bytes = req.image.bytes().unwrap();
        let text = std::str::from_utf8(bytes).unwrap();
        let values: Vec<f64> = text
            .strip_prefix("faces:")
            .unwrap()
            .split(',')
            .filter(|v| !v.is_empty())
            .map(|v| v.parse().unwrap())
            .collect();
        let image_id = ImageId::of_bytes(bytes);
        let keep = req.max_faces.map_or(values.len(), |m| m as usize);
        let mut state = self.state.lock().unwrap();
        let collection = state
            .get_mut(req.collection_id)
            .ok_or_else(|| EngineError::CollectionNotFound(req.collection_id.clone()))?;
        let mut faces = Vec::new();
        let mut unindexed = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let bbox = BoundingBox {
                left: 0.1,
                top: 0.1,
                width: 0.4 / (i + 1) as f32,
                height: 0.5 / (i + 1) as f32,
            };
            if i >= keep {
                unindexed.push(UnindexedFace {
                    bbox,
                    confidence: None,
                    attributes: FaceAttributes::default(),
                    reasons: vec![UnindexedReason::ExceedsMaxFaces],
                });
                continue;
            }
            let mut next = self.next.lock().unwrap();
            *next += 1;
            let face_id = FaceId::parse(&format!("cccccccc-0000-4000-8000-{:012}", *next)).unwrap();
            collection.push((face_id.clone(), image_id.clone(), *v));
            faces.push(Face {
                face_id,
                collection_id: req.collection_id.clone(),
                image_id: image_id.clone(),
                external_image_id: req.external_image_id.cloned(),
                bbox,
                detection_confidence: None,
                attributes: FaceAttributes::default(),
                is_largest: i == 0,
                indexed_at: Timestamp::now(),
                raw: None,
            });
        }
        Ok(IndexFacesResult {
            image: Image {
                image_id,
                external_image_id: req.external_image_id.cloned(),
                content_sha256: None,
                collection_id: None,
                pending: false,
                source: None,
                width: Some(640),
                height: Some(480),
                face_count: values.len() as u32,
                received_at: Timestamp::now(),
            },
            faces,
            unindexed,
            face_model_version: "text-1".to_owned(),
        })
    }
    fn find_indexed(
        &self,
        _collection_id: &CollectionId,
        _external_image_id: Option<&ExternalImageId>,
        _content: &facegraph::model::ContentHash,
    ) -> Result<Option<IndexFacesResult>, EngineError> {
        unimplemented!("resuming uploads is tested with the local engine (tests/photos.rs)")
    }
    fn search_faces(
        &self,
        collection_id: &CollectionId,
        face_id: &FaceId,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        let state = self.state.lock().unwrap();
        let faces = state.get(collection_id).unwrap();
        let (_, _, me) = faces.iter().find(|(id, _, _)| id == face_id).unwrap();
        let mut hits: Vec<FaceMatch> = faces
            .iter()
            .filter(|(id, _, _)| id != face_id)
            .map(|(id, image, v)| FaceMatch {
                face_id: id.clone(),
                similarity: Similarity::new((100.0 - (v - me).abs()).max(0.0)).unwrap(),
                image_id: image.clone(),
                external_image_id: None,
            })
            .filter(|m| m.similarity.get() >= threshold.get())
            .collect();
        hits.sort_by(|x, y| y.similarity.get().total_cmp(&x.similarity.get()));
        hits.truncate(max_faces as usize);
        Ok(hits)
    }
    fn search_faces_by_image(
        &self,
        _collection_id: &CollectionId,
        _image: &[u8],
        _threshold: Similarity,
        _max_faces: u32,
    ) -> Result<SearchByImageResult, EngineError> {
        unimplemented!("not used by the pipeline")
    }
    fn list_faces(
        &self,
        _collection_id: &CollectionId,
        _next_token: Option<&str>,
        _max_results: u32,
    ) -> Result<FacePage, EngineError> {
        unimplemented!("not used by the pipeline")
    }
    fn delete_faces(
        &self,
        _collection_id: &CollectionId,
        _face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError> {
        unimplemented!("not used by the pipeline")
    }
}

#[test]
fn images_are_indexed_searched_stored_and_adjudicated() {
    let store: Arc<dyn GraphStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let app = Facegraph::new(Arc::clone(&store), Adjudicator::new(RuleSet::default()));
    let engine = TextEngine::default();
    let collection = CollectionId::parse("selfies").unwrap();
    let ingest = |bytes: &str, ext: &str, subject: &str, max: u32, policy| {
        let ext = ExternalImageId::parse(ext).unwrap();
        let subject = SubjectId::parse(subject).unwrap();
        let mut req = ImageIngest::new(&collection, bytes.as_bytes());
        req.external_image_id = Some(&ext);
        req.subject_id = Some(&subject);
        req.max_matches = max;
        req.policy = policy;
        app.ingest_image(&engine, &req).unwrap()
    };

    let first = ingest("faces:10", "a.jpg", "C1", 100, FacePolicy::LargestOnly);
    assert_eq!(
        *engine.created.lock().unwrap(),
        1,
        "the collection was created"
    );
    assert_eq!(first.faces.len(), 1);
    assert_eq!(first.faces[0].subject.as_ref().unwrap().as_str(), "C1");
    assert!(first.matches.is_empty());

    // 98.0 similar: in the review band.
    let second = ingest("faces:12", "b.jpg", "C2", 100, FacePolicy::LargestOnly);
    assert_eq!(*engine.created.lock().unwrap(), 1, "created once");
    assert_eq!(second.matches.len(), 1);
    let m = &second.matches[0];
    assert_eq!(m.edge.similarity().get(), 98.0);
    assert_eq!(m.judgement.as_ref().unwrap().verdict, Verdict::Review);
    let b = second.faces[0].face.face_id.clone();
    let searches = store.searches(std::slice::from_ref(&b)).unwrap();
    assert_eq!(searches.len(), 1);
    assert_eq!(
        searches[0].bound.unwrap().get(),
        80.0,
        "fewer hits than the maximum"
    );
    assert_eq!(searches[0].collection_seq, 2);

    // A full page: only the lowest returned similarity bounds the faces it left out. Only the
    // largest face of a two-face image is indexed.
    let third = ingest("faces:11.5,40", "c.jpg", "C3", 1, FacePolicy::LargestOnly);
    assert_eq!(third.faces.len(), 1);
    assert_eq!(third.unindexed.len(), 1);
    assert_eq!(
        third.unindexed[0].reasons,
        [UnindexedReason::ExceedsMaxFaces]
    );
    let c = third.faces[0].face.face_id.clone();
    let s = store.searches(std::slice::from_ref(&c)).unwrap();
    assert_eq!(s[0].bound.unwrap().get(), 99.5);
    assert_eq!(s[0].collection_seq, 3);
    assert_eq!(third.matches.len(), 1, "one hit stored");

    let all = ingest("faces:70,71", "group.jpg", "C4", 100, FacePolicy::All);
    assert_eq!(all.faces.len(), 2);
    let m = all
        .matches
        .iter()
        .find(|m| m.edge.similarity().get() == 99.0)
        .unwrap();
    assert_eq!(
        m.judgement.as_ref().unwrap().verdict,
        Verdict::Rejected,
        "two faces of one image are two people"
    );
    assert_eq!(store.stats().unwrap().faces, 5);
}
