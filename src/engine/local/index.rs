//! An exact vector index for L2-normalised f32 embeddings: top-k by inner product (the cosine) above a
//! minimum score, scanning every row on all the threads it is given. Rows are addressed by dense `u32`
//! slots; what a slot stands for (a face id) is kept by the caller. Deleting a row leaves a tombstone
//! until the index is compacted.
//!
//! Memory is the vectors themselves plus one bit per row: `dim * 4` bytes (512 for SFace's 128) and
//! no allocation per row. Rows live in chunks of `chunk_rows` rows, each one contiguous block that
//! is mapped once with its full capacity (pages become resident as rows are written), so growth
//! never copies the vectors already stored and never leaves more than one partly used chunk of
//! slack. On Linux the chunks ask for transparent huge pages: a search reads every row, and with
//! 4 KiB pages a scan of 1M faces (512 MiB) spends a good part of its time on TLB misses.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Rows per chunk by default: 32768 rows of 128 f32 is 16 MiB.
pub const DEFAULT_CHUNK_ROWS: usize = 1 << 15;

/// Below this many rows per thread a search runs on fewer threads: a thread costs tens of
/// microseconds to start, about what scanning this many rows costs.
const MIN_ROWS_PER_THREAD: usize = 16_384;

/// Why a vector could not be added to the index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    /// The vector's length is not the index's dimension.
    #[error("the embedding has {got} dimensions; the index holds {want}")]
    Dimension {
        /// The vector's length.
        got: usize,
        /// The index's dimension.
        want: usize,
    },
    /// The vector has a NaN or infinite component, or is all zeros.
    #[error("the embedding cannot be normalised (zero, NaN or infinite)")]
    NotNormalisable,
    /// Every `u32` slot is taken.
    #[error("the index is full")]
    Full,
    /// The memory for a new chunk of rows could not be mapped.
    #[error("cannot map {bytes} bytes of memory for the index ({kind})")]
    Alloc {
        /// The size of the chunk.
        bytes: usize,
        /// Why.
        kind: std::io::ErrorKind,
    },
}

/// One search hit: a slot and its inner product with the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The row.
    pub slot: u32,
    /// The inner product with the query: the cosine, since both are normalised.
    pub score: f32,
}

/// An exact inner-product index over L2-normalised vectors.
#[derive(Debug)]
pub struct VectorIndex {
    dim: usize,
    chunk_rows: usize,
    /// Each chunk holds `chunk_rows * dim` floats and is filled in order.
    chunks: Vec<Chunk>,
    rows: usize,
    /// One bit per row, set when the row is deleted.
    dead: Vec<u64>,
    dead_count: usize,
    threads: usize,
}

impl VectorIndex {
    /// An empty index of vectors of `dim` components, searching on `threads` threads (at least one).
    pub fn new(dim: usize, threads: usize) -> Self {
        Self::with_chunk_rows(dim, threads, DEFAULT_CHUNK_ROWS)
    }

    /// An empty index with `chunk_rows` rows per chunk (tests use small chunks to cross boundaries).
    pub fn with_chunk_rows(dim: usize, threads: usize, chunk_rows: usize) -> Self {
        Self {
            dim: dim.max(1),
            chunk_rows: chunk_rows.max(1),
            chunks: Vec::new(),
            rows: 0,
            dead: Vec::new(),
            dead_count: 0,
            threads: threads.max(1),
        }
    }

    /// The dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How many slots have been used, deleted ones included.
    pub fn slots(&self) -> usize {
        self.rows
    }

    /// How many rows are live.
    pub fn live(&self) -> usize {
        self.rows - self.dead_count
    }

    /// How many rows are deleted and still take space.
    pub fn dead(&self) -> usize {
        self.dead_count
    }

