//! Face collections on disk, under `<data_dir>/collections/<collection_id>/`: a manifest and an
//! append-only log of framed records, replayed into an in-memory [`VectorIndex`] plus compact id
//! tables when the collection is opened. One IndexFaces call is one record, written and fsynced
//! before it becomes visible, so a crash leaves either the whole call or none of it.
//!
//! # Files
//!
//! - `manifest.json`: collection id, engine, created_at, face model version, embedding dimension.
//!   Written once, when the collection is created, inside a temporary directory that is then renamed
//!   into place (and the parent directory fsynced), so a collection either exists whole or not at all.
//! - `faces.log`: an 8-byte magic, then frames of `u32 length | u32 CRC32 | payload` (little endian).
//!   A payload is an *image record* (image id, external image id, time, face ids, embeddings and the
//!   verbatim IndexFaces JSON of the image's faces) or a *delete record* (face ids).
//!
//! # Crash recovery
//!
//! Every append is one `write_all` of one frame followed by `fsync`, under the collection's writer
//! lock, so at most one frame is ever unsynced. On open, the log is replayed; a frame that runs past
//! the end of the file, or fails its CRC while reaching the end of the file, or is followed only by
//! zero bytes (a file extended by the file system but not written), is a torn tail: it is cut off and
//! the file fsynced. A bad frame followed by more data is corruption, and opening fails rather than
//! dropping acknowledged records. A failed append truncates the file back to its previous length.
//!
//! # Deletes and compaction
//!
//! Deleting faces appends a delete record and tombstones the rows. [`Collection::compact`] (run
//! automatically once deleted rows are both many and a quarter of the live ones) rewrites the log
//! with only live faces into a temporary file, fsyncs and renames it over the log, and rebuilds the
//! in-memory state from the records it wrote.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::index::{Hit, VectorIndex};
use crate::model::CollectionId;
use crate::rekognition::wire;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The log's file name.
pub const LOG: &str = "faces.log";
/// The log being rewritten by compaction.
const LOG_COMPACT: &str = "faces.log.compact";
/// The first bytes of a log, with the format version in the last byte.
const LOG_MAGIC: &[u8; 8] = b"FGFACES\x01";
/// The largest payload a frame may have; anything larger is damage, not data.
const MAX_FRAME: u32 = 64 << 20;
const KIND_IMAGE: u8 = 1;
const KIND_DELETE: u8 = 2;
/// No external image id, in the `u16` length field.
const NO_EXTERNAL_ID: u16 = u16::MAX;
/// Compaction runs once this many rows are deleted and they are a quarter of the live rows.
const COMPACT_MIN_DEAD: usize = 4096;

/// A face id as stored: the 16 bytes of its UUID.
pub type FaceKey = [u8; 16];
/// An image id as stored: the 32 bytes of the SHA-256 of the image.
pub type ImageKey = [u8; 32];

/// Why the collection store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file holds something it should not; the message says what and where.
    #[error("{path} is corrupt at byte {offset}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The manifest cannot be read.
    #[error("collection manifest {path} is invalid")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("cannot encode a record of collection {collection}")]
    Encode {
        /// The collection.
        collection: CollectionId,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A thread panicked while holding the collection's lock; the in-memory state may be partial.
    #[error("collection {0} is unusable after a panic in another thread; reopen it")]
    Poisoned(CollectionId),
    /// An earlier append could not be undone; the log must be reopened before more writes.
    #[error("collection {0} refuses writes after a failed append; reopen it")]
    Broken(CollectionId),
    /// The collection was deleted while in use.
    #[error("collection {0} was deleted")]
    Deleted(CollectionId),
    /// A face's embedding does not fit the collection.
    #[error("a face's embedding cannot be indexed")]
    Embedding(#[from] super::index::IndexError),
}

/// The collection's metadata, written once when it is created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The layout version of the collection directory.
    pub format: u32,
    /// The collection's id (also the directory's name).
    pub collection_id: String,
    /// The engine that owns it (`local`).
    pub engine: String,
    /// When it was created, in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// The analyzer's model version; faces from other models are refused.
    pub face_model_version: String,
    /// The length of the embeddings.
    pub embedding_dim: u32,
}

