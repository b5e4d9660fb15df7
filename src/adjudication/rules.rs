//! The built-in rules. Each reads the edge, both faces and the view, and adds to an [`Outcome`]; the
//! verdict is the similarity band's, capped by the rules that doubt it, vetoed by the ones that rule
//! it out, and overridden by analysts.

use rustc_hash::FxHashMap;

use super::graph::{self, Facts};
use super::view::{GraphView, ViewEdge, NO_SUBJECT};
use super::{Adjudicator, RuleSet};
use crate::model::{
    similarity_decimals, DecisionKind, Edge, Evidence, FaceId, FacePair, Judgement, Reason,
    ReasonCode, Verdict,
};

/// Whether a judged edge belongs in the analysts' review queue: a `review` verdict that band retention
/// did not hold back and that is not a customer matching their own photo.
pub fn in_review_queue(j: &Judgement) -> bool {
    j.verdict == Verdict::Review
        && !j.has(ReasonCode::BandRetention)
        && !j.has(ReasonCode::SameSubject)
}

/// What the rules made of an edge so far.
pub(super) struct Outcome {
    /// The similarity band's verdict.
    pub(super) band: Verdict,
    /// The strongest verdict the doubting rules allow.
    pub(super) cap: Verdict,
    /// The weakest verdict graph support allows (`rejected` unless it fired).
    pub(super) floor: Verdict,
    veto: bool,
    /// The same bytes under two uploads: confirmed whatever the caps say.
    reused: bool,
    analyst: Option<Verdict>,
    penalty: f64,
    pub(super) reasons: Vec<Reason>,
}

impl Outcome {
    pub(super) fn cap(&mut self, cap: Verdict, penalty: f64, reason: Reason) {
        self.cap = self.cap.at_most(cap);
        self.penalty += penalty;
        self.reasons.push(reason);
    }
}

pub(super) fn num(v: f64) -> Evidence {
    Evidence::Number(v)
}

/// Judges edge `i` without band retention, reading the graph through `facts`.
pub(super) fn judge_edge(
    adj: &Adjudicator,
    view: &GraphView,
    facts: &Facts<'_>,
    i: u32,
) -> Judgement {
    let rules = adj.rules();
    let e = view.edge_at(i);
    let sim = e.similarity;
    let mut out = similarity_band(rules, adj.band_texts(), sim);
    same_image(rules, view, e, &mut out);
    same_subject(rules, view, e, &mut out);
    reused_photo(rules, view, e, &mut out);
    gender(rules, view, e, &mut out);
    age(rules, view, e, &mut out);
    quality(rules, view, e, &mut out);
    graph::hub(rules, view, facts, e, &mut out);
    graph::transitivity(rules, view, facts, i, &mut out);
    graph::graph_support(rules, view, facts, e, &mut out);
    analyst(rules, view, e, &mut out);
    // Graph support raises the band's verdict (rejected to review at most) before the caps lower
    // it; a reused photo is confirmed past the caps (the bytes are identical, so is the person); a
    // veto and then an analyst's decision override all of them.
    let verdict = match out.analyst {
        Some(v) => v,
        None if out.veto => Verdict::Rejected,
        None if out.reused => Verdict::Confirmed,
        None => out.band.min(out.floor).at_most(out.cap),
    };
    // Full precision: rounding made scores near 100 tie where the similarities do not.
    let score = (sim - out.penalty).clamp(0.0, 100.0);
    Judgement {
        verdict,
        score,
        rule_set: adj.version().to_owned(),
        reasons: out.reasons,
    }
}

/// The fixed parts of the similarity band's sentences, written once per rule set: the band rule runs
/// on every edge, and formatting its thresholds each time was a third of the cost of judging.
#[derive(Clone, Debug)]
pub(super) struct BandTexts {
    confirmed: String,
    review: String,
    rejected: String,
}

impl BandTexts {
    pub(super) fn new(rules: &RuleSet) -> Self {
        let b = &rules.bands;
        Self {
            confirmed: format!(" is at or above the confirm threshold {}", b.confirm_at),
            review: format!(
                " is in the review band from {} to {}",
                b.review_from, b.confirm_at
            ),
            rejected: format!(
                " is below the review band, which starts at {}",
                b.review_from
            ),
        }
    }
}

/// A similarity as sentences show it, with [`similarity_decimals`] decimals.
pub(super) fn sim(v: f64) -> String {
    let mut out = String::with_capacity(16);
    push_similarity(&mut out, v);
    out
}

