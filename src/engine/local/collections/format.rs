//! The log's binary format: the magic, frames of `u32 length | u32 CRC32 | payload`, and the
//! payloads of image and delete records, encoded and decoded with every field's bounds checked.

use super::{FaceKey, ImageKey, NewImage};

/// The first bytes of a log, with the format version in the last byte.
pub(super) const LOG_MAGIC: &[u8; 8] = b"FGFACES\x01";
/// The largest payload a frame may have; anything larger is damage, not data.
pub(super) const MAX_FRAME: u32 = 64 << 20;
const KIND_IMAGE: u8 = 1;
const KIND_DELETE: u8 = 2;
/// No external image id, in the `u16` length field.
pub(super) const NO_EXTERNAL_ID: u16 = u16::MAX;

/// A decoded image record.
#[derive(Debug)]
pub(super) struct ImageFrame<'a> {
    pub(super) image_id: ImageKey,
    pub(super) external_image_id: Option<&'a str>,
    pub(super) indexed_at_ms: i64,
    pub(super) faces_indexed: u16,
    pub(super) faces: Vec<(FaceKey, bool)>,
    pub(super) dim: usize,
    pub(super) embeddings: &'a [u8],
    pub(super) doc: &'a [u8],
}

/// A decoded record.
#[derive(Debug)]
pub(super) enum Record<'a> {
    Image(ImageFrame<'a>),
    Delete(Vec<FaceKey>),
}

impl ImageFrame<'_> {
    /// The embedding of the record's `i`-th face (empty if the record is short of it).
    pub(super) fn embedding(&self, i: usize) -> Vec<f32> {
        self.embeddings
            .get(i * self.dim * 4..(i + 1) * self.dim * 4)
            .map(decode_f32s)
            .unwrap_or_default()
    }
}

/// The 8-byte header of a frame: payload length and CRC32.
pub(super) fn frame_header(payload: &[u8]) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// The payload of an image record; `faces_indexed` is how many faces the IndexFaces call indexed,
/// which compaction keeps when it drops deleted faces.
pub(super) fn encode_image_frame(
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

/// The payload of a delete record.
pub(super) fn encode_delete_frame(ids: &[FaceKey]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + 16 * ids.len());
    frame.push(KIND_DELETE);
    frame.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        frame.extend_from_slice(id);
    }
    frame
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

/// Decodes a frame's payload; the error says what part of the record is damaged.
pub(super) fn decode_record(payload: &[u8]) -> Result<Record<'_>, String> {
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

pub(super) fn decode_f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