/// The JSON part of an image record: what IndexFaces answered for the image, kept verbatim.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ImageDoc {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// How many faces the detector found.
    pub detected: u32,
    /// The IndexFaces `FaceRecord` of each face in the record, in the record's face order.
    pub face_records: Vec<Box<RawValue>>,
    /// The faces that were detected and not indexed.
    pub unindexed_faces: Vec<wire::UnindexedFace>,
}

/// A face to add.
#[derive(Debug)]
pub struct NewFace {
    /// Its id.
    pub id: FaceKey,
    /// Whether it is the largest face indexed from its image.
    pub largest: bool,
    /// Its embedding.
    pub embedding: Vec<f32>,
}

/// An image and its faces to add: one IndexFaces call.
#[derive(Debug)]
pub struct NewImage {
    /// The SHA-256 of its bytes.
    pub image_id: ImageKey,
    /// The caller's name for it.
    pub external_image_id: Option<String>,
    /// When it was indexed (ms since the epoch).
    pub indexed_at_ms: i64,
    /// The faces indexed, largest first; their records are `doc.face_records` in the same order.
    pub faces: Vec<NewFace>,
    /// The IndexFaces answer for the image.
    pub doc: ImageDoc,
}

/// An image already in the collection, read back from its record.
#[derive(Debug)]
pub struct StoredImage {
    /// When it was indexed.
    pub indexed_at_ms: i64,
    /// How many faces were indexed from it at first.
    pub faces_indexed: u16,
    /// Its faces that are still in the collection, largest first.
    pub faces: Vec<StoredFace>,
    /// The IndexFaces answer for the image (records of deleted faces included until compaction).
    pub doc: ImageDoc,
}

/// A face read back from the log.
#[derive(Clone, Debug)]
pub struct StoredFace {
    /// Its id.
    pub id: FaceKey,
    /// The image it is in.
    pub image_id: ImageKey,
    /// The caller's name for that image.
    pub external_image_id: Option<String>,
    /// When it was indexed.
    pub indexed_at_ms: i64,
    /// Whether it was the largest face indexed from its image.
    pub largest: bool,
    /// Its IndexFaces `FaceRecord`, verbatim.
    pub record: String,
}

/// One search hit with what a `FaceMatch` needs, all from memory.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchRow {
    /// The face found.
    pub id: FaceKey,
    /// Its inner product with the query (the cosine).
    pub score: f32,
    /// Its image.
    pub image_id: ImageKey,
    /// The caller's name for the image.
    pub external_image_id: Option<String>,
}

/// What an append did.
#[derive(Debug)]
pub enum Appended {
    /// The image was added.
    Added,
    /// The same bytes with the same external image id were already indexed: nothing was written.
    Existing(StoredImage),
}

/// One open collection: its manifest, the in-memory index and tables, and the log.
#[derive(Debug)]
pub struct Collection {
    id: CollectionId,
    dir: PathBuf,
    manifest: Manifest,
    threads: usize,
    /// Lock order: `log`, then `state`, then `reader`.
    log: Mutex<LogWriter>,
    state: RwLock<State>,
    reader: Mutex<File>,
}

#[derive(Debug)]
struct LogWriter {
    file: File,
    len: u64,
    deleted: bool,
    broken: bool,
}

/// Per face slot (row of the index): 24 bytes.
#[derive(Clone, Copy, Debug)]
struct FaceSlot {
    id: FaceKey,
    image: u32,
    largest: bool,
}

/// Per image: 72 bytes, and the external id's bytes in a shared arena.
#[derive(Clone, Copy, Debug)]
struct ImageEntry {
    image_id: ImageKey,
    frame_offset: u64,
    ext_offset: u64,
    indexed_at_ms: i64,
    frame_len: u32,
    /// The previous image with the same bytes (another external id), or `u32::MAX`.
    prev_same_bytes: u32,
    ext_len: u16,
}

