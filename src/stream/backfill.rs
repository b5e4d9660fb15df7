//! The backfill: a manifest of past uploads (CSV: `path,external_image_id,subject_id,uploaded_at`)
//! processed one day at a time in date order, each day adjudicated before the next, with a cursor
//! in the store (the last day done) so that a backfill that was stopped resumes at the day it was
//! in. Within that day, uploads already complete are duplicates and cost a lookup, and an upload a
//! crash interrupted is completed from the engine's record; nothing is analysed twice. Instead of
//! processing the uploads here, a backfill can publish them to the uploads topic.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rdkafka::producer::FutureProducer;
use serde::Deserialize;

use super::kafka::{send_all, Outgoing};
use super::messages::{UploadMessage, VERSION};
use super::StreamError;
use crate::engine::local::ImageLimits;
use crate::engine::{EngineError, FaceEngine};
use crate::errors::chain;
use crate::files::read_bounded;
use crate::model::{CollectionId, ExternalImageId, SubjectId, Timestamp};
use crate::service::{Facegraph, ImageIngest, Readjudication, SearchOptions, ServiceError};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The manifest could not be read.
    #[error("cannot read the manifest {path}")]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: csv::Error,
    },
    /// A row is invalid.
    #[error("{path}, line {line}: {message}")]
    Row {
        /// The manifest.
        path: PathBuf,
        /// The line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A day is not `YYYY-MM-DD`.
    #[error("{0:?} is not a day: give YYYY-MM-DD")]
    Day(String),
}

/// A day (UTC), as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, BackfillError> {
        let bad = || BackfillError::Day(s.to_owned());
        let mut parts = s.trim().splitn(3, '-');
        let mut next = |digits: usize| -> Result<i64, BackfillError> {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != digits || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let (y, m, d) = (next(4)?, next(2)?, next(2)?);
        let month = u8::try_from(m)
            .ok()
            .and_then(|m| time::Month::try_from(m).ok())
            .ok_or_else(bad)?;
        let day = u8::try_from(d).map_err(|_| bad())?;
        // Four digits: the year fits.
        let year = i32::try_from(y).map_err(|_| bad())?;
        let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
        Ok(Self(
            i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY,
        ))
    }

    /// The day a moment falls on.
    pub fn of(t: Timestamp) -> Self {
        Self(t.millis().div_euclid(DAY_MS))
    }

    /// The day after.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = i32::try_from(self.0 + UNIX_EPOCH_JULIAN_DAY)
            .ok()
            .and_then(|j| time::Date::from_julian_day(j).ok());
        match date {
            Some(d) => write!(
                f,
                "{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
            // Beyond the calendar's years (±9999): the count itself.
            None => write!(f, "day {} of 1970-01-01", self.0),
        }
    }
}

/// The Julian day number of 1970-01-01, the first day of [`Day`]'s count.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// One upload of the manifest.
#[derive(Clone, Debug)]
pub struct ManifestRow {
    /// Its line in the manifest.
    pub line: u64,
    /// The image file (a relative path is relative to the manifest's folder).
    pub path: PathBuf,
    /// Its external image id.
    pub external_image_id: ExternalImageId,
    /// The customer behind it.
    pub subject_id: Option<SubjectId>,
    /// When it was uploaded.
    pub uploaded_at: Timestamp,
}

#[derive(Deserialize)]
struct RawRow {
    path: String,
    external_image_id: String,
    subject_id: Option<String>,
    uploaded_at: String,
}

/// Reads a manifest; every invalid row is an error naming its line.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, BackfillError> {
    let read = |source| BackfillError::Read {
        path: path.to_owned(),
        source,
    };
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
        .unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(read)?;
    let mut rows = Vec::new();
    for record in reader.deserialize::<RawRow>() {
        let raw = record.map_err(read)?;
        let line = rows.len() as u64 + 2;
        let row_error = |message: String| BackfillError::Row {
            path: path.to_owned(),
            line,
            message,
        };
        let external_image_id =
            ExternalImageId::parse(&raw.external_image_id).map_err(|e| row_error(e.to_string()))?;
        let subject_id = raw
            .subject_id
            .filter(|s| !s.is_empty())
            .map(|s| SubjectId::parse(&s))
            .transpose()
            .map_err(|e| row_error(e.to_string()))?;
        let uploaded_at = parse_time(&raw.uploaded_at).ok_or_else(|| {
            row_error(format!(
                "uploaded_at {:?} is not RFC 3339 (2024-01-31T12:00:00Z) or a day (2024-01-31)",
                raw.uploaded_at
            ))
        })?;
        if raw.path.is_empty() {
            return Err(row_error("the path is empty".to_owned()));
        }
        rows.push(ManifestRow {
            line,
            path: dir.join(&raw.path),
            external_image_id,
            subject_id,
            uploaded_at,
        });
    }
    Ok(rows)
}

