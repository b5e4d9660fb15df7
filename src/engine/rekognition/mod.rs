//! [`RekognitionEngine`]: the `FaceEngine` port on AWS Rekognition through aws-sdk-rekognition
//! (or on any endpoint that speaks its protocol, such as `facegraph serve --rekognition-listen`).
//!
//! The SDK signs, retries throttled calls with jittered backoff and resolves credentials, region
//! and endpoint; the responses are read from the body the service sent, with the wire types and
//! conversions of [`crate::rekognition`], so that every face keeps its record verbatim. The SDK is
//! asynchronous and the port is not: the engine runs the client on a runtime of its own and blocks
//! on it, so it is called from plain threads or tokio's blocking pool, like the Neo4j store.
//!
//! Where Rekognition differs from the port, this adapter does the port's part:
//! - **The largest faces.** Rekognition's `MaxFaces` keeps the faces of best quality, not the
//!   largest. A request with `max_faces` indexes with `MaxFaces` unset and deletes the faces beyond
//!   the largest with `DeleteFaces` at once, reporting them as `EXCEEDS_MAX_FACES`.
//! - **Duplicates.** Rekognition indexes the same bytes again as new faces, and keeps no content
//!   hash. [`FaceEngine::find_indexed`] therefore looks the external image id up with `ListFaces`
//!   (every page: the API filters by face or user id only) and answers the faces of the one image
//!   the service holds under it. Several images under one external image id cannot be told apart,
//!   and the answer is then `None`, with a warning. A face found this way has no classifier
//!   attributes: `ListFaces` does not return them.

mod client;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{Attribute, Image as SdkImage, QualityFilter as SdkQualityFilter};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::value::RawValue;

use self::client::{KeepBody, Pacer};
use crate::engine::calls::{AvoidedBy, CallLedger, Operation};
use crate::engine::{
    unindexed_of, CollectionInfo, EngineError, FaceEngine, FaceMatch, FacePage, ImageError,
    IndexFacesRequest, IndexFacesResult, QualityFilter, SearchByImageResult, UnindexedFace,
    UnindexedReason,
};
use crate::model::{
    BoundingBox, CollectionId, Confidence, ContentHash, ExternalImageId, Face, FaceId, Image,
    ImageId, Similarity, Timestamp,
};
use crate::rekognition::{
    face_matches_to_domain, index_faces_to_domain, list_faces_to_domain, wire, Match,
};

/// The engine's name, recorded on collections and edges.
pub const ENGINE_NAME: &str = "rekognition";

/// The largest image Rekognition takes as bytes (the API model's `ImageBlob`).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The most faces one `ListFaces` page or `DeleteFaces` call takes.
const MAX_PAGE: i32 = 4096;

/// How the engine reaches the service.
#[derive(Clone, Debug)]
pub struct RekognitionConfig {
    /// The AWS region; `None`: the SDK's default chain (AWS_REGION, the profile).
    pub region: Option<String>,
    /// The endpoint URL; `None`: the SDK's (AWS_ENDPOINT_URL_REKOGNITION, AWS_ENDPOINT_URL, the
    /// profile, else the region's Rekognition endpoint).
    pub endpoint: Option<String>,
    /// At most this many calls per second leave this engine; `None`: no limit of ours.
    pub requests_per_second: Option<f64>,
    /// Attempts per call, the first included: throttled and transient failures are retried until
    /// then.
    pub max_attempts: u32,
    /// The backoff before the first retry; each retry waits a random time up to twice the last.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// An access key id and its secret to sign with instead of the default chain's credentials:
    /// for benchmarks and tests that run the compatible endpoint in-process. The settings never
    /// set it; `--engine rekognition` always takes the default chain's.
    pub credentials: Option<(String, SecretString)>,
}

impl Default for RekognitionConfig {
    /// No region or endpoint of ours, no rate limit, 5 attempts, backoff from 1 s up to 20 s (the
    /// SDK's standard mode).
    fn default() -> Self {
        Self {
            region: None,
            endpoint: None,
            requests_per_second: None,
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            credentials: None,
        }
    }
}

