//! Table-driven tests of the built-in rules: every case is a small graph, a pair, and the verdict and
//! reason codes an analyst should see, all checked through one helper.

use super::*;
use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, Decision, DecisionKind, Edge, Face,
    FaceAttributes, FaceId, FacePair, Gender, GenderValue, ImageId, Judgement, Quality, ReasonCode,
    SearchRecord, Similarity, SubjectId, Timestamp, Verdict,
};

pub(super) fn fid(n: u32) -> FaceId {
    FaceId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
}

/// A face of the test graph: image n, subject `S{n}`, good quality and no gender or age unless set.
#[derive(Clone)]
pub(super) struct F(pub(super) FaceNode);

pub(super) fn f(n: u32) -> F {
    F(FaceNode {
        face: Face {
            face_id: fid(n),
            collection_id: CollectionId::parse("c").unwrap(),
            image_id: ImageId::parse(&format!("11111111-0000-4000-8000-{n:012}")).unwrap(),
            external_image_id: None,
            bbox: BoundingBox {
                left: 0.3,
                top: 0.2,
                width: 0.4,
                height: 0.5,
            },
            detection_confidence: Some(Confidence::new(99.9).unwrap()),
            attributes: FaceAttributes {
                quality: Some(Quality::new(80.0, 85.0).unwrap()),
                ..FaceAttributes::default()
            },
            is_largest: true,
            indexed_at: Timestamp::from_millis(0),
            raw: None,
        },
        subject: Some(SubjectId::parse(&format!("S{n}")).unwrap()),
        seq: i64::from(n),
        content_sha256: None,
    })
}

impl F {
    pub(super) fn gender(mut self, value: GenderValue, confidence: f64) -> Self {
        self.0.face.attributes.gender = Some(Gender {
            value,
            confidence: Confidence::new(confidence).unwrap(),
        });
        self
    }
    pub(super) fn male(self, c: f64) -> Self {
        self.gender(GenderValue::Male, c)
    }
    pub(super) fn female(self, c: f64) -> Self {
        self.gender(GenderValue::Female, c)
    }
    pub(super) fn age(mut self, low: u32, high: u32) -> Self {
        self.0.face.attributes.age = Some(AgeRange::new(low, high).unwrap());
        self
    }
    pub(super) fn image_of(mut self, n: u32) -> Self {
        self.0.face.image_id = f(n).0.face.image_id;
        self
    }
    /// The bytes of its image are the bytes `n` (another upload of the same photo shares them).
    pub(super) fn bytes(mut self, n: u32) -> Self {
        self.0.content_sha256 = Some(crate::model::ContentHash::of_bytes(&n.to_le_bytes()));
        self
    }
    pub(super) fn subject(mut self, s: &str) -> Self {
        self.0.subject = Some(SubjectId::parse(s).unwrap());
        self
    }
    pub(super) fn quality(mut self, brightness: f32, sharpness: f32) -> Self {
        self.0.face.attributes.quality =
            Some(Quality::new(f64::from(brightness), f64::from(sharpness)).unwrap());
        self
    }
}

#[derive(Clone)]
pub(super) struct G {
    faces: Vec<F>,
    edges: Vec<Edge>,
    decisions: Vec<Decision>,
    searches: Vec<SearchRecord>,
    pub(super) rules: RuleSet,
}

pub(super) fn graph(faces: Vec<F>) -> G {
    G {
        faces,
        edges: vec![],
        decisions: vec![],
        searches: vec![],
        rules: RuleSet::default(),
    }
}

