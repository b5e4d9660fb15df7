//! Conversions between the engine's three forms of a face: the analysed face, the log's record
//! (the IndexFaces `FaceRecord` kept verbatim) and the domain types, and the Rekognition-shaped
//! responses built from results; values are rounded so that they read back bit for bit.

use crate::engine::local::collections::{FaceKey, ImageDoc, ImageKey, StoredFace};
use crate::engine::local::AnalyzedFace;
use crate::engine::{EngineError, FaceMatch, IndexFacesResult};
use crate::model::{
    BoundingBox, CollectionId, Confidence, ContentHash, ExternalImageId, Face, FaceAttributes,
    FaceId, GenderValue, Image, ImageId, Timestamp,
};
use crate::rekognition::{index_faces_to_domain, wire};

/// Builds the IndexFaces response in Rekognition's PascalCase shape from a result, so that it can be
/// saved and read back by `ingest-rekognition`.
pub fn index_faces_response(result: &IndexFacesResult) -> wire::IndexFacesResponse {
    let face_records = result
        .faces
        .iter()
        .map(|f| {
            f.raw
                .as_deref()
                .and_then(|raw| serde_json::from_str::<wire::FaceRecord>(raw).ok())
                .unwrap_or_else(|| record_of_face(f, &result.face_model_version))
        })
        .collect();
    let unindexed_faces = result
        .unindexed
        .iter()
        .map(|u| wire::UnindexedFace {
            reasons: Some(
                u.reasons
                    .iter()
                    .map(|r| wire::Reason::from_wire(r.as_str()))
                    .collect(),
            ),
            face_detail: Some(detail_of_attributes(&u.bbox, u.confidence, &u.attributes)),
        })
        .collect();
    wire::IndexFacesResponse {
        face_records: Some(face_records),
        orientation_correction: None,
        face_model_version: Some(result.face_model_version.clone()),
        unindexed_faces: Some(unindexed_faces),
    }
}

/// A SearchFaces response in Rekognition's shape, as the service would have answered: what
/// `match-faces --save-image-data` saves so that `ingest-rekognition` can rebuild the edges.
pub fn search_faces_response(
    searched: &FaceId,
    matches: &[FaceMatch],
    face_model_version: &str,
) -> wire::SearchFacesResponse {
    wire::SearchFacesResponse {
        searched_face_id: Some(searched.to_string()),
        face_matches: Some(
            matches
                .iter()
                .map(|m| wire::FaceMatch {
                    similarity: Some(m.similarity.get()),
                    face: Some(wire::Face {
                        face_id: Some(m.face_id.to_string()),
                        image_id: Some(m.image_id.to_string()),
                        external_image_id: m.external_image_id.as_ref().map(ToString::to_string),
                        ..wire::Face::default()
                    }),
                })
                .collect(),
        ),
        face_model_version: Some(face_model_version.to_owned()),
    }
}

/// A value read back from a collection's log that does not parse: damage, not a caller's error.
pub(super) fn stored_value_error(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Backend {
        operation: "read a stored face",
        source: format!("stored {what} is invalid: {e}").into(),
    }
}

/// The face id of a stored face key.
pub(super) fn face_id_of(key: &FaceKey) -> Result<FaceId, EngineError> {
    FaceId::parse(&uuid::Uuid::from_bytes(*key).hyphenated().to_string())
        .map_err(|e| stored_value_error("face id", e))
}

/// The image id of an upload: the collection keys images by the bytes' hash and keeps the
/// external image id beside it, and an upload is the two together ([`ImageId::of_upload`]).
pub(super) fn upload_id_of(
    key: &ImageKey,
    external_image_id: Option<&str>,
) -> Result<ImageId, EngineError> {
    let content = content_of(key)?;
    let ext = external_id_of(external_image_id)?;
    Ok(ImageId::of_upload(&content, ext.as_ref()))
}

/// The content hash of a stored image key.
fn content_of(key: &ImageKey) -> Result<ContentHash, EngineError> {
    ContentHash::parse(&hex::encode(key)).map_err(|e| stored_value_error("content hash", e))
}

/// A stored external image id, parsed.
pub(super) fn external_id_of(ext: Option<&str>) -> Result<Option<ExternalImageId>, EngineError> {
    ext.map(ExternalImageId::parse)
        .transpose()
        .map_err(|e| stored_value_error("external image id", e))
}

/// The domain image of an IndexFaces call, from its record.
pub(super) fn image_of(
    doc: &ImageDoc,
    key: ImageKey,
    collection: &CollectionId,
    external_image_id: Option<&ExternalImageId>,
    at: Timestamp,
) -> Result<Image, EngineError> {
    let content = content_of(&key)?;
    Ok(Image {
        image_id: ImageId::of_upload(&content, external_image_id),
        external_image_id: external_image_id.cloned(),
        content_sha256: Some(content),
        collection_id: Some(collection.clone()),
        pending: false,
        source: None,
        width: Some(doc.width),
        height: Some(doc.height),
        face_count: doc.detected,
        received_at: at,
    })
}

