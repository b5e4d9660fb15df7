//! The face engine's collections and searches, for `facegraph collections` and `search` and the
//! REST API's `/v1/collections` and `/v1/search`: each collection described with its routing (a
//! routed id's family, a member's route), and each search hit with what the graph knows of the
//! face found (its subject, the collection that holds it).

use std::collections::HashMap;

use crate::engine::routing::Routes;
use crate::engine::{CollectionInfo, EngineError, FaceEngine, FaceMatch, HeldFace};
use crate::model::{BoundingBox, CollectionId, Confidence, FaceId, Similarity};
use crate::store::FaceRecord;

use super::{Facegraph, ServiceError};

/// A collection as `collections list` and `describe` show it.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionView {
    /// What the engine says of it; for a routed id, of its whole family.
    pub info: CollectionInfo,
    /// For a routed id: how it is routed, and the collections of its family.
    pub route: Option<RouteView>,
    /// For a collection of a route's family: the routed id, and its key there.
    pub member_of: Option<(CollectionId, String)>,
}

/// How a routed id is routed, and its family.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteView {
    /// `tenant` or `month`.
    pub key: &'static str,
    /// The face limit of a collection of the family.
    pub max_faces: u64,
    /// `route` or `all`: what a search of a face covers.
    pub search: &'static str,
    /// The family's collections, in id order.
    pub collections: Vec<CollectionInfo>,
}