/// What the log says, in memory.
#[derive(Debug)]
struct State {
    index: VectorIndex,
    faces: Vec<FaceSlot>,
    /// Live faces only, in id order: lookups and the stable order of ListFaces.
    by_id: BTreeMap<FaceKey, u32>,
    images: Vec<ImageEntry>,
    /// The latest image with these bytes; older ones are chained through `prev_same_bytes`.
    by_image: HashMap<ImageKey, u32>,
    /// External image ids, back to back.
    ext_arena: String,
}

/// A decoded image record.
#[derive(Debug)]
struct ImageFrame<'a> {
    image_id: ImageKey,
    external_image_id: Option<&'a str>,
    indexed_at_ms: i64,
    faces_indexed: u16,
    faces: Vec<(FaceKey, bool)>,
    dim: usize,
    embeddings: &'a [u8],
    doc: &'a [u8],
}

/// A decoded record.
#[derive(Debug)]
enum Record<'a> {
    Image(ImageFrame<'a>),
    Delete(Vec<FaceKey>),
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
        let mut frame = Vec::with_capacity(5 + 16 * present.len());
        frame.push(KIND_DELETE);
        frame.extend_from_slice(&(present.len() as u32).to_le_bytes());
        for id in &present {
            frame.extend_from_slice(id);
        }
        self.append_frames(&mut log, &[frame.as_slice()])?;
        let compact = {
            let mut state = self.write_state()?;
            state.delete(&present);
            let dead = state.index.dead();
            dead >= COMPACT_MIN_DEAD && dead * 4 >= state.index.live()
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

    /// The best `k` faces for an embedding, with a score of at least `min_score`.
    pub fn search_vector(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
    ) -> Result<Vec<MatchRow>, StoreError> {
        let state = self.read_state()?;
        let norm = super::index::dot(query, query).sqrt();
        if !norm.is_finite() || norm <= f32::MIN_POSITIVE {
            return Err(super::index::IndexError::NotNormalisable.into());
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

    fn compact_locked(&self, log: &mut MutexGuard<'_, LogWriter>) -> Result<(), StoreError> {
        let mut state = self.write_state()?;
        let tmp_path = self.dir.join(LOG_COMPACT);
        let mut tmp = File::create(&tmp_path).map_err(|source| StoreError::Io {
            action: "create",
            path: tmp_path.clone(),
            source,
        })?;
        let mut fresh = State::new(self.manifest.embedding_dim as usize, self.threads);
        let mut offset = LOG_MAGIC.len() as u64;
        let mut out = io::BufWriter::new(&mut tmp);
        let io_err = |source| StoreError::Io {
            action: "write",
            path: tmp_path.clone(),
            source,
        };
        out.write_all(LOG_MAGIC).map_err(io_err)?;
        for image in &state.images {
            let bytes = self.read_frame(image)?;
            let frame = self.decode_image_frame(&bytes, image.frame_offset)?;
            let doc = self.decode_doc(frame.doc, image.frame_offset)?;
            let dim = frame.dim;
            let mut kept = NewImage {
                image_id: frame.image_id,
                external_image_id: frame.external_image_id.map(str::to_owned),
                indexed_at_ms: frame.indexed_at_ms,
                faces: Vec::new(),
                doc: ImageDoc {
                    width: doc.width,
                    height: doc.height,
                    detected: doc.detected,
                    face_records: Vec::new(),
                    unindexed_faces: doc.unindexed_faces,
                },
            };
            for (i, (id, largest)) in frame.faces.iter().enumerate() {
                if !state.by_id.contains_key(id) {
                    continue;
                }
                let emb = frame
                    .embeddings
                    .get(i * dim * 4..(i + 1) * dim * 4)
                    .map(decode_f32s)
                    .unwrap_or_default();
                let record = doc.face_records.get(i).map(|r| r.get().to_owned());
                let Some(record) = record.and_then(|r| RawValue::from_string(r).ok()) else {
                    return Err(self.corrupt(image.frame_offset, "a face has no record"));
                };
                kept.faces.push(NewFace {
                    id: *id,
                    largest: *largest,
                    embedding: emb,
                });
                kept.doc.face_records.push(record);
            }
            let encoded =
                encode_image_frame(&kept, frame.faces_indexed, dim).map_err(|source| {
                    StoreError::Encode {
                        collection: self.id.clone(),
                        source,
                    }
                })?;
            out.write_all(&frame_header(&encoded)).map_err(io_err)?;
            out.write_all(&encoded).map_err(io_err)?;
            fresh.apply_frame(&encoded, offset, &self.dir)?;
            offset += 8 + encoded.len() as u64;
        }
        out.flush().map_err(io_err)?;
        drop(out);
        tmp.sync_all().map_err(io_err)?;
        drop(tmp);
        let log_path = self.dir.join(LOG);
        fs::rename(&tmp_path, &log_path).map_err(|source| StoreError::Io {
            action: "replace the log with its compacted copy",
            path: log_path.clone(),
            source,
        })?;
        sync_dir(&self.dir)?;
        log.file = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|source| StoreError::Io {
                action: "open for appending",
                path: log_path.clone(),
                source,
            })?;
        log.len = offset;
        *self.lock_reader()? = open_read(&log_path)?;
        *state = fresh;
        Ok(())
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
                return Err(super::index::IndexError::Dimension {
                    got: f.embedding.len(),
                    want: dim,
                }
                .into());
            }
            let norm = super::index::dot(&f.embedding, &f.embedding).sqrt();
            if !norm.is_finite() || norm <= f32::MIN_POSITIVE {
                return Err(super::index::IndexError::NotNormalisable.into());
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

    fn read_frame(&self, image: &ImageEntry) -> Result<Vec<u8>, StoreError> {
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

    fn decode_image_frame<'a>(
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

    fn decode_doc(&self, bytes: &[u8], offset: u64) -> Result<ImageDoc, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| self.corrupt(offset, format!("record JSON: {e}")))
    }

    fn corrupt(&self, offset: u64, what: impl Into<String>) -> StoreError {
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

    fn lock_reader(&self) -> Result<MutexGuard<'_, File>, StoreError> {
        self.reader
            .lock()
            .map_err(|_| StoreError::Poisoned(self.id.clone()))
    }

    fn read_state(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        self.state
            .read()
            .map_err(|_| StoreError::Poisoned(self.id.clone()))
    }

    fn write_state(&self) -> Result<RwLockWriteGuard<'_, State>, StoreError> {
        self.state
            .write()
            .map_err(|_| StoreError::Poisoned(self.id.clone()))
    }
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
    fn new(dim: usize, threads: usize) -> Self {
        Self {
            index: VectorIndex::new(dim, threads),
            faces: Vec::new(),
            by_id: BTreeMap::new(),
            images: Vec::new(),
            by_image: HashMap::new(),
            ext_arena: String::new(),
        }
    }

    fn external_id(&self, image: &ImageEntry) -> Option<&str> {
        if image.ext_len == NO_EXTERNAL_ID {
            return None;
        }
        let start = usize::try_from(image.ext_offset).ok()?;
        self.ext_arena
            .get(start..start + usize::from(image.ext_len))
    }

    fn find_image(&self, image_id: &ImageKey, external_image_id: Option<&str>) -> Option<u32> {
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

    fn rows(&self, hits: &[Hit]) -> Vec<MatchRow> {
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
    fn apply_frame(&mut self, payload: &[u8], offset: u64, dir: &Path) -> Result<(), StoreError> {
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
            Record::Image(frame) => {
                if frame.dim != self.index.dim() && !frame.faces.is_empty() {
                    return Err(corrupt(format!(
                        "embeddings of {} dimensions in a collection of {}",
                        frame.dim,
                        self.index.dim()
                    )));
                }
                let image_slot = u32::try_from(self.images.len())
                    .map_err(|_| corrupt("too many images".to_owned()))?;
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
                    let emb = frame
                        .embeddings
                        .get(i * frame.dim * 4..(i + 1) * frame.dim * 4)
                        .map(decode_f32s)
                        .unwrap_or_default();
                    let slot = self.index.push(&emb)?;
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
                    frame_len: payload.len() as u32,
                    prev_same_bytes,
                    ext_len,
                });
                Ok(())
            }
        }
    }

    fn delete(&mut self, ids: &[FaceKey]) {
        for id in ids {
            if let Some(slot) = self.by_id.remove(id) {
                self.index.remove(slot);
            }
        }
    }
}

