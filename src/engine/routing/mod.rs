//! [`RoutedEngine`]: collection routing and splitting in front of any engine. A routed collection
//! id names a family of collections (one per route key: a tenant, or a month of upload, split
//! further when one fills up): IndexFaces on the routed id goes to the newest collection of the
//! upload's family, a new one is opened when that holds the route's face limit, and a search fans
//! out over the family in parallel and merges the hits by similarity. Every other collection id
//! passes through untouched, and so does a family member named by its own id.
//!
//! `routes.rs` names the families; `fanout.rs` runs the parallel calls and merges the hits.
//!
//! A face is compared with the collections that do not hold it through
//! [`FaceEngine::search_held_face`]: the local engine compares its stored embedding; Rekognition
//! searches the image the face was indexed from (the pipeline passes the bytes when it searches
//! a new face), and without the bytes only the face's own collection can be searched, with a
//! warning.

mod fanout;
mod routes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use fanout::{in_parallel, merge, MAX_PARALLEL};
pub use routes::{
    Member, Route, RouteKey, Routes, SearchScope, DEFAULT_TENANT, MAX_KEY, MAX_ROUTED_ID,
};

use super::calls::{AvoidedBy, Operation};
use super::{
    CollectionInfo, EngineError, FaceEngine, FaceMatch, FacePage, HeldFace, IndexFacesRequest,
    IndexFacesResult, SearchByImageResult,
};
use crate::model::{CollectionId, ContentHash, ExternalImageId, FaceId, Similarity, Timestamp};

/// How long a listing of a route's collections is trusted for searches. Collections opened by
/// this process are known at once; those another process opens are searched from at most this
/// long after they appear.
pub const LISTING_TTL: Duration = Duration::from_secs(10);

/// How often a full family is looked up again when another process opened the collection this
/// one meant to open.
const OPEN_RETRIES: usize = 3;

/// An engine with routed collections.
#[derive(Debug)]
pub struct RoutedEngine {
    inner: Arc<dyn FaceEngine>,
    routes: Routes,
    clock: fn() -> Timestamp,
    state: Mutex<BTreeMap<CollectionId, Listing>>,
}

/// What the router knows of one route's collections.
#[derive(Debug)]
struct Listing {
    /// Whether the anchor (the routed id itself) exists in the engine.
    anchor: bool,
    /// Whether the anchor holds faces (indexed before the route was configured): then every
    /// search covers it.
    anchor_faces: bool,
    /// The families by key, each in order of number.
    families: BTreeMap<String, Family>,
    listed_at: Instant,
}

#[derive(Debug, Default)]
struct Family {
    members: Vec<(u32, CollectionId)>,
    /// Faces in the newest member, counting the calls in flight into it; `None` until asked.
    newest_faces: Option<u64>,
}

impl RoutedEngine {
    /// `inner` with `routes`.
    pub fn new(inner: Arc<dyn FaceEngine>, routes: Routes) -> Self {
        Self {
            inner,
            routes,
            clock: Timestamp::now,
            state: Mutex::new(BTreeMap::new()),
        }
    }

    /// The same engine reading the time of uploads (the month key) from `clock`.
    pub fn with_clock(mut self, clock: fn() -> Timestamp) -> Self {
        self.clock = clock;
        self
    }

    /// The routes.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<CollectionId, Listing>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists the engine's collections and keeps those of `route`'s family.
    fn list(&self, route: &Route) -> Result<Listing, EngineError> {
        let mut listing = Listing {
            anchor: false,
            anchor_faces: false,
            families: BTreeMap::new(),
            listed_at: Instant::now(),
        };
        for id in self.inner.list_collections()? {
            if id == route.collection_id {
                listing.anchor = true;
            } else if let Some(m) = route.member(&id) {
                listing
                    .families
                    .entry(m.key)
                    .or_default()
                    .members
                    .push((m.number, id));
            }
        }
        for family in listing.families.values_mut() {
            family.members.sort();
        }
        if listing.anchor {
            listing.anchor_faces = match self.inner.describe_collection(&route.collection_id) {
                Ok(info) => info.face_count > 0,
                Err(EngineError::CollectionNotFound(_)) => {
                    listing.anchor = false;
                    false
                }
                Err(e) => return Err(e),
            };
        }
        Ok(listing)
    }

