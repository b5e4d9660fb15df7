//! A collection's in-memory state, rebuilt from its records: the vector index, a slot per face and
//! an entry per image (with the external ids in one arena), and the id tables that find them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::format::{decode_record, encode_image_frame, ImageFrame, Record, NO_EXTERNAL_ID};
use super::{FaceKey, ImageKey, MatchRow, NewImage, StoreError, LOG};
use crate::engine::local::index::{Hit, VectorIndex};
use crate::model::CollectionId;

/// Per face slot (row of the index): 24 bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct FaceSlot {
    pub(super) id: FaceKey,
    pub(super) image: u32,
    pub(super) largest: bool,
}

/// Per image: 72 bytes, and the external id's bytes in a shared arena.
#[derive(Clone, Copy, Debug)]
pub(super) struct ImageEntry {
    pub(super) image_id: ImageKey,
    pub(super) frame_offset: u64,
    pub(super) ext_offset: u64,
    pub(super) indexed_at_ms: i64,
    pub(super) frame_len: u32,
    /// The previous image with the same bytes (another external id), or `u32::MAX`.
    pub(super) prev_same_bytes: u32,
    pub(super) ext_len: u16,
}

/// What the log says, in memory.
#[derive(Debug)]
pub(super) struct State {
    pub(super) index: VectorIndex,
    pub(super) faces: Vec<FaceSlot>,
    /// Live faces only, in id order: lookups and the stable order of ListFaces.
    pub(super) by_id: BTreeMap<FaceKey, u32>,
    pub(super) images: Vec<ImageEntry>,
    /// The latest image with these bytes; older ones are chained through `prev_same_bytes`.
    pub(super) by_image: HashMap<ImageKey, u32>,
    /// External image ids, back to back.
    pub(super) ext_arena: String,
}

/// A collection's in-memory state built from records without a log: exactly what [`Collection`]
/// holds after replaying its log. The search benchmark builds one to measure memory and latency at
/// sizes whose logs would take minutes to write.
#[derive(Debug)]
pub struct MemoryCollection {
    state: State,
    dir: PathBuf,
}

impl MemoryCollection {
    /// An empty collection of `dim`-dimensional embeddings searched on `threads` threads.
    pub fn new(dim: usize, threads: usize) -> Self {
        Self {
            state: State::new(dim, threads),
            dir: PathBuf::from("(memory)"),
        }
    }

    /// Adds an image's record as replay would.
    pub fn add(&mut self, image: &NewImage) -> Result<(), StoreError> {
        let faces_indexed = u16::try_from(image.faces.len()).unwrap_or(u16::MAX);
        let payload =
            encode_image_frame(image, faces_indexed, self.state.index.dim()).map_err(|source| {
                StoreError::Encode {
                    collection: CollectionId::parse("memory").unwrap_or_else(|_| unreachable!()),
                    source,
                }
            })?;
        self.state.apply_frame(&payload, 0, &self.dir)
    }

    /// How many faces it holds.
    pub fn face_count(&self) -> usize {
        self.state.by_id.len()
    }

    /// The best `k` faces for a unit-length query with a score of at least `min_score`.
    pub fn search_vector(&self, query: &[f32], k: usize, min_score: f32) -> Vec<MatchRow> {
        let hits = self.state.index.search(query, k, min_score, None);
        self.state.rows(&hits)
    }

    /// Uses `threads` threads per search.
    pub fn set_threads(&mut self, threads: usize) {
        self.state.index.set_threads(threads);
    }
}

impl State {
    pub(super) fn new(dim: usize, threads: usize) -> Self {
        Self {
            index: VectorIndex::new(dim, threads),
            faces: Vec::new(),
            by_id: BTreeMap::new(),
            images: Vec::new(),
            by_image: HashMap::new(),
            ext_arena: String::new(),
        }
    }

    pub(super) fn external_id(&self, image: &ImageEntry) -> Option<&str> {
        if image.ext_len == NO_EXTERNAL_ID {
            return None;
        }
        let start = usize::try_from(image.ext_offset).ok()?;
        self.ext_arena
            .get(start..start + usize::from(image.ext_len))
    }

    pub(super) fn find_image(
        &self,
        image_id: &ImageKey,
        external_image_id: Option<&str>,
    ) -> Option<u32> {
        let mut slot = *self.by_image.get(image_id)?;
        loop {
            let image = self.images.get(slot as usize)?;
            if self.external_id(image) == external_image_id {
                return Some(slot);
            }
            if image.prev_same_bytes == u32::MAX {
                return None;
            }
            slot = image.prev_same_bytes;
        }
    }

    pub(super) fn rows(&self, hits: &[Hit]) -> Vec<MatchRow> {
        hits.iter()
            .filter_map(|h| {
                let face = self.faces.get(h.slot as usize)?;
                let image = self.images.get(face.image as usize)?;
                Some(MatchRow {
                    id: face.id,
                    score: h.score,
                    image_id: image.image_id,
                    external_image_id: self.external_id(image).map(str::to_owned),
                })
            })
            .collect()
    }

    /// Applies one frame's payload, found at `offset` in the log.
    pub(super) fn apply_frame(
        &mut self,
        payload: &[u8],
        offset: u64,
        dir: &Path,
    ) -> Result<(), StoreError> {
        let corrupt = |what: String| StoreError::Corrupt {
            path: dir.join(LOG),
            offset,
            what,
        };
        match decode_record(payload).map_err(corrupt)? {
            Record::Delete(ids) => {
                self.delete(&ids);
                Ok(())
            }
            Record::Image(frame) => self.add_image(&frame, offset, payload.len() as u32, &corrupt),
        }
    }

    /// Adds an image record's image and faces to the tables and the index.
    fn add_image(
        &mut self,
        frame: &ImageFrame<'_>,
        offset: u64,
        frame_len: u32,
        corrupt: &dyn Fn(String) -> StoreError,
    ) -> Result<(), StoreError> {
        if frame.dim != self.index.dim() && !frame.faces.is_empty() {
            return Err(corrupt(format!(
                "embeddings of {} dimensions in a collection of {}",
                frame.dim,
                self.index.dim()
            )));
        }
        let image_slot =
            u32::try_from(self.images.len()).map_err(|_| corrupt("too many images".to_owned()))?;
        let ext_offset = self.ext_arena.len() as u64;
        let ext_len = match frame.external_image_id {
            Some(ext) => {
                self.ext_arena.push_str(ext);
                u16::try_from(ext.len()).unwrap_or(NO_EXTERNAL_ID - 1)
            }
            None => NO_EXTERNAL_ID,
        };
        let prev_same_bytes = self
            .by_image
            .insert(frame.image_id, image_slot)
            .unwrap_or(u32::MAX);
        for (i, (id, largest)) in frame.faces.iter().enumerate() {
            if self.by_id.contains_key(id) {
                return Err(corrupt("a face id appears twice".to_owned()));
            }
            let slot = self.index.push(&frame.embedding(i))?;
            self.faces.push(FaceSlot {
                id: *id,
                image: image_slot,
                largest: *largest,
            });
            self.by_id.insert(*id, slot);
        }
        self.images.push(ImageEntry {
            image_id: frame.image_id,
            frame_offset: offset,
            ext_offset,
            indexed_at_ms: frame.indexed_at_ms,
            frame_len,
            prev_same_bytes,
            ext_len,
        });
        Ok(())
    }

    pub(super) fn delete(&mut self, ids: &[FaceKey]) {
        for id in ids {
            if let Some(slot) = self.by_id.remove(id) {
                self.index.remove(slot);
            }
        }
    }
}