impl G {
    /// An edge observed in both search directions.
    pub(super) fn edge(mut self, a: u32, b: u32, sim: f64) -> Self {
        let s = Some(Similarity::new(sim).unwrap());
        self.edges.push(Edge {
            pair: FacePair::new(fid(a), fid(b)).unwrap(),
            similarity_ab: s,
            similarity_ba: s,
            engine: "test".into(),
            searched_at: Timestamp::from_millis(0),
        });
        self
    }
    /// An edge found only by searching `searched`.
    pub(super) fn hit(mut self, searched: u32, found: u32, sim: f64) -> Self {
        let obs = crate::model::Observation {
            searched: fid(searched),
            found: fid(found),
            similarity: Similarity::new(sim).unwrap(),
            engine: "test".into(),
            searched_at: Timestamp::from_millis(0),
        };
        match self
            .edges
            .iter_mut()
            .find(|e| e.pair == FacePair::new(fid(searched), fid(found)).unwrap())
        {
            Some(e) => e.fold(&obs),
            None => self.edges.push(Edge::from_observation(&obs).unwrap()),
        }
        self
    }
    pub(super) fn decide(mut self, a: u32, b: u32, kind: DecisionKind) -> Self {
        let at = Timestamp::from_millis(self.decisions.len() as i64 * 1000);
        self.decisions.push(Decision {
            pair: FacePair::new(fid(a), fid(b)).unwrap(),
            kind,
            analyst: "ann".into(),
            at,
            note: None,
        });
        self
    }
    /// A search of face `a` whose silence covers faces stored up to `seq` below `bound`.
    pub(super) fn searched(mut self, a: u32, bound: f64, seq: i64) -> Self {
        self.searches.push(SearchRecord {
            face_id: fid(a),
            collection_id: CollectionId::parse("c").unwrap(),
            bound: Some(Similarity::new(bound).unwrap()),
            collection_seq: seq,
            searched_at: Timestamp::from_millis(0),
        });
        self
    }
    pub(super) fn rules(mut self, edit: impl FnOnce(&mut RuleSet)) -> Self {
        edit(&mut self.rules);
        self
    }
    /// Every pair of `faces` at `sim`: a group of photos of one person.
    fn clique(mut self, faces: &[u32], sim: f64) -> Self {
        for (i, &a) in faces.iter().enumerate() {
            for &b in &faces[i + 1..] {
                self = self.edge(a, b, sim);
            }
        }
        self
    }
    /// Every face searched once all were stored, at the ingest's threshold of 80: a pair with no
    /// edge is known to be below 80.
    fn all_searched(mut self) -> Self {
        let n = self.faces.len() as i64;
        for face in self.faces.clone() {
            let id = face.0.face.face_id.as_str()[24..].parse().unwrap();
            self = self.searched(id, 80.0, n);
        }
        self
    }
}

/// Faces `from..=to`, each its own subject, with a male gender classified at 99%.
fn men(from: u32, to: u32) -> Vec<F> {
    (from..=to).map(|n| f(n).male(99.0)).collect()
}

impl G {
    /// The graph as a view.
    pub(super) fn view(&self) -> GraphView {
        GraphView::new(
            self.faces.iter().map(|f| f.0.clone()).collect(),
            self.edges.iter().map(|e| (e.clone(), None)).collect(),
            self.searches.clone(),
            self.decisions.clone(),
        )
        .unwrap()
    }

    /// Every edge judged under the graph's rules, in the view's order.
    pub(super) fn judge(&self) -> (GraphView, Vec<Judgement>) {
        let view = self.view();
        let judged = Adjudicator::new(self.rules.clone()).judge_all(&view);
        (view, judged)
    }

    /// The match clusters of the judged graph (confirmed edges), as face numbers, with whether each
    /// is a fraud lead (two or more subjects).
    fn clusters(&self) -> Vec<(Vec<u32>, bool)> {
        let (view, judged) = self.judge();
        let mut g = crate::cluster::ClusterGraph::default();
        for (pair, j) in view.pairs().zip(&judged) {
            if j.verdict == Confirmed {
                g.add_confirmed(pair, 99.0);
            }
        }
        let subject_of: std::collections::HashMap<FaceId, SubjectId> = self
            .faces
            .iter()
            .filter_map(|f| Some((f.0.face.face_id.clone(), f.0.subject.clone()?)))
            .collect();
        g.clusters()
            .iter()
            .map(|c| {
                let faces = c
                    .faces
                    .iter()
                    .map(|id| id.as_str()[24..].parse().unwrap())
                    .collect();
                (faces, c.subjects(&subject_of).len() >= 2)
            })
            .collect()
    }
}