/// The 8-byte header of a frame: payload length and CRC32.
fn frame_header(payload: &[u8]) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

fn encode_image_frame(
    image: &NewImage,
    faces_indexed: u16,
    dim: usize,
) -> Result<Vec<u8>, serde_json::Error> {
    let doc = serde_json::to_vec(&image.doc)?;
    let n = image.faces.len().min(usize::from(u16::MAX));
    let mut out = Vec::with_capacity(64 + n * (17 + dim * 4) + doc.len());
    out.push(KIND_IMAGE);
    out.extend_from_slice(&image.image_id);
    match &image.external_image_id {
        Some(ext) => {
            let bytes = ext.as_bytes();
            let len = bytes.len().min(usize::from(NO_EXTERNAL_ID - 1));
            out.extend_from_slice(&(len as u16).to_le_bytes());
            out.extend_from_slice(&bytes[..len]);
        }
        None => out.extend_from_slice(&NO_EXTERNAL_ID.to_le_bytes()),
    }
    out.extend_from_slice(&image.indexed_at_ms.to_le_bytes());
    out.extend_from_slice(&faces_indexed.to_le_bytes());
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    for f in image.faces.iter().take(n) {
        out.extend_from_slice(&f.id);
        out.push(u8::from(f.largest));
    }
    for f in image.faces.iter().take(n) {
        for x in &f.embedding {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.extend_from_slice(&(doc.len() as u32).to_le_bytes());
    out.extend_from_slice(&doc);
    Ok(out)
}

/// A cursor over a payload that reports where it ran short.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("record ends inside {what}"));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
}

fn decode_record(payload: &[u8]) -> Result<Record<'_>, String> {
    let mut c = Cursor {
        bytes: payload,
        at: 0,
    };
    let [kind] = c.array::<1>("the record kind")?;
    match kind {
        KIND_IMAGE => {
            let image_id = c.array::<32>("the image id")?;
            let ext_len = c.u16("the external image id")?;
            let external_image_id = if ext_len == NO_EXTERNAL_ID {
                None
            } else {
                let bytes = c.take(usize::from(ext_len), "the external image id")?;
                Some(std::str::from_utf8(bytes).map_err(|e| format!("external image id: {e}"))?)
            };
            let indexed_at_ms = i64::from_le_bytes(c.array("the time")?);
            let faces_indexed = c.u16("the face count")?;
            let n = usize::from(c.u16("the face count")?);
            let dim = c.u32("the dimension")? as usize;
            let mut faces = Vec::with_capacity(n);
            for _ in 0..n {
                let id = c.array::<16>("a face id")?;
                let [flags] = c.array::<1>("face flags")?;
                faces.push((id, flags & 1 == 1));
            }
            let embeddings = c.take(n * dim * 4, "the embeddings")?;
            let doc_len = c.u32("the JSON length")? as usize;
            let doc = c.take(doc_len, "the JSON")?;
            if c.at != payload.len() {
                return Err("bytes after the end of an image record".to_owned());
            }
            Ok(Record::Image(ImageFrame {
                image_id,
                external_image_id,
                indexed_at_ms,
                faces_indexed,
                faces,
                dim,
                embeddings,
                doc,
            }))
        }
        KIND_DELETE => {
            let n = c.u32("the face count")? as usize;
            let mut ids = Vec::with_capacity(n.min(payload.len() / 16));
            for _ in 0..n {
                ids.push(c.array::<16>("a face id")?);
            }
            Ok(Record::Delete(ids))
        }
        other => Err(format!("unknown record kind {other}")),
    }
}

