//! The endpoint's operations: each reads its request shape, checks it against the API model, makes
//! one call to the face engine and answers in Rekognition's response shape. They run on tokio's
//! blocking pool, since the engine is synchronous.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::error::RekognitionError;
use super::shapes::{self, Check, ATTRIBUTES, MAX_PAGE, QUALITY_FILTERS};
use super::sigv4::Caller;
use super::Versions;
use crate::engine::local::{index_faces_response, search_faces_response};
use crate::engine::{FaceEngine, FaceMatch, ImageSource, IndexFacesRequest, QualityFilter};
use crate::model::{CollectionId, ExternalImageId, Face, FaceId, ImageId, Similarity};
use crate::rekognition::wire;

/// The operations this endpoint serves, by their `X-Amz-Target` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `CreateCollection`.
    CreateCollection,
    /// `DescribeCollection`.
    DescribeCollection,
    /// `ListCollections`.
    ListCollections,
    /// `DeleteCollection`.
    DeleteCollection,
    /// `IndexFaces`.
    IndexFaces,
    /// `SearchFaces`.
    SearchFaces,
    /// `SearchFacesByImage`.
    SearchFacesByImage,
    /// `ListFaces`.
    ListFaces,
    /// `DeleteFaces`.
    DeleteFaces,
}

/// The `X-Amz-Target` prefix of the service (the API model's `targetPrefix`).
pub const TARGET_PREFIX: &str = "RekognitionService.";

/// `SearchFaces` and `SearchFacesByImage` without `MaxFaces` (the service's documented default).
const DEFAULT_MAX_FACES: u32 = 80;
/// `SearchFaces` and `SearchFacesByImage` without `FaceMatchThreshold` (the service's default).
const DEFAULT_THRESHOLD: f64 = 80.0;
/// `ListFaces` and `ListCollections` without `MaxResults`.
const DEFAULT_PAGE: u32 = 1000;
/// The prefix of `ListCollections` tokens, so that a foreign token is recognised.
const COLLECTIONS_TOKEN: &str = "lc1.";

impl Operation {
    /// The operation an `X-Amz-Target` header names.
    pub fn from_target(target: &str) -> Option<Self> {
        Some(match target.strip_prefix(TARGET_PREFIX)? {
            "CreateCollection" => Self::CreateCollection,
            "DescribeCollection" => Self::DescribeCollection,
            "ListCollections" => Self::ListCollections,
            "DeleteCollection" => Self::DeleteCollection,
            "IndexFaces" => Self::IndexFaces,
            "SearchFaces" => Self::SearchFaces,
            "SearchFacesByImage" => Self::SearchFacesByImage,
            "ListFaces" => Self::ListFaces,
            "DeleteFaces" => Self::DeleteFaces,
            _ => return None,
        })
    }

    /// Runs the operation on `body` for `caller`; the answer is the response's JSON.
    pub fn run(
        self,
        engine: &dyn FaceEngine,
        versions: &Versions,
        body: &[u8],
        caller: &Caller,
    ) -> Result<String, RekognitionError> {
        let ops = Ops { engine, versions };
        match self {
            Self::CreateCollection => ops.create_collection(shapes::parse(body)?, caller),
            Self::DescribeCollection => ops.describe_collection(shapes::parse(body)?, caller),
            Self::ListCollections => ops.list_collections(shapes::parse(body)?),
            Self::DeleteCollection => ops.delete_collection(shapes::parse(body)?),
            Self::IndexFaces => ops.index_faces(shapes::parse(body)?),
            Self::SearchFaces => ops.search_faces(shapes::parse(body)?),
            Self::SearchFacesByImage => ops.search_faces_by_image(shapes::parse(body)?),
            Self::ListFaces => ops.list_faces(shapes::parse(body)?),
            Self::DeleteFaces => ops.delete_faces(shapes::parse(body)?),
        }
    }
}

struct Ops<'a> {
    engine: &'a dyn FaceEngine,
    versions: &'a Versions,
}

