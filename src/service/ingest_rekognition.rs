//! Ingest of saved Rekognition responses: files or directories, recognised by content, each file
//! written in one transaction; index responses first so that searches can name their faces, then the
//! subjects, then the searches, then one adjudication of the graph.

use std::path::{Path, PathBuf};

use crate::files::{read_bounded, FileError};
use crate::model::{
    Collection, CollectionId, ExternalImageId, FaceId, Observation, SearchRecord, Similarity,
    SubjectId, Timestamp,
};
use crate::rekognition::{
    index_faces_to_domain, list_faces_to_domain, parse_saved, search_by_image_to_domain,
    search_to_domain, SavedResponse, SavedResponseError, SearchResult,
};
use crate::store::{FaceField, IngestBatch, StoreError};

use super::{Facegraph, Readjudication, ServiceError};

/// The largest saved response read, in bytes: ten times the largest the project has seen.
pub const MAX_SAVED_RESPONSE_BYTES: u64 = 64 << 20;

/// Why a saved response file was refused; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum SavedFileError {
    /// The file could not be read (it names itself).
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not a saved response, or a value in it is invalid.
    #[error(transparent)]
    Response(#[from] SavedResponseError),
    /// A search names a face that no index or list response introduced.
    #[error(
        "{field}: face {face} was not introduced by any IndexFaces or ListFaces response; ingest \
         the index response of its image first"
    )]
    UnknownFace {
        /// The JSON path of the member that names it.
        field: String,
        /// The face.
        face: FaceId,
    },
    /// The store refused the file's batch.
    #[error("the graph store refused it")]
    Store(#[source] StoreError),
}

/// What happened to one input file.
#[derive(Debug)]
pub enum FileOutcome {
    /// Read and stored.
    Ingested {
        /// The response's API (`IndexFaces`, ...).
        kind: &'static str,
        /// Faces new to the store.
        new_faces: usize,
        /// Edges new to the store.
        new_edges: usize,
    },
    /// Refused; nothing of it was stored.
    Rejected(SavedFileError),
    /// Refused because a face in it contradicts the record stored under the same face id (or
    /// given earlier in the same file); nothing of it was stored.
    Conflict(FaceConflict),
}

/// A face whose record in a file contradicts the one the store holds.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceConflict {
    /// The face.
    pub face_id: FaceId,
    /// The first part of its record that differs.
    pub field: FaceField,
    /// The stored value, as written in messages.
    pub stored: String,
    /// The file's value, as written in messages.
    pub incoming: String,
}

/// The summary of an ingest run.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Every file, in the order read, with its outcome.
    pub files: Vec<(PathBuf, FileOutcome)>,
    /// Faces new to the store.
    pub new_faces: usize,
    /// Faces in the files (new or not).
    pub faces_seen: usize,
    /// Edges new to the store.
    pub new_edges: usize,
    /// Edges whose observed similarity changed.
    pub changed_edges: usize,
    /// Image-subject links added or changed.
    pub subject_links: usize,
    /// The adjudication that followed.
    pub adjudication: Readjudication,
}

impl IngestReport {
    /// Files refused as unreadable or invalid.
    pub fn rejected(&self) -> impl Iterator<Item = (&PathBuf, &SavedFileError)> {
        self.files.iter().filter_map(|(p, o)| match o {
            FileOutcome::Rejected(e) => Some((p, e)),
            FileOutcome::Ingested { .. } | FileOutcome::Conflict(_) => None,
        })
    }

    /// Files refused because a face in them contradicts the stored one.
    pub fn conflicts(&self) -> impl Iterator<Item = (&PathBuf, &FaceConflict)> {
        self.files.iter().filter_map(|(p, o)| match o {
            FileOutcome::Conflict(conflict) => Some((p, conflict)),
            FileOutcome::Ingested { .. } | FileOutcome::Rejected(_) => None,
        })
    }
}

/// Options of an ingest run.
#[derive(Clone, Debug)]
pub struct RekognitionIngest {
    /// The collection the responses came from (saved responses do not name it).
    pub collection_id: CollectionId,
    /// Subjects by external image id, from the subjects CSV.
    pub subjects: Vec<(ExternalImageId, SubjectId)>,
}

