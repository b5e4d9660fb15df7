//! Conversion of the wire responses into the domain model: every id and value is parsed here, and a
//! refused one is reported with the JSON path of the member that holds it.

use std::fmt;

use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, ExternalImageId, Face, FaceAttributes, FaceId,
    Gender, GenderValue, Image, ImageId, ParseError, Pose, Quality, Similarity, Timestamp,
};

use super::wire;
use super::SavedResponseError;

/// What an IndexFaces response says about one image.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexedImage {
    /// The image, or `None` when the response has no face records: the service's image id is only
    /// given inside face records, so an image whose faces were all left out has no known id.
    pub image: Option<Image>,
    /// The indexed faces, in the response's order; exactly one is the largest when there are any.
    pub faces: Vec<Face>,
    /// For each face that was detected and not indexed, the reasons the service gave, as it spells
    /// them (`EXCEEDS_MAX_FACES`, ...).
    pub unindexed: Vec<Vec<String>>,
    /// The collection's face model version, when the response gives it.
    pub face_model_version: Option<String>,
}

/// What a search found: the searched face and the faces that match it.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// The face that was searched for.
    pub searched_face_id: FaceId,
    /// The matching faces, in the response's order (most similar first).
    pub matches: Vec<Match>,
}

/// One face a search returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// The matching face.
    pub face_id: FaceId,
    /// How similar it is to the searched face.
    pub similarity: Similarity,
    /// The image of the matching face, when the response gives it.
    pub image_id: Option<ImageId>,
    /// The caller's name for that image, when the response gives it.
    pub external_image_id: Option<ExternalImageId>,
}

/// Converts an IndexFaces response into the faces it indexed, in `collection`, at `indexed_at`.
///
/// All face records of one response are about one image, so they must share their image id and
/// external image id. The face with the largest bounding box (the first of equals) is the largest.
pub fn index_faces_to_domain(
    resp: &wire::IndexFacesResponse,
    collection: &CollectionId,
    indexed_at: Timestamp,
) -> Result<IndexedImage, SavedResponseError> {
    let records = resp.face_records.as_deref().unwrap_or_default();
    let mut faces: Vec<Face> = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let path = format!("FaceRecords[{i}]");
        let wire_face = required(&record.face, &member(&path, "Face"))?;
        let mut face = domain_face(wire_face, &member(&path, "Face"), collection, indexed_at)?;
        if let Some(first) = faces.first() {
            if face.image_id != first.image_id {
                return Err(field(
                    member(&path, "Face.ImageId"),
                    format_args!(
                        "image id {} differs from {} in FaceRecords[0]: the records of one IndexFaces \
                         response are all about one image",
                        face.image_id, first.image_id
                    ),
                ));
            }
            if face.external_image_id != first.external_image_id {
                return Err(field(
                    member(&path, "Face.ExternalImageId"),
                    format_args!(
                        "external image id {} differs from {} in FaceRecords[0]: the records of one \
                         IndexFaces response are all about one image",
                        display_or_none(face.external_image_id.as_ref()),
                        display_or_none(first.external_image_id.as_ref())
                    ),
                ));
            }
        }
        if let Some(detail) = &record.face_detail {
            face.attributes = attributes(detail, &member(&path, "FaceDetail"))?;
        }
        face.raw = Some(to_json(record, &path)?);
        faces.push(face);
    }
    mark_largest(&mut faces);

    let unindexed: Vec<Vec<String>> = resp
        .unindexed_faces
        .iter()
        .flatten()
        .map(|u| {
            u.reasons
                .iter()
                .flatten()
                .map(|r| r.as_str().to_owned())
                .collect()
        })
        .collect();
    let image = faces.first().map(|first| Image {
        image_id: first.image_id.clone(),
        external_image_id: first.external_image_id.clone(),
        content_sha256: None,
        collection_id: Some(collection.clone()),
        pending: false,
        source: None,
        width: None,
        height: None,
        face_count: u32::try_from(faces.len() + unindexed.len()).unwrap_or(u32::MAX),
        received_at: indexed_at,
    });
    Ok(IndexedImage {
        image,
        faces,
        unindexed,
        face_model_version: resp.face_model_version.clone(),
    })
}