impl Ops<'_> {
    fn create_collection(
        &self,
        req: shapes::CreateCollection,
        caller: &Caller,
    ) -> Result<String, RekognitionError> {
        let mut check = Check::default();
        check.collection_id(&req.collection_id, "collectionId");
        check.finish()?;
        if req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(RekognitionError::invalid_parameter(
                "This endpoint does not keep tags: create the collection without Tags.",
            ));
        }
        let id = collection_id(&req.collection_id)?;
        let info = self.engine.create_collection(&id)?;
        self.versions.remember(&id, &info.face_model_version);
        Ok(json!({
            "StatusCode": 200,
            "CollectionArn": arn(caller, &id),
            "FaceModelVersion": info.face_model_version,
        })
        .to_string())
    }

    fn describe_collection(
        &self,
        req: shapes::CollectionOnly,
        caller: &Caller,
    ) -> Result<String, RekognitionError> {
        let id = self.collection(&req.collection_id)?;
        let info = self.engine.describe_collection(&id)?;
        Ok(json!({
            "FaceCount": info.face_count,
            "FaceModelVersion": info.face_model_version,
            "CollectionARN": arn(caller, &id),
            // AWS JSON 1.1 writes timestamps as seconds since the epoch.
            "CreationTimestamp": info.created_at.millis() as f64 / 1000.0,
            "UserCount": 0,
        })
        .to_string())
    }

    fn list_collections(&self, req: shapes::ListCollections) -> Result<String, RekognitionError> {
        let mut check = Check::default();
        check.int(req.max_results, "maxResults", 0, Some(MAX_PAGE));
        if let Some(t) = &req.next_token {
            check.text(t, "nextToken", (0, 255), None);
        }
        check.finish()?;
        let page = page_size(req.max_results);
        let after = match &req.next_token {
            None => None,
            Some(t) => Some(
                t.strip_prefix(COLLECTIONS_TOKEN)
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(RekognitionError::invalid_token)?,
            ),
        };
        let all = self.engine.list_collections()?;
        let rest: Vec<&CollectionId> = all
            .iter()
            .filter(|id| after.as_deref().is_none_or(|a| id.as_str() > a))
            .collect();
        let (ids, more) = if rest.len() > page {
            (&rest[..page], true)
        } else {
            (&rest[..], false)
        };
        let mut versions = Vec::with_capacity(ids.len());
        for id in ids {
            versions.push(self.version(id)?);
        }
        let mut out = json!({
            "CollectionIds": ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
            "FaceModelVersions": versions,
        });
        if let (true, Some(last)) = (more, ids.last()) {
            out["NextToken"] = json!(format!("{COLLECTIONS_TOKEN}{}", hex::encode(last.as_str())));
        }
        Ok(out.to_string())
    }

    fn delete_collection(&self, req: shapes::CollectionOnly) -> Result<String, RekognitionError> {
        let id = self.collection(&req.collection_id)?;
        self.engine.delete_collection(&id)?;
        Ok(json!({"StatusCode": 200}).to_string())
    }

    fn index_faces(&self, req: shapes::IndexFaces) -> Result<String, RekognitionError> {
        let mut check = Check::default();
        check.collection_id(&req.collection_id, "collectionId");
        check.image(&req.image, "image");
        check.external_image_id(&req.external_image_id, "externalImageId");
        check.int(req.max_faces, "maxFaces", 1, None);
        check.one_of(
            req.quality_filter.as_deref(),
            "qualityFilter",
            QUALITY_FILTERS,
        );
        for (i, a) in req.detection_attributes.iter().flatten().enumerate() {
            check.one_of(
                Some(a),
                &format!("detectionAttributes.{}.member", i + 1),
                ATTRIBUTES,
            );
        }
        check.finish()?;
        let id = collection_id(&req.collection_id)?;
        let bytes = image_bytes(req.image)?;
        let ext = req
            .external_image_id
            .as_deref()
            .map(ExternalImageId::parse)
            .transpose()
            .map_err(|e| RekognitionError::invalid_parameter(e.to_string()))?;
        let result = self.engine.index_faces(&IndexFacesRequest {
            collection_id: &id,
            image: ImageSource::Bytes(&bytes),
            external_image_id: ext.as_ref(),
            subject_id: None,
            max_faces: req.max_faces.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
            quality_filter: quality_filter(req.quality_filter.as_deref()),
        })?;
        self.versions.remember(&id, &result.face_model_version);
        let attributes = Attributes::of(req.detection_attributes.as_deref());
        let mut response = index_faces_response(&result);
        for record in response.face_records.iter_mut().flatten() {
            if let Some(face) = &mut record.face {
                wire_image_id(face);
            }
            if let Some(detail) = &mut record.face_detail {
                attributes.filter(detail);
            }
        }
        for unindexed in response.unindexed_faces.iter_mut().flatten() {
            if let Some(detail) = &mut unindexed.face_detail {
                attributes.filter(detail);
            }
        }
        to_json(&response)
    }

    fn search_faces(&self, req: shapes::SearchFaces) -> Result<String, RekognitionError> {
        let mut check = Check::default();
        check.collection_id(&req.collection_id, "collectionId");
        if let Some(f) = check.required(&req.face_id, "faceId") {
            check.face_id(f, "faceId");
        }
        check.int(req.max_faces, "maxFaces", 1, Some(MAX_PAGE));
        check.percent(req.face_match_threshold, "faceMatchThreshold");
        check.finish()?;
        let id = collection_id(&req.collection_id)?;
        let face_id = FaceId::parse(req.face_id.as_deref().unwrap_or_default())
            .map_err(|e| RekognitionError::invalid_parameter(e.to_string()))?;
        let matches = self.engine.search_faces(
            &id,
            &face_id,
            threshold(req.face_match_threshold)?,
            max_faces(req.max_faces),
        )?;
        let version = self.version(&id)?;
        let mut response = search_faces_response(&face_id, &matches, &version);
        for m in response.face_matches.iter_mut().flatten() {
            if let Some(face) = &mut m.face {
                wire_image_id(face);
            }
        }
        to_json(&response)
    }

    fn search_faces_by_image(
        &self,
        req: shapes::SearchFacesByImage,
    ) -> Result<String, RekognitionError> {
        let mut check = Check::default();
        check.collection_id(&req.collection_id, "collectionId");
        check.image(&req.image, "image");
        check.int(req.max_faces, "maxFaces", 1, Some(MAX_PAGE));
        check.percent(req.face_match_threshold, "faceMatchThreshold");
        check.one_of(
            req.quality_filter.as_deref(),
            "qualityFilter",
            QUALITY_FILTERS,
        );
        check.finish()?;
        let id = collection_id(&req.collection_id)?;
        let bytes = image_bytes(req.image)?;
        let found = self.engine.search_faces_by_image(
            &id,
            &bytes,
            threshold(req.face_match_threshold)?,
            max_faces(req.max_faces),
        )?;
        let b = found.searched_bbox;
        let response = wire::SearchFacesByImageResponse {
            searched_face_bounding_box: Some(wire::BoundingBox {
                width: Some(f64::from(b.width)),
                height: Some(f64::from(b.height)),
                left: Some(f64::from(b.left)),
                top: Some(f64::from(b.top)),
            }),
            searched_face_confidence: found.searched_confidence.map(|c| c.get()),
            face_matches: Some(found.matches.iter().map(wire_match).collect()),
            face_model_version: Some(self.version(&id)?),
        };
        to_json(&response)
    }

    fn list_faces(&self, req: shapes::ListFaces) -> Result<String, RekognitionError> {
        let mut check = Check::default();
        check.collection_id(&req.collection_id, "collectionId");
        check.int(req.max_results, "maxResults", 0, Some(MAX_PAGE));
        if let Some(t) = &req.next_token {
            check.text(t, "nextToken", (0, 255), None);
        }
        check.finish()?;
        if req.user_id.is_some() || req.face_ids.is_some() {
            return Err(RekognitionError::invalid_parameter(
                "This endpoint has no users and does not filter ListFaces by UserId or FaceIds.",
            ));
        }
        let id = collection_id(&req.collection_id)?;
        let page = self.engine.list_faces(
            &id,
            req.next_token.as_deref(),
            u32::try_from(page_size(req.max_results)).unwrap_or(DEFAULT_PAGE),
        )?;
        let version = self.version(&id)?;
        let response = wire::ListFacesResponse {
            faces: Some(page.faces.iter().map(|f| wire_face(f, &version)).collect()),
            next_token: page.next_token,
            face_model_version: Some(version),
        };
        to_json(&response)
    }

    fn delete_faces(&self, req: shapes::DeleteFaces) -> Result<String, RekognitionError> {
        let mut check = Check::default();
        check.collection_id(&req.collection_id, "collectionId");
        if let Some(ids) = check.required(&req.face_ids, "faceIds") {
            check.count(ids.len(), "faceIds", 1, MAX_PAGE as usize);
            for (i, f) in ids.iter().enumerate() {
                check.face_id(f, &format!("faceIds.{}.member", i + 1));
            }
        }
        check.finish()?;
        let id = collection_id(&req.collection_id)?;
        let asked: Vec<FaceId> = req
            .face_ids
            .iter()
            .flatten()
            .map(|f| FaceId::parse(f))
            .collect::<Result<_, _>>()
            .map_err(|e| RekognitionError::invalid_parameter(e.to_string()))?;
        let deleted = self.engine.delete_faces(&id, &asked)?;
        let gone: HashSet<&FaceId> = deleted.iter().collect();
        let unsuccessful: Vec<Value> = asked
            .iter()
            .filter(|f| !gone.contains(f))
            .map(|f| json!({"FaceId": f.as_str(), "Reasons": ["FACE_NOT_FOUND"]}))
            .collect();
        Ok(json!({
            "DeletedFaces": deleted.iter().map(FaceId::as_str).collect::<Vec<_>>(),
            "UnsuccessfulFaceDeletions": unsuccessful,
        })
        .to_string())
    }

    /// A checked collection id of a request that names only it.
    fn collection(&self, value: &Option<String>) -> Result<CollectionId, RekognitionError> {
        let mut check = Check::default();
        check.collection_id(value, "collectionId");
        check.finish()?;
        collection_id(value)
    }

    /// The collection's face model version, asked of the engine once per collection.
    fn version(&self, id: &CollectionId) -> Result<String, RekognitionError> {
        if let Some(v) = self.versions.get(id) {
            return Ok(v);
        }
        let info = self.engine.describe_collection(id)?;
        self.versions.remember(id, &info.face_model_version);
        Ok(info.face_model_version)
    }
}

