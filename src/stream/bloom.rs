//! The persistent Bloom filter of message keys already processed: it answers "certainly new"
//! without a store lookup, and "maybe seen" sends the caller to the exact check in the store. It
//! lives in one file of the data directory (a header, then the bits), held in memory and written
//! back a page at a time: only the pages that changed since the last flush are written, so a flush
//! costs what changed, not the filter's size.
//!
//! A crash between flushes loses bits set since the last one, which only makes the filter answer
//! "certainly new" for keys that were processed: the caller then processes them again, which the
//! idempotent store turns into nothing. Bits are only ever set, so a torn page write can also only
//! lose bits; a filter file that is not one (a different size, another format) is replaced by an
//! empty filter with a warning.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The filter's file name in the data directory.
pub const FILE_NAME: &str = "stream-keys.bloom";

/// The first bytes of the file.
const MAGIC: &[u8; 8] = b"FGBLOOM1";

/// The header's size: magic, bits (u64), hash count (u32), the sizing it was made for (items u64
/// and false-positive rate f64), padded to one page so that bit pages stay page-aligned.
pub const HEADER_BYTES: u64 = 4096;

/// The unit of write-back.
const PAGE_BYTES: usize = 4096;

/// Why the filter could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum BloomError {
    /// The file could not be read or written.
    #[error("Bloom filter {path}: cannot {action}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        action: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The filter, its bits in memory and in its file.
#[derive(Debug)]
pub struct KeyFilter {
    path: PathBuf,
    file: File,
    bits: Vec<u8>,
    m: u64,
    k: u32,
    dirty: BTreeSet<usize>,
}

/// The filter's size for `items` keys at false-positive rate `rate`: bits (a whole number of
/// pages) and hash functions.
pub fn dimensions(items: u64, rate: f64) -> (u64, u32) {
    let n = items.max(1) as f64;
    let rate = rate.clamp(1e-12, 0.5);
    let ln2 = std::f64::consts::LN_2;
    let bits = (-(n * rate.ln()) / (ln2 * ln2)).ceil().max(1.0);
    let page_bits = (PAGE_BYTES * 8) as f64;
    let m = ((bits / page_bits).ceil() * page_bits) as u64;
    let k = ((m as f64 / n) * ln2).round().clamp(1.0, 30.0) as u32;
    (m, k)
}