/// Appends a similarity with [`similarity_decimals`] decimals through integer formatting, much
/// cheaper than `{:.*}` on a float.
fn push_similarity(out: &mut String, v: f64) {
    use std::fmt::Write;
    let decimals = similarity_decimals(v);
    let scale = 10u64.pow(decimals as u32);
    // Similarities are 0-100, so the scaled value fits with twelve decimals to spare.
    let scaled = (v.abs() * scale as f64).round() as u64;
    let sign = if v < 0.0 && scaled > 0 { "-" } else { "" };
    let _ = write!(
        out,
        "{sign}{}.{:0width$}",
        scaled / scale,
        scaled % scale,
        width = decimals
    );
}

fn similarity_band(rules: &RuleSet, texts: &BandTexts, sim: f64) -> Outcome {
    let b = &rules.bands;
    let (band, tail) = if sim >= b.confirm_at {
        (Verdict::Confirmed, &texts.confirmed)
    } else if sim >= b.review_from {
        (Verdict::Review, &texts.review)
    } else {
        (Verdict::Rejected, &texts.rejected)
    };
    let mut message = String::with_capacity(16 + tail.len());
    message.push_str("similarity ");
    push_similarity(&mut message, sim);
    message.push_str(tail);
    let reason = Reason::new(
        ReasonCode::SimilarityBand,
        message,
        vec![
            ("similarity", num(sim)),
            ("confirm_at", num(b.confirm_at)),
            ("review_from", num(b.review_from)),
        ],
    );
    Outcome {
        band,
        cap: Verdict::Confirmed,
        floor: Verdict::Rejected,
        veto: false,
        reused: false,
        analyst: None,
        penalty: 0.0,
        reasons: vec![reason],
    }
}

fn same_image(rules: &RuleSet, view: &GraphView, e: &ViewEdge, out: &mut Outcome) {
    if rules.same_image.enabled && view.image_key(e.a) == view.image_key(e.b) {
        let fa = &view.node(e.a).face;
        out.veto = true;
        out.reasons.push(Reason::new(
            ReasonCode::SameImage,
            "both faces are in the same image, so they are two different people",
            vec![("image_id", fa.image_id.as_str().into())],
        ));
    }
}

fn same_subject(rules: &RuleSet, view: &GraphView, e: &ViewEdge, out: &mut Outcome) {
    if !rules.same_subject.enabled {
        return;
    }
    let key = view.subject_key(e.a);
    if key != NO_SUBJECT && key == view.subject_key(e.b) {
        if let Some(sa) = &view.node(e.a).subject {
            out.reasons.push(Reason::new(
                ReasonCode::SameSubject,
                format!("both faces belong to subject {sa}: a self-match, not a fraud signal"),
                vec![("subject", sa.as_str().into())],
            ));
        }
    }
}

fn reused_photo(rules: &RuleSet, view: &GraphView, e: &ViewEdge, out: &mut Outcome) {
    if !rules.reused_photo.enabled || view.image_key(e.a) == view.image_key(e.b) {
        return;
    }
    let (na, nb) = (view.node(e.a), view.node(e.b));
    let (Some(ca), Some(cb)) = (&na.content_sha256, &nb.content_sha256) else {
        return;
    };
    if ca != cb {
        return;
    }
    out.reused = true;
    let upload = |n: &super::FaceNode| {
        n.face
            .external_image_id
            .as_ref()
            .map_or_else(|| n.face.image_id.to_string(), ToString::to_string)
    };
    let subject = |n: &super::FaceNode| {
        n.subject
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string)
    };
    let same_subject = na.subject.is_some() && na.subject == nb.subject;
    let message = if same_subject {
        format!(
            "the same photo was uploaded twice by subject {} ({} and {}): one person, a self-match",
            subject(na),
            upload(na),
            upload(nb)
        )
    } else {
        format!(
            "the same photo was uploaded as {} by subject {} and as {} by subject {}: one person \
             behind two accounts",
            upload(na),
            subject(na),
            upload(nb),
            subject(nb)
        )
    };
    out.reasons.push(Reason::new(
        ReasonCode::ReusedPhoto,
        message,
        vec![
            ("content_sha256", ca.as_str().into()),
            ("upload_a", upload(na).into()),
            ("upload_b", upload(nb).into()),
            ("subject_a", subject(na).into()),
            ("subject_b", subject(nb).into()),
        ],
    ));
}

