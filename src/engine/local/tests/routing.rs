//! Collection routing over the local engine, with a limit of 10 faces per collection: the split
//! (which collections open, and how many faces each takes, also when uploads arrive in parallel),
//! and searches of the routed id that find what one collection holding every face finds, with
//! the same similarities.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{face, open_engine, toward, Img, DIM};
use crate::engine::routing::{Route, RouteKey, RoutedEngine, Routes, SearchScope};
use crate::engine::{
    EngineError, FaceEngine, FaceMatch, HeldFace, ImageSource, IndexFacesRequest, QualityFilter,
};
use crate::model::{
    CollectionId, ContentHash, ExternalImageId, FaceId, Similarity, SubjectId, Timestamp,
};

fn cid(s: &str) -> CollectionId {
    CollectionId::parse(s).unwrap()
}

/// Photo `i` of person `p`: the person's direction turned a little, differently for each photo,
/// with a small jitter of its own so that no two pairs of photos are equally similar (the order of
/// equal hits is the engine's own, and this test compares orders).
fn photo(p: usize, i: usize) -> Img {
    let cos = 0.90 + 0.015 * (i % 6) as f32;
    let mut emb = toward(p % DIM, (p + 1 + i % 3) % DIM, cos);
    let mut state = ((p * 1000 + i) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for x in &mut emb {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *x += 0.05 * ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5);
    }
    let norm = emb.iter().map(|x| x * x).sum::<f32>().sqrt();
    emb.iter_mut().for_each(|x| *x /= norm);
    Img::new(&format!("p{p}-{i}"), vec![face(emb, 0.3, 0.1)])
}

struct Routed {
    _tmp: tempfile::TempDir,
    local: Arc<dyn FaceEngine>,
    routed: RoutedEngine,
    flat: CollectionId,
    routed_id: CollectionId,
}

impl Routed {
    fn new(key: RouteKey, search: SearchScope) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let local: Arc<dyn FaceEngine> = Arc::new(open_engine(tmp.path()));
        let routed_id = cid("customers");
        let routes = Routes::new(vec![Route {
            collection_id: routed_id.clone(),
            key,
            max_faces: 10,
            search,
        }])
        .unwrap();
        // 2026-03-15, for the month key.
        let routed = RoutedEngine::new(Arc::clone(&local), routes)
            .with_clock(|| Timestamp::from_millis(1_773_532_800_000));
        routed.create_collection(&routed_id).unwrap();
        let flat = cid("flat");
        local.create_collection(&flat).unwrap();
        Self {
            _tmp: tmp,
            local,
            routed,
            flat,
            routed_id,
        }
    }

    /// Indexes the photo into the routed id for `subject` and into the flat collection; the face
    /// ids (routed, flat) and where the router put it.
    fn index(&self, img: &Img, ext: &str, subject: &str) -> (FaceId, FaceId, CollectionId) {
        let bytes = img.bytes();
        let ext = ExternalImageId::parse(ext).unwrap();
        let subject = SubjectId::parse(subject).unwrap();
        let req = |c| IndexFacesRequest {
            collection_id: c,
            image: ImageSource::Bytes(&bytes),
            external_image_id: Some(&ext),
            subject_id: Some(&subject),
            max_faces: Some(1),
            quality_filter: QualityFilter::Auto,
        };
        let routed = self.routed.index_faces(&req(&self.routed_id)).unwrap();
        let flat = self.local.index_faces(&req(&self.flat)).unwrap();
        let home = routed.faces[0].collection_id.clone();
        (
            routed.faces[0].face_id.clone(),
            flat.faces[0].face_id.clone(),
            home,
        )
    }

    fn count(&self, c: &str) -> u64 {
        self.local.describe_collection(&cid(c)).unwrap().face_count
    }
}

/// (external image id, similarity) of each hit, most similar first.
fn named(hits: &[FaceMatch]) -> Vec<(String, f64)> {
    hits.iter()
        .map(|m| {
            (
                m.external_image_id.as_ref().unwrap().to_string(),
                m.similarity.get(),
            )
        })
        .collect()
}

fn zero() -> Similarity {
    Similarity::new(0.0).unwrap()
}

