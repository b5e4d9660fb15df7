//! The benchmarks' data generator: a small seeded PRNG and populations of people, photos, faces and
//! search hits shaped like a real match graph, so that every rule has something to fire on.

use std::collections::HashSet;

use crate::model::{
    AgeRange, BoundingBox, Collection, CollectionId, Confidence, Decision, DecisionKind, Edge,
    ExternalImageId, Face, FaceAttributes, FaceId, FacePair, Gender, GenderValue, Image, ImageId,
    Observation, ParseError, Pose, Quality, SearchRecord, Similarity, SubjectId, Timestamp,
};

/// SplitMix64 (Steele, Lea and Flood, 2014): one `u64` of state, statistically sound for generating
/// test data and the same on every platform, so a seed names one data set.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one benchmark: each stream of a seed is independent of the others, so that
    /// running one benchmark alone generates the same data as running it with the rest.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut r = Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for the sizes used here).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A random version-4 UUID in lowercase, the shape of Rekognition's face and image ids.
    pub(crate) fn uuid(&mut self) -> String {
        let (x, y) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            0x8000 | ((y >> 48) & 0x3fff),
            y & 0xffff_ffff_ffff
        )
    }

    /// A group size from 1 to `max` with P(k) proportional to 1/k: most people have one or two photos,
    /// a few have many.
    pub(crate) fn group_size(&mut self, max: usize) -> usize {
        let total: f64 = (1..=max).map(|k| 1.0 / k as f64).sum();
        let mut x = self.unit() * total;
        for k in 1..=max {
            x -= 1.0 / k as f64;
            if x < 0.0 {
                return k;
            }
        }
        max
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// 2026-01-01T00:00:00Z, where the generated history starts.
const EPOCH_MS: i64 = 1_767_225_600_000;

/// The search threshold of the generated searches: a face a search did not return is below it.
pub(crate) const SEARCH_THRESHOLD: f64 = 80.0;

/// People photographed for onboarding: each person has a few photos, some photos show bystanders,
/// most photos belong to a customer (subject), and a few people hold two customer accounts.
#[derive(Debug)]
pub(crate) struct Population {
    pub(crate) collection: Collection,
    pub(crate) images: Vec<Image>,
    pub(crate) faces: Vec<Face>,
    /// The subject of each face, through its image.
    pub(crate) subjects: Vec<Option<SubjectId>>,
    /// The subject of each external image id, as an ingest names them.
    pub(crate) subject_links: Vec<(ExternalImageId, SubjectId)>,
    /// The person behind each face.
    pub(crate) person: Vec<u32>,
    /// The faces of each person.
    pub(crate) persons: Vec<Vec<u32>>,
    /// The true gender and age of each person, which look-alikes mostly share.
    looks: Vec<(GenderValue, u32)>,
    /// The faces of each image that shows more than one.
    pub(crate) group_photos: Vec<Vec<u32>>,
}

struct Person {
    gender: GenderValue,
    age: u32,
}

/// `n` faces of people with 1 to 8 photos each (P(k) ~ 1/k).
pub(crate) fn population(rng: &mut Rng, n: usize) -> Result<Population, ParseError> {
    let collection_id = CollectionId::parse("bench-faces")?;
    let collection = Collection {
        collection_id: collection_id.clone(),
        engine: "rekognition".to_owned(),
        face_model_version: Some("7.0".to_owned()),
        created_at: Timestamp::from_millis(EPOCH_MS),
    };
    let mut pop = Population {
        collection,
        images: Vec::new(),
        faces: Vec::with_capacity(n),
        subjects: Vec::with_capacity(n),
        subject_links: Vec::new(),
        person: Vec::with_capacity(n),
        persons: Vec::new(),
        looks: Vec::new(),
        group_photos: Vec::new(),
    };
    while pop.faces.len() < n {
        let person = Person {
            gender: gender(rng),
            age: 18 + rng.below(60) as u32,
        };
        let id = pop.persons.len();
        // One person in ten has no customer record (a watch-list photo); one customer in fifty has a
        // second account, which is the fraud the clusters look for.
        let subject = rng
            .chance(0.9)
            .then(|| SubjectId::parse(&format!("C{id:08}")))
            .transpose()?;
        let alias = match &subject {
            Some(_) if rng.chance(0.02) => {
                Some(SubjectId::parse(&format!("C{:08}", 90_000_000 + id))?)
            }
            _ => None,
        };
        pop.persons.push(Vec::new());
        pop.looks.push((person.gender, person.age));
        for photo in 0..rng.group_size(8) {
            if pop.faces.len() >= n {
                break;
            }
            let subject = if photo % 2 == 1 && alias.is_some() {
                alias.clone()
            } else {
                subject.clone()
            };
            let image = new_image(rng, &mut pop, subject.clone())?;
            let face = new_face(rng, &pop, image, &person, true)?;
            push_face(&mut pop, face, subject.clone(), id);
            // One photo in twenty-five shows one or two bystanders as well.
            if rng.chance(0.04) {
                let mut group = vec![pop.faces.len() as u32 - 1];
                for _ in 0..1 + rng.below(2) {
                    if pop.faces.len() >= n {
                        break;
                    }
                    let bystander = Person {
                        gender: gender(rng),
                        age: 18 + rng.below(60) as u32,
                    };
                    let face = new_face(rng, &pop, image, &bystander, false)?;
                    let bid = pop.persons.len();
                    pop.persons.push(Vec::new());
                    pop.looks.push((bystander.gender, bystander.age));
                    group.push(pop.faces.len() as u32);
                    push_face(&mut pop, face, subject.clone(), bid);
                }
                pop.images[image].face_count = group.len() as u32;
                if group.len() > 1 {
                    pop.group_photos.push(group);
                }
            }
        }
    }
    Ok(pop)
}

fn gender(rng: &mut Rng) -> GenderValue {
    if rng.chance(0.5) {
        GenderValue::Male
    } else {
        GenderValue::Female
    }
}

/// Adds a face of `person` whose image belongs to `subject`.
fn push_face(pop: &mut Population, face: Face, subject: Option<SubjectId>, person: usize) {
    pop.persons[person].push(pop.faces.len() as u32);
    pop.person.push(person as u32);
    pop.subjects.push(subject);
    pop.faces.push(face);
}

fn new_image(
    rng: &mut Rng,
    pop: &mut Population,
    subject: Option<SubjectId>,
) -> Result<usize, ParseError> {
    let i = pop.images.len();
    let ext = ExternalImageId::parse(&format!("img-{i:08}.jpg"))?;
    if let Some(s) = subject {
        pop.subject_links.push((ext.clone(), s));
    }
    pop.images.push(Image {
        image_id: ImageId::parse(&rng.uuid())?,
        external_image_id: Some(ext.clone()),
        content_sha256: None,
        collection_id: None,
        pending: false,
        source: Some(format!("s3://bench-onboarding/{ext}")),
        width: Some(1080),
        height: Some(1440),
        face_count: 1,
        received_at: Timestamp::from_millis(EPOCH_MS + i as i64 * 1_000),
    });
    Ok(i)
}

/// A face with the attributes a classifier reports: mostly right and confident, sometimes wrong.
fn new_face(
    rng: &mut Rng,
    pop: &Population,
    image: usize,
    who: &Person,
    largest: bool,
) -> Result<Face, ParseError> {
    let seq = pop.faces.len() as i64;
    let img = &pop.images[image];
    let gender = if rng.chance(0.02) {
        None
    } else {
        let (value, confidence) = match rng.unit() {
            u if u < 0.90 => (who.gender, rng.range(95.0, 99.9)),
            u if u < 0.97 => (who.gender, rng.range(60.0, 95.0)),
            _ => (other(who.gender), rng.range(55.0, 96.0)),
        };
        Some(Gender {
            value,
            confidence: Confidence::new(round(confidence, 4))?,
        })
    };
    // Photos are up to five years old; the estimate is usually a range around the age at the time and
    // occasionally far off.
    let at_photo = who.age.saturating_sub(rng.below(6) as u32);
    let centre = if rng.chance(0.03) {
        at_photo + 15 + rng.below(10) as u32
    } else {
        at_photo
    };
    let low = centre.saturating_sub(rng.below(6) as u32);
    let age = AgeRange::new(low, low + 3 + rng.below(8) as u32);
    let quality = Quality {
        brightness: if rng.chance(0.03) {
            rng.range(5.0, 20.0)
        } else {
            rng.range(30.0, 95.0)
        } as f32,
        sharpness: if rng.chance(0.03) {
            rng.range(2.0, 10.0)
        } else {
            rng.range(15.0, 95.0)
        } as f32,
    };
    let pose = Pose {
        yaw: if rng.chance(0.02) {
            rng.range(45.0, 80.0)
        } else {
            rng.range(-30.0, 30.0)
        } as f32,
        pitch: if rng.chance(0.01) {
            rng.range(35.0, 60.0)
        } else {
            rng.range(-20.0, 20.0)
        } as f32,
        roll: rng.range(-15.0, 15.0) as f32,
    };
    let width = if !largest {
        rng.range(0.03, 0.12)
    } else if rng.chance(0.01) {
        rng.range(0.01, 0.02)
    } else {
        rng.range(0.15, 0.5)
    };
    let bbox = BoundingBox {
        left: rng.range(0.0, 1.0 - width) as f32,
        top: rng.range(0.0, 0.5) as f32,
        width: width as f32,
        height: (width * 1.3) as f32,
    };
    let face_id = FaceId::parse(&rng.uuid())?;
    let detection = round(rng.range(99.0, 100.0), 4);
    let ext = img.external_image_id.clone();
    // The engine's own record of the face, as ListFaces returns it, kept verbatim by the store.
    let raw = format!(
        "{{\"FaceId\":\"{face_id}\",\"BoundingBox\":{{\"Width\":{:.6},\"Height\":{:.6},\"Left\":{:.6},\"Top\":{:.6}}},\
         \"ImageId\":\"{}\",\"ExternalImageId\":\"{}\",\"Confidence\":{detection},\"IndexFacesModelVersion\":\"7.0\"}}",
        bbox.width,
        bbox.height,
        bbox.left,
        bbox.top,
        img.image_id,
        ext.as_ref().map_or("", |e| e.as_str()),
    );
    Ok(Face {
        face_id,
        collection_id: pop.collection.collection_id.clone(),
        image_id: img.image_id.clone(),
        external_image_id: ext,
        bbox,
        detection_confidence: Some(Confidence::new(detection)?),
        attributes: FaceAttributes {
            gender,
            age: Some(age),
            quality: Some(quality),
            pose: Some(pose),
        },
        is_largest: largest,
        indexed_at: Timestamp::from_millis(EPOCH_MS + seq * 1_000),
        raw: Some(raw),
    })
}

fn other(g: GenderValue) -> GenderValue {
    match g {
        GenderValue::Male => GenderValue::Female,
        GenderValue::Female => GenderValue::Male,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A search hit between faces `x` and `y`: the similarity found searching `x`, searching `y`, or both.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) sim_xy: Option<f64>,
    pub(crate) sim_yx: Option<f64>,
}

impl Hit {
    pub(crate) fn similarity(&self) -> f64 {
        self.sim_xy.unwrap_or(0.0).max(self.sim_yx.unwrap_or(0.0))
    }
}

/// Why the requested number of hits cannot be drawn from the population.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {wanted} distinct search hits among {faces} faces (drew {drawn}); ask for fewer edges or more faces")]
pub(crate) struct TooDense {
    wanted: usize,
    faces: usize,
    drawn: usize,
}

/// `n` distinct search hits, as a threshold-80 search of every face returns them: a person's other
/// photos (high similarity, occasionally missed), bystanders in the same photo, hub faces that match
/// many people, and look-alikes. Half the hits were found in both directions.
pub(crate) fn hits(rng: &mut Rng, pop: &Population, n: usize) -> Result<Vec<Hit>, TooDense> {
    let faces = pop.faces.len();
    let mut seen: HashSet<(u32, u32)> = HashSet::with_capacity(n);
    let mut out: Vec<Hit> = Vec::with_capacity(n);
    let mut add = |rng: &mut Rng, out: &mut Vec<Hit>, x: u32, y: u32, sim: f64| {
        if x == y || out.len() >= n || !seen.insert((x.min(y), x.max(y))) {
            return;
        }
        let sim = round(sim.min(100.0), 6);
        // The two directions differ only in the last digits.
        let hit = match rng.below(4) {
            0 | 1 => Hit {
                x,
                y,
                sim_xy: Some(sim),
                sim_yx: Some(round((sim - rng.range(0.0, 2e-5)).max(0.0), 6)),
            },
            2 => Hit {
                x,
                y,
                sim_xy: Some(sim),
                sim_yx: None,
            },
            _ => Hit {
                x,
                y,
                sim_xy: None,
                sim_yx: Some(sim),
            },
        };
        out.push(hit);
    };
    // A third of the hits are a person's other photos.
    let same_person = n * 35 / 100;
    'people: for faces_of in &pop.persons {
        for (i, &x) in faces_of.iter().enumerate() {
            for &y in &faces_of[i + 1..] {
                if out.len() >= same_person {
                    break 'people;
                }
                if rng.chance(0.95) {
                    let sim = if rng.chance(0.8) {
                        rng.range(98.5, 100.0)
                    } else {
                        rng.range(93.0, 98.5)
                    };
                    add(rng, &mut out, x, y, sim);
                }
            }
        }
    }
    for group in &pop.group_photos {
        for (i, &x) in group.iter().enumerate() {
            for &y in &group[i + 1..] {
                if rng.chance(0.3) {
                    let sim = rng.range(80.0, 93.0);
                    add(rng, &mut out, x, y, sim);
                }
            }
        }
    }
    // Hub faces (a poster, a generic face) match many people in the 90s.
    for _ in 0..(faces / 2_000).max(1) {
        let hub = rng.below(faces) as u32;
        for _ in 0..30 {
            let y = rng.below(faces) as u32;
            let sim = rng.range(90.0, 96.0);
            add(rng, &mut out, hub, y, sim);
        }
    }
    let mut attempts = 0usize;
    while out.len() < n {
        attempts += 1;
        if attempts > 100 * n + 1_000 {
            return Err(TooDense {
                wanted: n,
                faces,
                drawn: out.len(),
            });
        }
        let (x, y) = (rng.below(faces) as u32, rng.below(faces) as u32);
        let (px, py) = (
            pop.person[x as usize] as usize,
            pop.person[y as usize] as usize,
        );
        if px == py {
            continue;
        }
        // Look-alikes mostly share gender and age; impostor similarity falls steeply above the
        // search threshold.
        let ((gx, ax), (gy, ay)) = (pop.looks[px], pop.looks[py]);
        if (gx != gy && rng.chance(0.9)) || (ax.abs_diff(ay) > 12 && rng.chance(0.8)) {
            continue;
        }
        let sim = match rng.unit() {
            u if u < 0.60 => rng.range(80.0, 85.0),
            u if u < 0.85 => rng.range(85.0, 90.0),
            u if u < 0.97 => rng.range(90.0, 95.0),
            u if u < 0.995 => rng.range(95.0, 98.5),
            _ => rng.range(98.5, 99.9),
        };
        add(rng, &mut out, x, y, sim);
    }
    Ok(out)
}

