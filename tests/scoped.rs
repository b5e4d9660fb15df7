//! Adjudication scoped to the change, checked against the whole graph: random graphs driven through
//! random ingests, decisions and stored matches, two stores in step, one re-judged only where the
//! change reaches and the other judged whole, with their verdicts and clusters compared after
//! every step.

use std::sync::Arc;

use facegraph::adjudication::{Adjudicator, RuleSet};
use facegraph::model::{
    AgeRange, DecisionKind, Gender, GenderValue, Observation, Quality, SearchRecord, SubjectId,
    Timestamp,
};
use facegraph::service::Facegraph;
use facegraph::store::contract::fixtures::{
    collection_id, decision, external_image_id, face, face_id, image, similarity,
};
use facegraph::store::sqlite::SqliteStore;
use facegraph::store::{ClusterMembership, GraphStore, IngestBatch};

/// SplitMix64: a seed names one run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u32) -> u32 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u32
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// A similarity on a coarse grid, so that ties happen: the rules must break them alike.
    fn similarity(&mut self, low: f64, high: f64) -> f64 {
        let steps = ((high - low) * 4.0) as u32;
        low + f64::from(self.below(steps + 1)) / 4.0
    }
}

/// The two applications in step: `scoped` re-judges what a change reaches, `whole` judges every
/// edge after every step.
struct Pair {
    scoped: Facegraph,
    whole: Facegraph,
    /// Faces stored so far, numbered 1..=faces; face n's person is persons[n - 1].
    persons: Vec<u32>,
    images: u32,
    clock: i64,
}

/// Rules that fire often in small graphs: hubs of three subjects, short neighbour lists, one
/// queued hit per band, and the given reach.
fn rules(max_hops: usize) -> RuleSet {
    let mut r = RuleSet::default();
    r.neighbourhood.max_hops = max_hops;
    r.neighbourhood.max_degree = 4;
    r.hub.min_subjects = 3;
    r.band_retention.keep_per_band = 1;
    r.validate().expect("the test's rules are valid");
    r
}

impl Pair {
    fn new(rules: &RuleSet) -> Self {
        let app = || {
            let store: Arc<dyn GraphStore> =
                Arc::new(SqliteStore::open_in_memory().expect("an in-memory store"));
            Facegraph::new(store, Adjudicator::new(rules.clone()))
        };
        Self {
            scoped: app(),
            whole: app(),
            persons: Vec::new(),
            images: 0,
            clock: 10_000,
        }
    }

    fn tick(&mut self) -> i64 {
        self.clock += 1_000;
        self.clock
    }

    /// A batch of `n` new faces: people with a few photos, a group photo now and then, subjects
    /// for most images, attributes that sometimes contradict, hits among them and to the faces
    /// stored before, and a search for each new face.
    fn new_faces(&mut self, rng: &mut Rng, n: u32) -> IngestBatch {
        let first = self.persons.len() as u32 + 1;
        let mut faces = Vec::new();
        let mut subjects = Vec::new();
        let mut person_pool = (self.persons.len() as u32 / 4).max(3);
        for k in 0..n {
            let id = first + k;
            // A group photo: this face shares the previous face's image.
            let shares_image = k > 0 && rng.chance(0.1);
            if !shares_image {
                self.images += 1;
                if rng.chance(0.85) {
                    // A few customers with several photos, some people behind two accounts.
                    let subject = SubjectId::parse(&format!("C{}", rng.below(person_pool + 3)))
                        .expect("a subject id");
                    subjects.push((external_image_id(self.images), subject));
                }
            }
            let person = if rng.chance(0.2) {
                person_pool += 1;
                person_pool
            } else {
                rng.below(person_pool) + 1
            };
            self.persons.push(person);
            let mut f = face(id, self.images);
            let male = (person % 2 == 0) != rng.chance(0.05);
            f.attributes.gender =
                Some(Gender {
                    value: if male {
                        GenderValue::Male
                    } else {
                        GenderValue::Female
                    },
                    confidence: facegraph::store::contract::fixtures::confidence(
                        if rng.chance(0.8) { 97.0 } else { 70.0 },
                    ),
                });
            let age = 20 + (person % 40);
            let off = if rng.chance(0.05) { 25 } else { 0 };
            f.attributes.age = AgeRange::new(age + off, age + off + 5).ok();
            if rng.chance(0.05) {
                f.attributes.quality = Quality::new(10.0, 90.0).ok();
            }
            faces.push(f);
        }
        let mut images: Vec<u32> = faces
            .iter()
            .map(|f| {
                f.image_id.as_str()[24..]
                    .parse::<u32>()
                    .expect("fixture image ids end in their number")
            })
            .collect();
        images.dedup();
        let mut observations = Vec::new();
        let mut searches = Vec::new();
        let total = self.persons.len() as u32;
        let at = Timestamp::from_millis(self.tick());
        for id in first..=total {
            let person = self.persons[(id - 1) as usize];
            // Most of a person's other photos are found, mostly in the confirm band; a few
            // look-alikes too, some strongly enough to bridge two people.
            let mut found: Vec<(u32, f64)> = Vec::new();
            for other in 1..=total {
                if other != id && self.persons[(other - 1) as usize] == person && rng.chance(0.7) {
                    let sim = if rng.chance(0.75) {
                        rng.similarity(98.5, 100.0)
                    } else {
                        rng.similarity(90.0, 98.5)
                    };
                    found.push((other, sim));
                }
            }
            for _ in 0..rng.below(3) {
                let other = rng.below(total) + 1;
                if other != id && self.persons[(other - 1) as usize] != person {
                    let sim = if rng.chance(0.2) {
                        rng.similarity(98.5, 99.75)
                    } else {
                        rng.similarity(80.0, 98.0)
                    };
                    found.push((other, sim));
                }
            }
            for (other, sim) in found {
                let mut push = |searched: u32, found: u32| {
                    observations.push(Observation {
                        searched: face_id(searched),
                        found: face_id(found),
                        similarity: similarity(sim),
                        engine: "local".to_owned(),
                        searched_at: at,
                    })
                };
                match rng.below(3) {
                    0 => push(id, other),
                    1 => push(other, id),
                    _ => {
                        push(id, other);
                        push(other, id);
                    }
                }
            }
            // Searches at 80 cover the faces stored up to this one; some are run at 95, whose
            // silence says less, and some faces are not searched when stored.
            let bound = match rng.below(10) {
                0..=4 => Some(80.0),
                5..=6 => Some(95.0),
                _ => None,
            };
            if let Some(bound) = bound {
                searches.push(SearchRecord {
                    face_id: face_id(id),
                    collection_id: collection_id(),
                    bound: Some(similarity(bound)),
                    collection_seq: i64::from(id),
                    searched_at: at,
                });
            }
        }
        IngestBatch {
            collections: vec![facegraph::store::contract::fixtures::collection()],
            images: images.into_iter().map(image).collect(),
            faces,
            subjects,
            observations,
            searches,
            completed: Vec::new(),
        }
    }