#[test]
fn a_route_splits_at_its_face_limit_and_its_searches_find_everything() {
    let r = Routed::new(RouteKey::Tenant { separator: ':' }, SearchScope::Route);
    // 25 photos of five people for tenant acme, indexed four at a time, and four for globex.
    let acme: Vec<(String, Img)> = (0..25)
        .map(|i| (format!("acme-{i:02}.jpg"), photo(i % 5, i / 5)))
        .collect();
    let placed: Vec<(FaceId, FaceId, CollectionId)> = std::thread::scope(|s| {
        let chunks: Vec<_> = acme
            .chunks(7)
            .map(|chunk| {
                s.spawn(|| {
                    chunk
                        .iter()
                        .map(|(ext, img)| r.index(img, ext, "acme:customer"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let globex: Vec<(FaceId, FaceId, CollectionId)> = (0..4)
        .map(|i| r.index(&photo(i, 9), &format!("globex-{i}.jpg"), "globex:customer"))
        .collect();

    // The split: acme's collections took 10, 10 and 5 faces, globex's its 4; the anchor none.
    let mut listed: Vec<String> = r
        .local
        .list_collections()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "customers",
            "customers.acme.0001",
            "customers.acme.0002",
            "customers.acme.0003",
            "customers.globex.0001",
            "flat"
        ]
    );
    let counts: Vec<u64> = [
        "customers.acme.0001",
        "customers.acme.0002",
        "customers.acme.0003",
        "customers.globex.0001",
        "customers",
    ]
    .iter()
    .map(|c| r.count(c))
    .collect();
    assert_eq!(counts, [10, 10, 5, 4, 0]);
    let mut homes: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, home) in placed.iter().chain(&globex) {
        *homes.entry(home.as_str()).or_default() += 1;
    }
    assert_eq!(homes.values().sum::<usize>(), 29);
    assert_eq!(
        r.routed
            .describe_collection(&r.routed_id)
            .unwrap()
            .face_count,
        29,
        "the routed id is described as its whole family"
    );

    // Every acme face, searched in the routed id, finds the other 24 acme faces wherever they
    // are, with the similarities one collection of acme's photos gives; globex stays apart.
    let flat_acme = cid("flat-acme");
    r.local.create_collection(&flat_acme).unwrap();
    let mut flat_ids = Vec::new();
    for (ext, img) in &acme {
        let bytes = img.bytes();
        let e = ExternalImageId::parse(ext).unwrap();
        let res = r
            .local
            .index_faces(&IndexFacesRequest {
                collection_id: &flat_acme,
                image: ImageSource::Bytes(&bytes),
                external_image_id: Some(&e),
                subject_id: None,
                max_faces: Some(1),
                quality_filter: QualityFilter::Auto,
            })
            .unwrap();
        flat_ids.push(res.faces[0].face_id.clone());
    }
    let by_ext: BTreeMap<String, usize> = acme
        .iter()
        .enumerate()
        .map(|(i, (ext, _))| (ext.clone(), i))
        .collect();
    for (face_id, _, home) in &placed {
        let held = HeldFace {
            face_id,
            collection_id: home,
            image: None,
        };
        let routed = r
            .routed
            .search_held_face(&r.routed_id, &held, zero(), 100)
            .unwrap();
        assert_eq!(routed.len(), 24, "every other acme face, none of globex");
        let i = placed.iter().position(|p| &p.0 == face_id).unwrap();
        let ext = routed_ext(&r, face_id, home);
        let flat = r
            .local
            .search_faces(&flat_acme, &flat_ids[by_ext[&ext]], zero(), 100)
            .unwrap();
        assert_eq!(named(&routed), named(&flat), "face {i} ({ext})");
        // Found by id alone, the router first finds the collection that holds it.
        let by_id = r
            .routed
            .search_faces(&r.routed_id, face_id, zero(), 100)
            .unwrap();
        assert_eq!(named(&by_id), named(&flat));
        // The best five of the family are the best five of the one collection.
        let top = r
            .routed
            .search_held_face(&r.routed_id, &held, zero(), 5)
            .unwrap();
        assert_eq!(named(&top), named(&flat[..5]));
    }

    // A search by image covers every collection of the route, as the flat collection of all 29.
    for (p, i) in [(0, 0), (3, 4), (2, 9)] {
        let probe = photo(p, i).bytes();
        let routed = r
            .routed
            .search_faces_by_image(&r.routed_id, &probe, zero(), 100)
            .unwrap();
        let flat = r
            .local
            .search_faces_by_image(&r.flat, &probe, zero(), 100)
            .unwrap();
        assert_eq!(routed.matches.len(), 29);
        assert_eq!(named(&routed.matches), named(&flat.matches));
        assert_eq!(routed.searched_bbox, flat.searched_bbox);
    }

    // ListFaces pages through the family; every face once.
    let mut token: Option<String> = None;
    let mut listed = Vec::new();
    loop {
        let page = r
            .routed
            .list_faces(&r.routed_id, token.as_deref(), 7)
            .unwrap();
        assert!(page.faces.len() <= 7);
        listed.extend(page.faces.into_iter().map(|f| f.face_id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    listed.sort();
    let mut want: Vec<FaceId> = placed.iter().chain(&globex).map(|p| p.0.clone()).collect();
    want.sort();
    assert_eq!(listed, want);
    assert!(matches!(
        r.routed.list_faces(&r.routed_id, Some("lf1.00"), 7),
        Err(EngineError::InvalidPaginationToken(_))
    ));

    // An upload is found again in whichever collection took it.
    let (ext, img) = &acme[17];
    let found = r
        .routed
        .find_indexed(
            &r.routed_id,
            Some(&ExternalImageId::parse(ext).unwrap()),
            &ContentHash::of_bytes(&img.bytes()),
        )
        .unwrap()
        .unwrap();
    let placed_17 = placed
        .iter()
        .find(|p| routed_ext(&r, &p.0, &p.2) == *ext)
        .unwrap();
    assert_eq!(found.faces[0].face_id, placed_17.0);

    // Deleting the routed id deletes the family.
    r.routed.delete_collection(&r.routed_id).unwrap();
    let left: Vec<String> = r
        .local
        .list_collections()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(left, ["flat", "flat-acme"]);
    assert!(matches!(
        r.routed.describe_collection(&r.routed_id),
        Err(EngineError::CollectionNotFound(_))
    ));
}

/// The external image id of a face the router placed in `home`.
fn routed_ext(r: &Routed, face: &FaceId, home: &CollectionId) -> String {
    let page = r.local.list_faces(home, None, 100).unwrap();
    page.faces
        .iter()
        .find(|f| &f.face_id == face)
        .and_then(|f| f.external_image_id.as_ref())
        .unwrap()
        .to_string()
}

#[test]
fn a_route_by_month_names_its_collections_by_month_and_searches_all_when_told() {
    let r = Routed::new(RouteKey::Month, SearchScope::All);
    // Last month's collection, with one face of person 0.
    let last_month = cid("customers.2026-02.0001");
    r.local.create_collection(&last_month).unwrap();
    let old = photo(0, 40).bytes();
    let old_face = r
        .local
        .index_faces(&IndexFacesRequest {
            collection_id: &last_month,
            image: ImageSource::Bytes(&old),
            external_image_id: Some(&ExternalImageId::parse("old.jpg").unwrap()),
            subject_id: None,
            max_faces: Some(1),
            quality_filter: QualityFilter::Auto,
        })
        .unwrap()
        .faces[0]
        .face_id
        .clone();
    let faces: Vec<(FaceId, FaceId, CollectionId)> = (0..12)
        .map(|i| r.index(&photo(i % 3, i), &format!("m-{i}.jpg"), "anyone"))
        .collect();
    assert_eq!(faces[0].2.as_str(), "customers.2026-03.0001");
    assert_eq!(faces[11].2.as_str(), "customers.2026-03.0002");
    assert_eq!(
        (
            r.count("customers.2026-03.0001"),
            r.count("customers.2026-03.0002"),
            r.count("customers.2026-02.0001")
        ),
        (10, 2, 1),
        "this month's uploads never go to last month's collection"
    );
    // With `search = "all"`, this month's face is compared with last month's too.
    let held = HeldFace {
        face_id: &faces[0].0,
        collection_id: &faces[0].2,
        image: None,
    };
    let hits = r
        .routed
        .search_held_face(&r.routed_id, &held, zero(), 100)
        .unwrap();
    assert_eq!(hits.len(), 12);
    assert!(hits.iter().any(|m| m.face_id == old_face));
}

#[test]
fn a_member_named_by_its_own_id_is_one_collection() {
    let r = Routed::new(RouteKey::Tenant { separator: ':' }, SearchScope::Route);
    let placed: Vec<(FaceId, FaceId, CollectionId)> = (0..12)
        .map(|i| r.index(&photo(0, i), &format!("x-{i}.jpg"), "t:c"))
        .collect();
    let first = cid("customers.t.0001");
    let hits = r
        .routed
        .search_faces(&first, &placed[0].0, zero(), 100)
        .unwrap();
    assert_eq!(hits.len(), 9, "only the other faces of that collection");
    assert!(matches!(
        r.routed.search_faces(&first, &placed[11].0, zero(), 100),
        Err(EngineError::FaceNotFound { .. })
    ));
}