/// The domain face of a stored record, converted as a saved IndexFaces response would be.
pub(super) fn face_of(collection: &CollectionId, stored: &StoredFace) -> Result<Face, EngineError> {
    let record: wire::FaceRecord =
        serde_json::from_str(&stored.record).map_err(|e| stored_value_error("face record", e))?;
    let response = wire::IndexFacesResponse {
        face_records: Some(vec![record]),
        ..Default::default()
    };
    let at = Timestamp::from_millis(stored.indexed_at_ms);
    let mut faces = index_faces_to_domain(&response, collection, at)
        .map_err(|e| stored_value_error("face record", e))?
        .faces;
    let mut face = faces
        .pop()
        .ok_or_else(|| stored_value_error("face record", "no face"))?;
    face.is_largest = stored.largest;
    // Records written before uploads had their own ids name the bytes' hash as the image.
    face.image_id = upload_id_of(&stored.image_id, stored.external_image_id.as_deref())?;
    face.raw = Some(stored.record.clone());
    Ok(face)
}

/// Rounds to `decimals` places, so that values read back from JSON are bit for bit the values
/// written (a short decimal parses exactly).
fn round(x: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (x * p).round() / p
}

fn ratio(x: f32) -> f64 {
    round(f64::from(x), 8)
}

fn degrees(x: f32) -> f64 {
    round(f64::from(x).clamp(-180.0, 180.0), 6)
}

fn percent(x: f32) -> f64 {
    round(f64::from(x).clamp(0.0, 100.0), 6)
}

/// A bounding box in Rekognition's shape, rounded.
fn wire_box(b: &BoundingBox) -> wire::BoundingBox {
    wire::BoundingBox {
        width: Some(ratio(b.width)),
        height: Some(ratio(b.height)),
        left: Some(ratio(b.left)),
        top: Some(ratio(b.top)),
    }
}

/// The IndexFaces `FaceRecord` of an analysed face, as Rekognition would write it: values rounded
/// so that they read back bit for bit, landmarks as ratios of the image size.
pub(crate) fn face_record(
    id: &FaceKey,
    image_hex: &str,
    external_image_id: Option<&str>,
    face: &AnalyzedFace,
    (width, height): (u32, u32),
    version: &str,
) -> wire::FaceRecord {
    wire::FaceRecord {
        face: Some(wire::Face {
            face_id: Some(uuid::Uuid::from_bytes(*id).hyphenated().to_string()),
            bounding_box: Some(wire_box(&face.bbox)),
            image_id: Some(image_hex.to_owned()),
            external_image_id: external_image_id.map(str::to_owned),
            confidence: Some(round(face.confidence.get(), 6)),
            index_faces_model_version: Some(version.to_owned()),
            user_id: None,
        }),
        face_detail: Some(face_detail(face, width, height)),
    }
}

/// Rekognition names landmarks from the viewer's side: `eyeLeft` is the eye on the left of the
/// picture, the person's right eye, which the detector gives first.
const LANDMARKS: [wire::LandmarkType; 5] = [
    wire::LandmarkType::EyeLeft,
    wire::LandmarkType::EyeRight,
    wire::LandmarkType::Nose,
    wire::LandmarkType::MouthLeft,
    wire::LandmarkType::MouthRight,
];

/// The `FaceDetail` of an analysed face: its attributes and landmarks as ratios of the image size.
pub(super) fn face_detail(face: &AnalyzedFace, width: u32, height: u32) -> wire::FaceDetail {
    let mut detail = detail_of_attributes(&face.bbox, Some(face.confidence), &face.attributes);
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    detail.landmarks = Some(
        LANDMARKS
            .iter()
            .zip(face.landmarks)
            .map(|(t, (x, y))| wire::Landmark {
                r#type: Some(t.clone()),
                x: Some(ratio(x / w)),
                y: Some(ratio(y / h)),
            })
            .collect(),
    );
    detail
}

/// The `FaceDetail` of a box, a detection confidence and attributes, without landmarks.
fn detail_of_attributes(
    bbox: &BoundingBox,
    confidence: Option<Confidence>,
    a: &FaceAttributes,
) -> wire::FaceDetail {
    wire::FaceDetail {
        bounding_box: Some(wire_box(bbox)),
        age_range: a.age.map(|r| wire::AgeRange {
            low: Some(r.low()),
            high: Some(r.high()),
        }),
        gender: a.gender.map(|g| wire::Gender {
            value: Some(match g.value {
                GenderValue::Male => wire::GenderType::Male,
                GenderValue::Female => wire::GenderType::Female,
            }),
            confidence: Some(round(g.confidence.get(), 6)),
        }),
        pose: a.pose.map(|p| wire::Pose {
            roll: Some(degrees(p.roll())),
            yaw: Some(degrees(p.yaw())),
            pitch: Some(degrees(p.pitch())),
        }),
        quality: a.quality.map(|q| wire::ImageQuality {
            brightness: Some(percent(q.brightness())),
            sharpness: Some(percent(q.sharpness())),
        }),
        confidence: confidence.map(|c| round(c.get(), 6)),
        ..Default::default()
    }
}

/// A face record for a face that has no raw record (built by other code): no landmarks.
fn record_of_face(f: &Face, version: &str) -> wire::FaceRecord {
    wire::FaceRecord {
        face: Some(wire::Face {
            face_id: Some(f.face_id.to_string()),
            bounding_box: Some(wire_box(&f.bbox)),
            image_id: Some(f.image_id.to_string()),
            external_image_id: f.external_image_id.as_ref().map(ToString::to_string),
            confidence: f.detection_confidence.map(|c| round(c.get(), 6)),
            index_faces_model_version: Some(version.to_owned()),
            user_id: None,
        }),
        face_detail: Some(detail_of_attributes(
            &f.bbox,
            f.detection_confidence,
            &f.attributes,
        )),
    }
}