/// Converts a SearchFaces response into the searched face and its matches.
pub fn search_to_domain(
    resp: &wire::SearchFacesResponse,
) -> Result<SearchResult, SavedResponseError> {
    let searched = required(&resp.searched_face_id, "SearchedFaceId")?;
    let searched_face_id = parse_at(FaceId::parse, searched.as_str(), "SearchedFaceId")?;
    Ok(SearchResult {
        searched_face_id,
        matches: matches(resp.face_matches.as_deref())?,
    })
}

/// Converts a SearchFacesByImage response into the searched face and its matches, finding the
/// searched face among the matches as the module documentation describes.
pub fn search_by_image_to_domain(
    resp: &wire::SearchFacesByImageResponse,
) -> Result<SearchResult, SavedResponseError> {
    let searched_box = required(&resp.searched_face_bounding_box, "SearchedFaceBoundingBox")?;
    let wire_matches = resp.face_matches.as_deref().unwrap_or_default();
    let mut matches = matches(Some(wire_matches))?;
    let candidates: Vec<usize> = wire_matches
        .iter()
        .zip(&matches)
        .enumerate()
        .filter(|(_, (w, m))| {
            m.similarity.get() >= SELF_MATCH_SIMILARITY
                && w.face
                    .as_ref()
                    .and_then(|f| f.bounding_box.as_ref())
                    .is_some_and(|b| same_box(b, searched_box))
        })
        .map(|(i, _)| i)
        .collect();
    match candidates.as_slice() {
        [] => Err(SavedResponseError::SearchedFaceNotInCollection),
        [i] => {
            let searched = matches.remove(*i);
            Ok(SearchResult {
                searched_face_id: searched.face_id,
                matches,
            })
        }
        several => Err(SavedResponseError::SearchedFaceAmbiguous {
            face_ids: several
                .iter()
                .filter_map(|i| matches.get(*i))
                .map(|m| m.face_id.to_string())
                .collect(),
        }),
    }
}

/// Converts the matches of a SearchFaces or SearchFacesByImage response, in its order, without
/// looking for the searched face among them (a face engine's answer, not a saved response).
pub fn face_matches_to_domain(
    wire_matches: Option<&[wire::FaceMatch]>,
) -> Result<Vec<Match>, SavedResponseError> {
    matches(wire_matches)
}

/// Converts a ListFaces page into faces of `collection`. ListFaces gives no classifier findings, so
/// the faces have no attributes and none is marked the largest of its image.
pub fn list_faces_to_domain(
    resp: &wire::ListFacesResponse,
    collection: &CollectionId,
    indexed_at: Timestamp,
) -> Result<Vec<Face>, SavedResponseError> {
    resp.faces
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, wire_face)| {
            let path = format!("Faces[{i}]");
            let mut face = domain_face(wire_face, &path, collection, indexed_at)?;
            face.raw = Some(to_json(wire_face, &path)?);
            Ok(face)
        })
        .collect()
}

/// The similarity at or above which a match with the searched face's box is the searched face itself.
const SELF_MATCH_SIMILARITY: f64 = 99.0;

/// How far apart two sides of boxes may be and still be the same box (the service rounds them).
const BOX_TOLERANCE: f64 = 1e-3;

fn same_box(a: &wire::BoundingBox, b: &wire::BoundingBox) -> bool {
    let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() <= BOX_TOLERANCE,
        _ => false,
    };
    close(a.left, b.left)
        && close(a.top, b.top)
        && close(a.width, b.width)
        && close(a.height, b.height)
}