fn gender(rules: &RuleSet, view: &GraphView, e: &ViewEdge, out: &mut Outcome) {
    let g = &rules.gender;
    let (Some(ga), Some(gb)) = (
        view.node(e.a).face.attributes.gender,
        view.node(e.b).face.attributes.gender,
    ) else {
        return;
    };
    let (ca, cb) = (ga.confidence.get(), gb.confidence.get());
    if g.enabled && ga.value != gb.value && ca >= g.min_confidence && cb >= g.min_confidence {
        out.cap(
            Verdict::Review,
            g.penalty,
            Reason::new(
                ReasonCode::GenderContradiction,
                format!(
                    "one face is classified {} ({ca:.1}% confidence) and the other {} ({cb:.1}%): at most review, \
                     never an automatic match or rejection on predicted gender",
                    ga.value.as_str().to_lowercase(),
                    gb.value.as_str().to_lowercase()
                ),
                vec![
                    ("gender_a", ga.value.as_str().into()),
                    ("confidence_a", num(ca)),
                    ("gender_b", gb.value.as_str().into()),
                    ("confidence_b", num(cb)),
                    ("min_confidence", num(g.min_confidence)),
                ],
            ),
        );
    }
}

fn age(rules: &RuleSet, view: &GraphView, e: &ViewEdge, out: &mut Outcome) {
    let r = &rules.age;
    let (Some(aa), Some(ab)) = (
        view.node(e.a).face.attributes.age,
        view.node(e.b).face.attributes.age,
    ) else {
        return;
    };
    let gap = aa.gap(&ab);
    if r.enabled && gap > r.tolerance_years {
        out.cap(
            Verdict::Review,
            r.penalty,
            Reason::new(
                ReasonCode::AgeContradiction,
                format!(
                    "estimated ages {}-{} and {}-{} are {gap} years apart, more than the {} years allowed",
                    aa.low(), aa.high(), ab.low(), ab.high(), r.tolerance_years
                ),
                vec![
                    ("age_low_a", aa.low().into()),
                    ("age_high_a", aa.high().into()),
                    ("age_low_b", ab.low().into()),
                    ("age_high_b", ab.high().into()),
                    ("gap_years", gap.into()),
                    ("tolerance_years", r.tolerance_years.into()),
                ],
            ),
        );
    }
}

/// Evidence keys of the quality rule for face a and face b.
const KEYS_A: [&str; 5] = [
    "brightness_a",
    "sharpness_a",
    "yaw_a",
    "pitch_a",
    "face_width_a",
];
const KEYS_B: [&str; 5] = [
    "brightness_b",
    "sharpness_b",
    "yaw_b",
    "pitch_b",
    "face_width_b",
];

fn quality(rules: &RuleSet, view: &GraphView, e: &ViewEdge, out: &mut Outcome) {
    let q = &rules.quality;
    if !q.enabled {
        return;
    }
    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    for (side, idx, keys) in [("a", e.a, KEYS_A), ("b", e.b, KEYS_B)] {
        let face = &view.node(idx).face;
        if let Some(quality) = face.attributes.quality {
            let (br, sh) = (
                f64::from(quality.brightness()),
                f64::from(quality.sharpness()),
            );
            if br < q.min_brightness {
                problems.push(format!(
                    "face {side} is dark (brightness {br:.1} < {})",
                    q.min_brightness
                ));
                evidence.push((keys[0].into(), num(br)));
            }
            if sh < q.min_sharpness {
                problems.push(format!(
                    "face {side} is blurred (sharpness {sh:.1} < {})",
                    q.min_sharpness
                ));
                evidence.push((keys[1].into(), num(sh)));
            }
        }
        if let Some(pose) = face.attributes.pose {
            let (yaw, pitch) = (f64::from(pose.yaw()), f64::from(pose.pitch()));
            if yaw.abs() > q.max_yaw || pitch.abs() > q.max_pitch {
                problems.push(format!(
                    "face {side} is turned away (yaw {yaw:.0}°, pitch {pitch:.0}°)"
                ));
                evidence.push((keys[2].into(), num(yaw)));
                evidence.push((keys[3].into(), num(pitch)));
            }
        }
        let width = f64::from(face.bbox.width);
        if width > 0.0 && width < q.min_face_width {
            problems.push(format!(
                "face {side} is small ({:.1}% of the image width)",
                width * 100.0
            ));
            evidence.push((keys[4].into(), num(width)));
        }
    }
    if !problems.is_empty() {
        out.cap(
            Verdict::Review,
            q.penalty,
            Reason {
                code: ReasonCode::LowQuality,
                message: format!("{}: at most review", problems.join("; ")),
                evidence,
            },
        );
    }
}