/// Judges the whole graph and checks the verdict and the exact set of reason codes of one pair
/// (`similarity_band`, always present, is left out of `codes`).
fn check(name: &str, g: &G, pair: (u32, u32), verdict: Verdict, codes: &[ReasonCode]) {
    let (view, all) = g.judge();
    let adj = Adjudicator::new(g.rules.clone());
    let want = FacePair::new(fid(pair.0), fid(pair.1)).unwrap();
    let (_, j) = view
        .pairs()
        .zip(&all)
        .find(|(p, _)| **p == want)
        .unwrap_or_else(|| panic!("{name}: no edge {pair:?}"));
    let mut got: Vec<ReasonCode> = j
        .reasons
        .iter()
        .map(|r| r.code)
        .filter(|c| *c != ReasonCode::SimilarityBand)
        .collect();
    got.sort();
    let mut want_codes = codes.to_vec();
    want_codes.sort();
    assert_eq!((j.verdict, &got), (verdict, &want_codes), "{name}: {j:#?}");
    assert_eq!(
        j.reasons[0].code,
        ReasonCode::SimilarityBand,
        "{name}: the band comes first"
    );
    assert_eq!(j.rule_set, adj.version(), "{name}");
    for r in &j.reasons {
        assert!(!r.message.is_empty(), "{name}: {r:?} has no message");
    }
}

use DecisionKind::{Different, Same};
use ReasonCode::*;
use Verdict::{Confirmed, Rejected, Review};

/// A rule case: name, graph, pair, expected verdict and reason codes.
type Case<'a> = (&'a str, G, (u32, u32), Verdict, &'a [ReasonCode]);