    /// Ingests into both stores; the scoped one adjudicates the change unless `crash` (the
    /// re-judging then happens at its next step, as after a crash).
    fn ingest(&self, batch: &IngestBatch, crash: bool, seen: &mut Seen) {
        for app in [&self.scoped, &self.whole] {
            app.store().ingest(batch).expect("ingest");
        }
        if !crash {
            self.adjudicate(seen);
        }
    }

    fn adjudicate(&self, seen: &mut Seen) {
        let r = self
            .scoped
            .adjudicate_changes()
            .expect("scoped adjudication");
        seen.note(&r, self.scoped.store().stats().expect("stats").edges);
    }

    fn random_pair(&self, rng: &mut Rng) -> Option<(u32, u32)> {
        let n = self.persons.len() as u32;
        let (a, b) = (rng.below(n) + 1, rng.below(n) + 1);
        (a != b).then_some((a, b))
    }
}

/// The stored verdicts of every edge, and the stored clusters and their totals, must be equal.
fn assert_same(p: &Pair, seed: u64, step: usize) {
    let read = |app: &Facegraph| {
        let mut edges: Vec<_> = app
            .store()
            .edges(None)
            .expect("edges")
            .into_iter()
            .map(|e| (e.edge.pair, e.judgement))
            .collect();
        edges.sort_by(|x, y| x.0.cmp(&y.0));
        let mut clusters: Vec<ClusterMembership> = app.store().clusters().expect("clusters");
        for c in &mut clusters {
            c.faces.sort();
        }
        clusters.sort_by(|x, y| x.cluster_id.cmp(&y.cluster_id));
        (
            edges,
            clusters,
            app.store().cluster_totals().expect("totals"),
        )
    };
    let (se, sc, st) = read(&p.scoped);
    let (we, wc, wt) = read(&p.whole);
    assert_eq!(se.len(), we.len(), "seed {seed} step {step}: edge counts");
    for ((pair, s), (_, w)) in se.iter().zip(&we) {
        assert_eq!(
            s, w,
            "seed {seed} step {step}: the scoped judgement of {pair:?} differs from the whole graph's"
        );
    }
    assert_eq!(sc, wc, "seed {seed} step {step}: clusters differ");
    assert_eq!(st, wt, "seed {seed} step {step}: cluster totals differ");
}

/// How many graphs and steps the property runs, and what it saw.
#[derive(Default, Debug)]
struct Seen {
    /// Steps compared.
    steps: usize,
    /// Re-judgings that stayed scoped, and those that judged the whole graph.
    scoped: usize,
    whole: usize,
    /// Edges the scoped re-judgings judged, and the edges the graph held then.
    judged: usize,
    edges: usize,
    /// Judgements the whole graph's re-judging found changed, summed over the steps.
    changed: usize,
}