fn collection_id(value: &Option<String>) -> Result<CollectionId, RekognitionError> {
    CollectionId::parse(value.as_deref().unwrap_or_default())
        .map_err(|e| RekognitionError::invalid_parameter(e.to_string()))
}

fn image_bytes(image: Option<shapes::Image>) -> Result<Vec<u8>, RekognitionError> {
    let image = image.ok_or_else(|| RekognitionError::invalid_parameter("Image is required"))?;
    match (image.bytes, image.s3_object) {
        (Some(bytes), None) => Ok(bytes),
        (None, Some(_)) => Err(RekognitionError::s3_unsupported()),
        (Some(_), Some(_)) => Err(RekognitionError::invalid_parameter(
            "Image takes either Bytes or S3Object, not both.",
        )),
        (None, None) => Err(RekognitionError::invalid_parameter(
            "Image needs Bytes (or S3Object).",
        )),
    }
}

fn quality_filter(value: Option<&str>) -> QualityFilter {
    value.and_then(QualityFilter::parse).unwrap_or_default()
}

fn threshold(value: Option<f64>) -> Result<Similarity, RekognitionError> {
    Similarity::new(value.unwrap_or(DEFAULT_THRESHOLD))
        .map_err(|e| RekognitionError::invalid_parameter(e.to_string()))
}