    /// The route's listing, listed again when older than `max_age` (or never listed).
    fn listing<'a>(
        &self,
        state: &'a mut BTreeMap<CollectionId, Listing>,
        route: &Route,
        max_age: Option<Duration>,
    ) -> Result<&'a mut Listing, EngineError> {
        let stale = state
            .get(&route.collection_id)
            .is_none_or(|l| max_age.is_some_and(|age| l.listed_at.elapsed() > age));
        if stale {
            let mut fresh = self.list(route)?;
            // The counts of newest collections survive a new listing: they include calls in flight.
            if let Some(old) = state.remove(&route.collection_id) {
                for (key, family) in &mut fresh.families {
                    if let Some(was) = old.families.get(key) {
                        if was.members.last() == family.members.last() {
                            family.newest_faces = was.newest_faces;
                        }
                    }
                }
            }
            state.insert(route.collection_id.clone(), fresh);
        }
        state
            .get_mut(&route.collection_id)
            .ok_or_else(|| EngineError::CollectionNotFound(route.collection_id.clone()))
    }

    /// Every collection a search of the routed id covers with `scope`: the anchor when it holds
    /// faces, and the members of the family `key` (or of every family).
    fn targets(&self, route: &Route, key: Option<&str>) -> Result<Vec<CollectionId>, EngineError> {
        let mut state = self.lock();
        let listing = self.listing(&mut state, route, Some(LISTING_TTL))?;
        let mut out = Vec::new();
        if listing.anchor_faces {
            out.push(route.collection_id.clone());
        }
        for (k, family) in &listing.families {
            if key.is_none_or(|key| key == k) {
                out.extend(family.members.iter().map(|(_, id)| id.clone()));
            }
        }
        Ok(out)
    }

    /// Every collection of the route that exists, the anchor first, from a listing at most
    /// `max_age` old.
    fn all_collections(
        &self,
        route: &Route,
        max_age: Duration,
    ) -> Result<Vec<CollectionId>, EngineError> {
        let mut state = self.lock();
        let listing = self.listing(&mut state, route, Some(max_age))?;
        let mut out = Vec::new();
        if listing.anchor {
            out.push(route.collection_id.clone());
        }
        for family in listing.families.values() {
            out.extend(family.members.iter().map(|(_, id)| id.clone()));
        }
        Ok(out)
    }

    /// The collection an IndexFaces call of `reserve` faces goes to: the newest of the family,
    /// or a new one when that holds the face limit. The faces are counted in it at once, so that
    /// calls in flight at the same time do not overfill it.
    fn place(&self, route: &Route, key: &str, reserve: u64) -> Result<CollectionId, EngineError> {
        let mut state = self.lock();
        for _ in 0..OPEN_RETRIES {
            let listing = self.listing(&mut state, route, None)?;
            let family = listing.families.entry(key.to_owned()).or_default();
            if let Some((_, newest)) = family.members.last() {
                let faces = match family.newest_faces {
                    Some(n) => n,
                    None => self.inner.describe_collection(newest)?.face_count,
                };
                // A call larger than the limit still goes into an empty collection.
                if faces == 0 || faces + reserve <= route.max_faces {
                    family.newest_faces = Some(faces + reserve);
                    return Ok(newest.clone());
                }
                family.newest_faces = Some(faces);
            }
            let number = family.members.last().map_or(1, |(n, _)| n + 1);
            let id = route.member_id(key, number).ok_or_else(|| {
                EngineError::InvalidParameter(format!(
                    "collection {number} of route {} for {key} has no valid id",
                    route.collection_id
                ))
            })?;
            match self.inner.create_collection(&id) {
                Ok(_) => {
                    tracing::info!(route = %route.collection_id, key, collection = %id, "opened a collection of the route");
                    family.members.push((number, id.clone()));
                    family.newest_faces = Some(reserve);
                    return Ok(id);
                }
                // Another process opened it: look the family up again.
                Err(EngineError::CollectionExists(_)) => {
                    state.remove(&route.collection_id);
                }
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Backend {
            operation: "open a collection of the route",
            source: format!(
                "collections of route {} for {key} kept appearing while one was opened",
                route.collection_id
            )
            .into(),
        })
    }

    /// Corrects the count of `member` once its IndexFaces call answered with `indexed` faces of
    /// the `reserved` counted.
    fn settle(&self, route: &Route, key: &str, member: &CollectionId, reserved: u64, indexed: u64) {
        let mut state = self.lock();
        let Some(family) = state
            .get_mut(&route.collection_id)
            .and_then(|l| l.families.get_mut(key))
        else {
            return;
        };
        if family.members.last().map(|(_, id)| id) == Some(member) {
            if let Some(n) = family.newest_faces.as_mut() {
                *n = n.saturating_sub(reserved).saturating_add(indexed);
            }
        }
    }

    /// Searches `face` in every target, the collection that holds it by id and the others
    /// through [`FaceEngine::search_held_face`], and merges the hits. A collection that cannot be
    /// compared with the face (Rekognition without the image) is left out with a warning.
    fn fan_out(
        &self,
        targets: &[CollectionId],
        face: &HeldFace<'_>,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        let answers = in_parallel(targets, |t| {
            self.inner.search_held_face(t, face, threshold, max_faces)
        });
        let mut lists = Vec::with_capacity(answers.len());
        let mut skipped = Vec::new();
        for (target, answer) in targets.iter().zip(answers) {
            match answer {
                Ok(hits) => lists.push(hits),
                Err(e) if target == face.collection_id => return Err(e),
                // Deleted since the listing.
                Err(EngineError::CollectionNotFound(_)) => {}
                Err(EngineError::InvalidParameter(_)) => skipped.push(target.as_str()),
                Err(e) => return Err(e),
            }
        }
        if !skipped.is_empty() {
            tracing::warn!(
                face = %face.face_id,
                collections = %skipped.join(","),
                "these collections of the route were not searched: the engine cannot compare a \
                 face with another collection's faces without the image it was indexed from"
            );
        }
        Ok(merge(lists, max_faces))
    }

    /// The route of a routed collection id.
    fn routed(&self, id: &CollectionId) -> Option<&Route> {
        self.routes.route(id)
    }
}