#[test]
fn built_in_rules() {
    let two = |a: F, b: F, sim: f64| graph(vec![a, b]).edge(1, 2, sim);
    let hub_faces: Vec<F> = (1..=7).map(f).collect();
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("canonical: 97.99%, 96% male against 100% female", two(f(1).male(96.0), f(2).female(100.0), 97.99), (1, 2), Review, &[GenderContradiction]),
        ("gender contradiction caps a confirm-band hit", two(f(1).male(96.0), f(2).female(100.0), 99.9), (1, 2), Review, &[GenderContradiction]),
        ("gender contradiction never rejects a review-band hit", two(f(1).male(99.0), f(2).female(99.0), 92.0), (1, 2), Review, &[GenderContradiction]),
        ("unsure gender is no contradiction", two(f(1).male(80.0), f(2).female(100.0), 99.0), (1, 2), Confirmed, &[]),
        ("same gender", two(f(1).female(99.0), f(2).female(100.0), 99.0), (1, 2), Confirmed, &[]),
        ("confirm threshold is inclusive", two(f(1), f(2), 98.5), (1, 2), Confirmed, &[]),
        ("just below confirm", two(f(1), f(2), 98.49), (1, 2), Review, &[]),
        ("review threshold is inclusive", two(f(1), f(2), 90.0), (1, 2), Review, &[]),
        ("below the review band", two(f(1), f(2), 89.99), (1, 2), Rejected, &[]),
        ("same image: two people", two(f(1), f(2).image_of(1), 99.9), (1, 2), Rejected, &[SameImage]),
        ("same subject: a self-match", two(f(1).subject("C7"), f(2).subject("C7"), 99.6), (1, 2), Confirmed, &[SameSubject]),
        ("ages that cannot overlap", two(f(1).age(3, 7), f(2).age(55, 65), 99.1), (1, 2), Review, &[AgeContradiction]),
        ("ages within tolerance", two(f(1).age(25, 33), f(2).age(40, 50), 99.1), (1, 2), Confirmed, &[]),
        ("dark and blurred", two(f(1).quality(8.0, 4.0), f(2), 99.0), (1, 2), Review, &[LowQuality]),
        ("analyst same overrides the band", two(f(1), f(2), 91.0).decide(1, 2, Same), (1, 2), Confirmed, &[AnalystSame]),
        ("analyst different overrides the band", two(f(1), f(2), 99.9).decide(1, 2, Different), (1, 2), Rejected, &[AnalystDifferent]),
        ("the latest decision wins", two(f(1), f(2), 99.9).decide(1, 2, Different).decide(1, 2, Same), (1, 2), Confirmed, &[AnalystSame]),
        ("analyst overrides same image", two(f(1), f(2).image_of(1), 95.0).decide(1, 2, Same), (1, 2), Confirmed, &[SameImage, AnalystSame]),
        ("A same as B, B different from C: A different from C",
            graph(vec![f(1), f(2), f(3)]).edge(1, 3, 99.0).decide(1, 2, Same).decide(2, 3, Different), (1, 3), Rejected, &[ImpliedDifferent]),
        ("implications can be switched off",
            graph(vec![f(1), f(2), f(3)]).edge(1, 3, 99.0).decide(1, 2, Same).decide(2, 3, Different).rules(|r| r.analyst.follow_implications = false), (1, 3), Confirmed, &[]),
        ("a chain of same decisions links the ends",
            graph(vec![f(1), f(2), f(3)]).edge(1, 3, 91.0).decide(1, 2, Same).decide(2, 3, Same), (1, 3), Confirmed, &[AnalystSame]),
        ("contradictory decisions go to review",
            graph(vec![f(1), f(2), f(3), f(4)]).edge(2, 4, 99.0).decide(1, 2, Same).decide(2, 3, Same).decide(3, 4, Same).decide(1, 3, Different), (2, 4), Review, &[AnalystSame, ImpliedDifferent]),
        ("transitivity: the weaker strong link goes to review",
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).edge(1, 3, 71.0), (2, 3), Review, &[Transitivity]),
        ("transitivity: the stronger link stays confirmed",
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).edge(1, 3, 71.0), (1, 2), Confirmed, &[]),
        ("transitivity: a third side above far_below is not far apart",
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).edge(1, 3, 85.0).rules(|r| r.transitivity.far_below = 80.0), (2, 3), Confirmed, &[]),
        ("transitivity: a review-band third side is no contradiction",
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).edge(1, 3, 93.0), (2, 3), Confirmed, &[]),
        ("transitivity from a search's silence",
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).searched(1, 80.0, 3), (2, 3), Review, &[Transitivity]),
        ("silence says nothing of faces indexed after the search",
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).searched(1, 80.0, 2), (2, 3), Confirmed, &[]),
        ("a hub face matches many subjects",
            graph(hub_faces.clone()).edge(1, 2, 99.5).edge(1, 3, 99.4).edge(1, 4, 99.3).edge(1, 5, 99.2).edge(1, 6, 99.1), (1, 2), Review, &[HubFace]),
        ("a hub's weakest hits are held back by band retention",
            graph(hub_faces.clone()).hit(1, 2, 99.5).hit(1, 3, 99.4).hit(1, 4, 99.3).hit(1, 5, 99.2).hit(1, 6, 99.1), (1, 6), Review, &[HubFace, BandRetention]),
        ("four faces of one subject are no hub",
            graph(hub_faces.iter().cloned().map(|x| x.subject("X")).collect()).edge(1, 2, 99.5).edge(1, 3, 99.4).edge(1, 4, 99.3).edge(1, 5, 99.2).edge(1, 6, 99.1).rules(|r| r.same_subject.enabled = false), (1, 2), Confirmed, &[]),
        ("band retention keeps the best three of a band",
            graph(hub_faces.clone()).hit(1, 2, 94.0).hit(1, 3, 93.0).hit(1, 4, 92.0).hit(1, 5, 91.0), (1, 3), Review, &[]),
        ("band retention holds back the fourth",
            graph(hub_faces.clone()).hit(1, 2, 94.0).hit(1, 3, 93.0).hit(1, 4, 92.0).hit(1, 5, 91.0), (1, 5), Review, &[BandRetention]),
        ("a hit kept by the other face's search stays queued",
            graph(hub_faces.clone()).hit(1, 2, 94.0).hit(1, 3, 93.0).hit(1, 4, 92.0).hit(1, 5, 91.0).hit(5, 1, 91.0), (1, 5), Review, &[]),
        ("bands are ranked separately",
            graph(hub_faces.clone()).hit(1, 2, 97.0).hit(1, 3, 96.0).hit(1, 4, 95.5).hit(1, 5, 91.0), (1, 5), Review, &[]),
        ("a stricter rule set confirms less", two(f(1), f(2), 98.7).rules(|r| r.bands.confirm_at = 99.0), (1, 2), Review, &[]),
        ("99.2%, 96% male against 100% female", two(f(1).male(96.0), f(2).female(100.0), 99.2), (1, 2), Review, &[GenderContradiction]),
        ("a group photo: two faces of one upload are two people", two(f(1), f(2).image_of(1), 99.9), (1, 2), Rejected, &[SameImage]),
        ("a reused photo: the same bytes under two customers are confirmed", two(f(1).bytes(7), f(2).bytes(7), 99.999), (1, 2), Confirmed, &[ReusedPhoto]),
        ("a reused photo is confirmed past the quality cap", two(f(1).bytes(7).quality(8.0, 4.0), f(2).bytes(7).quality(8.0, 4.0), 99.999), (1, 2), Confirmed, &[ReusedPhoto, LowQuality]),
        ("a reused photo with contradicting classifiers is still one photo", two(f(1).bytes(7).male(96.0), f(2).bytes(7).female(100.0), 99.999), (1, 2), Confirmed, &[ReusedPhoto, GenderContradiction]),
        ("a photo reused by one customer is a self-match", two(f(1).bytes(7).subject("C7"), f(2).bytes(7).subject("C7"), 99.999), (1, 2), Confirmed, &[ReusedPhoto, SameSubject]),
        ("an analyst's different still overrides a reused photo", two(f(1).bytes(7), f(2).bytes(7), 99.999).decide(1, 2, Different), (1, 2), Rejected, &[ReusedPhoto, AnalystDifferent]),
        ("different bytes are no reused photo", two(f(1).bytes(7), f(2).bytes(8), 99.0), (1, 2), Confirmed, &[]),
        ("reused-photo rule switched off", two(f(1).bytes(7).quality(8.0, 4.0), f(2).bytes(7), 99.999).rules(|r| r.reused_photo.enabled = false), (1, 2), Review, &[LowQuality]),
        ("disabled gender rule", two(f(1).male(96.0), f(2).female(100.0), 97.99).rules(|r| r.gender.enabled = false), (1, 2), Review, &[]),
    ];
    for (name, g, pair, verdict, codes) in &cases {
        check(name, g, *pair, *verdict, codes);
    }
}