fn matches(wire_matches: Option<&[wire::FaceMatch]>) -> Result<Vec<Match>, SavedResponseError> {
    wire_matches
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = format!("FaceMatches[{i}]");
            let similarity_path = member(&path, "Similarity");
            let similarity = parse_at(
                Similarity::new,
                *required(&m.similarity, &similarity_path)?,
                &similarity_path,
            )?;
            let face_path = member(&path, "Face");
            let face = required(&m.face, &face_path)?;
            let id_path = member(&face_path, "FaceId");
            Ok(Match {
                face_id: parse_at(
                    FaceId::parse,
                    required(&face.face_id, &id_path)?.as_str(),
                    &id_path,
                )?,
                similarity,
                image_id: optional_at(ImageId::parse, &face.image_id, &face_path, "ImageId")?,
                external_image_id: optional_at(
                    ExternalImageId::parse,
                    &face.external_image_id,
                    &face_path,
                    "ExternalImageId",
                )?,
            })
        })
        .collect()
}

/// The domain face of a wire face at `path`, without attributes or raw response.
fn domain_face(
    face: &wire::Face,
    path: &str,
    collection: &CollectionId,
    indexed_at: Timestamp,
) -> Result<Face, SavedResponseError> {
    let id_path = member(path, "FaceId");
    let image_path = member(path, "ImageId");
    let box_path = member(path, "BoundingBox");
    let confidence_path = member(path, "Confidence");
    Ok(Face {
        face_id: parse_at(
            FaceId::parse,
            required(&face.face_id, &id_path)?.as_str(),
            &id_path,
        )?,
        collection_id: collection.clone(),
        image_id: parse_at(
            ImageId::parse,
            required(&face.image_id, &image_path)?.as_str(),
            &image_path,
        )?,
        external_image_id: optional_at(
            ExternalImageId::parse,
            &face.external_image_id,
            path,
            "ExternalImageId",
        )?,
        bbox: bounding_box(required(&face.bounding_box, &box_path)?, &box_path)?,
        detection_confidence: face
            .confidence
            .map(|c| parse_at(Confidence::new, c, &confidence_path))
            .transpose()?,
        attributes: FaceAttributes::default(),
        is_largest: false,
        indexed_at,
        raw: None,
    })
}

fn attributes(detail: &wire::FaceDetail, path: &str) -> Result<FaceAttributes, SavedResponseError> {
    let gender = match &detail.gender {
        None => None,
        Some(g) => {
            let gpath = member(path, "Gender");
            let value_path = member(&gpath, "Value");
            let value = required(&g.value, &value_path)?;
            let value = GenderValue::parse(value.as_str()).ok_or_else(|| {
                field(
                    &value_path,
                    ParseError::new("gender", value, "must be Male or Female"),
                )
            })?;
            let confidence_path = member(&gpath, "Confidence");
            let confidence = parse_at(
                Confidence::new,
                *required(&g.confidence, &confidence_path)?,
                &confidence_path,
            )?;
            Some(Gender { value, confidence })
        }
    };
    let age = match &detail.age_range {
        None => None,
        Some(a) => {
            let apath = member(path, "AgeRange");
            let low = *required(&a.low, &member(&apath, "Low"))?;
            let high = *required(&a.high, &member(&apath, "High"))?;
            Some(AgeRange::new(low, high).map_err(|e| field(apath, e))?)
        }
    };
    let quality = match &detail.quality {
        None => None,
        Some(q) => {
            let qpath = member(path, "Quality");
            let part = |v: Option<f64>, name: &str, what| {
                part_of(v, &qpath, name, |v| Quality::check(what, v))
            };
            let (b, s) = (
                part(q.brightness, "Brightness", "brightness")?,
                part(q.sharpness, "Sharpness", "sharpness")?,
            );
            Some(Quality::new(b, s).map_err(|e| field(qpath.clone(), e))?)
        }
    };
    let pose = match &detail.pose {
        None => None,
        Some(p) => {
            let ppath = member(path, "Pose");
            let part = |v: Option<f64>, name: &str, what| {
                part_of(v, &ppath, name, |v| Pose::check(what, v))
            };
            let (y, pi, r) = (
                part(p.yaw, "Yaw", "yaw")?,
                part(p.pitch, "Pitch", "pitch")?,
                part(p.roll, "Roll", "roll")?,
            );
            Some(Pose::new(y, pi, r).map_err(|e| field(ppath.clone(), e))?)
        }
    };
    Ok(FaceAttributes {
        gender,
        age,
        quality,
        pose,
    })
}