impl FaceEngine for RoutedEngine {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Creating a routed collection creates its anchor; its family opens as faces arrive.
    fn create_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        let info = self.inner.create_collection(id)?;
        if self.routed(id).is_some() {
            self.lock().remove(id);
        }
        Ok(info)
    }

    fn list_collections(&self) -> Result<Vec<CollectionId>, EngineError> {
        self.inner.list_collections()
    }

    /// A routed collection is described as its whole family: the faces of every collection, the
    /// anchor's face model version and creation time (or the oldest member's).
    fn describe_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        let Some(route) = self.routed(id) else {
            return self.inner.describe_collection(id);
        };
        let all = self.all_collections(route, Duration::ZERO)?;
        if all.is_empty() {
            return Err(EngineError::CollectionNotFound(id.clone()));
        }
        let infos = in_parallel(&all, |c| self.inner.describe_collection(c));
        let mut described: Vec<CollectionInfo> = Vec::with_capacity(infos.len());
        for info in infos {
            match info {
                Ok(info) => described.push(info),
                Err(EngineError::CollectionNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let first = described
            .iter()
            .find(|i| &i.collection_id == id)
            .or_else(|| described.iter().min_by_key(|i| i.created_at))
            .ok_or_else(|| EngineError::CollectionNotFound(id.clone()))?;
        Ok(CollectionInfo {
            collection_id: id.clone(),
            face_count: described.iter().map(|i| i.face_count).sum(),
            face_model_version: first.face_model_version.clone(),
            created_at: first.created_at,
        })
    }

    /// Deleting a routed collection deletes its whole family and its anchor.
    fn delete_collection(&self, id: &CollectionId) -> Result<(), EngineError> {
        let Some(route) = self.routed(id) else {
            return self.inner.delete_collection(id);
        };
        let all = self.all_collections(route, Duration::ZERO)?;
        self.lock().remove(id);
        if all.is_empty() {
            return Err(EngineError::CollectionNotFound(id.clone()));
        }
        // Members first: an interrupted deletion leaves the anchor, which names the route.
        for c in all.iter().rev() {
            match self.inner.delete_collection(c) {
                Ok(()) | Err(EngineError::CollectionNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(collection = %req.collection_id))]
    fn index_faces(&self, req: &IndexFacesRequest<'_>) -> Result<IndexFacesResult, EngineError> {
        let Some(route) = self.routed(req.collection_id) else {
            return self.inner.index_faces(req);
        };
        let key = route.key_for(req.subject_id, (self.clock)());
        let reserve = u64::from(req.max_faces.unwrap_or(1).max(1));
        let member = self.place(route, &key, reserve)?;
        let result = self.inner.index_faces(&IndexFacesRequest {
            collection_id: &member,
            ..*req
        });
        let indexed = result.as_ref().map_or(0, |r| r.faces.len() as u64);
        self.settle(route, &key, &member, reserve, indexed);
        result
    }

    /// An upload of a routed collection may be in any collection of the route (the newest
    /// changes as collections fill, the month as time passes): each is asked in turn.
    fn find_indexed(
        &self,
        collection_id: &CollectionId,
        external_image_id: Option<&ExternalImageId>,
        content: &ContentHash,
    ) -> Result<Option<IndexFacesResult>, EngineError> {
        let Some(route) = self.routed(collection_id) else {
            return self
                .inner
                .find_indexed(collection_id, external_image_id, content);
        };
        for c in self.all_collections(route, LISTING_TTL)?.iter().rev() {
            if let Some(found) = self.inner.find_indexed(c, external_image_id, content)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// A face of a routed collection is first found in the collection that holds it (each is
    /// asked in parallel), then compared with the others of its scope.
    fn search_faces(
        &self,
        collection_id: &CollectionId,
        face_id: &FaceId,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        let Some(route) = self.routed(collection_id) else {
            return self
                .inner
                .search_faces(collection_id, face_id, threshold, max_faces);
        };
        let all = self.all_collections(route, LISTING_TTL)?;
        let answers = in_parallel(&all, |c| {
            self.inner.search_faces(c, face_id, threshold, max_faces)
        });
        let mut home = None;
        for (c, answer) in all.iter().zip(answers) {
            match answer {
                Ok(hits) => {
                    home = Some((c.clone(), hits));
                    break;
                }
                Err(EngineError::FaceNotFound { .. } | EngineError::CollectionNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let Some((home, home_hits)) = home else {
            return Err(EngineError::FaceNotFound {
                collection_id: collection_id.clone(),
                face_id: face_id.clone(),
            });
        };
        let face = HeldFace {
            face_id,
            collection_id: &home,
            image: None,
        };
        let others: Vec<CollectionId> = self
            .scope_of(route, &home)?
            .into_iter()
            .filter(|c| *c != home)
            .collect();
        let other_hits = self.fan_out(&others, &face, threshold, max_faces)?;
        Ok(merge([home_hits, other_hits], max_faces))
    }

    fn search_held_face(
        &self,
        collection_id: &CollectionId,
        face: &HeldFace<'_>,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        let Some(route) = self.routed(collection_id) else {
            return self
                .inner
                .search_held_face(collection_id, face, threshold, max_faces);
        };
        let mut targets = self.scope_of(route, face.collection_id)?;
        if !targets.contains(face.collection_id) {
            // Held in a collection outside the listing (opened since, or the anchor): searched
            // by id there too.
            targets.push(face.collection_id.clone());
        }
        self.fan_out(&targets, face, threshold, max_faces)
    }

    /// An image searched in a routed collection is searched in every collection of the route.
    fn search_faces_by_image(
        &self,
        collection_id: &CollectionId,
        image: &[u8],
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<SearchByImageResult, EngineError> {
        let Some(route) = self.routed(collection_id) else {
            return self
                .inner
                .search_faces_by_image(collection_id, image, threshold, max_faces);
        };
        let targets = self.targets(route, None)?;
        if targets.is_empty() {
            // Nothing to search yet: the anchor answers (with its own refusals).
            return self
                .inner
                .search_faces_by_image(collection_id, image, threshold, max_faces);
        }
        let answers = in_parallel(&targets, |c| {
            self.inner
                .search_faces_by_image(c, image, threshold, max_faces)
        });
        let mut first: Option<SearchByImageResult> = None;
        let mut lists = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer {
                Ok(mut r) => {
                    lists.push(std::mem::take(&mut r.matches));
                    first.get_or_insert(r);
                }
                Err(EngineError::CollectionNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let first = first.ok_or_else(|| EngineError::CollectionNotFound(collection_id.clone()))?;
        Ok(SearchByImageResult {
            matches: merge(lists, max_faces),
            ..first
        })
    }

    /// A routed collection's faces are listed collection by collection; the token names the
    /// collection and its own token.
    fn list_faces(
        &self,
        collection_id: &CollectionId,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<FacePage, EngineError> {
        let Some(route) = self.routed(collection_id) else {
            return self
                .inner
                .list_faces(collection_id, next_token, max_results);
        };
        // Tokens name collections, so pages follow the ids' order.
        let mut all = self.all_collections(route, LISTING_TTL)?;
        all.sort();
        let (start, inner_token) = match next_token {
            None => (0, None),
            Some(token) => {
                let invalid = || EngineError::InvalidPaginationToken(token.to_owned());
                let rest = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
                let (c, inner) = rest.split_once(':').ok_or_else(invalid)?;
                let c = CollectionId::parse(c).map_err(|_| invalid())?;
                // A collection deleted since is skipped: the next in order goes on.
                let start = all.iter().position(|x| *x >= c).unwrap_or(all.len());
                let inner = (all.get(start) == Some(&c) && !inner.is_empty()).then_some(inner);
                (start, inner)
            }
        };
        let Some(current) = all.get(start) else {
            return Ok(FacePage {
                faces: Vec::new(),
                next_token: None,
            });
        };
        let page = match self.inner.list_faces(current, inner_token, max_results) {
            Ok(page) => page,
            Err(EngineError::CollectionNotFound(_)) => FacePage {
                faces: Vec::new(),
                next_token: None,
            },
            Err(e) => return Err(e),
        };
        let next_token = match (&page.next_token, all.get(start + 1)) {
            (Some(t), _) => Some(format!("{TOKEN_PREFIX}{current}:{t}")),
            (None, Some(next)) => Some(format!("{TOKEN_PREFIX}{next}:")),
            (None, None) => None,
        };
        Ok(FacePage {
            faces: page.faces,
            next_token,
        })
    }

    /// Faces of a routed collection are deleted from whichever collection of the route holds them.
    fn delete_faces(
        &self,
        collection_id: &CollectionId,
        face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError> {
        let Some(route) = self.routed(collection_id) else {
            return self.inner.delete_faces(collection_id, face_ids);
        };
        let mut deleted = Vec::new();
        for c in self.all_collections(route, Duration::ZERO)? {
            match self.inner.delete_faces(&c, face_ids) {
                Ok(d) => deleted.extend(d),
                Err(EngineError::CollectionNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    fn note_avoided(&self, operation: Operation, reason: AvoidedBy, calls: u64) {
        self.inner.note_avoided(operation, reason, calls);
    }
}

/// The prefix of a routed collection's ListFaces tokens, so that a token of another kind is
/// recognised as foreign.
const TOKEN_PREFIX: &str = "rt1:";

impl RoutedEngine {
    /// The collections a search of a face held in `home` covers: its family's (with
    /// [`SearchScope::Route`]) or the route's (with [`SearchScope::All`], or when `home` is the
    /// anchor), with the anchor when it holds faces.
    fn scope_of(
        &self,
        route: &Route,
        home: &CollectionId,
    ) -> Result<Vec<CollectionId>, EngineError> {
        let key = match (route.search, route.member(home)) {
            (SearchScope::Route, Some(m)) => Some(m.key),
            _ => None,
        };
        self.targets(route, key.as_deref())
    }
}
