//! Clustering: seconds from an empty `ClusterGraph` through adding every confirmed edge and analyst
//! link to the clusters, on a generated graph of people with a handful of photos each.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use super::gen::{self, Rng};
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

    let started = Instant::now();
    // Sized as the service sizes it: room for every face an edge names, and every link.
    let mut g = ClusterGraph::with_capacity(
        confirmed.len() * 2,
        confirmed.len() + must.len() + cannot.len(),
    );
    for (p, s) in &confirmed {
        g.add_confirmed(p, *s);
    }
    for p in &must {
        g.add_must_link(p);
    }
    for p in &cannot {
        g.add_cannot_link(p);
    }
    let built = Instant::now();
    let clusters = g.clusters();
    let done = Instant::now();
    let build_s = (built - started).as_secs_f64();
    let components_s = (done - built).as_secs_f64();
    let total_s = build_s + components_s;

    let largest = clusters.first().map_or(0, |c| c.faces.len());
    let clustered: usize = clusters.iter().map(|c| c.faces.len()).sum();
    let cut: usize = clusters.iter().map(|c| c.cut.len()).sum();
    let conflicts: usize = clusters.iter().map(|c| c.conflicts.len()).sum();
    let count = clusters.len();
    // Freeing the clusters and the graph is left out of the timing, as the caller owns them.
    drop(clusters);
    drop(g);

    let graph = vec![
        ("faces", json!(faces)),
        ("confirmed_edges", json!(confirmed.len())),
        ("edges_between_people", json!(plan.between_groups)),
        ("must_links", json!(must.len())),
        ("cannot_links", json!(cannot.len())),
        ("people", json!(plan.groups)),
    ];
    let mut total_context = graph.clone();
    total_context.extend([
        ("build_seconds", json!(build_s)),
        ("components_seconds", json!(components_s)),
        ("clusters", json!(count)),
        ("largest_cluster", json!(largest)),
        ("faces_in_clusters", json!(clustered)),
        ("edges_cut", json!(cut)),
        ("conflicts", json!(conflicts)),
    ]);
    let label = format!(
        "clustering {} faces / {} confirmed edges",
        short(faces as f64),
        short(confirmed.len() as f64)
    );
    let figures = vec![
        Figure {
            key: "cluster.total_seconds",
            label,
            value: total_s,
            unit: Unit::Seconds,
            goal: Some(Goal::Below(GOAL_SECONDS)),
            context: total_context,
        },
        Figure {
            key: "cluster.build_seconds",
            label: "  build (add_confirmed, links)".to_owned(),
            value: build_s,
            unit: Unit::Seconds,
            goal: None,
            context: vec![],
        },
        Figure {
            key: "cluster.components_seconds",
            label: "  components (clusters())".to_owned(),
            value: components_s,
            unit: Unit::Seconds,
            goal: None,
            context: vec![],
        },
        Figure {
            key: "cluster.clusters",
            label: "  clusters of 2+ faces".to_owned(),
            value: count as f64,
            unit: Unit::Count,
            goal: None,
            context: vec![
                ("largest_cluster", json!(largest)),
                ("faces_in_clusters", json!(clustered)),
            ],
        },
        Figure {
            key: "cluster.largest",
            label: "  largest cluster".to_owned(),
            value: largest as f64,
            unit: Unit::Faces,
            goal: None,
            context: vec![],
        },
    ];
    let notes = vec![
        format!(
            "clustering: {} faces of {} people (1-16 photos each, P(k) ~ 1/k); {} confirmed edges, {} of them \
             between people; {} must-links, {} cannot-links inside small clusters",
            thousands(faces as f64),
            thousands(plan.groups as f64),
            thousands(confirmed.len() as f64),
            thousands(plan.between_groups as f64),
            thousands(must.len() as f64),
            thousands(cannot.len() as f64)
        ),
        format!(
            "  {} clusters holding {} faces, the largest {} faces; {} edges cut for cannot-links, {} conflicts",
            thousands(count as f64),
            thousands(clustered as f64),
            thousands(largest as f64),
            thousands(cut as f64),
            thousands(conflicts as f64)
        ),
    ];
    Ok(Section { figures, notes })
}

/// 1000000 as `1M`, 2500 as `2.5k`.
fn short(n: f64) -> String {
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
