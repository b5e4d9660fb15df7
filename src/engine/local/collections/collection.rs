//! [`Collection`], one open collection: appends of whole IndexFaces calls and deletes, each one
//! fsynced frame written under the writer lock before the in-memory state changes, and searches,
//! lookups and listings served from memory with the records read back from the log.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::compact::{wants_compaction, LOG_COMPACT};
use super::dirs::{create_dir_all, open_read, sync_dir, write_synced};
use super::format::{
    decode_record, encode_delete_frame, encode_image_frame, frame_header, ImageFrame, Record,
    LOG_MAGIC,
};
use super::replay::replay;
use super::state::{FaceSlot, ImageEntry, State};
use super::{
    Appended, FaceKey, ImageDoc, ImageKey, Manifest, MatchRow, NewImage, StoreError, StoredFace,
    StoredImage, LOG, MANIFEST,
};
use crate::engine::local::index;
use crate::model::CollectionId;

/// One open collection: its manifest, the in-memory index and tables, and the log.
#[derive(Debug)]
pub struct Collection {
    pub(super) id: CollectionId,
    pub(super) dir: PathBuf,
    pub(super) manifest: Manifest,
    pub(super) threads: usize,
    /// Lock order: `log`, then `state`, then `reader`.
    pub(super) log: Mutex<LogWriter>,
    pub(super) state: RwLock<State>,
    pub(super) reader: Mutex<File>,
}

/// The log's append handle and what the writers must know about it.
#[derive(Debug)]
pub(super) struct LogWriter {
    pub(super) file: File,
    pub(super) len: u64,
    pub(super) deleted: bool,
    pub(super) broken: bool,
}

impl Collection {
    /// Creates a collection directory under `root` atomically and opens it.
    pub fn create(
        root: &Path,
        id: &CollectionId,
        manifest: Manifest,
        threads: usize,
    ) -> Result<Self, StoreError> {
        create_dir_all(root)?;
        let tmp = root.join(format!("~creating-{}-{}", id, uuid::Uuid::new_v4()));
        create_dir_all(&tmp)?;
        let body = serde_json::to_vec_pretty(&manifest).map_err(|source| StoreError::Encode {
            collection: id.clone(),
            source,
        })?;
        write_synced(&tmp.join(MANIFEST), &body)?;
        write_synced(&tmp.join(LOG), LOG_MAGIC)?;
        sync_dir(&tmp)?;
        let dir = root.join(id.as_str());
        fs::rename(&tmp, &dir).map_err(|source| StoreError::Io {
            action: "move the new collection into place at",
            path: dir.clone(),
            source,
        })?;
        sync_dir(root)?;
        Self::open(root, id, threads)
    }

    /// Opens a collection, replaying its log (and cutting off a torn tail).
    pub fn open(root: &Path, id: &CollectionId, threads: usize) -> Result<Self, StoreError> {
        let dir = root.join(id.as_str());
        let manifest_path = dir.join(MANIFEST);
        let body = fs::read(&manifest_path).map_err(|source| StoreError::Io {
            action: "read",
            path: manifest_path.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&body).map_err(|source| StoreError::Manifest {
                path: manifest_path.clone(),
                source,
            })?;
        if manifest.collection_id != id.as_str() || manifest.format != 1 {
            return Err(StoreError::Corrupt {
                path: manifest_path,
                offset: 0,
                what: format!(
                    "it describes collection {:?} in format {}, expected {:?} in format 1",
                    manifest.collection_id, manifest.format, id
                ),
            });
        }
        // A compaction that did not finish left its temporary file; the log is still whole.
        let leftover = dir.join(LOG_COMPACT);
        if leftover.exists() {
            fs::remove_file(&leftover).map_err(|source| StoreError::Io {
                action: "remove the unfinished compaction",
                path: leftover,
                source,
            })?;
        }
        let log_path = dir.join(LOG);
        let mut state = State::new(manifest.embedding_dim as usize, threads);
        let len = replay(&log_path, &mut state)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|source| StoreError::Io {
                action: "open for appending",
                path: log_path.clone(),
                source,
            })?;
        let reader = open_read(&log_path)?;
        Ok(Self {
            id: id.clone(),
            dir,
            manifest,
            threads,
            log: Mutex::new(LogWriter {
                file,
                len,
                deleted: false,
                broken: false,
            }),
            state: RwLock::new(state),
            reader: Mutex::new(reader),
        })
    }

    /// The collection's id.
    pub fn id(&self) -> &CollectionId {
        &self.id
    }