#[test]
fn graph_patterns() {
    let six: Vec<u32> = (1..=6).collect();
    let star = |sim: f64| {
        (2..=9)
            .fold(graph(men(1, 9)), |g, k| g.edge(1, k, sim))
            .all_searched()
    };
    let ring = graph(men(1, 6)).clique(&six, 99.3).all_searched();
    let mixed_ring = graph(vec![
        f(1).male(99.0),
        f(2).male(99.0),
        f(3).male(99.0),
        f(4).female(99.0),
        f(5).female(99.0),
        f(6).female(99.0),
    ])
    .clique(&six, 99.3)
    .all_searched();
    // Five photos of one person; one pair (2, 3) scores low, as a poor photo does.
    let dense = graph(men(1, 5))
        .edge(1, 2, 99.0)
        .edge(1, 3, 99.8)
        .edge(1, 4, 99.5)
        .edge(1, 5, 99.5)
        .edge(2, 3, 70.0)
        .edge(2, 4, 99.5)
        .edge(2, 5, 99.5)
        .edge(3, 4, 99.5)
        .edge(3, 5, 99.5)
        .edge(4, 5, 99.5)
        .all_searched();
    // Two groups of three, tied by one strong edge (1, 4) whose other pairs across are unmatched.
    let bridge = graph(men(1, 6))
        .clique(&[1, 2, 3], 99.5)
        .clique(&[4, 5, 6], 99.5)
        .edge(1, 4, 99.9)
        .all_searched();
    // 1 and 2 each lead to a face (3, 4) that two more faces (5, 6) tie together, two steps out.
    let far_ties = graph(men(1, 6))
        .edge(1, 2, 99.0)
        .edge(1, 3, 99.9)
        .edge(2, 4, 99.9)
        .edge(3, 5, 99.5)
        .edge(3, 6, 99.5)
        .edge(4, 5, 99.5)
        .edge(4, 6, 99.5)
        .all_searched();
    let supported = graph(men(1, 4))
        .edge(1, 2, 99.0)
        .edge(2, 3, 99.0)
        .edge(1, 4, 99.0)
        .edge(4, 3, 99.0)
        .edge(1, 3, 85.0);
    let one_path = graph(men(1, 3))
        .edge(1, 2, 99.0)
        .edge(2, 3, 99.0)
        .edge(1, 3, 85.0);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("a star: one face at 95 with eight subjects who do not match each other", star(95.0), (1, 2), Review, &[HubFace]),
        ("a star is capped even in the confirm band", star(99.5), (1, 2), Review, &[HubFace]),
        ("a ring: six photos of one person under six customers", ring.clone(), (1, 2), Confirmed, &[Ring]),
        ("every edge of the ring keeps its band", ring.clone(), (5, 6), Confirmed, &[Ring]),
        ("a ring whose genders split half and half is a star",
            mixed_ring.clone(), (1, 2), Review, &[HubFace]),
        ("and its mixed pairs keep their gender contradiction",
            mixed_ring, (1, 4), Review, &[HubFace, GenderContradiction]),
        ("a face matching the ring's centre only does not belong to the ring: a weak link",
            graph(men(1, 7)).clique(&six, 99.3).edge(1, 7, 99.6).all_searched(), (1, 7), Review, &[Transitivity]),
        ("a poorer photo of the ring's person, matching two of the five others, stays confirmed",
            graph(men(1, 7)).clique(&six, 99.3).edge(1, 7, 99.0).edge(2, 7, 99.0).edge(3, 7, 99.0).all_searched(),
            (1, 7), Confirmed, &[]),
        ("the ring's own edges stay confirmed beside an outsider",
            graph(men(1, 7)).clique(&six, 99.3).edge(1, 7, 99.6).all_searched(), (1, 2), Confirmed, &[Ring]),
        ("hubs can be switched off",
            star(99.5).rules(|r| r.hub.enabled = false), (1, 2), Confirmed, &[]),
        ("transitivity spares a weaker link in a dense group", dense.clone(), (1, 2), Confirmed, &[]),
        ("and the stronger one", dense.clone(), (1, 3), Confirmed, &[]),
        ("unless the group must be denser than it is",
            dense.clone().rules(|r| r.transitivity.min_support = 0.9), (1, 2), Review, &[Transitivity]),
        ("and the low pair itself stays in review by its band", dense, (2, 3), Review, &[GraphSupport]),
        ("a bridge between two dense groups goes to review, however strong", bridge.clone(), (1, 4), Review, &[Transitivity]),
        ("the groups' own edges stay confirmed", bridge.clone(), (1, 2), Confirmed, &[]),
        ("on both sides", bridge, (5, 6), Confirmed, &[]),
        ("one hop out, nothing ties the two sides: a weak link", far_ties.clone(), (1, 2), Review, &[Transitivity]),
        ("two hops out, two faces tie them: no doubt",
            far_ties.rules(|r| r.neighbourhood.max_hops = 2), (1, 2), Confirmed, &[]),
        ("graph support: two strong paths raise a low pair to review", supported.clone(), (1, 3), Review, &[GraphSupport]),
        ("graph support can be switched off",
            supported.clone().rules(|r| r.graph_support.enabled = false), (1, 3), Rejected, &[]),
        ("one path is not enough", one_path, (1, 3), Rejected, &[]),
        ("graph support never confirms, whatever the paths", supported.rules(|r| r.graph_support.min_paths = 1), (1, 3), Review, &[GraphSupport]),
        ("a group photo inside a ring is still two people",
            graph(vec![f(1).male(99.0), f(2).male(99.0).image_of(1), f(3).male(99.0), f(4).male(99.0), f(5).male(99.0), f(6).male(99.0)])
                .clique(&six, 99.3).all_searched(), (1, 2), Rejected, &[SameImage, Ring]),
    ];
    for (name, g, pair, verdict, codes) in &cases {
        check(name, g, *pair, *verdict, codes);
    }
}