impl KeyFilter {
    /// Opens the filter at `path`, sized for `items` keys at false-positive rate `rate`, creating
    /// it when absent. A file made for another size, or not a filter, is replaced by an empty one.
    pub fn open(path: &Path, items: u64, rate: f64) -> Result<Self, BloomError> {
        let io = |action| {
            move |source| BloomError::Io {
                path: path.to_owned(),
                action,
                source,
            }
        };
        let (m, k) = dimensions(items, rate);
        let bytes = usize::try_from(m / 8).unwrap_or(usize::MAX);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("open"))?;
        let len = file.metadata().map_err(io("read the size of"))?.len();
        let header = header(m, k, items, rate);
        if len == HEADER_BYTES + m / 8 {
            let mut found = vec![0u8; HEADER_BYTES as usize];
            file.read_exact(&mut found).map_err(io("read"))?;
            if found[..20] == header[..20] {
                let mut bits = vec![0u8; bytes];
                file.read_exact(&mut bits).map_err(io("read"))?;
                return Ok(Self {
                    path: path.to_owned(),
                    file,
                    bits,
                    m,
                    k,
                    dirty: BTreeSet::new(),
                });
            }
        }
        if len > 0 {
            tracing::warn!(
                path = %path.display(),
                items,
                rate,
                "the Bloom filter file was made for another size (or is not one): starting an empty \
                 filter; keys processed before are found by the exact check in the store"
            );
        }
        file.set_len(0).map_err(io("truncate"))?;
        file.set_len(HEADER_BYTES + m / 8).map_err(io("size"))?;
        file.write_all_at(&header, 0).map_err(io("write"))?;
        file.sync_all().map_err(io("sync"))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            bits: vec![0u8; bytes],
            m,
            k,
            dirty: BTreeSet::new(),
        })
    }

    /// Whether `key` may have been inserted: `false` means certainly not.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.positions(key)
            .all(|bit| self.bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    /// Inserts `key`; it reaches the file at the next [`KeyFilter::flush`].
    pub fn insert(&mut self, key: &[u8]) {
        let positions: Vec<u64> = self.positions(key).collect();
        for bit in positions {
            let byte = (bit / 8) as usize;
            let mask = 1 << (bit % 8);
            if self.bits[byte] & mask == 0 {
                self.bits[byte] |= mask;
                self.dirty.insert(byte / PAGE_BYTES);
            }
        }
    }

    /// Writes the pages changed since the last flush and syncs them to disk.
    pub fn flush(&mut self) -> Result<(), BloomError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        for &page in &self.dirty {
            let start = page * PAGE_BYTES;
            let end = (start + PAGE_BYTES).min(self.bits.len());
            self.file
                .write_all_at(&self.bits[start..end], HEADER_BYTES + start as u64)
                .map_err(|source| BloomError::Io {
                    path: self.path.clone(),
                    action: "write",
                    source,
                })?;
        }
        self.file.sync_data().map_err(|source| BloomError::Io {
            path: self.path.clone(),
            action: "sync",
            source,
        })?;
        self.dirty.clear();
        Ok(())
    }

    /// The bits and hash functions.
    pub fn shape(&self) -> (u64, u32) {
        (self.m, self.k)
    }

    /// The `k` bit positions of a key: double hashing over two halves of its SHA-256.
    fn positions(&self, key: &[u8]) -> impl Iterator<Item = u64> {
        let d = Sha256::digest(key);
        let word = |i: usize| {
            u64::from_le_bytes(
                d[i..i + 8]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("a SHA-256 has 32 bytes")),
            )
        };
        let (h1, h2) = (word(0), word(8) | 1);
        let m = self.m;
        (0..u64::from(self.k)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % m)
    }
}

/// The header for a filter of `m` bits and `k` hashes sized for `items` at `rate`.
fn header(m: u64, k: u32, items: u64, rate: f64) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_BYTES as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&m.to_le_bytes());
    h[16..20].copy_from_slice(&k.to_le_bytes());
    h[20..28].copy_from_slice(&items.to_le_bytes());
    h[28..36].copy_from_slice(&rate.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_follows_the_items_and_the_rate() {
        let (m, k) = dimensions(10_000_000, 0.001);
        // 14.4 bits a key and 10 hashes, as the textbook formulas give.
        assert!((143_000_000..145_000_000).contains(&m), "{m}");
        assert_eq!(k, 10);
        assert_eq!(m % (PAGE_BYTES as u64 * 8), 0);
    }

    #[test]
    fn keys_survive_a_reopen_and_the_rate_is_about_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut f = KeyFilter::open(&path, 10_000, 0.01).unwrap();
        for i in 0..10_000u32 {
            f.insert(format!("key-{i}").as_bytes());
        }
        f.flush().unwrap();
        drop(f);
        let f = KeyFilter::open(&path, 10_000, 0.01).unwrap();
        assert!((0..10_000u32).all(|i| f.may_contain(format!("key-{i}").as_bytes())));
        let false_positives = (0..100_000u32)
            .filter(|i| f.may_contain(format!("other-{i}").as_bytes()))
            .count();
        assert!(false_positives < 2_000, "{false_positives} of 100000");
        // Another size starts afresh.
        let g = KeyFilter::open(&path, 20_000, 0.01).unwrap();
        assert!(!g.may_contain(b"key-1"));
    }

    #[test]
    fn unflushed_keys_are_lost_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut f = KeyFilter::open(&path, 1_000, 0.001).unwrap();
        f.insert(b"flushed");
        f.flush().unwrap();
        f.insert(b"not flushed");
        drop(f);
        let f = KeyFilter::open(&path, 1_000, 0.001).unwrap();
        assert!(f.may_contain(b"flushed"));
        assert!(!f.may_contain(b"not flushed"));
    }
}