fn max_faces(value: Option<i64>) -> u32 {
    value
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(DEFAULT_MAX_FACES)
}

/// The page size of a `MaxResults`; 0 (which the model allows) is taken as unset, so that a
/// paginator always moves on.
fn page_size(value: Option<i64>) -> usize {
    match value {
        Some(v) if v > 0 => usize::try_from(v).unwrap_or(DEFAULT_PAGE as usize),
        _ => DEFAULT_PAGE as usize,
    }
}

/// The collection's ARN. The endpoint has no account; the region is the one the caller signed
/// for.
fn arn(caller: &Caller, id: &CollectionId) -> String {
    format!(
        "arn:aws:rekognition:{}:000000000000:collection/{id}",
        caller.region
    )
}

/// The image id as Rekognition writes it (a UUID): facegraph's upload ids are SHA-256 digests,
/// named here by a version 8 UUID of their first 16 bytes, the same for every answer.
fn uuid_of(image_id: &str) -> String {
    match ImageId::parse(image_id) {
        Ok(id) if id.is_sha256() => {
            let mut bytes = [0u8; 16];
            if hex::decode_to_slice(&id.as_str()[..32], &mut bytes).is_ok() {
                uuid::Builder::from_custom_bytes(bytes)
                    .into_uuid()
                    .hyphenated()
                    .to_string()
            } else {
                image_id.to_owned()
            }
        }
        _ => image_id.to_owned(),
    }
}