#[test]
fn a_ring_is_one_cluster_and_a_fraud_lead_and_a_bridge_splits_two() {
    let six: Vec<u32> = (1..=6).collect();
    let ring = graph(men(1, 6)).clique(&six, 99.3).all_searched();
    assert_eq!(ring.clusters(), vec![(six.clone(), true)]);
    // A perfect ring (every pair matching, every face agreeing) passes even the strictest settings.
    let strict = ring.rules(|r| {
        r.hub.min_density = 1.0;
        r.hub.min_agreement = 1.0;
    });
    assert_eq!(strict.clusters(), vec![(six.clone(), true)]);
    let star = (2..=9)
        .fold(graph(men(1, 9)), |g, k| g.edge(1, k, 99.5))
        .all_searched();
    assert_eq!(star.clusters(), vec![], "a star makes no cluster");
    let bridge = graph(men(1, 6))
        .clique(&[1, 2, 3], 99.5)
        .clique(&[4, 5, 6], 99.5)
        .edge(1, 4, 99.9)
        .all_searched();
    let mut got = bridge.clusters();
    got.sort();
    assert_eq!(got, vec![(vec![1, 2, 3], true), (vec![4, 5, 6], true)]);
    // A reused photo makes a fraud lead of two customers, whatever the photo's quality.
    let reused = graph(vec![
        f(1).bytes(7).quality(8.0, 4.0),
        f(2).bytes(7).quality(8.0, 4.0),
    ])
    .edge(1, 2, 99.999);
    assert_eq!(reused.clusters(), vec![(vec![1, 2], true)]);
}