impl Seen {
    fn note(&mut self, r: &facegraph::service::Readjudication, edges: usize) {
        if r.judged == 0 && r.written == 0 {
            return;
        }
        if r.scoped {
            self.scoped += 1;
            self.judged += r.judged;
            self.edges += edges;
        } else {
            self.whole += 1;
        }
    }
}

fn run(seed: u64, max_hops: usize, steps: usize, seen: &mut Seen) {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
    let rules = rules(max_hops);
    let mut p = Pair::new(&rules);
    let size = 50 + rng.below(50);
    let first = p.new_faces(&mut rng, size);
    p.ingest(&first, false, seen);
    p.whole.readjudicate().expect("whole adjudication");
    assert_same(&p, seed, 0);
    for step in 1..=steps {
        let crash = rng.chance(0.15);
        match rng.below(12) {
            // One new image with its hits, or a few.
            0..=3 => {
                let n = if rng.chance(0.8) { 1 } else { 2 + rng.below(3) };
                let b = p.new_faces(&mut rng, n);
                p.ingest(&b, crash, seen);
            }
            // An analyst's decision, mostly on a pair with an edge.
            4..=6 => {
                let edges = p.whole.store().edges(None).expect("edges");
                let (a, b) = if !edges.is_empty() && rng.chance(0.8) {
                    let e = &edges[rng.below(edges.len() as u32) as usize];
                    let n = |f: &facegraph::model::FaceId| -> u32 {
                        f.as_str()[24..]
                            .parse()
                            .expect("fixture face ids end in their number")
                    };
                    (n(e.edge.pair.a()), n(e.edge.pair.b()))
                } else {
                    match p.random_pair(&mut rng) {
                        Some(ab) => ab,
                        None => continue,
                    }
                };
                let kind = if rng.chance(0.5) {
                    DecisionKind::Same
                } else {
                    DecisionKind::Different
                };
                let d = decision(a, b, kind, p.tick(), None);
                for app in [&p.scoped, &p.whole] {
                    app.store().record_decision(&d).expect("decision");
                }
                if !crash {
                    p.adjudicate(seen);
                }
            }
            // A match stored through the API between two stored faces: new, or a new value.
            7..=8 => {
                let Some((a, b)) = p.random_pair(&mut rng) else {
                    continue;
                };
                let s = similarity(rng.similarity(85.0, 100.0));
                let recorded = p
                    .scoped
                    .record_match(&face_id(a), &face_id(b), s)
                    .expect("record a match");
                let edges = p.scoped.store().stats().expect("stats").edges;
                seen.note(&recorded.adjudication, edges);
                p.whole
                    .record_match(&face_id(a), &face_id(b), s)
                    .expect("record a match");
            }
            // A stored face searched again, finding nothing new: its silence is new evidence.
            9..=10 if rng.chance(0.7) => {
                let f = rng.below(p.persons.len() as u32) + 1;
                let at = p.tick();
                let b = IngestBatch {
                    searches: vec![SearchRecord {
                        face_id: face_id(f),
                        collection_id: collection_id(),
                        bound: Some(similarity(80.0)),
                        collection_seq: p.persons.len() as i64,
                        searched_at: Timestamp::from_millis(at),
                    }],
                    ..IngestBatch::default()
                };
                p.ingest(&b, crash, seen);
            }
            // A subject moves: an image's external id is linked to another customer.
            _ => {
                let img = rng.below(p.images) + 1;
                let subject =
                    SubjectId::parse(&format!("C{}", rng.below(20))).expect("a subject id");
                let b = IngestBatch {
                    subjects: vec![(external_image_id(img), subject)],
                    ..IngestBatch::default()
                };
                p.ingest(&b, crash, seen);
            }
        }
        if crash {
            continue;
        }
        let r = p.whole.readjudicate().expect("whole adjudication");
        let s = p
            .scoped
            .adjudicate_changes()
            .expect("nothing left to re-judge");
        assert!(
            s.changes.is_empty() && s.written == 0,
            "seed {seed} step {step}: a second scoped adjudication changed {:?}",
            s.changes
        );
        seen.steps += 1;
        seen.changed += r.written;
        assert_same(&p, seed, step);
    }
    // The last marks left by a crash are finished by the next call.
    p.scoped.adjudicate_changes().expect("scoped adjudication");
    p.whole.readjudicate().expect("whole adjudication");
    assert_same(&p, seed, steps + 1);
}

#[test]
fn scoped_adjudication_equals_judging_the_whole_graph() {
    let mut seen = Seen::default();
    for seed in 0..20 {
        let hops = 1 + (seed % 3) as usize;
        run(seed, hops, 40, &mut seen);
    }
    eprintln!("{seen:?}");
    assert!(seen.steps > 500, "{seen:?}");
    // The property is about scoped re-judging: most re-judgings must stay scoped, and judge a
    // part of the graph (these graphs are small and dense: the part is large).
    assert!(seen.scoped > 10 * seen.whole, "{seen:?}");
    assert!(seen.judged * 4 < seen.edges * 3, "{seen:?}");
}