    /// Sets how many threads a search uses (at least one).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Bytes held by vectors and tombstones, allocated capacity included.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.map.len()).sum::<usize>() + self.dead.capacity() * 8
    }

    /// Adds a vector, normalising it to unit length, and returns its slot.
    pub fn push(&mut self, vector: &[f32]) -> Result<u32, IndexError> {
        if vector.len() != self.dim {
            return Err(IndexError::Dimension {
                got: vector.len(),
                want: self.dim,
            });
        }
        let norm = dot(vector, vector).sqrt();
        if !norm.is_finite() || norm <= f32::MIN_POSITIVE {
            return Err(IndexError::NotNormalisable);
        }
        let slot = u32::try_from(self.rows)
            .ok()
            .filter(|s| *s < u32::MAX)
            .ok_or(IndexError::Full)?;
        if self.rows.is_multiple_of(self.chunk_rows) {
            self.chunks.push(Chunk::new(self.chunk_rows * self.dim)?);
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(vector, 1.0 / norm);
        }
        if self.rows.is_multiple_of(64) {
            self.dead.push(0);
        }
        self.rows += 1;
        Ok(slot)
    }

    /// The stored (normalised) vector of a live slot.
    pub fn get(&self, slot: u32) -> Option<&[f32]> {
        let s = slot as usize;
        if s >= self.rows || self.is_dead(s) {
            return None;
        }
        let chunk = self.chunks.get(s / self.chunk_rows)?;
        let start = (s % self.chunk_rows) * self.dim;
        chunk.floats().get(start..start + self.dim)
    }

    /// Deletes a slot; returns whether it was live.
    pub fn remove(&mut self, slot: u32) -> bool {
        let s = slot as usize;
        if s >= self.rows || self.is_dead(s) {
            return false;
        }
        if let Some(word) = self.dead.get_mut(s / 64) {
            *word |= 1 << (s % 64);
            self.dead_count += 1;
            true
        } else {
            false
        }
    }

    /// Drops the deleted rows, moving the live ones down in order. Returns, for every old slot, its
    /// new slot (`None` for the deleted ones).
    pub fn compact(&mut self) -> Vec<Option<u32>> {
        let mut fresh = Self::with_chunk_rows(self.dim, self.threads, self.chunk_rows);
        let mut remap = Vec::with_capacity(self.rows);
        for s in 0..self.rows {
            let row = u32::try_from(s).ok().and_then(|slot| self.get(slot));
            match row {
                // Rows are already unit vectors; copying them keeps them bit for bit.
                Some(row) => remap.push(fresh.push_raw(row)),
                None => remap.push(None),
            }
        }
        *self = fresh;
        remap
    }

    /// The `k` live rows with the largest inner product with `query` that is at least `min_score`,
    /// best first (ties by slot), leaving out `exclude`. The query should be unit length.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
        exclude: Option<u32>,
    ) -> Vec<Hit> {
        if k == 0 || query.len() != self.dim || self.rows == 0 {
            return Vec::new();
        }
        let threads = self
            .threads
            .min(self.rows.div_ceil(MIN_ROWS_PER_THREAD))
            .max(1);
        let mut hits = if threads == 1 {
            self.scan(query, 0, self.rows, k, min_score, exclude)
                .into_vec()
        } else {
            let per = self.rows.div_ceil(threads);
            let parts: Vec<TopK> = std::thread::scope(|scope| {
                let handles: Vec<_> = (1..threads)
                    .map(|t| {
                        let (start, end) = (t * per, ((t + 1) * per).min(self.rows));
                        scope.spawn(move || self.scan(query, start, end, k, min_score, exclude))
                    })
                    .collect();
                let mut parts =
                    vec![self.scan(query, 0, per.min(self.rows), k, min_score, exclude)];
                for h in handles {
                    match h.join() {
                        Ok(part) => parts.push(part),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                parts
            });
            let mut all = TopK::new(k, min_score);
            for part in parts {
                for c in part.heap {
                    all.offer(c.0.score, c.0.slot);
                }
            }
            all.into_vec()
        };
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.slot.cmp(&b.slot)));
        hits
    }

    fn push_raw(&mut self, row: &[f32]) -> Option<u32> {
        let slot = u32::try_from(self.rows).ok()?;
        if self.rows.is_multiple_of(self.chunk_rows) {
            self.chunks
                .push(Chunk::new(self.chunk_rows * self.dim).ok()?);
        }
        self.chunks.last_mut()?.push(row, 1.0);
        if self.rows.is_multiple_of(64) {
            self.dead.push(0);
        }
        self.rows += 1;
        Some(slot)
    }

    fn is_dead(&self, s: usize) -> bool {
        self.dead
            .get(s / 64)
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
    }

    /// Scans rows `start..end` into a top-k.
    fn scan(
        &self,
        query: &[f32],
        start: usize,
        end: usize,
        k: usize,
        min_score: f32,
        exclude: Option<u32>,
    ) -> TopK {
        let mut top = TopK::new(k, min_score);
        let mut row = start;
        while row < end {
            let c = row / self.chunk_rows;
            let lo = row % self.chunk_rows;
            let hi = (lo + (end - row)).min(self.chunk_rows);
            let Some(block) = self
                .chunks
                .get(c)
                .and_then(|chunk| chunk.floats().get(lo * self.dim..hi * self.dim))
            else {
                break;
            };
            let base = c * self.chunk_rows;
            for (i, v) in block.chunks_exact(self.dim).enumerate() {
                let score = dot(query, v);
                // Almost every row fails this test; the rest pay for the checks below.
                if score >= top.cutoff {
                    let s = base + lo + i;
                    let slot = s as u32;
                    if !self.is_dead(s) && exclude != Some(slot) {
                        top.offer(score, slot);
                    }
                }
            }
            row = base + hi;
        }
        top
    }
}