#[test]
fn a_ring_reason_carries_the_numbers_it_used() {
    let six: Vec<u32> = (1..=6).collect();
    let g = graph(men(1, 6)).clique(&six, 99.3).all_searched();
    let view = g.view();
    let j = Adjudicator::new(RuleSet::default())
        .judge(&view, &FacePair::new(fid(1), fid(2)).unwrap())
        .unwrap();
    let ring = j.reasons.iter().find(|r| r.code == Ring).unwrap();
    let ev: std::collections::HashMap<_, _> = ring.evidence.iter().cloned().collect();
    use crate::model::Evidence::Number;
    assert_eq!(ev["distinct_subjects"], Number(5.0));
    assert_eq!(ev["neighbours"], Number(5.0));
    assert_eq!(ev["mutual_edges"], Number(10.0));
    assert_eq!(ev["density"], Number(1.0));
    assert_eq!(ev["min_density"], Number(0.5));
    assert_eq!(ev["agreement"], Number(1.0));
    assert!(
        ring.message.contains("10 of 10 neighbour pairs"),
        "{}",
        ring.message
    );
    // Judging one edge on its own reads the same neighbourhood as judging them all.
    let (_, all) = g.judge();
    assert_eq!(all[0], j);
}

#[test]
fn canonical_reason_carries_its_numbers_and_a_sentence() {
    let g = graph(vec![f(1).male(96.0), f(2).female(100.0)]).edge(1, 2, 97.99);
    let view = GraphView::new(
        g.faces.iter().map(|f| f.0.clone()).collect(),
        g.edges.iter().map(|e| (e.clone(), None)).collect(),
        vec![],
        vec![],
    )
    .unwrap();
    let j = Adjudicator::new(RuleSet::default())
        .judge(&view, &FacePair::new(fid(1), fid(2)).unwrap())
        .unwrap();
    let reason = j
        .reasons
        .iter()
        .find(|r| r.code == GenderContradiction)
        .unwrap();
    assert!(
        reason.message.contains("male (96.0% confidence)")
            && reason.message.contains("female (100.0%)")
    );
    let ev: std::collections::HashMap<_, _> = reason.evidence.iter().cloned().collect();
    assert_eq!(ev["confidence_a"], crate::model::Evidence::Number(96.0));
    assert_eq!(
        ev["gender_b"],
        crate::model::Evidence::Text("Female".into())
    );
    assert!(
        j.score < 97.99,
        "the penalty lowers the ranking score: {}",
        j.score
    );
}