fn decode_f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Replays a log into `state`, cutting off a torn tail; returns the length of the good log.
fn replay(path: &Path, state: &mut State) -> Result<u64, StoreError> {
    let io_err = |action: &'static str| {
        move |source| StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let file = open_read(path)?;
    let file_len = file.metadata().map_err(io_err("inspect"))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    if file_len < 8 {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: "the log is shorter than its header".to_owned(),
        });
    }
    reader.read_exact(&mut magic).map_err(io_err("read"))?;
    if &magic != LOG_MAGIC {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: "not a facegraph face log of format 1".to_owned(),
        });
    }
    let mut offset = 8u64;
    let mut payload = Vec::new();
    let torn = loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break None;
        }
        if remaining < 8 {
            break Some("a frame header ends the file");
        }
        let mut header = [0u8; 8];
        reader.read_exact(&mut header).map_err(io_err("read"))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if u64::from(len) > remaining - 8 {
            break Some("a frame runs past the end of the file");
        }
        if len == 0 || len > MAX_FRAME {
            break Some("a frame has an impossible length");
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload).map_err(io_err("read"))?;
        if crc32fast::hash(&payload) != crc {
            break Some("a frame fails its CRC");
        }
        state.apply_frame(&payload, offset, path.parent().unwrap_or(path))?;
        offset += 8 + u64::from(len);
    };
    if let Some(what) = torn {
        // Only the last, unsynced append can be damaged by a crash: the damage must reach the end
        // of the file, or be followed by nothing but zeros.
        let frame_reaches_end = what == "a frame runs past the end of the file"
            || what == "a frame header ends the file"
            || (what == "a frame fails its CRC" && offset + 8 + payload.len() as u64 == file_len);
        if !frame_reaches_end && !zeros_from(path, offset)? {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                offset,
                what: format!("{what}, and data follows it"),
            });
        }
        tracing::warn!(
            log = %path.display(),
            offset,
            dropped_bytes = file_len - offset,
            reason = what,
            "cutting off the torn tail of a face log"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err("open for repair"))?;
        file.set_len(offset).map_err(io_err("truncate"))?;
        file.sync_all().map_err(io_err("sync"))?;
    }
    Ok(offset)
}