/// A block of floats in an anonymous memory map: page-aligned, resident only where written, and on
/// Linux eligible for transparent huge pages.
#[derive(Debug)]
struct Chunk {
    map: memmap2::MmapMut,
    /// Floats written so far.
    len: usize,
}

impl Chunk {
    fn new(floats: usize) -> Result<Self, IndexError> {
        let bytes = floats.max(1) * 4;
        let map = memmap2::MmapMut::map_anon(bytes).map_err(|e| IndexError::Alloc {
            bytes,
            kind: e.kind(),
        })?;
        #[cfg(target_os = "linux")]
        if let Err(e) = map.advise(memmap2::Advice::HugePage) {
            // Without huge pages searches are slower, not wrong.
            tracing::debug!(error = %e, "no transparent huge pages for the vector index");
        }
        Ok(Self { map, len: 0 })
    }

    fn floats(&self) -> &[f32] {
        // The map is page-aligned and `len` floats long at most: the cast cannot fail.
        bytemuck::cast_slice(&self.map[..self.len * 4])
    }

    /// Appends `v` times `scale`; the caller has checked that it fits.
    fn push(&mut self, v: &[f32], scale: f32) {
        let end = self.len + v.len();
        let dst: &mut [f32] = bytemuck::cast_slice_mut(&mut self.map[self.len * 4..end * 4]);
        for (d, x) in dst.iter_mut().zip(v) {
            *d = x * scale;
        }
        self.len = end;
    }
}

/// The inner product of two vectors of equal length. Sixteen independent accumulators let LLVM
/// vectorise the loop (float addition is not associative, so it will not reorder one accumulator).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A candidate ordered so that the heap's top is the worst: lowest score, then highest slot.
#[derive(Clone, Copy, Debug)]
struct Worst(Hit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.slot.cmp(&other.0.slot))
    }
}

/// The best `k` candidates seen so far, and the score a new one must reach.
#[derive(Debug)]
struct TopK {
    k: usize,
    min_score: f32,
    cutoff: f32,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    fn new(k: usize, min_score: f32) -> Self {
        Self {
            k,
            min_score,
            cutoff: min_score,
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
        }
    }

    fn offer(&mut self, score: f32, slot: u32) {
        if score < self.cutoff || score.is_nan() {
            return;
        }
        self.heap.push(Worst(Hit { slot, score }));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
        if self.heap.len() == self.k {
            if let Some(worst) = self.heap.peek() {
                self.cutoff = worst.0.score.max(self.min_score);
            }
        }
    }

