//! Input files: walking folders without following anything blindly, and reading files within a
//! bound. Symlinks to regular files and folders are followed; loops, unreadable entries, FIFOs,
//! devices and sockets are reported by path and skipped, so one bad entry never ends or hangs a run.
//! A file's size is checked from its metadata before a byte is read, and reads stop at the limit.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why an entry of a walk was skipped, or why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The entry does not exist (or a symlink points nowhere).
    #[error("{path}: does not exist (or is a link to nothing)")]
    Missing {
        /// The entry.
        path: PathBuf,
    },
    /// The entry (a folder or file) cannot be read.
    #[error("{path}: cannot be read")]
    Unreadable {
        /// The entry.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A symlink leads back into a folder already being walked.
    #[error("{path}: a link back to {target}, already walked; skipped so that the walk ends")]
    Loop {
        /// The link.
        path: PathBuf,
        /// The folder it leads to.
        target: PathBuf,
    },
    /// Not a regular file or folder.
    #[error("{path}: is a {kind}, not a regular file")]
    NotRegular {
        /// The entry.
        path: PathBuf,
        /// `FIFO`, `character device`, `block device`, `socket`.
        kind: &'static str,
    },
    /// Larger than the limit, by its metadata or as read.
    #[error("{path}: is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least `limit + 1` when it grew while read).
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl FileError {
    /// The entry the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Missing { path }
            | Self::Unreadable { path, .. }
            | Self::Loop { path, .. }
            | Self::NotRegular { path, .. }
            | Self::TooLarge { path, .. } => path,
        }
    }
}

/// What a walk found: regular files in walk order, and every entry it skipped, with why.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files (or symlinks to them), sorted by path within each folder.
    pub files: Vec<PathBuf>,
    /// Entries skipped.
    pub skipped: Vec<FileError>,
}

/// Walks files and folders: a file is taken as given, a folder recursively in name order with
/// hidden entries (names starting with `.`) left out. Nothing is read but metadata.
pub fn walk(paths: &[PathBuf]) -> Walk {
    let mut walk = Walk::default();
    let mut on_path: Vec<(u64, u64)> = Vec::new();
    let mut walked: HashSet<(u64, u64)> = HashSet::new();
    for p in paths {
        visit(p, &mut on_path, &mut walked, &mut walk);
    }
    walk
}

