//! The benchmarks' data generator: a small seeded PRNG and populations of people, photos, faces and
//! search hits shaped like a real match graph, so that every rule has something to fire on.
//! `population.rs` draws the people, photos and faces, `hits.rs` the search hits and what is made
//! of them, `clusters.rs` the confirmed-match graph of the clustering benchmark.

mod clusters;
mod hits;
mod population;

pub(crate) use clusters::{cluster_plan, ClusterPlan};
pub(crate) use hits::{decisions, edges, hits, observations, searches, Hit};
pub(crate) use population::{population, Population};

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

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FaceId;

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
