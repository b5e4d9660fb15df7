//! Compaction: the log is rewritten with only the live faces into a temporary file, which is
//! fsynced and renamed over the log, and the in-memory state is rebuilt from the records written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::MutexGuard;

use serde_json::value::RawValue;

use super::collection::LogWriter;
use super::dirs::{open_read, sync_dir};
use super::format::{encode_image_frame, frame_header, LOG_MAGIC};
use super::state::{ImageEntry, State};
use super::{Collection, ImageDoc, NewFace, NewImage, StoreError, LOG};

/// The log being rewritten by compaction.
pub(super) const LOG_COMPACT: &str = "faces.log.compact";
/// Compaction runs once this many rows are deleted and they are a quarter of the live rows.
const COMPACT_MIN_DEAD: usize = 4096;

/// Whether a delete should be followed by a compaction: deleted rows are both many and a quarter
/// of the live ones.
pub(super) fn wants_compaction(state: &State) -> bool {
    let dead = state.index.dead();
    dead >= COMPACT_MIN_DEAD && dead * 4 >= state.index.live()
}

impl Collection {
    /// Compacts with the writer lock held: the live faces are written to a temporary log, which
    /// then replaces the log, and the state is rebuilt from it.
    pub(super) fn compact_locked(
        &self,
        log: &mut MutexGuard<'_, LogWriter>,
    ) -> Result<(), StoreError> {
        let mut state = self.write_state()?;
        let tmp_path = self.dir.join(LOG_COMPACT);
        let (fresh, len) = self.write_compacted(&state, &tmp_path)?;
        self.swap_in_compacted(log, &tmp_path, len)?;
        *state = fresh;
        Ok(())
    }

    /// Writes the live faces of every image to `tmp_path` and fsyncs it; returns the state its
    /// records make and its length.
    fn write_compacted(&self, state: &State, tmp_path: &Path) -> Result<(State, u64), StoreError> {
        let mut tmp = File::create(tmp_path).map_err(|source| StoreError::Io {
            action: "create",
            path: tmp_path.to_path_buf(),
            source,
        })?;
        let mut fresh = State::new(self.manifest.embedding_dim as usize, self.threads);
        let mut offset = LOG_MAGIC.len() as u64;
        let mut out = io::BufWriter::new(&mut tmp);
        let io_err = |source| StoreError::Io {
            action: "write",
            path: tmp_path.to_path_buf(),
            source,
        };
        out.write_all(LOG_MAGIC).map_err(io_err)?;
        for image in &state.images {
            let encoded = self.live_record(state, image)?;
            out.write_all(&frame_header(&encoded)).map_err(io_err)?;
            out.write_all(&encoded).map_err(io_err)?;
            fresh.apply_frame(&encoded, offset, &self.dir)?;
            offset += 8 + encoded.len() as u64;
        }
        out.flush().map_err(io_err)?;
        drop(out);
        tmp.sync_all().map_err(io_err)?;
        Ok((fresh, offset))
    }

    /// The payload of an image's record with only its live faces; the count of faces indexed by
    /// the original call is kept.
    fn live_record(&self, state: &State, image: &ImageEntry) -> Result<Vec<u8>, StoreError> {
        let bytes = self.read_frame(image)?;
        let frame = self.decode_image_frame(&bytes, image.frame_offset)?;
        let doc = self.decode_doc(frame.doc, image.frame_offset)?;
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
            let record = doc.face_records.get(i).map(|r| r.get().to_owned());
            let Some(record) = record.and_then(|r| RawValue::from_string(r).ok()) else {
                return Err(self.corrupt(image.frame_offset, "a face has no record"));
            };
            kept.faces.push(NewFace {
                id: *id,
                largest: *largest,
                embedding: frame.embedding(i),
            });
            kept.doc.face_records.push(record);
        }
        encode_image_frame(&kept, frame.faces_indexed, frame.dim).map_err(|source| {
            StoreError::Encode {
                collection: self.id.clone(),
                source,
            }
        })
    }

    /// Renames the compacted log over the log, fsyncs the directory, and reopens the append and
    /// read handles on the new file.
    fn swap_in_compacted(
        &self,
        log: &mut LogWriter,
        tmp_path: &Path,
        len: u64,
    ) -> Result<(), StoreError> {
        let log_path = self.dir.join(LOG);
        fs::rename(tmp_path, &log_path).map_err(|source| StoreError::Io {
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
        log.len = len;
        *self.lock_reader()? = open_read(&log_path)?;
        Ok(())
    }
}