fn similarity(v: f64) -> Result<Similarity, ParseError> {
    Similarity::new(v)
}

fn searched_at(face: u32) -> Timestamp {
    Timestamp::from_millis(EPOCH_MS + 86_400_000 + i64::from(face) * 1_000)
}

/// The hits as stored edges, in the store's order (by pair).
pub(crate) fn edges(pop: &Population, hits: &[Hit]) -> Result<Vec<Edge>, ParseError> {
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        let (fx, fy) = (
            &pop.faces[h.x as usize].face_id,
            &pop.faces[h.y as usize].face_id,
        );
        let Some(pair) = FacePair::new(fx.clone(), fy.clone()) else {
            continue;
        };
        let (ab, ba) = if pair.a() == fx {
            (h.sim_xy, h.sim_yx)
        } else {
            (h.sim_yx, h.sim_xy)
        };
        out.push(Edge {
            pair,
            similarity_ab: ab.map(similarity).transpose()?,
            similarity_ba: ba.map(similarity).transpose()?,
            engine: "rekognition".to_owned(),
            searched_at: searched_at(h.x.max(h.y)),
        });
    }
    out.sort_by(|a, b| a.pair.cmp(&b.pair));
    Ok(out)
}

/// The hits as the search results an ingest receives: one observation per direction found, in the
/// order the faces were searched.
pub(crate) fn observations(pop: &Population, hits: &[Hit]) -> Result<Vec<Observation>, ParseError> {
    let mut directed: Vec<(u32, u32, f64)> = Vec::with_capacity(hits.len() * 2);
    for h in hits {
        directed.extend(h.sim_xy.map(|s| (h.x, h.y, s)));
        directed.extend(h.sim_yx.map(|s| (h.y, h.x, s)));
    }
    directed.sort_by_key(|&(searched, found, _)| (searched, found));
    directed
        .into_iter()
        .map(|(searched, found, s)| {
            Ok(Observation {
                searched: pop.faces[searched as usize].face_id.clone(),
                found: pop.faces[found as usize].face_id.clone(),
                similarity: similarity(s)?,
                engine: "rekognition".to_owned(),
                searched_at: searched_at(searched),
            })
        })
        .collect()
}

