//! Replay on open: the log's frames are applied in order to the in-memory state, and a torn tail
//! (what a crash during the one unsynced append leaves) is cut off, while damage followed by data
//! fails the open rather than dropping acknowledged records.

use std::fs::OpenOptions;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::dirs::open_read;
use super::format::{LOG_MAGIC, MAX_FRAME};
use super::state::State;
use super::StoreError;

/// Replays a log into `state`, cutting off a torn tail; returns the length of the good log.
pub(super) fn replay(path: &Path, state: &mut State) -> Result<u64, StoreError> {
    let file = open_read(path)?;
    let file_len = file.metadata().map_err(io_err(path, "inspect"))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    check_magic(&mut reader, path, file_len)?;
    let (offset, torn) = replay_frames(&mut reader, path, file_len, state)?;
    if let Some(torn) = torn {
        cut_torn_tail(path, offset, file_len, &torn)?;
    }
    Ok(offset)
}

/// Why replay stopped before the end of the file.
struct Torn {
    /// What is wrong with the frame.
    what: &'static str,
    /// Whether the damaged frame reaches the end of the file.
    reaches_end: bool,
}

fn io_err<'a>(path: &'a Path, action: &'static str) -> impl Fn(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that the log starts with the magic of format 1.
fn check_magic(reader: &mut impl Read, path: &Path, file_len: u64) -> Result<(), StoreError> {
    let mut magic = [0u8; 8];
    if file_len < 8 {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: "the log is shorter than its header".to_owned(),
        });
    }
    reader
        .read_exact(&mut magic)
        .map_err(io_err(path, "read"))?;
    if &magic != LOG_MAGIC {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: "not a facegraph face log of format 1".to_owned(),
        });
    }
    Ok(())
}

/// Applies every good frame after the magic; returns the offset after the last of them, and why
/// replay stopped there when it is not the end of the file.
fn replay_frames(
    reader: &mut impl Read,
    path: &Path,
    file_len: u64,
    state: &mut State,
) -> Result<(u64, Option<Torn>), StoreError> {
    let mut offset = 8u64;
    let mut payload = Vec::new();
    let torn = |what, reaches_end| Some(Torn { what, reaches_end });
    loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            return Ok((offset, None));
        }
        if remaining < 8 {
            return Ok((offset, torn("a frame header ends the file", true)));
        }
        let mut header = [0u8; 8];
        reader
            .read_exact(&mut header)
            .map_err(io_err(path, "read"))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if u64::from(len) > remaining - 8 {
            return Ok((offset, torn("a frame runs past the end of the file", true)));
        }
        if len == 0 || len > MAX_FRAME {
            return Ok((offset, torn("a frame has an impossible length", false)));
        }
        payload.resize(len as usize, 0);
        reader
            .read_exact(&mut payload)
            .map_err(io_err(path, "read"))?;
        if crc32fast::hash(&payload) != crc {
            let reaches_end = offset + 8 + u64::from(len) == file_len;
            return Ok((offset, torn("a frame fails its CRC", reaches_end)));
        }
        state.apply_frame(&payload, offset, path.parent().unwrap_or(path))?;
        offset += 8 + u64::from(len);
    }
}

/// Cuts the log at `offset` after checking that the damage there is a torn tail.
fn cut_torn_tail(path: &Path, offset: u64, file_len: u64, torn: &Torn) -> Result<(), StoreError> {
    // Only the last, unsynced append can be damaged by a crash: the damage must reach the end
    // of the file, or be followed by nothing but zeros.
    if !torn.reaches_end && !zeros_from(path, offset)? {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset,
            what: format!("{}, and data follows it", torn.what),
        });
    }
    tracing::warn!(
        log = %path.display(),
        offset,
        dropped_bytes = file_len - offset,
        reason = torn.what,
        "cutting off the torn tail of a face log"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path, "open for repair"))?;
    file.set_len(offset).map_err(io_err(path, "truncate"))?;
    file.sync_all().map_err(io_err(path, "sync"))
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
