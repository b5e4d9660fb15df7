//! Clustering: seconds from an empty `ClusterGraph` through adding every confirmed edge and analyst
//! link to the clusters, on a generated graph of people with a handful of photos each.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use super::gen::{self, ClusterPlan, Rng};
use super::{thousands, Figure, Goal, Section, Unit};
use crate::cluster::ClusterGraph;
use crate::model::FacePair;

/// The goal of the issue: clustering 1M faces and 2M confirmed edges in under this many seconds.
const GOAL_SECONDS: f64 = 2.0;

/// Generates the graph (untimed), then times building the `ClusterGraph` and computing its clusters.
pub(super) fn run(seed: u64, faces: usize, edges: usize) -> Result<Section> {
    let mut rng = Rng::new(seed, 3);
    let plan = gen::cluster_plan(&mut rng, faces, edges)
        .context("generating the confirmed-match graph")?;
    let links = Links::of(&plan)?;
    let timed = time_clustering(&links);
    Ok(Section {
        figures: figures(faces, &plan, &links, &timed),
        notes: notes(faces, &plan, &links, &timed),
    })
}

/// The generated graph's confirmed edges and analyst links as face pairs.
struct Links {
    confirmed: Vec<(FacePair, f64)>,
    must: Vec<FacePair>,
    cannot: Vec<FacePair>,
}

impl Links {
    fn of(plan: &ClusterPlan) -> Result<Self> {
        let pair = |(x, y): (u32, u32)| {
            FacePair::new(
                plan.faces[x as usize].clone(),
                plan.faces[y as usize].clone(),
            )
            .context("the generator drew a face paired with itself")
        };
        let confirmed: Vec<(FacePair, f64)> = plan
            .confirmed
            .iter()
            .map(|&(x, y, s)| Ok((pair((x, y))?, s)))
            .collect::<Result<_>>()?;
        let must: Vec<FacePair> = plan.must.iter().map(|&p| pair(p)).collect::<Result<_>>()?;
        let cannot: Vec<FacePair> = plan
            .cannot
            .iter()
            .map(|&p| pair(p))
            .collect::<Result<_>>()?;
        Ok(Self {
            confirmed,
            must,
            cannot,
        })
    }
}

/// The timings of one clustering and what it found.
struct Timed {
    build_s: f64,
    components_s: f64,
    count: usize,
    largest: usize,
    clustered: usize,
    cut: usize,
    conflicts: usize,
}

/// Times building the graph from every link and computing its clusters.
fn time_clustering(links: &Links) -> Timed {
    let Links {
        confirmed,
        must,
        cannot,
    } = links;
    let started = Instant::now();
    // Sized as the service sizes it: room for every face an edge names, and every link.
    let mut g = ClusterGraph::with_capacity(
        confirmed.len() * 2,
        confirmed.len() + must.len() + cannot.len(),
    );
    for (p, s) in confirmed {
        g.add_confirmed(p, *s);
    }
    for p in must {
        g.add_must_link(p);
    }
    for p in cannot {
        g.add_cannot_link(p);
    }
    let built = Instant::now();
    let clusters = g.clusters();
    let done = Instant::now();
    let timed = Timed {
        build_s: (built - started).as_secs_f64(),
        components_s: (done - built).as_secs_f64(),
        count: clusters.len(),
        largest: clusters.first().map_or(0, |c| c.faces.len()),
        clustered: clusters.iter().map(|c| c.faces.len()).sum(),
        cut: clusters.iter().map(|c| c.cut.len()).sum(),
        conflicts: clusters.iter().map(|c| c.conflicts.len()).sum(),
    };
    // Freeing the clusters and the graph is left out of the timing, as the caller owns them.
    drop(clusters);
    drop(g);
    timed
}

/// The total, its two parts, and the clusters found.
fn figures(faces: usize, plan: &ClusterPlan, links: &Links, t: &Timed) -> Vec<Figure> {
    let graph = vec![
        ("faces", json!(faces)),
        ("confirmed_edges", json!(links.confirmed.len())),
        ("edges_between_people", json!(plan.between_groups)),
        ("must_links", json!(links.must.len())),
        ("cannot_links", json!(links.cannot.len())),
        ("people", json!(plan.groups)),
    ];
    let mut total_context = graph.clone();
    total_context.extend([
        ("build_seconds", json!(t.build_s)),
        ("components_seconds", json!(t.components_s)),
        ("clusters", json!(t.count)),
        ("largest_cluster", json!(t.largest)),
        ("faces_in_clusters", json!(t.clustered)),
        ("edges_cut", json!(t.cut)),
        ("conflicts", json!(t.conflicts)),
    ]);
    let label = format!(
        "clustering {} faces / {} confirmed edges",
        short(faces as f64),
        short(links.confirmed.len() as f64)
    );
    vec![
        Figure {
            key: "cluster.total_seconds",
            label,
            value: t.build_s + t.components_s,
            unit: Unit::Seconds,
            goal: Some(Goal::Below(GOAL_SECONDS)),
            context: total_context,
        },
        Figure {
            key: "cluster.build_seconds",
            label: "  build (add_confirmed, links)".to_owned(),
            value: t.build_s,
            unit: Unit::Seconds,
            goal: None,
            context: vec![],
        },
        Figure {
            key: "cluster.components_seconds",
            label: "  components (clusters())".to_owned(),
            value: t.components_s,
            unit: Unit::Seconds,
            goal: None,
            context: vec![],
        },
        Figure {
            key: "cluster.clusters",
            label: "  clusters of 2+ faces".to_owned(),
            value: t.count as f64,
            unit: Unit::Count,
            goal: None,
            context: vec![
                ("largest_cluster", json!(t.largest)),
                ("faces_in_clusters", json!(t.clustered)),
            ],
        },
        Figure {
            key: "cluster.largest",
            label: "  largest cluster".to_owned(),
            value: t.largest as f64,
            unit: Unit::Faces,
            goal: None,
            context: vec![],
        },
    ]
}

/// The sentences that describe the generated graph and the clusters.
fn notes(faces: usize, plan: &ClusterPlan, links: &Links, t: &Timed) -> Vec<String> {
    vec![
        format!(
            "clustering: {} faces of {} people (1-16 photos each, P(k) ~ 1/k); {} confirmed edges, {} of them \
             between people; {} must-links, {} cannot-links inside small clusters",
            thousands(faces as f64),
            thousands(plan.groups as f64),
            thousands(links.confirmed.len() as f64),
            thousands(plan.between_groups as f64),
            thousands(links.must.len() as f64),
            thousands(links.cannot.len() as f64)
        ),
        format!(
            "  {} clusters holding {} faces, the largest {} faces; {} edges cut for cannot-links, {} conflicts",
            thousands(t.count as f64),
            thousands(t.clustered as f64),
            thousands(t.largest as f64),
            thousands(t.cut as f64),
            thousands(t.conflicts as f64)
        ),
    ]
}

/// 1000000 as `1M`, 2500 as `2.5k`.
pub(super) fn short(n: f64) -> String {
    let (v, suffix) = if n >= 1e6 {
        (n / 1e6, "M")
    } else if n >= 1e3 {
        (n / 1e3, "k")
    } else {
        (n, "")
    };
    let s = format!("{v:.1}");
    format!("{}{suffix}", s.strip_suffix(".0").unwrap_or(&s))
}
