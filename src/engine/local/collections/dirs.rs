//! Directory-level operations on the collections root: listing collections, removing one (renamed
//! aside first), cleaning what interrupted creations and deletions left, and the file helpers that
//! make a new file or directory entry durable.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::{StoreError, MANIFEST};
use crate::model::CollectionId;

/// Opens a file for reading.
pub(super) fn open_read(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(|source| StoreError::Io {
        action: "open",
        path: path.to_path_buf(),
        source,
    })
}

/// Creates a directory and its parents.
pub(super) fn create_dir_all(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes a new file and fsyncs it.
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
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
