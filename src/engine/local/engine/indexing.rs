//! The IndexFaces path of [`LocalEngine`] for an image not yet in the collection: the analysed
//! faces are split as Rekognition splits them (largest first, MaxFaces, the quality bar), written
//! as one record, and answered from the records exactly as a saved response would be read.

use super::quality::QualityBar;
use super::records::{face_detail, face_of, face_record, image_of, upload_id_of};
use super::{backend, LocalEngine, MAX_FACES_PER_IMAGE};
use crate::engine::local::collections::{
    Appended, Collection, FaceKey, ImageDoc, ImageKey, NewFace, NewImage, StoredImage,
};
use crate::engine::local::AnalyzedFace;
use crate::engine::unindexed_of;
use crate::engine::{EngineError, IndexFacesRequest, IndexFacesResult, UnindexedReason};
use crate::model::{ExternalImageId, Timestamp};
use crate::rekognition::{index_faces_to_domain, wire};

/// A detected face that is not indexed, with why.
type Refused = (AnalyzedFace, Vec<UnindexedReason>);

impl LocalEngine {
    /// Analyses an image that is not in the collection, appends its faces as one record, and
    /// answers as IndexFaces does; if another call indexed the same image meanwhile, its faces are
    /// the answer.
    pub(super) fn fresh_index(
        &self,
        c: &Collection,
        req: &IndexFacesRequest<'_>,
        image_key: ImageKey,
    ) -> Result<IndexFacesResult, EngineError> {
        let analysis = self.analyzer.analyze(super::image_bytes(req)?)?;
        self.check_models(c)?;
        let size = (analysis.width, analysis.height);
        let (indexed, unindexed) = select_faces(analysis.faces, req, size);
        let version = self.analyzer.model_version().to_owned();
        let image_hex = upload_id_of(
            &image_key,
            req.external_image_id.map(ExternalImageId::as_str),
        )?
        .to_string();
        let (records, new_faces) = face_records(indexed, &image_hex, req, size, &version);
        let indexed_at = Timestamp::now();
        let new_image = image_record(
            image_key, req, size, &records, new_faces, &unindexed, indexed_at,
        )?;
        let result = fresh_result(c, &new_image, records, req, indexed_at, version)?;
        match c
            .append_image(new_image)
            .map_err(backend("index the faces"))?
        {
            Appended::Added => Ok(result),
            // Another call indexed the same image meanwhile: its faces are the answer.
            Appended::Existing(stored) => {
                self.stored_result(c, stored, image_key, req.external_image_id)
            }
        }
    }