/// One threshold-80 search per face; most ran after every face was indexed, one in ten when the face
/// itself was indexed, so its silence covers only the faces before it.
pub(crate) fn searches(rng: &mut Rng, pop: &Population) -> Result<Vec<SearchRecord>, ParseError> {
    let all = pop.faces.len() as i64;
    pop.faces
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(SearchRecord {
                face_id: f.face_id.clone(),
                collection_id: f.collection_id.clone(),
                bound: Some(similarity(SEARCH_THRESHOLD)?),
                collection_seq: if rng.chance(0.9) { all } else { i as i64 + 1 },
                searched_at: searched_at(i as u32),
            })
        })
        .collect()
}

/// Analysts' decisions on about one hit in two hundred, drawn from the review band, where analysts
/// work: "same" when it is one person, "different" otherwise.
pub(crate) fn decisions(rng: &mut Rng, pop: &Population, hits: &[Hit]) -> Vec<Decision> {
    let wanted = hits.len() / 200;
    let mut out = Vec::with_capacity(wanted);
    let mut seen = HashSet::new();
    for _ in 0..wanted.saturating_mul(50) {
        if out.len() >= wanted {
            break;
        }
        let h = hits[rng.below(hits.len())];
        let s = h.similarity();
        if !(90.0..98.5).contains(&s) || !seen.insert((h.x, h.y)) {
            continue;
        }
        let (fx, fy) = (
            &pop.faces[h.x as usize].face_id,
            &pop.faces[h.y as usize].face_id,
        );
        let Some(pair) = FacePair::new(fx.clone(), fy.clone()) else {
            continue;
        };
        let same = pop.person[h.x as usize] == pop.person[h.y as usize];
        out.push(Decision {
            pair,
            kind: if same {
                DecisionKind::Same
            } else {
                DecisionKind::Different
            },
            analyst: format!("analyst{}", 1 + rng.below(5)),
            at: Timestamp::from_millis(EPOCH_MS + 2 * 86_400_000 + out.len() as i64 * 60_000),
            note: rng
                .chance(0.3)
                .then(|| "checked against the ID document".to_owned()),
        });
    }
    out
}

