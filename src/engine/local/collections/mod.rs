//! Face collections on disk, under `<data_dir>/collections/<collection_id>/`: a manifest and an
//! append-only log of framed records, replayed into an in-memory
//! [`VectorIndex`](super::index::VectorIndex) plus compact id tables when the collection is opened.
//! One IndexFaces call is one record, written and fsynced before it becomes visible, so a crash
//! leaves either the whole call or none of it.
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
//!
//! # Layout
//!
//! `format.rs` encodes and decodes records and frames, `replay.rs` rebuilds the state from a log on
//! open, `state.rs` is the in-memory state (the index and the id tables), `collection.rs` the
//! [`Collection`] API, `compact.rs` the log rewrite, and `dirs.rs` the directory-level operations.

mod collection;
mod compact;
mod dirs;
mod format;
mod replay;
mod state;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::CollectionId;
use crate::rekognition::wire;

pub use collection::Collection;
pub use dirs::{clean_leftovers, list_collection_dirs, remove_collection_dir, sync_dir};
pub use state::MemoryCollection;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The log's file name.
pub const LOG: &str = "faces.log";

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