    /// The answer to an IndexFaces call for an image already in the collection: its record, read back.
    pub(super) fn stored_result(
        &self,
        c: &Collection,
        stored: StoredImage,
        image_key: ImageKey,
        external_image_id: Option<&ExternalImageId>,
    ) -> Result<IndexFacesResult, EngineError> {
        let indexed_at = Timestamp::from_millis(stored.indexed_at_ms);
        let faces = stored
            .faces
            .iter()
            .map(|f| face_of(c.id(), f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IndexFacesResult {
            image: image_of(
                &stored.doc,
                image_key,
                c.id(),
                external_image_id,
                indexed_at,
            )?,
            faces,
            unindexed: stored
                .doc
                .unindexed_faces
                .iter()
                .map(unindexed_of)
                .collect(),
            face_model_version: c.manifest().face_model_version.clone(),
        })
    }
}

/// The faces of an analysis split as IndexFaces splits them: largest first (the sort is stable for
/// equal boxes); a face that fails the quality bar, or comes after MaxFaces faces, is not indexed.
fn select_faces(
    mut faces: Vec<AnalyzedFace>,
    req: &IndexFacesRequest<'_>,
    (width, height): (u32, u32),
) -> (Vec<AnalyzedFace>, Vec<Refused>) {
    faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
    let bar = QualityBar::of(req.quality_filter);
    let max = req
        .max_faces
        .map_or(MAX_FACES_PER_IMAGE, |m| m as usize)
        .min(MAX_FACES_PER_IMAGE);
    let mut indexed: Vec<AnalyzedFace> = Vec::new();
    let mut unindexed: Vec<Refused> = Vec::new();
    for face in faces {
        let reasons = bar
            .map(|b| b.reasons(&face, width, height))
            .unwrap_or_default();
        if !reasons.is_empty() {
            unindexed.push((face, reasons));
        } else if indexed.len() < max {
            indexed.push(face);
        } else {
            unindexed.push((face, vec![UnindexedReason::ExceedsMaxFaces]));
        }
    }
    (indexed, unindexed)
}

/// A new face id for each face to index, its IndexFaces `FaceRecord`, and the face as the log
/// stores it (the first is the largest).
fn face_records(
    indexed: Vec<AnalyzedFace>,
    image_hex: &str,
    req: &IndexFacesRequest<'_>,
    size: (u32, u32),
    version: &str,
) -> (Vec<wire::FaceRecord>, Vec<NewFace>) {
    let ext = req.external_image_id.map(ExternalImageId::as_str);
    let mut records = Vec::with_capacity(indexed.len());
    let mut new_faces = Vec::with_capacity(indexed.len());
    for (i, face) in indexed.into_iter().enumerate() {
        let id: FaceKey = *uuid::Uuid::new_v4().as_bytes();
        records.push(face_record(&id, image_hex, ext, &face, size, version));
        new_faces.push(NewFace {
            id,
            largest: i == 0,
            embedding: face.embedding,
        });
    }
    (records, new_faces)
}

/// The log record of one IndexFaces call: the image, its indexed faces with their records, and the
/// faces not indexed with their reasons.
fn image_record(
    image_key: ImageKey,
    req: &IndexFacesRequest<'_>,
    (width, height): (u32, u32),
    records: &[wire::FaceRecord],
    new_faces: Vec<NewFace>,
    unindexed: &[Refused],
    indexed_at: Timestamp,
) -> Result<NewImage, EngineError> {
    let raw_records = records
        .iter()
        .map(serde_json::value::to_raw_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EngineError::Backend {
            operation: "encode a face record",
            source: Box::new(e),
        })?;
    let wire_unindexed: Vec<wire::UnindexedFace> = unindexed
        .iter()
        .map(|(face, reasons)| wire::UnindexedFace {
            reasons: Some(
                reasons
                    .iter()
                    .map(|r| wire::Reason::from_wire(r.as_str()))
                    .collect(),
            ),
            face_detail: Some(face_detail(face, width, height)),
        })
        .collect();
    let detected = u32::try_from(new_faces.len() + wire_unindexed.len()).unwrap_or(u32::MAX);
    Ok(NewImage {
        image_id: image_key,
        external_image_id: req.external_image_id.map(|e| e.as_str().to_owned()),
        indexed_at_ms: indexed_at.millis(),
        faces: new_faces,
        doc: ImageDoc {
            width,
            height,
            detected,
            face_records: raw_records,
            unindexed_faces: wire_unindexed,
        },
    })
}

/// The answer to an IndexFaces call that adds `new_image`: the domain faces are converted from the
/// records exactly as a saved response would be.
fn fresh_result(
    c: &Collection,
    new_image: &NewImage,
    records: Vec<wire::FaceRecord>,
    req: &IndexFacesRequest<'_>,
    indexed_at: Timestamp,
    face_model_version: String,
) -> Result<IndexFacesResult, EngineError> {
    let response = wire::IndexFacesResponse {
        face_records: Some(records),
        ..Default::default()
    };
    let converted =
        index_faces_to_domain(&response, c.id(), indexed_at).map_err(|e| EngineError::Backend {
            operation: "convert the analyzer's faces",
            source: Box::new(e),
        })?;
    Ok(IndexFacesResult {
        image: image_of(
            &new_image.doc,
            new_image.image_id,
            c.id(),
            req.external_image_id,
            indexed_at,
        )?,
        faces: converted.faces,
        unindexed: new_image
            .doc
            .unindexed_faces
            .iter()
            .map(unindexed_of)
            .collect(),
        face_model_version,
    })
}