fn zeros_from(path: &Path, offset: u64) -> Result<bool, StoreError> {
    let mut file = open_read(path)?;
    let mut rest = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_to_end(&mut rest))
        .map_err(|source| StoreError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(rest.iter().all(|b| *b == 0))
}

fn open_read(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(|source| StoreError::Io {
        action: "open",
        path: path.to_path_buf(),
        source,
    })
}

fn create_dir_all(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes a new file and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = File::create(path).map_err(|source| StoreError::Io {
        action: "create",
        path: path.to_path_buf(),
        source,
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|source| StoreError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
}

/// Fsyncs a directory so that renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            action: "sync directory",
            path: dir.to_path_buf(),
            source,
        })
}

/// The collections under `root`, sorted by id; temporary directories are not collections.
pub fn list_collection_dirs(root: &Path) -> Result<Vec<CollectionId>, StoreError> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                action: "list",
                path: root.to_path_buf(),
                source,
            })
        }
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io {
            action: "list",
            path: root.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Ok(id) = CollectionId::parse(name) {
            if entry.path().join(MANIFEST).is_file() {
                ids.push(id);
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// Removes what interrupted creations and deletions left under `root` (names starting with `~`,
/// which no collection id can have).
pub fn clean_leftovers(root: &Path) -> Result<(), StoreError> {
    let Ok(entries) = fs::read_dir(root) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('~') {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(|source| StoreError::Io {
                action: "remove the leftover",
                path,
                source,
            })?;
        }
    }
    Ok(())
}

/// Deletes a collection directory: renamed aside first (atomic), then removed.
pub fn remove_collection_dir(root: &Path, id: &CollectionId) -> Result<(), StoreError> {
    let dir = root.join(id.as_str());
    let aside = root.join(format!("~deleting-{}-{}", id, uuid::Uuid::new_v4()));
    fs::rename(&dir, &aside).map_err(|source| StoreError::Io {
        action: "move aside for deletion",
        path: dir,
        source,
    })?;
    sync_dir(root)?;
    fs::remove_dir_all(&aside).map_err(|source| StoreError::Io {
        action: "remove",
        path: aside,
        source,
    })
}