fn analyst(rules: &RuleSet, view: &GraphView, e: &ViewEdge, out: &mut Outcome) {
    let d = view.decisions();
    if let Some(dec) = d.direct(e.a, e.b) {
        let (code, verdict, what) = match dec.kind {
            DecisionKind::Same => (
                ReasonCode::AnalystSame,
                Verdict::Confirmed,
                "the same person",
            ),
            DecisionKind::Different => (
                ReasonCode::AnalystDifferent,
                Verdict::Rejected,
                "different people",
            ),
        };
        let note = dec
            .note
            .as_deref()
            .map(|n| format!(" (note: {n})"))
            .unwrap_or_default();
        out.analyst = Some(verdict);
        let mut evidence = vec![
            ("analyst", dec.analyst.as_str().into()),
            ("decided_at", dec.at.to_string().into()),
        ];
        if let Some(n) = &dec.note {
            evidence.push(("note", n.as_str().into()));
        }
        out.reasons.push(Reason::new(
            code,
            format!(
                "analyst {} decided on {} that these are {what}{note}",
                dec.analyst, dec.at
            ),
            evidence,
        ));
        return;
    }
    if !rules.analyst.follow_implications {
        return;
    }
    let linked = d.linked(e.a, e.b);
    let separated = d.separated_by(e.a, e.b);
    if linked {
        out.analyst = Some(Verdict::Confirmed);
        out.reasons.push(Reason::new(
            ReasonCode::AnalystSame,
            "analysts' \"same person\" decisions link these two faces through other faces",
            vec![],
        ));
    }
    if let Some(decided) = separated {
        let (xi, yi) = (decided.a(), decided.b());
        out.analyst = Some(if linked {
            Verdict::Review
        } else {
            Verdict::Rejected
        });
        let message = if linked {
            format!(
                "analysts' decisions contradict each other: a chain of \"same person\" decisions links these faces, \
                 but faces {xi} and {yi} of that chain were decided to be different people"
            )
        } else {
            format!(
                "an analyst decided that faces {xi} and {yi} are different people, and \"same person\" decisions \
                 tie each of this pair's faces to one of them, so these are different people too"
            )
        };
        out.reasons.push(Reason::new(
            ReasonCode::ImpliedDifferent,
            message,
            vec![
                ("decided_face_a", xi.as_str().into()),
                ("decided_face_b", yi.as_str().into()),
            ],
        ));
    }
}

/// One edge as band retention ranks it: its faces (as numbers), its pair, its similarity, and which
/// of its faces' searches found it.
pub(super) struct Ranked<'e> {
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) pair: &'e FacePair,
    pub(super) similarity: f64,
    pub(super) by_a: bool,
    pub(super) by_b: bool,
}

/// Per searched face and similarity band, keeps the best `keep_per_band` review hits in the queue and
/// marks the rest as held back. An edge stays in the queue when any face that searched it keeps it.
pub(super) fn apply_band_retention(rules: &RuleSet, view: &GraphView, judged: &mut [Judgement]) {
    let edges: Vec<Ranked<'_>> = view
        .edges_slice()
        .iter()
        .map(|e| Ranked {
            a: e.a,
            b: e.b,
            pair: &e.edge.pair,
            similarity: e.similarity,
            by_a: e.edge.similarity_ab.is_some(),
            by_b: e.edge.similarity_ba.is_some(),
        })
        .collect();
    retain(
        rules,
        view.face_count(),
        |f| view.neighbours(f).iter().map(|&(_, e)| e),
        &edges,
        judged,
    );
}