/// A confirmed-match graph for clustering: faces grouped into people of 1 to 16 photos (P(k) ~ 1/k),
/// every group connected, extra pairs inside groups up to the edge count, a few stray edges between
/// groups, analysts' must-links, and cannot-links inside small groups.
#[derive(Debug)]
pub(crate) struct ClusterPlan {
    pub(crate) faces: Vec<FaceId>,
    /// Confirmed edges as face indices and similarity, in no particular order.
    pub(crate) confirmed: Vec<(u32, u32, f64)>,
    pub(crate) must: Vec<(u32, u32)>,
    pub(crate) cannot: Vec<(u32, u32)>,
    /// How many people the faces were drawn from.
    pub(crate) groups: usize,
    /// Confirmed edges between two groups.
    pub(crate) between_groups: usize,
}

pub(crate) fn cluster_plan(
    rng: &mut Rng,
    faces: usize,
    edges: usize,
) -> Result<ClusterPlan, ParseError> {
    let ids = (0..faces)
        .map(|_| FaceId::parse(&rng.uuid()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut groups: Vec<(u32, u32)> = Vec::new(); // (first face, size)
    let mut group_of: Vec<u32> = Vec::with_capacity(faces);
    let mut start = 0usize;
    while start < faces {
        let k = rng.group_size(16).min(faces - start);
        groups.push((start as u32, k as u32));
        group_of.extend(std::iter::repeat_n(groups.len() as u32 - 1, k));
        start += k;
    }
    // One edge in two hundred joins two groups; the rest hold groups together.
    let wanted_between = edges / 200;
    let wanted_inside = edges - wanted_between;
    let mut tree: Vec<(u32, u32)> = Vec::new();
    let mut extra: Vec<(u32, u32)> = Vec::new();
    for &(first, k) in &groups {
        // A random spanning tree keeps the group one cluster; the other pairs are candidates.
        let mut parent = vec![u32::MAX; k as usize];
        for i in 1..k {
            let p = rng.below(i as usize) as u32;
            parent[i as usize] = p;
            tree.push((first + p, first + i));
        }
        for i in 0..k {
            for j in i + 1..k {
                if parent[j as usize] != i {
                    extra.push((first + i, first + j));
                }
            }
        }
    }
    rng.shuffle(&mut tree);
    tree.truncate(wanted_inside);
    let more = (wanted_inside - tree.len()).min(extra.len());
    // A partial Fisher-Yates shuffle picks `more` of the candidates.
    for i in 0..more {
        let j = i + rng.below(extra.len() - i);
        extra.swap(i, j);
    }
    extra.truncate(more);
    let mut pairs = tree;
    pairs.extend(extra);
    let between = edges - pairs.len();
    let mut seen: HashSet<(u32, u32)> = HashSet::with_capacity(between);
    let mut attempts = 0usize;
    while pairs.len() < edges && attempts < 50 * between + 1_000 {
        attempts += 1;
        let (x, y) = (rng.below(faces) as u32, rng.below(faces) as u32);
        if group_of[x as usize] != group_of[y as usize] && seen.insert((x.min(y), x.max(y))) {
            pairs.push((x, y));
        }
    }
    let between_groups = seen.len();
    let mut confirmed: Vec<(u32, u32, f64)> = pairs
        .into_iter()
        .map(|(x, y)| (x, y, round(rng.range(98.5, 100.0), 6)))
        .collect();
    // The store returns edges by pair, which is random with respect to the groups.
    rng.shuffle(&mut confirmed);

    let in_group = |rng: &mut Rng, (first, k): (u32, u32)| {
        let i = rng.below(k as usize) as u32;
        let j = (i + 1 + rng.below(k as usize - 1) as u32) % k;
        (first + i, first + j)
    };
    let mut must = Vec::new();
    let wanted_must = (edges / 2_000).max(1);
    for n in 0..wanted_must * 20 {
        if must.len() >= wanted_must {
            break;
        }
        if n % 2 == 0 {
            let g = groups[rng.below(groups.len())];
            if g.1 >= 2 {
                must.push(in_group(rng, g));
            }
        } else {
            let (x, y) = (rng.below(faces) as u32, rng.below(faces) as u32);
            if group_of[x as usize] != group_of[y as usize] {
                must.push((x, y));
            }
        }
    }
    // Analysts mark pairs in small clusters, where they can see every photo.
    let mut cannot = Vec::new();
    let wanted_cannot = (edges / 6_667).max(1);
    for _ in 0..wanted_cannot * 50 {
        if cannot.len() >= wanted_cannot {
            break;
        }
        let g = groups[rng.below(groups.len())];
        if (3..=8).contains(&g.1) {
            cannot.push(in_group(rng, g));
        }
    }
    Ok(ClusterPlan {
        faces: ids,
        confirmed,
        must,
        cannot,
        groups: groups.len(),
        between_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_data_set() {
        let (mut a, mut b) = (Rng::new(7, 1), Rng::new(7, 1));
        assert_eq!(
            (0..5).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..5).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        assert_ne!(Rng::new(7, 1).next_u64(), Rng::new(7, 2).next_u64());
        let u = Rng::new(1, 1).uuid();
        assert!(FaceId::parse(&u).is_ok(), "{u}");
    }

    #[test]
    fn populations_and_hits_have_the_requested_sizes() {
        let mut rng = Rng::new(3, 3);
        let pop = population(&mut rng, 500).unwrap();
        assert_eq!(pop.faces.len(), 500);
        assert!(!pop.group_photos.is_empty());
        let hits = hits(&mut rng, &pop, 1_000).unwrap();
        assert_eq!(hits.len(), 1_000);
        assert_eq!(edges(&pop, &hits).unwrap().len(), 1_000);
        let plan = cluster_plan(&mut rng, 1_000, 2_000).unwrap();
        assert_eq!(plan.confirmed.len(), 2_000);
        assert!(!plan.cannot.is_empty() && !plan.must.is_empty());
    }
}
