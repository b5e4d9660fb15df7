//! The commands that run the local engine on directories of photos: `match-faces` (the proof of
//! concept's cross-match of a directory), `ingest` (the whole pipeline: index, search, store,
//! adjudicate, cluster) and `eval` (accuracy on a labelled set). What they share lives here: which
//! files a directory holds and the external image id of each, the argument parsers, the progress bar.

pub mod eval;
pub mod eval_adjudication;
pub mod ingest;
pub mod labels;
pub mod match_faces;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::QualityFilter;
use crate::files::{walk, FileError};
use crate::model::{ExternalImageId, ParseError, Similarity};

/// One input file of a directory and the external image id it is indexed under.
#[derive(Clone, Debug)]
pub struct PhotoFile {
    /// The file.
    pub path: PathBuf,
    /// Its path relative to the directory, as printed.
    pub name: String,
    /// Its external image id: the relative path with `/` as `:`, other characters that
    /// Rekognition refuses as `_`.
    pub external_image_id: ExternalImageId,
}

/// An entry of a photo directory that is not offered to the engine, and why.
#[derive(Debug, thiserror::Error)]
pub enum PhotoSkip {
    /// The walk refused it (unreadable, a loop, not a regular file...).
    #[error(transparent)]
    File(#[from] FileError),
    /// Its name gives no external image id.
    #[error("{path}: no external image id can be made of its name")]
    NoId {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ParseError,
    },
    /// Its name gives the external image id of a file listed before it.
    #[error(
        "{path}: its external image id {external_image_id} is also the id of {first}; rename one"
    )]
    Collision {
        /// The file skipped.
        path: PathBuf,
        /// The id both names give.
        external_image_id: ExternalImageId,
        /// The file that keeps the id.
        first: PathBuf,
    },
}

/// What a photo directory offers: the files with their external image ids, and what was skipped.
#[derive(Debug, Default)]
pub struct PhotoDir {
    /// The files, sorted by path.
    pub files: Vec<PhotoFile>,
    /// Entries skipped, each with its reason.
    pub skipped: Vec<PhotoSkip>,
}

/// Every file under `dir` (recursively, sorted, hidden files and directories left out, by the
/// rules of [`crate::files::walk`]) with its external image id. Every file is offered to the engine,
/// whatever its name: the format is recognised from the bytes. Of two files whose names give the
/// same external image id, the second is skipped and reported.
pub fn photo_files(dir: &Path) -> Result<PhotoDir> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let walked = walk(&[dir.to_owned()]);
    let mut out = PhotoDir {
        skipped: walked.skipped.into_iter().map(PhotoSkip::File).collect(),
        ..PhotoDir::default()
    };
    let mut seen: HashMap<ExternalImageId, PathBuf> = HashMap::new();
    for path in walked.files {
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let external_image_id = match ExternalImageId::from_file_name(&name.replace('/', ":")) {
            Ok(id) => id,
            Err(source) => {
                out.skipped.push(PhotoSkip::NoId { path, source });
                continue;
            }
        };
        if let Some(first) = seen.get(&external_image_id) {
            out.skipped.push(PhotoSkip::Collision {
                path,
                external_image_id,
                first: first.clone(),
            });
            continue;
        }
        seen.insert(external_image_id.clone(), path.clone());
        out.files.push(PhotoFile {
            path,
            name,
            external_image_id,
        });
    }
    Ok(out)
}

/// Parses a match confidence threshold, refusing what is not a number from 0 to 100 with a message
/// that names the value and the range.
pub fn parse_threshold(s: &str) -> Result<Similarity, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number: give a similarity from 0 to 100"))?;
    Similarity::new(v).map_err(|_| format!("{s} is out of range: give a similarity from 0 to 100"))
}

/// Parses Rekognition's `QualityFilter` (NONE, AUTO, LOW, MEDIUM, HIGH; any case).
pub fn parse_quality_filter(s: &str) -> Result<QualityFilter, String> {
    QualityFilter::parse(s.trim()).ok_or_else(|| {
        format!("{s:?} is not a quality filter: give NONE, AUTO, LOW, MEDIUM or HIGH")
    })
}

/// Runs `work` on every item with one thread per core and hands each result to `done` on the
/// calling thread as soon as it is ready (in completion order), with the item's index.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(usize, R),
) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (tx, work, next) = (tx.clone(), &work, &next);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                if tx.send((i, work(item))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            done(i, r);
        }
    });
}

/// A progress bar on standard error, drawn only when it is a terminal (never into logs or pipes).
pub fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}}) {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_get_external_ids_from_their_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("batch 1")).unwrap();
        std::fs::write(dir.path().join("batch 1/ana é.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("b.png"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden.jpg"), b"x").unwrap();
        let files = photo_files(dir.path()).unwrap().files;
        let ids: Vec<&str> = files.iter().map(|f| f.external_image_id.as_str()).collect();
        assert_eq!(ids, ["b.png", "batch_1:ana__.jpg"]);
        assert_eq!(files[1].name, "batch 1/ana é.jpg");
    }

    #[test]
    fn of_names_that_collide_the_second_is_skipped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a b.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("a_b.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("c.jpg"), b"x").unwrap();
        let found = photo_files(dir.path()).unwrap();
        let names: Vec<&str> = found.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a b.jpg", "c.jpg"]);
        let err = found.skipped[0].to_string();
        assert!(err.contains("a_b.jpg") && err.contains("rename"), "{err}");
    }

    #[test]
    fn parallel_map_hands_back_every_result_once() {
        let items: Vec<u32> = (0..50).collect();
        let mut got = vec![None; items.len()];
        parallel_map(
            &items,
            |x| x * 2,
            |i, r| {
                assert!(got[i].replace(r).is_none());
            },
        );
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, r)| *r == Some(2 * i as u32)));
    }

    #[test]
    fn thresholds_outside_0_to_100_are_refused_by_value() {
        assert_eq!(parse_threshold("98.5").unwrap().get(), 98.5);
        let err = parse_threshold("120").unwrap_err();
        assert!(err.contains("120") && err.contains("0 to 100"), "{err}");
        assert!(parse_threshold("-1").is_err());
        assert!(parse_threshold("high").unwrap_err().contains("\"high\""));
    }
}