fn wire_image_id(face: &mut wire::Face) {
    if let Some(id) = &face.image_id {
        face.image_id = Some(uuid_of(id));
    }
}

fn wire_match(m: &FaceMatch) -> wire::FaceMatch {
    wire::FaceMatch {
        similarity: Some(m.similarity.get()),
        face: Some(wire::Face {
            face_id: Some(m.face_id.to_string()),
            image_id: Some(uuid_of(m.image_id.as_str())),
            external_image_id: m.external_image_id.as_ref().map(ToString::to_string),
            ..wire::Face::default()
        }),
    }
}

/// A face of ListFaces: its stored record's face when it has one, else built from the domain.
fn wire_face(face: &Face, version: &str) -> wire::Face {
    let mut out = face
        .raw
        .as_deref()
        .and_then(|raw| serde_json::from_str::<wire::FaceRecord>(raw).ok())
        .and_then(|r| r.face)
        .unwrap_or_else(|| wire::Face {
            face_id: Some(face.face_id.to_string()),
            bounding_box: Some(wire::BoundingBox {
                width: Some(f64::from(face.bbox.width)),
                height: Some(f64::from(face.bbox.height)),
                left: Some(f64::from(face.bbox.left)),
                top: Some(f64::from(face.bbox.top)),
            }),
            image_id: Some(face.image_id.to_string()),
            external_image_id: face.external_image_id.as_ref().map(ToString::to_string),
            confidence: face.detection_confidence.map(|c| c.get()),
            index_faces_model_version: Some(version.to_owned()),
            user_id: None,
        });
    // The stored record may name the image by its bytes' hash (records written before uploads had
    // their own ids); the face's image is the upload.
    out.image_id = Some(face.image_id.to_string());
    wire_image_id(&mut out);
    out
}

/// Which of a face's details a request asked for: `DEFAULT` (bounding box, confidence, pose,
/// quality, landmarks), `ALL`, or `DEFAULT` and the ones named.
struct Attributes {
    all: bool,
    named: HashSet<String>,
}

impl Attributes {
    fn of(requested: Option<&[String]>) -> Self {
        let named: HashSet<String> = requested.unwrap_or_default().iter().cloned().collect();
        Self {
            all: named.contains("ALL"),
            named,
        }
    }

    fn filter(&self, d: &mut wire::FaceDetail) {
        if self.all {
            return;
        }
        let keep = |name: &str| self.named.contains(name);
        if !keep("AGE_RANGE") {
            d.age_range = None;
        }
        if !keep("GENDER") {
            d.gender = None;
        }
        if !keep("SMILE") {
            d.smile = None;
        }
        if !keep("EYEGLASSES") {
            d.eyeglasses = None;
        }
        if !keep("SUNGLASSES") {
            d.sunglasses = None;
        }
        if !keep("BEARD") {
            d.beard = None;
        }
        if !keep("MUSTACHE") {
            d.mustache = None;
        }
        if !keep("EYES_OPEN") {
            d.eyes_open = None;
        }
        if !keep("MOUTH_OPEN") {
            d.mouth_open = None;
        }
        if !keep("EMOTIONS") {
            d.emotions = None;
        }
        if !keep("FACE_OCCLUDED") {
            d.face_occluded = None;
        }
        if !keep("EYE_DIRECTION") {
            d.eye_direction = None;
        }
    }
}

/// The response's JSON, its members in the order of the API model's shapes.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String, RekognitionError> {
    serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, "a response could not be written");
        RekognitionError::internal()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_become_stable_uuids_and_uuids_stay() {
        let sha = "5d41402abc4b2a76b9719d911017c592aa2ff0e2de1b2a9bbd8f7d8a2f4e3c1b";
        let a = uuid_of(sha);
        assert_eq!(a, uuid_of(sha));
        assert!(
            crate::model::ImageId::parse(&a).is_ok_and(|id| !id.is_sha256()),
            "{a}"
        );
        let u = "aaaaaaaa-0000-4000-8000-000000000001";
        assert_eq!(uuid_of(u), u);
    }

    #[test]
    fn targets_name_operations() {
        assert_eq!(
            Operation::from_target("RekognitionService.IndexFaces"),
            Some(Operation::IndexFaces)
        );
        assert_eq!(
            Operation::from_target("RekognitionService.DetectLabels"),
            None
        );
        assert_eq!(Operation::from_target("IndexFaces"), None);
    }
}