    /// The collection's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The collection's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many faces it holds.
    pub fn face_count(&self) -> Result<u64, StoreError> {
        Ok(self.read_state()?.by_id.len() as u64)
    }

    /// The size of the log in bytes.
    pub fn log_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.lock_log()?.len)
    }

    /// The image with these bytes and this external image id, if it was indexed.
    pub fn find_image(
        &self,
        image_id: &ImageKey,
        external_image_id: Option<&str>,
    ) -> Result<Option<StoredImage>, StoreError> {
        let state = self.read_state()?;
        match state.find_image(image_id, external_image_id) {
            Some(slot) => Ok(Some(self.stored_image(&state, slot)?)),
            None => Ok(None),
        }
    }

    /// Adds an image and its faces as one record, fsynced before it becomes visible, unless the same
    /// bytes with the same external image id are already there with faces still live (or had none).
    pub fn append_image(&self, image: NewImage) -> Result<Appended, StoreError> {
        let mut log = self.writable_log()?;
        {
            let state = self.read_state()?;
            if let Some(slot) =
                state.find_image(&image.image_id, image.external_image_id.as_deref())
            {
                let stored = self.stored_image(&state, slot)?;
                if stored.faces_indexed == 0 || !stored.faces.is_empty() {
                    return Ok(Appended::Existing(stored));
                }
            }
        }
        let frame = self.encode_image(&image)?;
        let offset = self.append_frames(&mut log, &[frame.as_slice()])?;
        let mut state = self.write_state()?;
        state.apply_frame(&frame, offset, &self.dir)?;
        Ok(Appended::Added)
    }

    /// Adds many images with one fsync at the end, without the duplicate check; for building large
    /// collections from known-new data (the search benchmark).
    pub fn append_images_bulk(&self, images: &[NewImage]) -> Result<(), StoreError> {
        let mut log = self.writable_log()?;
        let frames = images
            .iter()
            .map(|i| self.encode_image(i))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut offset = self.append_frames(&mut log, &refs)?;
        let mut state = self.write_state()?;
        for frame in &frames {
            state.apply_frame(frame, offset, &self.dir)?;
            offset += 8 + frame.len() as u64;
        }
        Ok(())
    }

    /// Deletes faces; returns those that were in the collection.
    pub fn delete_faces(&self, ids: &[FaceKey]) -> Result<Vec<FaceKey>, StoreError> {
        let mut log = self.writable_log()?;
        let present: Vec<FaceKey> = {
            let state = self.read_state()?;
            let mut seen = std::collections::HashSet::new();
            ids.iter()
                .filter(|id| state.by_id.contains_key(*id) && seen.insert(**id))
                .copied()
                .collect()
        };
        if present.is_empty() {
            return Ok(present);
        }
        let frame = encode_delete_frame(&present);
        self.append_frames(&mut log, &[frame.as_slice()])?;
        let compact = {
            let mut state = self.write_state()?;
            state.delete(&present);
            wants_compaction(&state)
        };
        if compact {
            self.compact_locked(&mut log)?;
        }
        Ok(present)
    }

    /// The best `k` faces for a face of the collection (never itself), with a score of at least
    /// `min_score`; `None` when the face is not in the collection.
    pub fn search_face(
        &self,
        id: &FaceKey,
        k: usize,
        min_score: f32,
    ) -> Result<Option<Vec<MatchRow>>, StoreError> {
        let state = self.read_state()?;
        let Some(&slot) = state.by_id.get(id) else {
            return Ok(None);
        };
        let Some(query) = state.index.get(slot) else {
            return Ok(None);
        };
        let hits = state.index.search(query, k, min_score, Some(slot));
        Ok(Some(state.rows(&hits)))
    }

    /// The best `k` faces for an embedding read from a collection's index (a unit vector already,
    /// used as it is so that its scores are bit for bit those it gets in its own collection),
    /// with a score of at least `min_score`.
    pub fn search_stored_vector(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
    ) -> Result<Vec<MatchRow>, StoreError> {
        let state = self.read_state()?;
        let hits = state.index.search(query, k, min_score, None);
        Ok(state.rows(&hits))
    }

    /// The stored embedding of a face of the collection; `None` when the face is not in it.
    pub fn embedding(&self, id: &FaceKey) -> Result<Option<Vec<f32>>, StoreError> {
        let state = self.read_state()?;
        Ok(state
            .by_id
            .get(id)
            .and_then(|&slot| state.index.get(slot))
            .map(<[f32]>::to_vec))
    }

    /// The best `k` faces for an embedding, with a score of at least `min_score`.
    pub fn search_vector(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
    ) -> Result<Vec<MatchRow>, StoreError> {
        let state = self.read_state()?;
        let norm = index::dot(query, query).sqrt();
        if !norm.is_finite() || norm <= f32::MIN_POSITIVE {
            return Err(index::IndexError::NotNormalisable.into());
        }
        let q: Vec<f32> = query.iter().map(|x| x / norm).collect();
        let hits = state.index.search(&q, k, min_score, None);
        Ok(state.rows(&hits))
    }

    /// Up to `max` live faces with ids after `after`, in id order, and whether more follow.
    pub fn list(
        &self,
        after: Option<&FaceKey>,
        max: usize,
    ) -> Result<(Vec<StoredFace>, bool), StoreError> {
        let state = self.read_state()?;
        let lower: Bound<&FaceKey> = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut range = state.by_id.range::<FaceKey, _>((lower, Bound::Unbounded));
        let page: Vec<(FaceKey, u32)> = range.by_ref().take(max).map(|(k, v)| (*k, *v)).collect();
        let more = range.next().is_some();
        // Faces of one image share a record; read each record once.
        let mut cache: HashMap<u32, (Vec<(FaceKey, bool)>, ImageDoc)> = HashMap::new();
        let mut out = Vec::with_capacity(page.len());
        for (id, slot) in page {
            let Some(face) = state.faces.get(slot as usize) else {
                continue;
            };
            let Some(image) = state.images.get(face.image as usize) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(face.image) {
                let bytes = self.read_frame(image)?;
                let frame = self.decode_image_frame(&bytes, image.frame_offset)?;
                let doc = self.decode_doc(frame.doc, image.frame_offset)?;
                e.insert((frame.faces, doc));
            }
            let Some((faces, doc)) = cache.get(&face.image) else {
                continue;
            };
            let pos = faces.iter().position(|(f, _)| *f == id);
            let record = pos.and_then(|p| doc.face_records.get(p));
            let Some(record) = record else {
                return Err(self.corrupt(image.frame_offset, "a face has no record"));
            };
            out.push(StoredFace {
                id,
                image_id: image.image_id,
                external_image_id: state.external_id(image).map(str::to_owned),
                indexed_at_ms: image.indexed_at_ms,
                largest: face.largest,
                record: record.get().to_owned(),
            });
        }
        Ok((out, more))
    }

    /// Rewrites the log with only the live faces and rebuilds the in-memory state from it.
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut log = self.writable_log()?;
        self.compact_locked(&mut log)
    }

    /// Marks the collection deleted: every later write fails.
    pub fn mark_deleted(&self) -> Result<(), StoreError> {
        self.lock_log()?.deleted = true;
        Ok(())
    }

    /// Bytes of memory the in-memory state holds (vectors, tables, arena), capacity included; the
    /// `BTreeMap` and `HashMap` are estimated from their lengths.
    pub fn memory_bytes(&self) -> Result<usize, StoreError> {
        let s = self.read_state()?;
        Ok(s.index.heap_bytes()
            + s.faces.capacity() * std::mem::size_of::<FaceSlot>()
            + s.images.capacity() * std::mem::size_of::<ImageEntry>()
            + s.by_id.len() * 24
            + s.by_image.capacity() * (std::mem::size_of::<(ImageKey, u32)>() + 1)
            + s.ext_arena.capacity())
    }

    fn stored_image(&self, state: &State, slot: u32) -> Result<StoredImage, StoreError> {
        let Some(image) = state.images.get(slot as usize) else {
            return Err(self.corrupt(0, "an image slot is out of range"));
        };
        let bytes = self.read_frame(image)?;
        let frame = self.decode_image_frame(&bytes, image.frame_offset)?;
        let doc = self.decode_doc(frame.doc, image.frame_offset)?;
        let mut faces = Vec::new();
        for (i, (id, largest)) in frame.faces.iter().enumerate() {
            if !state.by_id.contains_key(id) {
                continue;
            }
            let Some(record) = doc.face_records.get(i) else {
                return Err(self.corrupt(image.frame_offset, "a face has no record"));
            };
            faces.push(StoredFace {
                id: *id,
                image_id: image.image_id,
                external_image_id: state.external_id(image).map(str::to_owned),
                indexed_at_ms: image.indexed_at_ms,
                largest: *largest,
                record: record.get().to_owned(),
            });
        }
        Ok(StoredImage {
            indexed_at_ms: image.indexed_at_ms,
            faces_indexed: frame.faces_indexed,
            faces,
            doc,
        })
    }

    fn encode_image(&self, image: &NewImage) -> Result<Vec<u8>, StoreError> {
        let dim = self.manifest.embedding_dim as usize;
        // A record that could not be replayed would make the collection unopenable: check the
        // embeddings before anything is written.
        for f in &image.faces {
            if f.embedding.len() != dim {
                return Err(index::IndexError::Dimension {
                    got: f.embedding.len(),
                    want: dim,
                }
                .into());
            }
            let norm = index::dot(&f.embedding, &f.embedding).sqrt();
            if !norm.is_finite() || norm <= f32::MIN_POSITIVE {
                return Err(index::IndexError::NotNormalisable.into());
            }
        }
        let faces_indexed = u16::try_from(image.faces.len()).unwrap_or(u16::MAX);
        encode_image_frame(image, faces_indexed, dim).map_err(|source| StoreError::Encode {
            collection: self.id.clone(),
            source,
        })
    }

    /// Appends frames with one write and one fsync; returns the offset of the first. On failure
    /// the file is cut back to its previous length, or the log refuses writes until reopened.
    fn append_frames(&self, log: &mut LogWriter, frames: &[&[u8]]) -> Result<u64, StoreError> {
        let start = log.len;
        let total: usize = frames.iter().map(|f| 8 + f.len()).sum();
        let mut buf = Vec::with_capacity(total);
        for f in frames {
            buf.extend_from_slice(&frame_header(f));
            buf.extend_from_slice(f);
        }
        let path = self.dir.join(LOG);
        let written = log.file.write_all(&buf).and_then(|()| log.file.sync_data());
        if let Err(source) = written {
            if log
                .file
                .set_len(start)
                .and_then(|()| log.file.sync_data())
                .is_err()
            {
                log.broken = true;
            }
            return Err(StoreError::Io {
                action: "append to",
                path,
                source,
            });
        }
        log.len = start + total as u64;
        Ok(start)
    }

    pub(super) fn read_frame(&self, image: &ImageEntry) -> Result<Vec<u8>, StoreError> {
        let path = self.dir.join(LOG);
        let mut reader = self.lock_reader()?;
        let mut buf = vec![0u8; image.frame_len as usize];
        reader
            .seek(SeekFrom::Start(image.frame_offset + 8))
            .and_then(|_| reader.read_exact(&mut buf))
            .map_err(|source| StoreError::Io {
                action: "read a record of",
                path,
                source,
            })?;
        Ok(buf)
    }

    pub(super) fn decode_image_frame<'a>(
        &self,
        bytes: &'a [u8],
        offset: u64,
    ) -> Result<ImageFrame<'a>, StoreError> {
        match decode_record(bytes) {
            Ok(Record::Image(frame)) => Ok(frame),
            Ok(Record::Delete(_)) => Err(self.corrupt(offset, "expected an image record")),
            Err(what) => Err(self.corrupt(offset, what)),
        }
    }

    pub(super) fn decode_doc(&self, bytes: &[u8], offset: u64) -> Result<ImageDoc, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| self.corrupt(offset, format!("record JSON: {e}")))
    }

    pub(super) fn corrupt(&self, offset: u64, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.dir.join(LOG),
            offset,
            what: what.into(),
        }
    }

    fn writable_log(&self) -> Result<MutexGuard<'_, LogWriter>, StoreError> {
        let log = self.lock_log()?;
        if log.deleted {
            return Err(StoreError::Deleted(self.id.clone()));
        }
        if log.broken {
            return Err(StoreError::Broken(self.id.clone()));
        }
        Ok(log)
    }

    fn lock_log(&self) -> Result<MutexGuard<'_, LogWriter>, StoreError> {
        self.log
            .lock()
            .map_err(|_| StoreError::Poisoned(self.id.clone()))
    }

    pub(super) fn lock_reader(&self) -> Result<MutexGuard<'_, File>, StoreError> {
        self.reader
            .lock()
            .map_err(|_| StoreError::Poisoned(self.id.clone()))
    }

    fn read_state(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        self.state
            .read()
            .map_err(|_| StoreError::Poisoned(self.id.clone()))
    }

    pub(super) fn write_state(&self) -> Result<RwLockWriteGuard<'_, State>, StoreError> {
        self.state
            .write()
            .map_err(|_| StoreError::Poisoned(self.id.clone()))
    }
}