fn visit(
    path: &Path,
    on_path: &mut Vec<(u64, u64)>,
    walked: &mut HashSet<(u64, u64)>,
    walk: &mut Walk,
) {
    // Follows a symlink once, to see what it leads to; a dangling one is reported.
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            walk.skipped.push(FileError::Missing {
                path: path.to_owned(),
            });
            return;
        }
        Err(source) => {
            walk.skipped.push(FileError::Unreadable {
                path: path.to_owned(),
                source,
            });
            return;
        }
    };
    if meta.is_file() {
        walk.files.push(path.to_owned());
        return;
    }
    if !meta.is_dir() {
        walk.skipped.push(FileError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(&meta),
        });
        return;
    }
    let id = (meta.dev(), meta.ino());
    if on_path.contains(&id) || !walked.insert(id) {
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        walk.skipped.push(FileError::Loop {
            path: path.to_owned(),
            target,
        });
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(source) => {
            walk.skipped.push(FileError::Unreadable {
                path: path.to_owned(),
                source,
            });
            return;
        }
    };
    let mut children = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => {
                let hidden = e.file_name().to_str().is_some_and(|n| n.starts_with('.'));
                if !hidden {
                    children.push(e.path());
                }
            }
            Err(source) => walk.skipped.push(FileError::Unreadable {
                path: path.to_owned(),
                source,
            }),
        }
    }
    children.sort();
    on_path.push(id);
    for child in children {
        visit(&child, on_path, walked, walk);
    }
    on_path.pop();
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Reads a regular file of at most `limit` bytes. The file is opened without blocking (a FIFO put
/// in its place cannot hang the read), checked to be regular and within the limit from its
/// metadata before any byte is read, and read no further than the limit.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let unreadable = |source| FileError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FileError::Missing {
                path: path.to_owned(),
            },
            _ => unreadable(e),
        })?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_owned(),
            kind: kind_of(&meta),
        });
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    read_at_most(file, limit, &mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Reads up to `limit + 1` bytes, so that a file that grew past the limit is seen to.
fn read_at_most(file: File, limit: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    file.take(limit.saturating_add(1)).read_to_end(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(walk: &Walk, root: &Path) -> Vec<String> {
        walk.files
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn links_to_files_and_folders_are_followed_and_loops_are_skipped_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("a")).unwrap();
        std::fs::write(root.join("a/one.jpg"), b"1").unwrap();
        std::fs::write(root.join("two.jpg"), b"2").unwrap();
        std::fs::write(root.join(".hidden.jpg"), b"h").unwrap();
        symlink(root.join("two.jpg"), root.join("link.jpg")).unwrap();
        symlink(root, root.join("a/back")).unwrap();
        symlink(root.join("nowhere"), root.join("dangling.jpg")).unwrap();
        let walk = walk(&[root.to_owned()]);
        assert_eq!(names(&walk, root), ["a/one.jpg", "link.jpg", "two.jpg"]);
        let skipped: Vec<String> = walk.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped
            .iter()
            .any(|s| s.contains("a/back") && s.contains("link back")));
        assert!(skipped
            .iter()
            .any(|s| s.contains("dangling.jpg") && s.contains("does not exist")));
    }

    #[test]
    fn fifos_and_devices_are_skipped_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let fifo = root.join("pipe.jpg");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        symlink("/dev/zero", root.join("zero.jpg")).unwrap();
        let walk = walk(&[root.to_owned()]);
        assert!(walk.files.is_empty(), "{:?}", walk.files);
        let skipped: Vec<String> = walk.skipped.iter().map(ToString::to_string).collect();
        assert!(skipped
            .iter()
            .any(|s| s.contains("pipe.jpg") && s.contains("FIFO")));
        assert!(skipped
            .iter()
            .any(|s| s.contains("zero.jpg") && s.contains("character device")));
        let err = read_bounded(&fifo, 10).unwrap_err();
        assert!(
            matches!(err, FileError::NotRegular { kind: "FIFO", .. }),
            "{err}"
        );
        let err = read_bounded(&root.join("zero.jpg"), 10).unwrap_err();
        assert!(matches!(err, FileError::NotRegular { .. }), "{err}");
    }

    #[test]
    fn sizes_are_checked_before_reading_and_reads_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("sparse.jpg");
        let f = File::create(&big).unwrap();
        f.set_len(3 << 30).unwrap();
        let err = read_bounded(&big, 15 << 20).unwrap_err();
        assert!(
            matches!(err, FileError::TooLarge { size, .. } if size == 3 << 30),
            "{err}"
        );
        let small = dir.path().join("small.jpg");
        std::fs::write(&small, b"12345").unwrap();
        assert_eq!(read_bounded(&small, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&small, 4).unwrap_err(),
            FileError::TooLarge { .. }
        ));
    }

    #[test]
    fn an_entry_that_cannot_be_read_is_reported_and_the_rest_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("open.jpg"), b"o").unwrap();
        // A path through a file fails with ENOTDIR for every user, root included.
        let through_file = root.join("open.jpg").join("inside");
        let walk = walk(&[through_file.clone(), root.to_owned()]);
        assert_eq!(names(&walk, root), ["open.jpg"]);
        assert_eq!(walk.skipped.len(), 1);
        assert!(
            matches!(&walk.skipped[0], FileError::Unreadable { path, .. } if *path == through_file)
        );
        assert!(walk.skipped[0].to_string().contains("open.jpg/inside"));
    }
}