/// Describes a collection and its routing.
pub fn describe_collection(
    engine: &dyn FaceEngine,
    routes: &Routes,
    id: &CollectionId,
) -> Result<CollectionView, ServiceError> {
    let info = engine.describe_collection(id)?;
    let route = match routes.route(id) {
        Some(r) => {
            let mut collections = Vec::new();
            for c in engine.list_collections()? {
                if r.member(&c).is_some() {
                    match engine.describe_collection(&c) {
                        Ok(info) => collections.push(info),
                        // Deleted since the listing.
                        Err(EngineError::CollectionNotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            collections.sort_by(|a, b| a.collection_id.cmp(&b.collection_id));
            Some(RouteView {
                key: r.key.as_str(),
                max_faces: r.max_faces,
                search: r.search.as_str(),
                collections,
            })
        }
        None => None,
    };
    let member_of = routes
        .member_of(id)
        .map(|(r, m)| (r.collection_id.clone(), m.key));
    Ok(CollectionView {
        info,
        route,
        member_of,
    })
}

/// Every collection of the engine, described; a routed id with its family.
pub fn list_collections(
    engine: &dyn FaceEngine,
    routes: &Routes,
) -> Result<Vec<CollectionView>, ServiceError> {
    let mut out = Vec::new();
    for id in engine.list_collections()? {
        match describe_collection(engine, routes, &id) {
            Ok(view) => out.push(view),
            Err(ServiceError::Engine(EngineError::CollectionNotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Creates a collection (a routed id: its anchor; its family opens as faces arrive).
pub fn create_collection(
    engine: &dyn FaceEngine,
    routes: &Routes,
    id: &CollectionId,
) -> Result<CollectionView, ServiceError> {
    engine.create_collection(id)?;
    describe_collection(engine, routes, id)
}

/// Deletes a collection and its faces (a routed id: its whole family). The graph keeps its
/// record of the faces: their matches and decisions are history.
pub fn delete_collection(engine: &dyn FaceEngine, id: &CollectionId) -> Result<(), ServiceError> {
    Ok(engine.delete_collection(id)?)
}

/// What a search starts from.
#[derive(Clone, Copy, Debug)]
pub enum SearchBy<'a> {
    /// The largest face of an image (JPEG or PNG bytes).
    Image(&'a [u8]),
    /// A face the engine holds.
    Face(&'a FaceId),
}

/// A search of a collection.
#[derive(Clone, Copy, Debug)]
pub struct SearchRequest<'a> {
    /// The collection; a routed id searches its family.
    pub collection_id: &'a CollectionId,
    /// What to search for.
    pub by: SearchBy<'a>,
    /// Hits below this similarity are not returned.
    pub threshold: Similarity,
    /// At most this many hits.
    pub max_faces: u32,
}

/// What a search found.
#[derive(Clone, Debug)]
pub struct SearchReport {
    /// The collection searched.
    pub collection_id: CollectionId,
    /// The face searched, for a search by face.
    pub searched_face: Option<FaceId>,
    /// Where the searched face is, for a search by image.
    pub searched_bbox: Option<BoundingBox>,
    /// The detector's confidence in it, for a search by image.
    pub searched_confidence: Option<Confidence>,
    /// The hits, most similar first.
    pub hits: Vec<SearchHit>,
}

/// One hit, with what the graph knows of its face.
#[derive(Clone, Debug)]
pub struct SearchHit {
    /// What the engine found.
    pub found: FaceMatch,
    /// The face as the graph holds it; `None` for a face indexed outside facegraph, or without a
    /// graph to ask.
    pub face: Option<FaceRecord>,
}

/// Searches the engine alone, without a graph to describe the faces found: a face by id in the
/// collection (a routed id finds the collection that holds it).
pub fn search_engine(
    engine: &dyn FaceEngine,
    req: &SearchRequest<'_>,
) -> Result<SearchReport, ServiceError> {
    search_with(engine, req, None)
}

/// Runs the search; `home` is where the graph says the face searched is held.
fn search_with(
    engine: &dyn FaceEngine,
    req: &SearchRequest<'_>,
    home: Option<&CollectionId>,
) -> Result<SearchReport, ServiceError> {
    if req.max_faces == 0 {
        return Err(ServiceError::Invalid(
            "the maximum number of faces must be at least 1".to_owned(),
        ));
    }
    let mut report = SearchReport {
        collection_id: req.collection_id.clone(),
        searched_face: None,
        searched_bbox: None,
        searched_confidence: None,
        hits: Vec::new(),
    };
    let found = match req.by {
        SearchBy::Image(bytes) => {
            let r = engine.search_faces_by_image(
                req.collection_id,
                bytes,
                req.threshold,
                req.max_faces,
            )?;
            report.searched_bbox = Some(r.searched_bbox);
            report.searched_confidence = r.searched_confidence;
            r.matches
        }
        SearchBy::Face(face_id) => {
            report.searched_face = Some(face_id.clone());
            match home {
                Some(home) => engine.search_held_face(
                    req.collection_id,
                    &HeldFace {
                        face_id,
                        collection_id: home,
                        image: None,
                    },
                    req.threshold,
                    req.max_faces,
                )?,
                None => {
                    engine.search_faces(req.collection_id, face_id, req.threshold, req.max_faces)?
                }
            }
        }
    };
    report.hits = found
        .into_iter()
        .map(|found| SearchHit { found, face: None })
        .collect();
    Ok(report)
}

impl Facegraph {
    /// Searches a collection through the engine, and describes each face found as the graph
    /// holds it. A face searched by id is searched from the collection the graph says holds it,
    /// so that a routed collection's family is searched without looking for it first.
    pub fn search(
        &self,
        engine: &dyn FaceEngine,
        req: &SearchRequest<'_>,
    ) -> Result<SearchReport, ServiceError> {
        let home = match req.by {
            SearchBy::Face(id) => self
                .store
                .faces(std::slice::from_ref(id))?
                .pop()
                .map(|f| f.face.collection_id),
            SearchBy::Image(_) => None,
        };
        let mut report = search_with(engine, req, home.as_ref())?;
        let ids: Vec<FaceId> = report
            .hits
            .iter()
            .map(|h| h.found.face_id.clone())
            .collect();
        let mut known: HashMap<FaceId, FaceRecord> = self
            .store
            .faces(&ids)?
            .into_iter()
            .map(|f| (f.face.face_id.clone(), f))
            .collect();
        for hit in &mut report.hits {
            hit.face = known.remove(&hit.found.face_id);
        }
        Ok(report)
    }
}