/// RFC 3339 (a `T` or a space between date and time; UTC) or a day.
fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(day) = Day::parse(s) {
        return Some(Timestamp::from_millis(day.0 * DAY_MS));
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(Timestamp::from_millis(i64::try_from(ms).ok()?))
}

/// The rows of each day from `from` to `to` (inclusive; open when `None`), days in order and each
/// day's uploads in the order they were uploaded.
pub fn days(
    rows: Vec<ManifestRow>,
    from: Option<Day>,
    to: Option<Day>,
) -> BTreeMap<Day, Vec<ManifestRow>> {
    let mut out: BTreeMap<Day, Vec<ManifestRow>> = BTreeMap::new();
    for r in rows {
        let day = Day::of(r.uploaded_at);
        if from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
            continue;
        }
        out.entry(day).or_default().push(r);
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| (r.uploaded_at, r.line));
    }
    out
}

/// The name of a manifest's cursor in the store: its absolute path, so that one manifest resumes
/// where it stopped and another starts afresh.
pub fn cursor_name(manifest: &Path) -> String {
    let path = std::fs::canonicalize(manifest)
        .or_else(|_| std::path::absolute(manifest))
        .unwrap_or_else(|_| manifest.to_owned());
    format!("backfill:{}", path.display())
}

/// The last day a backfill of this cursor finished, from the store.
pub fn last_day(graph: &Facegraph, cursor: &str) -> Result<Option<Day>, ServiceError> {
    match graph.store().stream_cursor(cursor)? {
        None => Ok(None),
        Some(v) => Day::parse(&v).map(Some).map_err(|_| {
            ServiceError::Invalid(format!(
                "the backfill cursor {cursor} holds {v:?}, not a day"
            ))
        }),
    }
}

/// What processing a day did.
#[derive(Debug, Default)]
pub struct DayReport {
    /// Uploads indexed, searched and stored.
    pub ingested: usize,
    /// Uploads stored before (nothing done).
    pub duplicates: usize,
    /// Uploads with no face.
    pub faceless: usize,
    /// Uploads refused, with why.
    pub rejected: Vec<(ManifestRow, String)>,
    /// The adjudication that closed the day.
    pub adjudication: Readjudication,
}

/// How a backfill ingests.
#[derive(Debug, Clone, Copy)]
pub struct DayOptions<'a> {
    /// The collection.
    pub collection_id: &'a CollectionId,
    /// How faces are searched.
    pub search: SearchOptions,
    /// Uploads processed at once.
    pub threads: usize,
    /// The store's cursor of this manifest.
    pub cursor: &'a str,
}

/// Processes a day: every upload through the index and search stages (`threads` at once), then
/// one adjudication, then the cursor moves to the day. An upload that cannot be read or that the
/// engine refuses is reported and the day goes on; a failure of the store or the engine ends it
/// (the cursor stays, and the next run does the day again).
pub fn run_day(
    graph: &Facegraph,
    engine: &dyn FaceEngine,
    day: Day,
    rows: &[ManifestRow],
    options: DayOptions<'_>,
    progress: &(dyn Fn() + Sync),
) -> Result<DayReport, ServiceError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Upload)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<ServiceError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(row) = rows.get(i) else { break };
                if lock(&failure).is_some() {
                    break;
                }
                match one(graph, engine, row, options) {
                    Ok(r) => lock(&results).push((i, r)),
                    Err(e) => {
                        lock(&failure).get_or_insert(e);
                        break;
                    }
                }
                progress();
            });
        }
    });
    if let Some(e) = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    let mut report = DayReport::default();
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    for (i, r) in results {
        match r {
            Upload::Duplicate => report.duplicates += 1,
            Upload::Ingested { faceless } => {
                report.ingested += 1;
                report.faceless += usize::from(faceless);
            }
            Upload::Refused(why) => report.rejected.push((rows[i].clone(), why)),
        }
    }
    report.adjudication = graph.adjudicate_changes()?;
    graph
        .store()
        .set_stream_cursor(options.cursor, &day.to_string())?;
    Ok(report)
}

/// What became of one upload of a day.
enum Upload {
    /// Stored before: nothing done.
    Duplicate,
    /// Indexed, searched and stored.
    Ingested { faceless: bool },
    /// Refused, with why.
    Refused(String),
}