/// Band retention over edges that are not in a view: each face's hits are the edges of `edges`
/// that name it, so an edge's result is exact when `edges` holds every edge of both its faces.
pub(super) fn band_retention_of<'e>(rules: &RuleSet, edges: &[&'e Edge], judged: &mut [Judgement]) {
    let mut index: FxHashMap<&FaceId, u32> = FxHashMap::default();
    let mut number = |id: &'e FaceId| -> u32 {
        let next = index.len() as u32;
        *index.entry(id).or_insert(next)
    };
    let ranked: Vec<Ranked<'_>> = edges
        .iter()
        .map(|e| Ranked {
            a: number(e.pair.a()),
            b: number(e.pair.b()),
            pair: &e.pair,
            similarity: e.similarity().get(),
            by_a: e.similarity_ab.is_some(),
            by_b: e.similarity_ba.is_some(),
        })
        .collect();
    let faces = index.len();
    let mut at: Vec<Vec<u32>> = vec![Vec::new(); faces];
    for (i, r) in ranked.iter().enumerate() {
        at[r.a as usize].push(i as u32);
        at[r.b as usize].push(i as u32);
    }
    retain(
        rules,
        faces,
        |f| at[f as usize].iter().copied(),
        &ranked,
        judged,
    );
}

/// What one face's ranking made of one of its hits.
#[derive(Clone, Copy, PartialEq)]
enum Rank {
    /// The face did not search it, or it is not a review hit.
    Unranked,
    Kept,
    /// Held back, with its rank in its band.
    Held(usize),
}

/// The ranking behind band retention. `hits_at(f)` lists the edges (indices into `edges`) of face
/// `f`. The reason of an edge held back names the first of its pair's faces that holds it back, so
/// that it does not depend on how faces were numbered.
fn retain<I: Iterator<Item = u32>>(
    rules: &RuleSet,
    face_count: usize,
    hits_at: impl Fn(u32) -> I,
    edges: &[Ranked<'_>],
    judged: &mut [Judgement],
) {
    let r = &rules.band_retention;
    if !r.enabled {
        return;
    }
    let last_band = ((100.0 - 1e-9) / r.band_width).floor() as i64;
    let band_of = |sim: f64| ((sim / r.band_width).floor() as i64).min(last_band);
    // For every edge, what its face a and its face b made of it.
    let mut ranks: Vec<[Rank; 2]> = vec![[Rank::Unranked; 2]; edges.len()];
    let mut hits: Vec<(u32, f64, f64)> = Vec::new();
    for f in 0..face_count as u32 {
        hits.clear();
        for ei in hits_at(f) {
            let e = &edges[ei as usize];
            let searched_by_f = if f == e.a { e.by_a } else { e.by_b };
            let j = &judged[ei as usize];
            if searched_by_f && j.verdict == Verdict::Review && !j.has(ReasonCode::SameSubject) {
                hits.push((ei, j.score, e.similarity));
            }
        }
        let side = |ei: u32| usize::from(edges[ei as usize].a != f);
        if hits.len() <= r.keep_per_band {
            for &(ei, _, _) in &hits {
                ranks[ei as usize][side(ei)] = Rank::Kept;
            }
            continue;
        }
        hits.sort_by(|x, y| {
            band_of(y.2)
                .cmp(&band_of(x.2))
                .then(y.1.total_cmp(&x.1))
                .then(y.2.total_cmp(&x.2))
                .then_with(|| edges[x.0 as usize].pair.cmp(edges[y.0 as usize].pair))
        });
        let mut rank = 0;
        let mut band = i64::MIN;
        for &(ei, _, sim) in &hits {
            let b = band_of(sim);
            if b != band {
                band = b;
                rank = 0;
            }
            rank += 1;
            ranks[ei as usize][side(ei)] = if rank <= r.keep_per_band {
                Rank::Kept
            } else {
                Rank::Held(rank)
            };
        }
    }
    for (ei, [at_a, at_b]) in ranks.into_iter().enumerate() {
        if at_a == Rank::Kept || at_b == Rank::Kept {
            continue;
        }
        let e = &edges[ei];
        let (face, rank) = match (at_a, at_b) {
            (Rank::Held(rank), _) => (e.pair.a(), rank),
            (_, Rank::Held(rank)) => (e.pair.b(), rank),
            _ => continue,
        };
        let low = band_of(e.similarity) as f64 * r.band_width;
        judged[ei].reasons.push(Reason::new(
            ReasonCode::BandRetention,
            format!(
                "held back from the review queue: it ranks {rank} among face {face}'s review hits in the {low:.0}-{:.0}% \
                 band, where only the best {} are queued",
                low + r.band_width,
                r.keep_per_band
            ),
            vec![
                ("searched_face", face.as_str().into()),
                ("band_low", num(low)),
                ("band_high", num(low + r.band_width)),
                ("rank", rank.into()),
                ("keep_per_band", r.keep_per_band.into()),
            ],
        ));
    }
}
