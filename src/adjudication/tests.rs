//! Table-driven tests of the built-in rules: every case is a small graph, a pair, and the verdict and
//! reason codes an analyst should see, all checked through one helper.

use super::*;
use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, Decision, DecisionKind, Edge, Face,
    FaceAttributes, FaceId, FacePair, Gender, GenderValue, ImageId, Quality, ReasonCode,
    SearchRecord, Similarity, SubjectId, Timestamp, Verdict,
};

fn fid(n: u32) -> FaceId {
    FaceId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
}

/// A face of the test graph: image n, subject `S{n}`, good quality and no gender or age unless set.
#[derive(Clone)]
struct F(FaceNode);

fn f(n: u32) -> F {
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
                quality: Some(Quality {
                    brightness: 80.0,
                    sharpness: 85.0,
                }),
                ..FaceAttributes::default()
            },
            is_largest: true,
            indexed_at: Timestamp::from_millis(0),
            raw: None,
        },
        subject: Some(SubjectId::parse(&format!("S{n}")).unwrap()),
        seq: i64::from(n),
    })
}

impl F {
    fn gender(mut self, value: GenderValue, confidence: f64) -> Self {
        self.0.face.attributes.gender = Some(Gender {
            value,
            confidence: Confidence::new(confidence).unwrap(),
        });
        self
    }
    fn male(self, c: f64) -> Self {
        self.gender(GenderValue::Male, c)
    }
    fn female(self, c: f64) -> Self {
        self.gender(GenderValue::Female, c)
    }
    fn age(mut self, low: u32, high: u32) -> Self {
        self.0.face.attributes.age = Some(AgeRange::new(low, high));
        self
    }
    fn image_of(mut self, n: u32) -> Self {
        self.0.face.image_id = f(n).0.face.image_id;
        self
    }
    fn subject(mut self, s: &str) -> Self {
        self.0.subject = Some(SubjectId::parse(s).unwrap());
        self
    }
    fn quality(mut self, brightness: f32, sharpness: f32) -> Self {
        self.0.face.attributes.quality = Some(Quality {
            brightness,
            sharpness,
        });
        self
    }
}

#[derive(Clone)]
struct G {
    faces: Vec<F>,
    edges: Vec<Edge>,
    decisions: Vec<Decision>,
    searches: Vec<SearchRecord>,
    rules: RuleSet,
}

fn graph(faces: Vec<F>) -> G {
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
    fn edge(mut self, a: u32, b: u32, sim: f64) -> Self {
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
    fn hit(mut self, searched: u32, found: u32, sim: f64) -> Self {
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
    fn decide(mut self, a: u32, b: u32, kind: DecisionKind) -> Self {
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
    fn searched(mut self, a: u32, bound: f64, seq: i64) -> Self {
        self.searches.push(SearchRecord {
            face_id: fid(a),
            collection_id: CollectionId::parse("c").unwrap(),
            bound: Some(Similarity::new(bound).unwrap()),
            collection_seq: seq,
            searched_at: Timestamp::from_millis(0),
        });
        self
    }
    fn rules(mut self, edit: impl FnOnce(&mut RuleSet)) -> Self {
        edit(&mut self.rules);
        self
    }
}

/// Judges the whole graph and checks the verdict and the exact set of reason codes of one pair
/// (`similarity_band`, always present, is left out of `codes`).
fn check(name: &str, g: &G, pair: (u32, u32), verdict: Verdict, codes: &[ReasonCode]) {
    let view = GraphView::new(
        g.faces.iter().map(|f| f.0.clone()).collect(),
        g.edges.iter().map(|e| (e.clone(), None)).collect(),
        g.searches.clone(),
        g.decisions.clone(),
    )
    .unwrap();
    let adj = Adjudicator::new(g.rules.clone());
    let want = FacePair::new(fid(pair.0), fid(pair.1)).unwrap();
    let all = adj.judge_all(&view);
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
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).edge(1, 3, 81.0), (2, 3), Review, &[Transitivity]),
        ("transitivity: the stronger link stays confirmed",
            graph(vec![f(1), f(2), f(3)]).edge(1, 2, 99.0).edge(2, 3, 98.8).edge(1, 3, 81.0), (1, 2), Confirmed, &[]),
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
        ("disabled gender rule", two(f(1).male(96.0), f(2).female(100.0), 97.99).rules(|r| r.gender.enabled = false), (1, 2), Review, &[]),
    ];
    for (name, g, pair, verdict, codes) in &cases {
        check(name, g, *pair, *verdict, codes);
    }
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
