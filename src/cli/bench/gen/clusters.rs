//! The confirmed-match graph of the clustering benchmark: faces grouped into people, each group
//! held together by confirmed edges, a few edges between groups, and analysts' links.

use std::collections::HashSet;

use super::{round, Rng};
use crate::model::{FaceId, ParseError};

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

/// The people of a plan: each group's first face and size, and the group of each face.
struct Groups {
    groups: Vec<(u32, u32)>,
    group_of: Vec<u32>,
}

/// A plan of `faces` faces and `edges` confirmed edges.
pub(crate) fn cluster_plan(
    rng: &mut Rng,
    faces: usize,
    edges: usize,
) -> Result<ClusterPlan, ParseError> {
    let ids = (0..faces)
        .map(|_| FaceId::parse(&rng.uuid()))
        .collect::<Result<Vec<_>, _>>()?;
    let groups = draw_groups(rng, faces);
    // One edge in two hundred joins two groups; the rest hold groups together.
    let mut pairs = pairs_inside(rng, &groups, edges - edges / 200);
    let between_groups = add_pairs_between(rng, &groups, &mut pairs, edges);
    let mut confirmed: Vec<(u32, u32, f64)> = pairs
        .into_iter()
        .map(|(x, y)| (x, y, round(rng.range(98.5, 100.0), 6)))
        .collect();
    // The store returns edges by pair, which is random with respect to the groups.
    rng.shuffle(&mut confirmed);
    let must = must_links(rng, &groups, edges);
    let cannot = cannot_links(rng, &groups, edges);
    Ok(ClusterPlan {
        faces: ids,
        confirmed,
        must,
        cannot,
        groups: groups.groups.len(),
        between_groups,
    })
}

/// Groups of 1 to 16 consecutive faces (P(k) ~ 1/k) until every face has one.
fn draw_groups(rng: &mut Rng, faces: usize) -> Groups {
    let mut groups: Vec<(u32, u32)> = Vec::new(); // (first face, size)
    let mut group_of: Vec<u32> = Vec::with_capacity(faces);
    let mut start = 0usize;
    while start < faces {
        let k = rng.group_size(16).min(faces - start);
        groups.push((start as u32, k as u32));
        group_of.extend(std::iter::repeat_n(groups.len() as u32 - 1, k));
        start += k;
    }
    Groups { groups, group_of }
}

/// Up to `wanted` pairs inside groups: a random spanning tree of each group first (shuffled and
/// cut to `wanted`), then other pairs of a group, drawn at random.
fn pairs_inside(rng: &mut Rng, groups: &Groups, wanted: usize) -> Vec<(u32, u32)> {
    let mut tree: Vec<(u32, u32)> = Vec::new();
    let mut extra: Vec<(u32, u32)> = Vec::new();
    for &(first, k) in &groups.groups {
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
    tree.truncate(wanted);
    let more = (wanted - tree.len()).min(extra.len());
    // A partial Fisher-Yates shuffle picks `more` of the candidates.
    for i in 0..more {
        let j = i + rng.below(extra.len() - i);
        extra.swap(i, j);
    }
    extra.truncate(more);
    let mut pairs = tree;
    pairs.extend(extra);
    pairs
}

/// Adds distinct pairs of faces of two different groups until there are `edges` pairs (or the
/// attempts run out); returns how many it added.
fn add_pairs_between(
    rng: &mut Rng,
    groups: &Groups,
    pairs: &mut Vec<(u32, u32)>,
    edges: usize,
) -> usize {
    let faces = groups.group_of.len();
    let between = edges - pairs.len();
    let mut seen: HashSet<(u32, u32)> = HashSet::with_capacity(between);
    let mut attempts = 0usize;
    while pairs.len() < edges && attempts < 50 * between + 1_000 {
        attempts += 1;
        let (x, y) = (rng.below(faces) as u32, rng.below(faces) as u32);
        if groups.group_of[x as usize] != groups.group_of[y as usize]
            && seen.insert((x.min(y), x.max(y)))
        {
            pairs.push((x, y));
        }
    }
    seen.len()
}

/// Two different faces of a group of at least two.
fn pair_in_group(rng: &mut Rng, (first, k): (u32, u32)) -> (u32, u32) {
    let i = rng.below(k as usize) as u32;
    let j = (i + 1 + rng.below(k as usize - 1) as u32) % k;
    (first + i, first + j)
}

/// Analysts' must-links, one per 2,000 edges: half inside a group, half joining two groups.
fn must_links(rng: &mut Rng, groups: &Groups, edges: usize) -> Vec<(u32, u32)> {
    let faces = groups.group_of.len();
    let mut must = Vec::new();
    let wanted_must = (edges / 2_000).max(1);
    for n in 0..wanted_must * 20 {
        if must.len() >= wanted_must {
            break;
        }
        if n % 2 == 0 {
            let g = groups.groups[rng.below(groups.groups.len())];
            if g.1 >= 2 {
                must.push(pair_in_group(rng, g));
            }
        } else {
            let (x, y) = (rng.below(faces) as u32, rng.below(faces) as u32);
            if groups.group_of[x as usize] != groups.group_of[y as usize] {
                must.push((x, y));
            }
        }
    }
    must
}

/// Analysts' cannot-links, one per 6,667 edges, inside small groups, where analysts can see every
/// photo.
fn cannot_links(rng: &mut Rng, groups: &Groups, edges: usize) -> Vec<(u32, u32)> {
    let mut cannot = Vec::new();
    let wanted_cannot = (edges / 6_667).max(1);
    for _ in 0..wanted_cannot * 50 {
        if cannot.len() >= wanted_cannot {
            break;
        }
        let g = groups.groups[rng.below(groups.groups.len())];
        if (3..=8).contains(&g.1) {
            cannot.push(pair_in_group(rng, g));
        }
    }
    cannot
}