fn bounding_box(b: &wire::BoundingBox, path: &str) -> Result<BoundingBox, SavedResponseError> {
    // Boxes of faces at an image's edge reach past it (a Left of -0.02), so only the sizes have a
    // lower bound.
    let side = |value: Option<f64>, name: &str, min: f64| -> Result<f32, SavedResponseError> {
        let side_path = member(path, name);
        let v = *required(&value, &side_path)?;
        if v.is_finite() && v >= min {
            Ok(v as f32)
        } else {
            let rule = if min == 0.0 {
                "must be a finite number, not negative"
            } else {
                "must be a finite number"
            };
            Err(field(
                side_path,
                ParseError::new("bounding box side", v, rule),
            ))
        }
    };
    Ok(BoundingBox {
        left: side(b.left, "Left", f64::NEG_INFINITY)?,
        top: side(b.top, "Top", f64::NEG_INFINITY)?,
        width: side(b.width, "Width", 0.0)?,
        height: side(b.height, "Height", 0.0)?,
    })
}

/// A required number of `parent.name` in `min..=max`; `what` names it in messages.
/// A required part of a value the model type checks (`Quality::check`, `Pose::check`), refused
/// with the JSON path of the member that holds it.
fn part_of(
    value: Option<f64>,
    parent: &str,
    name: &str,
    check: impl Fn(f64) -> Result<f32, ParseError>,
) -> Result<f64, SavedResponseError> {
    let path = member(parent, name);
    let v = *required(&value, &path)?;
    check(v).map_err(|e| field(path, e))?;
    Ok(v)
}

fn mark_largest(faces: &mut [Face]) {
    let mut largest: Option<(usize, f32)> = None;
    for (i, face) in faces.iter().enumerate() {
        let area = face.bbox.area();
        if largest.is_none_or(|(_, best)| area > best) {
            largest = Some((i, area));
        }
    }
    if let Some(face) = largest.and_then(|(i, _)| faces.get_mut(i)) {
        face.is_largest = true;
    }
}

fn to_json<T: serde::Serialize>(value: &T, path: &str) -> Result<String, SavedResponseError> {
    serde_json::to_string(value)
        .map_err(|e| field(path, format_args!("cannot be written back as JSON: {e}")))
}

fn member(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn field(path: impl Into<String>, message: impl fmt::Display) -> SavedResponseError {
    SavedResponseError::Field {
        path: path.into(),
        message: message.to_string(),
    }
}

fn required<'a, T>(value: &'a Option<T>, path: &str) -> Result<&'a T, SavedResponseError> {
    value.as_ref().ok_or_else(|| field(path, "is missing"))
}

fn parse_at<I, T>(
    parse: impl FnOnce(I) -> Result<T, ParseError>,
    input: I,
    path: &str,
) -> Result<T, SavedResponseError> {
    parse(input).map_err(|e| field(path, e))
}

fn optional_at<T>(
    parse: fn(&str) -> Result<T, ParseError>,
    value: &Option<String>,
    parent: &str,
    name: &str,
) -> Result<Option<T>, SavedResponseError> {
    value
        .as_deref()
        .map(|s| parse_at(parse, s, &member(parent, name)))
        .transpose()
}

fn display_or_none<T: fmt::Display>(value: Option<&T>) -> String {
    value.map_or_else(|| "(none)".to_owned(), ToString::to_string)
}