/// One upload; a failure of the store or the engine is the error.
fn one(
    graph: &Facegraph,
    engine: &dyn FaceEngine,
    row: &ManifestRow,
    options: DayOptions<'_>,
) -> Result<Upload, ServiceError> {
    let bytes = match read_bounded(&row.path, ImageLimits::default().max_bytes as u64) {
        Ok(b) => b,
        Err(e) => return Ok(Upload::Refused(chain(&e))),
    };
    let source = row.path.display().to_string();
    let req = ImageIngest {
        external_image_id: Some(&row.external_image_id),
        subject_id: row.subject_id.as_ref(),
        source: Some(&source),
        search_threshold: options.search.threshold,
        max_matches: options.search.max_matches,
        received_at: Some(row.uploaded_at),
        ..ImageIngest::new(options.collection_id, &bytes)
    };
    match graph.stage_image(engine, &req) {
        Ok(staged) if staged.duplicate => Ok(Upload::Duplicate),
        Ok(staged) => Ok(Upload::Ingested {
            faceless: staged.face_ids.is_empty(),
        }),
        Err(
            e @ (ServiceError::Engine(
                EngineError::InvalidImage(_) | EngineError::InvalidParameter(_),
            )
            | ServiceError::Invalid(_)),
        ) => Ok(Upload::Refused(chain(&e))),
        Err(e) => Err(e),
    }
}

/// Publishes a day's uploads to the uploads topic (keyed by external image id, with an
/// idempotency key of the upload, so that publishing a day again adds nothing downstream) and
/// moves the cursor once the broker has them all. Returns how many were published.
pub async fn publish_day(
    graph: &Facegraph,
    producer: &FutureProducer,
    topic: &str,
    day: Day,
    rows: &[ManifestRow],
    cursor: &str,
) -> Result<usize, StreamError> {
    let messages: Vec<Outgoing> = rows
        .iter()
        .map(|r| {
            let m = UploadMessage {
                version: VERSION,
                image: r.path.display().to_string(),
                external_image_id: r.external_image_id.as_str().to_owned(),
                subject_id: r.subject_id.as_ref().map(|s| s.as_str().to_owned()),
                idempotency_key: Some(format!(
                    "backfill:{}:{}",
                    r.external_image_id,
                    r.uploaded_at.millis()
                )),
            };
            Outgoing {
                topic: topic.to_owned(),
                key: r.external_image_id.as_str().as_bytes().to_vec(),
                payload: serde_json::to_vec(&m).unwrap_or_default(),
                headers: Vec::new(),
            }
        })
        .collect();
    send_all(producer, &messages).await?;
    let graph = graph.clone();
    let (cursor, day) = (cursor.to_owned(), day.to_string());
    tokio::task::spawn_blocking(move || graph.store().set_stream_cursor(&cursor, &day))
        .await
        .map_err(|e| StreamError::Task(e.to_string()))??;
    Ok(messages.len())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_the_calendar() {
        for s in [
            "1970-01-01",
            "2000-02-29",
            "2024-12-31",
            "2025-03-01",
            "1969-12-31",
        ] {
            assert_eq!(Day::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Day::parse("1970-01-02").unwrap(), Day(1));
        assert_eq!(
            Day::parse("2024-02-28").unwrap().next().to_string(),
            "2024-02-29"
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "24-01-01",
            "2024-1-01",
            "yesterday",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
        let t = parse_time("2024-03-05T23:59:59Z").unwrap();
        assert_eq!(Day::of(t).to_string(), "2024-03-05");
        assert_eq!(
            Day::of(parse_time("2024-03-05").unwrap()).to_string(),
            "2024-03-05"
        );
    }

    #[test]
    fn a_manifest_is_read_into_days_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("manifest.csv");
        std::fs::write(
            &m,
            "path,external_image_id,subject_id,uploaded_at\n\
             b.jpg,b,c-2,2024-01-02T08:00:00Z\n\
             a.jpg,a,,2024-01-01T09:00:00Z\n\
             c.jpg,c,c-3,2024-01-02T07:00:00Z\n\
             d.jpg,d,c-4,2024-01-04\n",
        )
        .unwrap();
        let rows = read_manifest(&m).unwrap();
        assert_eq!(rows[0].path, dir.path().join("b.jpg"));
        assert!(rows[1].subject_id.is_none());
        let plan = days(rows, None, Day::parse("2024-01-03").ok());
        let shown: Vec<(String, Vec<&str>)> = plan
            .iter()
            .map(|(d, rows)| {
                (
                    d.to_string(),
                    rows.iter().map(|r| r.external_image_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("2024-01-01".to_owned(), vec!["a"]),
                ("2024-01-02".to_owned(), vec!["c", "b"]),
            ]
        );
        std::fs::write(
            &m,
            "path,external_image_id,subject_id,uploaded_at\na.jpg,a,,last tuesday\n",
        )
        .unwrap();
        let err = read_manifest(&m).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("uploaded_at"),
            "{err}"
        );
    }
}