/// Reads a subjects CSV with the header `external_image_id,subject_id`. Any invalid row refuses the
/// whole file, naming the line, so that nothing is linked from a half-read mapping.
pub fn read_subjects_csv(path: &Path) -> Result<Vec<(ExternalImageId, SubjectId)>, ServiceError> {
    let bad =
        |msg: String| ServiceError::Invalid(format!("subjects file {}: {msg}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(ext), Some(sub)) = (col("external_image_id"), col("subject_id")) else {
        return Err(bad(format!(
            "the header must name the columns external_image_id and subject_id (found: {})",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| bad(format!("line {line}: {e}")))?;
        let e = ExternalImageId::parse(row.get(ext).unwrap_or_default())
            .map_err(|e| bad(format!("line {line}: {e}")))?;
        let s = SubjectId::parse(row.get(sub).unwrap_or_default())
            .map_err(|e| bad(format!("line {line}: {e}")))?;
        out.push((e, s));
    }
    Ok(out)
}

enum Parsed {
    Index(IngestBatch, usize),
    Search(SearchResult),
}

impl Facegraph {
    /// Ingests saved Rekognition responses and adjudicates the graph. A file that cannot be read or
    /// converted is reported and skipped, as is one whose face contradicts the stored face of the
    /// same id (a [`FileOutcome::Conflict`]: files are stored in the order index responses come, so
    /// the first of two contradicting files wins); the others are stored, each in its own
    /// transaction.
    pub fn ingest_rekognition(
        &self,
        files: &[PathBuf],
        opts: &RekognitionIngest,
    ) -> Result<IngestReport, ServiceError> {
        let now = Timestamp::now();
        let mut report = IngestReport::default();
        let mut parsed: Vec<(usize, &'static str, Parsed)> = Vec::new();
        for (i, path) in files.iter().enumerate() {
            match self.parse_file(path, opts, now) {
                Ok((kind, p)) => {
                    // Settled below, once the file's batch is stored.
                    report.files.push((
                        path.clone(),
                        FileOutcome::Ingested {
                            kind,
                            new_faces: 0,
                            new_edges: 0,
                        },
                    ));
                    parsed.push((i, kind, p));
                }
                Err(e) => report.files.push((path.clone(), FileOutcome::Rejected(e))),
            }
        }
        // Index and list responses first, so that every face exists before a search names it.
        for (i, kind, p) in &parsed {
            if let Parsed::Index(batch, seen) = p {
                report.faces_seen += seen;
                match self.store.ingest(batch) {
                    Ok(o) => {
                        report.new_faces += o.new_faces;
                        report.files[*i].1 = FileOutcome::Ingested {
                            kind,
                            new_faces: o.new_faces,
                            new_edges: 0,
                        };
                    }
                    Err(StoreError::Conflict {
                        face_id,
                        field,
                        stored,
                        incoming,
                    }) => {
                        report.files[*i].1 = FileOutcome::Conflict(FaceConflict {
                            face_id,
                            field,
                            stored,
                            incoming,
                        });
                    }
                    Err(e) => report.files[*i].1 = FileOutcome::Rejected(SavedFileError::Store(e)),
                }
            }
        }
        if !opts.subjects.is_empty() {
            let batch = IngestBatch {
                subjects: opts.subjects.clone(),
                ..IngestBatch::default()
            };
            report.subject_links += self.store.ingest(&batch)?.subject_links;
        }
        let collection_seq = i64::try_from(self.store.stats()?.faces).unwrap_or(i64::MAX);
        for (i, kind, p) in parsed {
            if let Parsed::Search(result) = p {
                let outcome = match self.store_search(&result, opts, collection_seq, now) {
                    Ok(o) => {
                        report.new_edges += o.new_edges;
                        report.changed_edges += o.changed_edges;
                        FileOutcome::Ingested {
                            kind,
                            new_faces: 0,
                            new_edges: o.new_edges,
                        }
                    }
                    Err(e) => FileOutcome::Rejected(e),
                };
                report.files[i].1 = outcome;
            }
        }
        report.adjudication = self.adjudicate_changes()?;
        Ok(report)
    }

    fn parse_file(
        &self,
        path: &Path,
        opts: &RekognitionIngest,
        now: Timestamp,
    ) -> Result<(&'static str, Parsed), SavedFileError> {
        let bytes = read_bounded(path, MAX_SAVED_RESPONSE_BYTES)?;
        let saved = parse_saved(&bytes)?;
        let kind = saved.kind();
        let collection = Collection {
            collection_id: opts.collection_id.clone(),
            engine: "rekognition".to_owned(),
            face_model_version: None,
            created_at: now,
        };
        let source = path.display().to_string();
        let parsed = match saved {
            SavedResponse::IndexFaces(resp) => {
                let indexed = index_faces_to_domain(&resp, &opts.collection_id, now)?;
                let seen = indexed.faces.len();
                let mut image = indexed.image;
                if let Some(img) = image.as_mut() {
                    img.source = Some(source);
                }
                let collections = vec![Collection {
                    face_model_version: indexed.face_model_version,
                    ..collection
                }];
                Parsed::Index(
                    IngestBatch {
                        collections,
                        images: image.into_iter().collect(),
                        faces: indexed.faces,
                        ..IngestBatch::default()
                    },
                    seen,
                )
            }
            SavedResponse::ListFaces(resp) => {
                let faces = list_faces_to_domain(&resp, &opts.collection_id, now)?;
                let seen = faces.len();
                let collections = vec![Collection {
                    face_model_version: resp.face_model_version.clone(),
                    ..collection
                }];
                // A listed face's image is known only by id; it is recorded so that the face has one.
                let mut images: Vec<crate::model::Image> = faces
                    .iter()
                    .map(|f| crate::model::Image {
                        image_id: f.image_id.clone(),
                        external_image_id: f.external_image_id.clone(),
                        content_sha256: None,
                        collection_id: Some(opts.collection_id.clone()),
                        pending: false,
                        source: Some(source.clone()),
                        width: None,
                        height: None,
                        face_count: 0,
                        received_at: now,
                    })
                    .collect();
                images.sort_by(|a, b| a.image_id.cmp(&b.image_id));
                images.dedup_by(|a, b| a.image_id == b.image_id);
                Parsed::Index(
                    IngestBatch {
                        collections,
                        images,
                        faces,
                        ..IngestBatch::default()
                    },
                    seen,
                )
            }
            SavedResponse::SearchFaces(resp) => Parsed::Search(search_to_domain(&resp)?),
            SavedResponse::SearchFacesByImage(resp) => {
                Parsed::Search(search_by_image_to_domain(&resp)?)
            }
        };
        Ok((kind, parsed))
    }

    fn store_search(
        &self,
        result: &SearchResult,
        opts: &RekognitionIngest,
        collection_seq: i64,
        now: Timestamp,
    ) -> Result<crate::store::IngestOutcome, SavedFileError> {
        let mut named: Vec<(FaceId, String)> =
            vec![(result.searched_face_id.clone(), "SearchedFaceId".to_owned())];
        for (i, m) in result.matches.iter().enumerate() {
            named.push((m.face_id.clone(), format!("FaceMatches[{i}].Face.FaceId")));
        }
        let ids: Vec<FaceId> = named.iter().map(|(id, _)| id.clone()).collect();
        let known: std::collections::HashSet<FaceId> = self
            .store
            .faces(&ids)
            .map_err(SavedFileError::Store)?
            .into_iter()
            .map(|f| f.face.face_id)
            .collect();
        if let Some((id, field)) = named.iter().find(|(id, _)| !known.contains(id)) {
            return Err(SavedFileError::UnknownFace {
                field: field.clone(),
                face: id.clone(),
            });
        }
        let observations: Vec<Observation> = result
            .matches
            .iter()
            .filter(|m| m.face_id != result.searched_face_id)
            .map(|m| Observation {
                searched: result.searched_face_id.clone(),
                found: m.face_id.clone(),
                similarity: m.similarity,
                engine: "rekognition".to_owned(),
                searched_at: now,
            })
            .collect();
        // A saved response does not record its threshold: the faces it did not return are known only
        // to be less similar than the least similar one it did return.
        let bound: Option<Similarity> = observations
            .iter()
            .map(|o| o.similarity)
            .min_by(|a, b| a.get().total_cmp(&b.get()));
        let search = SearchRecord {
            face_id: result.searched_face_id.clone(),
            collection_id: opts.collection_id.clone(),
            bound,
            collection_seq,
            searched_at: Timestamp::from_millis(0),
        };
        let batch = IngestBatch {
            observations,
            searches: vec![search],
            ..IngestBatch::default()
        };
        self.store.ingest(&batch).map_err(SavedFileError::Store)
    }
}
