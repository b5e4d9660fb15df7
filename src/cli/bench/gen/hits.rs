//! Search hits between the faces of a population, as threshold-80 searches return them, and what
//! is made of them: the stored edges, the observations an ingest receives, the searches whose
//! silence is evidence, and analysts' decisions.

use std::collections::HashSet;

use super::population::Population;
use super::{round, Rng, EPOCH_MS, SEARCH_THRESHOLD};
use crate::model::{
    Decision, DecisionKind, Edge, FacePair, Observation, ParseError, SearchRecord, Similarity,
    Timestamp,
};

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
    let mut drawn = Drawn {
        wanted: n,
        seen: HashSet::with_capacity(n),
        out: Vec::with_capacity(n),
    };
    // A third of the hits are a person's other photos.
    same_person(rng, pop, &mut drawn, n * 35 / 100);
    group_photos(rng, pop, &mut drawn);
    hubs(rng, pop, &mut drawn);
    look_alikes(rng, pop, &mut drawn)?;
    Ok(drawn.out)
}

/// The hits drawn so far: each pair once, and no more than wanted.
struct Drawn {
    wanted: usize,
    seen: HashSet<(u32, u32)>,
    out: Vec<Hit>,
}

impl Drawn {
    /// Adds a hit between `x` and `y`, found in one direction or both, unless the pair has one.
    fn add(&mut self, rng: &mut Rng, x: u32, y: u32, sim: f64) {
        if x == y || self.out.len() >= self.wanted || !self.seen.insert((x.min(y), x.max(y))) {
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
        self.out.push(hit);
    }
}

/// A person's other photos, until `until` hits are drawn: found 95% of the time, mostly above 98.5.
fn same_person(rng: &mut Rng, pop: &Population, drawn: &mut Drawn, until: usize) {
    for faces_of in &pop.persons {
        for (i, &x) in faces_of.iter().enumerate() {
            for &y in &faces_of[i + 1..] {
                if drawn.out.len() >= until {
                    return;
                }
                if rng.chance(0.95) {
                    let sim = if rng.chance(0.8) {
                        rng.range(98.5, 100.0)
                    } else {
                        rng.range(93.0, 98.5)
                    };
                    drawn.add(rng, x, y, sim);
                }
            }
        }
    }
}

/// Faces of one group photo match each other now and then, in the 80s.
fn group_photos(rng: &mut Rng, pop: &Population, drawn: &mut Drawn) {
    for group in &pop.group_photos {
        for (i, &x) in group.iter().enumerate() {
            for &y in &group[i + 1..] {
                if rng.chance(0.3) {
                    let sim = rng.range(80.0, 93.0);
                    drawn.add(rng, x, y, sim);
                }
            }
        }
    }
}

/// Hub faces (a poster, a generic face) match many people in the 90s.
fn hubs(rng: &mut Rng, pop: &Population, drawn: &mut Drawn) {
    let faces = pop.faces.len();
    for _ in 0..(faces / 2_000).max(1) {
        let hub = rng.below(faces) as u32;
        for _ in 0..30 {
            let y = rng.below(faces) as u32;
            let sim = rng.range(90.0, 96.0);
            drawn.add(rng, hub, y, sim);
        }
    }
}

/// Look-alikes fill the rest: two people who mostly share gender and age, with an impostor
/// similarity that falls steeply above the search threshold.
fn look_alikes(rng: &mut Rng, pop: &Population, drawn: &mut Drawn) -> Result<(), TooDense> {
    let (faces, n) = (pop.faces.len(), drawn.wanted);
    let mut attempts = 0usize;
    while drawn.out.len() < n {
        attempts += 1;
        if attempts > 100 * n + 1_000 {
            return Err(TooDense {
                wanted: n,
                faces,
                drawn: drawn.out.len(),
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
        drawn.add(rng, x, y, sim);
    }
    Ok(())
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
