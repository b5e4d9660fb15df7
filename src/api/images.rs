//! `POST /v1/collections/{collection_id}/images`: an image as the raw body, indexed, searched and
//! adjudicated through the configured face engine. The bytes are checked here (size, JPEG or PNG by
//! their magic numbers) before any engine sees them, and never logged.

use axum::extract::{Path, Request, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authorized, IngestRole};
use super::error::Fields;
use super::extract::{media_type, read_body, ApiQuery};
use super::wire::{FaceOut, MatchOut};
use super::{ApiError, AppState};
use crate::model::{CollectionId, ExternalImageId, Similarity, SubjectId};
use crate::service::{FacePolicy, ImageIngest};

/// The route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest_image))
}

/// The image's names and options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// The caller's name for the image: 1-255 of `[a-zA-Z0-9_.:-]`.
    pub external_image_id: Option<String>,
    /// The customer behind the image.
    pub subject_id: Option<String>,
    /// `largest` (default: only the largest face, a selfie's) or `all`.
    pub faces: Option<String>,
    /// Search threshold, 0-100, default 80.
    pub threshold: Option<f64>,
}

/// A detected face that was not indexed.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnindexedOut {
    /// Why, in Rekognition's spelling (`EXCEEDS_MAX_FACES`, `LOW_SHARPNESS`, ...).
    pub reasons: Vec<&'static str>,
}

/// What ingesting the image did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageIngestOut {
    /// The image's id: one upload, the SHA-256 of the bytes' hash and the external image id.
    pub image_id: String,
    /// The SHA-256 of the bytes; another upload with the same hash is the same photo.
    pub content_sha256: Option<String>,
    /// Whether these bytes were already ingested under this external image id: nothing was
    /// indexed again, and `faces` and `matches` are empty (the stored ones are under /v1/faces).
    pub duplicate: bool,
    /// The caller's name for it.
    pub external_image_id: Option<String>,
    /// Faces indexed.
    pub faces: Vec<FaceOut>,
    /// Faces detected but not indexed.
    pub unindexed: Vec<UnindexedOut>,
    /// The candidate matches of the new faces, with their verdicts.
    pub matches: Vec<MatchOut>,
    /// Hits on faces the engine holds but the graph does not; not stored.
    pub unknown_hits: usize,
}

/// What the bytes are, by their first bytes.
pub(super) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// Index an image's faces, search the collection for them, and adjudicate the matches.
///
/// The body is the image itself (`image/jpeg` or `image/png`, at most 15 MB). The collection is
/// created in the engine when missing.
#[utoipa::path(post, path = "/v1/collections/{collection_id}/images", tag = "images",
    params(("collection_id" = String, Path, description = "1-255 of [a-zA-Z0-9_.-]"), ImageQuery),
    request_body(content(
        (Vec<u8> = "image/jpeg"),
        (Vec<u8> = "image/png")),
        description = "The image bytes"),
    responses(
        (status = 200, description = "Faces, matches and verdicts", body = ImageIngestOut),
        (status = 400, description = "Invalid parameters", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the ingest role", body = super::ErrorBody),
        (status = 413, description = "Image over 15 MB", body = super::ErrorBody),
        (status = 415, description = "Not JPEG or PNG by its bytes", body = super::ErrorBody),
        (status = 503, description = "No face engine is configured", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn ingest_image(
    _caller: Authorized<IngestRole>,
    State(state): State<AppState>,
    Path(collection): Path<String>,
    ApiQuery(q): ApiQuery<ImageQuery>,
    req: Request,
) -> Result<Json<ImageIngestOut>, ApiError> {
    let mut f = Fields::default();
    let collection_id = f.check("collection_id", CollectionId::parse(&collection));
    let external = match q.external_image_id.as_deref() {
        Some(e) => f.check("external_image_id", ExternalImageId::parse(e)),
        None => {
            f.push("external_image_id", "is required");
            None
        }
    };
    let subject = match q.subject_id.as_deref() {
        Some(s) => f.check("subject_id", SubjectId::parse(s)),
        None => None,
    };
    let policy = match q.faces.as_deref() {
        None | Some("largest") => FacePolicy::LargestOnly,
        Some("all") => FacePolicy::All,
        Some(_) => {
            f.push("faces", "must be largest or all");
            FacePolicy::LargestOnly
        }
    };
    let threshold = q
        .threshold
        .map(|t| f.check("threshold", Similarity::new(t)))
        .unwrap_or(None);
    f.finish()?;
    let (Some(collection_id), Some(external)) = (collection_id, external) else {
        return Err(ApiError::field("query", "invalid parameters"));
    };

    let (parts, body) = req.into_parts();
    match media_type(&parts.headers).as_deref() {
        Some("image/jpeg" | "image/png") => {}
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be an image (Content-Type: image/jpeg or image/png), not {}",
                other.unwrap_or("untyped")
            )))
        }
    }
    let bytes = read_body(&parts.headers, body, state.config().image_limit).await?;
    if sniff(&bytes).is_none() {
        return Err(ApiError::UnsupportedMediaType(
            "the image is neither JPEG nor PNG by its content".to_owned(),
        ));
    }
    let engine = state.engine().cloned().ok_or_else(|| {
        ApiError::unavailable(
            "no face engine is configured on this server: images cannot be indexed; submit \
             candidate matches to POST /v1/adjudications instead",
            None,
        )
    })?;
    let report = state
        .blocking(move |app| {
            let mut req = ImageIngest::new(&collection_id, &bytes);
            req.external_image_id = Some(&external);
            req.subject_id = subject.as_ref();
            req.source = Some("api");
            req.policy = policy;
            if let Some(t) = threshold {
                req.search_threshold = t;
            }
            app.ingest_image(engine.as_ref(), &req)
        })
        .await?;
    let m = state.metrics();
    m.changes(report.adjudication.changes.iter().map(|c| &c.after.verdict));
    for v in report.matches.iter().filter_map(|m| m.judgement.as_ref()) {
        m.verdict(v.verdict, "image");
    }
    Ok(Json(ImageIngestOut {
        image_id: report.image.image_id.to_string(),
        content_sha256: report
            .image
            .content_sha256
            .as_ref()
            .map(ToString::to_string),
        duplicate: report.duplicate,
        external_image_id: report
            .image
            .external_image_id
            .as_ref()
            .map(ToString::to_string),
        faces: report.faces.iter().map(FaceOut::from).collect(),
        unindexed: report
            .unindexed
            .iter()
            .map(|u| UnindexedOut {
                reasons: u.reasons.iter().map(|r| r.as_str()).collect(),
            })
            .collect(),
        matches: report.matches.iter().map(MatchOut::from).collect(),
        unknown_hits: report.unknown_hits,
    }))
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b""), None);
    }
}