/// The Rekognition engine. Shared between threads; each call blocks the calling thread.
#[derive(Debug)]
pub struct RekognitionEngine {
    client: aws_sdk_rekognition::Client,
    pacer: Pacer,
    /// Every call sent, and the calls others report avoided.
    calls: Arc<CallLedger>,
    /// Taken out only when the engine is dropped, so that dropping it inside an async context
    /// does not block that context (tokio refuses to).
    runtime: Option<tokio::runtime::Runtime>,
}

impl RekognitionEngine {
    /// Opens the engine: starts its runtime and builds the client. Nothing is sent to the service
    /// yet; credentials are resolved on the first call.
    pub fn open(config: &RekognitionConfig) -> Result<Self, EngineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("facegraph-rekognition")
            .enable_all()
            .build()
            .map_err(|e| EngineError::Backend {
                operation: "start the Rekognition client's runtime",
                source: Box::new(e),
            })?;
        let client = runtime.block_on(client::build(config))?;
        Ok(Self {
            client,
            pacer: Pacer::new(config.requests_per_second),
            calls: Arc::new(CallLedger::new()),
            runtime: Some(runtime),
        })
    }

    /// The same engine counting its calls in `calls`, a ledger its owner reports from.
    pub fn with_ledger(mut self, calls: Arc<CallLedger>) -> Self {
        self.calls = calls;
        self
    }

    /// The ledger of the calls made and avoided.
    pub fn calls(&self) -> &Arc<CallLedger> {
        &self.calls
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime lives until the engine is dropped"),
        }
    }

    /// Sends one call built by `call` (given the interceptor that keeps the body) at the pace of
    /// the settings, counts it in the ledger, and returns its output with the body. The ledger
    /// counts here rather than in a decorator around the port because one port call can be several
    /// service calls (the pages of ListFaces, the DeleteFaces of the largest-face policy).
    fn send<T, E, F>(
        &self,
        operation: Operation,
        target: Target<'_>,
        call: impl FnOnce(KeepBody) -> F,
    ) -> Result<(T, Vec<u8>), EngineError>
    where
        F: std::future::Future<
            Output = Result<T, SdkError<E, aws_sdk_rekognition::config::http::HttpResponse>>,
        >,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let keep = KeepBody::default();
        self.calls.made(operation);
        let result = self.block_on(async {
            self.pacer.wait().await;
            call(keep.clone()).await
        });
        match result {
            Ok(output) => Ok((output, keep.take().unwrap_or_default())),
            Err(e) => Err(engine_error(operation.as_str(), target, e)),
        }
    }

    fn list_page(
        &self,
        collection_id: &CollectionId,
        next_token: Option<&str>,
        max_results: i32,
    ) -> Result<(wire::ListFacesResponse, ListFacesRaw), EngineError> {
        let (_, body) = self.send(
            Operation::ListFaces,
            Target::Collection(collection_id),
            |keep| {
                self.client
                    .list_faces()
                    .collection_id(collection_id.as_str())
                    .set_next_token(next_token.map(str::to_owned))
                    .max_results(max_results)
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        let response: wire::ListFacesResponse = read_body("ListFaces", &body)?;
        let raw: ListFacesRaw = read_body("ListFaces", &body)?;
        Ok((response, raw))
    }

    /// The faces of a ListFaces page in the port's terms, each with its record as the service sent
    /// it.
    fn page_faces(
        collection_id: &CollectionId,
        response: &wire::ListFacesResponse,
        raw: &ListFacesRaw,
    ) -> Result<Vec<Face>, EngineError> {
        let mut faces = list_faces_to_domain(response, collection_id, Timestamp::now())
            .map_err(|e| bad_response("ListFaces", e))?;
        for (face, record) in faces.iter_mut().zip(&raw.faces) {
            face.raw = Some(record.get().to_owned());
        }
        Ok(faces)
    }

    fn delete_chunk(
        &self,
        collection_id: &CollectionId,
        face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError> {
        let (output, _) = self.send(
            Operation::DeleteFaces,
            Target::Collection(collection_id),
            |keep| {
                self.client
                    .delete_faces()
                    .collection_id(collection_id.as_str())
                    .set_face_ids(Some(face_ids.iter().map(ToString::to_string).collect()))
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        output
            .deleted_faces()
            .iter()
            .map(|id| FaceId::parse(id).map_err(|e| bad_response("DeleteFaces", e)))
            .collect()
    }
}

impl Drop for RekognitionEngine {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl FaceEngine for RekognitionEngine {
    fn name(&self) -> &'static str {
        ENGINE_NAME
    }

    #[tracing::instrument(skip_all, fields(collection = %id))]
    fn create_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        let (output, _) = self.send(
            Operation::CreateCollection,
            Target::NewCollection(id),
            |keep| {
                self.client
                    .create_collection()
                    .collection_id(id.as_str())
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        Ok(CollectionInfo {
            collection_id: id.clone(),
            face_count: 0,
            face_model_version: output.face_model_version().unwrap_or_default().to_owned(),
            // The service does not say when; it is now, to the precision that matters here.
            created_at: Timestamp::now(),
        })
    }

    fn list_collections(&self) -> Result<Vec<CollectionId>, EngineError> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (output, _) = self.send(Operation::ListCollections, Target::None, |keep| {
                self.client
                    .list_collections()
                    .set_next_token(token.clone())
                    .max_results(MAX_PAGE)
                    .customize()
                    .interceptor(keep)
                    .send()
            })?;
            for id in output.collection_ids() {
                ids.push(CollectionId::parse(id).map_err(|e| bad_response("ListCollections", e))?);
            }
            match output.next_token() {
                Some(next) if !next.is_empty() && token.as_deref() != Some(next) => {
                    token = Some(next.to_owned());
                }
                _ => break,
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn describe_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        let (output, _) = self.send(
            Operation::DescribeCollection,
            Target::Collection(id),
            |keep| {
                self.client
                    .describe_collection()
                    .collection_id(id.as_str())
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        let created_at = output
            .creation_timestamp()
            .and_then(|t| t.to_millis().ok())
            .map_or_else(Timestamp::now, Timestamp::from_millis);
        Ok(CollectionInfo {
            collection_id: id.clone(),
            face_count: output
                .face_count()
                .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            face_model_version: output.face_model_version().unwrap_or_default().to_owned(),
            created_at,
        })
    }

    #[tracing::instrument(skip_all, fields(collection = %id))]
    fn delete_collection(&self, id: &CollectionId) -> Result<(), EngineError> {
        self.send(
            Operation::DeleteCollection,
            Target::Collection(id),
            |keep| {
                self.client
                    .delete_collection()
                    .collection_id(id.as_str())
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(collection = %req.collection_id))]
    fn index_faces(&self, req: &IndexFacesRequest<'_>) -> Result<IndexFacesResult, EngineError> {
        if req.max_faces == Some(0) {
            return Err(EngineError::InvalidParameter(
                "MaxFaces must be at least 1".to_owned(),
            ));
        }
        let bytes = req.image.bytes().ok_or_else(|| {
            EngineError::InvalidParameter("this image source is not supported yet".to_owned())
        })?;
        check_image(bytes)?;
        let collection_id = req.collection_id;
        // MaxFaces is left unset: the service would keep the faces of best quality, and the port
        // keeps the largest (see the module documentation).
        let (_, body) = self.send(
            Operation::IndexFaces,
            Target::Collection(collection_id),
            |keep| {
                self.client
                    .index_faces()
                    .collection_id(collection_id.as_str())
                    .image(image(bytes))
                    .set_external_image_id(req.external_image_id.map(ToString::to_string))
                    .detection_attributes(Attribute::All)
                    .quality_filter(quality_filter(req.quality_filter))
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        let response: wire::IndexFacesResponse = read_body("IndexFaces", &body)?;
        let raw: IndexFacesRaw = read_body("IndexFaces", &body)?;
        let indexed_at = Timestamp::now();
        let converted = index_faces_to_domain(&response, collection_id, indexed_at)
            .map_err(|e| bad_response("IndexFaces", e))?;
        let mut faces = converted.faces;
        for (face, record) in faces.iter_mut().zip(&raw.face_records) {
            face.raw = Some(record.get().to_owned());
        }
        let mut unindexed: Vec<UnindexedFace> = response
            .unindexed_faces
            .iter()
            .flatten()
            .map(unindexed_of)
            .collect();
        let detected = faces.len() + unindexed.len();
        // Largest first, as the port returns them; the sort is stable for equal boxes.
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        if let Some(max) = req.max_faces.map(|m| m as usize) {
            if faces.len() > max {
                let beyond = faces.split_off(max);
                let ids: Vec<FaceId> = beyond.iter().map(|f| f.face_id.clone()).collect();
                self.delete_faces(collection_id, &ids)?;
                unindexed.extend(beyond.into_iter().map(|f| UnindexedFace {
                    bbox: f.bbox,
                    confidence: f.detection_confidence,
                    attributes: f.attributes,
                    reasons: vec![UnindexedReason::ExceedsMaxFaces],
                }));
            }
        }
        for (i, face) in faces.iter_mut().enumerate() {
            face.is_largest = i == 0;
        }
        let content = ContentHash::of_bytes(bytes);
        let image = Image {
            // The service's image id when it gave one (in every face record); an image whose
            // faces were all left out has none, and is named as facegraph names uploads.
            image_id: faces.first().map_or_else(
                || ImageId::of_upload(&content, req.external_image_id),
                |f| f.image_id.clone(),
            ),
            external_image_id: req.external_image_id.cloned(),
            content_sha256: Some(content),
            collection_id: Some(collection_id.clone()),
            pending: false,
            source: None,
            width: None,
            height: None,
            face_count: u32::try_from(detected).unwrap_or(u32::MAX),
            received_at: indexed_at,
        };
        Ok(IndexFacesResult {
            image,
            faces,
            unindexed,
            face_model_version: response.face_model_version.unwrap_or_default(),
        })
    }

    fn find_indexed(
        &self,
        collection_id: &CollectionId,
        external_image_id: Option<&ExternalImageId>,
        content: &ContentHash,
    ) -> Result<Option<IndexFacesResult>, EngineError> {
        // Without an external image id there is nothing to look the image up by.
        let Some(ext) = external_image_id else {
            return Ok(None);
        };
        let mut by_image: BTreeMap<ImageId, Vec<Face>> = BTreeMap::new();
        let mut version = String::new();
        let mut token: Option<String> = None;
        loop {
            let (response, raw) = match self.list_page(collection_id, token.as_deref(), MAX_PAGE) {
                Ok(page) => page,
                Err(EngineError::CollectionNotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            if let Some(v) = &response.face_model_version {
                version.clone_from(v);
            }
            for face in Self::page_faces(collection_id, &response, &raw)? {
                if face.external_image_id.as_ref() == Some(ext) {
                    by_image
                        .entry(face.image_id.clone())
                        .or_default()
                        .push(face);
                }
            }
            match response.next_token {
                Some(next) if !next.is_empty() && token.as_deref() != Some(next.as_str()) => {
                    token = Some(next);
                }
                _ => break,
            }
        }
        if by_image.len() > 1 {
            tracing::warn!(
                collection = %collection_id,
                external_image_id = %ext,
                images = by_image.len(),
                "several images in the collection carry this external image id, and Rekognition \
                 cannot say which of them this upload indexed; it stays pending"
            );
            return Ok(None);
        }
        let Some((image_id, mut faces)) = by_image.pop_first() else {
            return Ok(None);
        };
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        for (i, face) in faces.iter_mut().enumerate() {
            face.is_largest = i == 0;
        }
        Ok(Some(IndexFacesResult {
            image: Image {
                image_id,
                external_image_id: Some(ext.clone()),
                content_sha256: Some(content.clone()),
                collection_id: Some(collection_id.clone()),
                pending: false,
                source: None,
                width: None,
                height: None,
                face_count: u32::try_from(faces.len()).unwrap_or(u32::MAX),
                received_at: Timestamp::now(),
            },
            faces,
            unindexed: Vec::new(),
            face_model_version: version,
        }))
    }

    #[tracing::instrument(skip_all, fields(collection = %collection_id, face = %face_id))]
    fn search_faces(
        &self,
        collection_id: &CollectionId,
        face_id: &FaceId,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        let max = check_max(max_faces)?;
        let (_, body) = self.send(
            Operation::SearchFaces,
            Target::Face(collection_id, face_id),
            |keep| {
                self.client
                    .search_faces()
                    .collection_id(collection_id.as_str())
                    .face_id(face_id.as_str())
                    .face_match_threshold(threshold.get() as f32)
                    .max_faces(max)
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        let response: wire::SearchFacesResponse = read_body("SearchFaces", &body)?;
        let matches = face_matches_to_domain(response.face_matches.as_deref())
            .map_err(|e| bad_response("SearchFaces", e))?;
        port_matches("SearchFaces", matches, threshold)
    }

    #[tracing::instrument(skip_all, fields(collection = %collection_id))]
    fn search_faces_by_image(
        &self,
        collection_id: &CollectionId,
        image_bytes: &[u8],
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<SearchByImageResult, EngineError> {
        let max = check_max(max_faces)?;
        check_image(image_bytes)?;
        let (_, body) = self.send(
            Operation::SearchFacesByImage,
            Target::Collection(collection_id),
            |keep| {
                self.client
                    .search_faces_by_image()
                    .collection_id(collection_id.as_str())
                    .image(image(image_bytes))
                    .face_match_threshold(threshold.get() as f32)
                    .max_faces(max)
                    .customize()
                    .interceptor(keep)
                    .send()
            },
        )?;
        let response: wire::SearchFacesByImageResponse = read_body("SearchFacesByImage", &body)?;
        let b = response.searched_face_bounding_box.unwrap_or_default();
        let matches = face_matches_to_domain(response.face_matches.as_deref())
            .map_err(|e| bad_response("SearchFacesByImage", e))?;
        Ok(SearchByImageResult {
            searched_bbox: BoundingBox {
                left: b.left.unwrap_or(0.0) as f32,
                top: b.top.unwrap_or(0.0) as f32,
                width: b.width.unwrap_or(0.0) as f32,
                height: b.height.unwrap_or(0.0) as f32,
            },
            searched_confidence: response
                .searched_face_confidence
                .and_then(|c| Confidence::new(c).ok()),
            matches: port_matches("SearchFacesByImage", matches, threshold)?,
        })
    }

    fn list_faces(
        &self,
        collection_id: &CollectionId,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<FacePage, EngineError> {
        let max = check_max(max_results)?;
        let (response, raw) = self.list_page(collection_id, next_token, max)?;
        let faces = Self::page_faces(collection_id, &response, &raw)?;
        Ok(FacePage {
            faces,
            next_token: response.next_token.filter(|t| !t.is_empty()),
        })
    }

    #[tracing::instrument(skip_all, fields(collection = %collection_id, faces = face_ids.len()))]
    fn delete_faces(
        &self,
        collection_id: &CollectionId,
        face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError> {
        if face_ids.is_empty() {
            return Err(EngineError::InvalidParameter(
                "DeleteFaces takes at least one face id".to_owned(),
            ));
        }
        let mut deleted = Vec::with_capacity(face_ids.len());
        for chunk in face_ids.chunks(MAX_PAGE as usize) {
            deleted.extend(self.delete_chunk(collection_id, chunk)?);
        }
        Ok(deleted)
    }

    fn note_avoided(&self, operation: Operation, reason: AvoidedBy, calls: u64) {
        self.calls.avoided(operation, reason, calls);
    }
}

/// What a failed call was about, to name it in the port's errors.
#[derive(Clone, Copy, Debug)]
enum Target<'a> {
    None,
    Collection(&'a CollectionId),
    NewCollection(&'a CollectionId),
    Face(&'a CollectionId, &'a FaceId),
}

/// The faces of an IndexFaces body as the service wrote them.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexFacesRaw {
    #[serde(default)]
    face_records: Vec<Box<RawValue>>,
}

/// The faces of a ListFaces body as the service wrote them.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListFacesRaw {
    #[serde(default)]
    faces: Vec<Box<RawValue>>,
}

fn image(bytes: &[u8]) -> SdkImage {
    SdkImage::builder().bytes(Blob::new(bytes)).build()
}

fn quality_filter(q: QualityFilter) -> SdkQualityFilter {
    SdkQualityFilter::from(q.as_str())
}

/// Refuses what the service would refuse, before the bytes are sent (and billed).
fn check_image(bytes: &[u8]) -> Result<(), EngineError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty.into());
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooManyBytes {
            size: bytes.len(),
            limit: MAX_IMAGE_BYTES,
        }
        .into());
    }
    Ok(())
}

fn check_max(value: u32) -> Result<i32, EngineError> {
    match i32::try_from(value) {
        Ok(v) if (1..=MAX_PAGE).contains(&v) => Ok(v),
        _ => Err(EngineError::InvalidParameter(format!(
            "MaxFaces and MaxResults must be from 1 to {MAX_PAGE}, not {value}"
        ))),
    }
}

/// The search hits in the port's terms. The service filters on the threshold as a 32-bit float;
/// the port's threshold is exact, so hits below it are dropped here.
fn port_matches(
    operation: &'static str,
    matches: Vec<Match>,
    threshold: Similarity,
) -> Result<Vec<FaceMatch>, EngineError> {
    matches
        .into_iter()
        .filter(|m| m.similarity.get() >= threshold.get())
        .map(|m| {
            let image_id = m.image_id.ok_or_else(|| EngineError::Backend {
                operation,
                source: format!("match {} has no ImageId", m.face_id).into(),
            })?;
            Ok(FaceMatch {
                face_id: m.face_id,
                similarity: m.similarity,
                image_id,
                external_image_id: m.external_image_id,
            })
        })
        .collect()
}

fn read_body<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    body: &[u8],
) -> Result<T, EngineError> {
    serde_json::from_slice(body).map_err(|e| bad_response(operation, e))
}

fn bad_response(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> EngineError {
    EngineError::Backend {
        operation,
        source: Box::new(BadResponse(Box::new(e))),
    }
}

/// A response the service sent that facegraph cannot read.
#[derive(Debug, thiserror::Error)]
#[error("the service's response is not a valid Rekognition response")]
struct BadResponse(#[source] Box<dyn std::error::Error + Send + Sync>);

/// The port's error for a failed call: the service's refusals become the port's, everything else
/// (throttling that outlasted the retries, network and credential failures) is a backend failure.
fn engine_error<E, R>(operation: &'static str, target: Target<'_>, e: SdkError<E, R>) -> EngineError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = &e {
        let err = service.err();
        let message = err.message().unwrap_or_default().to_owned();
        match (err.code().unwrap_or_default(), target) {
            ("ResourceNotFoundException", Target::Collection(c) | Target::Face(c, _)) => {
                return EngineError::CollectionNotFound(c.clone())
            }
            ("ResourceAlreadyExistsException", Target::NewCollection(c)) => {
                return EngineError::CollectionExists(c.clone())
            }
            // The request was checked here first, so the service refusing a search means it does
            // not hold the face.
            ("InvalidParameterException", Target::Face(c, f)) => {
                return EngineError::FaceNotFound {
                    collection_id: c.clone(),
                    face_id: f.clone(),
                }
            }
            ("InvalidParameterException", _) if message.starts_with("There are no faces") => {
                return EngineError::NoFaceInImage
            }
            ("InvalidParameterException", _) => return EngineError::InvalidParameter(message),
            ("InvalidPaginationTokenException", _) => {
                return EngineError::InvalidPaginationToken(message)
            }
            ("InvalidImageFormatException", _) => {
                return EngineError::InvalidImage(ImageError::UnsupportedFormat { found: message })
            }
            // Bytes over the limit are refused before sending, so this is the image's pixels.
            ("ImageTooLargeException", _) => {
                return EngineError::InvalidImage(ImageError::Decode(format!(
                    "the service refused the image as too large: {message}"
                )))
            }
            _ => {}
        }
    }
    EngineError::Backend {
        operation,
        source: Box::new(e),
    }
}