    fn into_vec(self) -> Vec<Hit> {
        self.heap.into_iter().map(|w| w.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (SplitMix64) for test vectors.
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| next()).collect();
                let norm = dot(&v, &v).sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn brute_force(base: &[Vec<f32>], q: &[f32], k: usize, min: f32, dead: &[u32]) -> Vec<u32> {
        let mut scored: Vec<(f32, u32)> = base
            .iter()
            .enumerate()
            .map(|(i, v)| (dot(q, v), i as u32))
            .filter(|(s, i)| *s >= min && !dead.contains(i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, i)| i).collect()
    }

    #[test]
    fn search_matches_brute_force_across_chunks_and_threads() {
        let base = vectors(1000, 24, 1);
        let queries = vectors(20, 24, 2);
        for threads in [1, 2, 3] {
            let mut index = VectorIndex::with_chunk_rows(24, threads, 97);
            for v in &base {
                index.push(v).unwrap();
            }
            for q in &queries {
                for (k, min) in [(1, -1.0), (10, -1.0), (10, 0.3), (2000, 0.0)] {
                    let got: Vec<u32> = index
                        .search(q, k, min, None)
                        .iter()
                        .map(|h| h.slot)
                        .collect();
                    assert_eq!(got, brute_force(&base, q, k, min, &[]), "k={k} min={min}");
                }
            }
        }
    }

    #[test]
    fn multi_threaded_search_splits_rows_exactly() {
        // Enough rows for three threads to each take a share that ends inside a chunk.
        let base = vectors(3 * MIN_ROWS_PER_THREAD + 5, 8, 3);
        let mut index = VectorIndex::with_chunk_rows(8, 3, 1000);
        for v in &base {
            index.push(v).unwrap();
        }
        let q = &vectors(1, 8, 4)[0];
        let got: Vec<u32> = index
            .search(q, 25, 0.5, None)
            .iter()
            .map(|h| h.slot)
            .collect();
        assert_eq!(got, brute_force(&base, q, 25, 0.5, &[]));
        assert_eq!(got.len(), 25);
    }

    #[test]
    fn scores_are_cosines_and_vectors_are_normalised() {
        let mut index = VectorIndex::new(3, 1);
        index.push(&[3.0, 0.0, 4.0]).unwrap();
        index.push(&[0.0, 2.0, 0.0]).unwrap();
        let hits = index.search(&[0.6, 0.0, 0.8], 5, -1.0, None);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].slot, 0);
        assert!((hits[0].score - 1.0).abs() < 1e-6);
        assert!(hits[1].score.abs() < 1e-6);
        assert!(index.search(&[0.6, 0.0, 0.8], 5, 0.5, None).len() == 1);
    }

    #[test]
    fn bad_vectors_are_refused() {
        let mut index = VectorIndex::new(3, 1);
        assert_eq!(
            index.push(&[1.0, 0.0]),
            Err(IndexError::Dimension { got: 2, want: 3 })
        );
        assert_eq!(index.push(&[0.0; 3]), Err(IndexError::NotNormalisable));
        assert_eq!(
            index.push(&[f32::NAN, 1.0, 0.0]),
            Err(IndexError::NotNormalisable)
        );
        assert_eq!(index.slots(), 0);
    }

    #[test]
    fn deleted_and_excluded_rows_are_never_returned() {
        let base = vectors(300, 16, 5);
        let mut index = VectorIndex::with_chunk_rows(16, 2, 64);
        for v in &base {
            index.push(v).unwrap();
        }
        let dead: Vec<u32> = (0..300).step_by(3).collect();
        for s in &dead {
            assert!(index.remove(*s));
        }
        assert!(!index.remove(0), "already deleted");
        assert!(!index.remove(1000), "no such slot");
        assert_eq!(index.live(), 200);
        let q = &base[1];
        let got: Vec<u32> = index
            .search(q, 300, -1.0, Some(1))
            .iter()
            .map(|h| h.slot)
            .collect();
        let mut expected_dead = dead.clone();
        expected_dead.push(1);
        assert_eq!(got, brute_force(&base, q, 300, -1.0, &expected_dead));
        assert_eq!(got.len(), 199);
    }

    #[test]
    fn compaction_keeps_live_rows_in_order() {
        let base = vectors(200, 8, 6);
        let mut index = VectorIndex::with_chunk_rows(8, 1, 16);
        for v in &base {
            index.push(v).unwrap();
        }
        for s in (0..200).filter(|s| s % 4 == 1) {
            index.remove(s);
        }
        let remap = index.compact();
        assert_eq!(index.slots(), 150);
        assert_eq!(index.dead(), 0);
        assert_eq!(remap[1], None);
        assert_eq!(remap[2], Some(1));
        for (old, new) in remap.iter().enumerate() {
            if let Some(new) = new {
                assert_eq!(
                    index.get(*new),
                    Some(base_normalised(&base[old]).as_slice())
                );
            }
        }
    }

    fn base_normalised(v: &[f32]) -> Vec<f32> {
        let scale = 1.0 / dot(v, v).sqrt();
        v.iter().map(|x| x * scale).collect()
    }
}
