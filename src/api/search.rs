//! `POST /v1/search`: a collection searched through the face engine, for the `analyst` and
//! `ingest` roles: by a face id in the query, or by the largest face of an image sent as the body.
//! A routed collection id searches its family. Each hit says what the graph knows of its face.

use axum::extract::{Request, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AnalystOrIngest, Authorized};
use super::collections::engine;
use super::error::Fields;
use super::extract::{media_type, read_body, ApiQuery};
use super::images::sniff;
use super::wire::SearchOut;
use super::{ApiError, AppState};
use crate::model::{CollectionId, FaceId, Similarity};
use crate::service::{SearchBy, SearchRequest, DEFAULT_MAX_MATCHES, DEFAULT_SEARCH_THRESHOLD};

/// The route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// What a search starts from, owned for the blocking pool.
enum Probe {
    Face(FaceId),
    Image(axum::body::Bytes),
}

/// What to search, and how.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The collection to search (a routed id searches its family).
    pub collection_id: String,
    /// Search for this face (a lowercase UUID); without it, the body is an image whose largest
    /// face is searched.
    pub face_id: Option<String>,
    /// Hits below this similarity, 0-100, are not returned; default 80.
    pub threshold: Option<f64>,
    /// At most this many hits, 1-4096; default 100.
    pub max_faces: Option<u32>,
}

/// Search a collection for a face, or for the largest face of an image.
///
/// Give `face_id` and no body, or an image body (`image/jpeg` or `image/png`) and no `face_id`.
#[utoipa::path(post, path = "/v1/search", tag = "search",
    params(SearchQuery),
    request_body(content(
        (Vec<u8> = "image/jpeg"),
        (Vec<u8> = "image/png")),
        description = "The image to search by, unless face_id is given"),
    responses(
        (status = 200, description = "The faces found, most similar first", body = SearchOut),
        (status = 400, description = "Invalid parameters, both or neither of face_id and an image, or no face in the image", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key has neither the analyst nor the ingest role", body = super::ErrorBody),
        (status = 404, description = "No such collection, or the face is not in it", body = super::ErrorBody),
        (status = 413, description = "Image over 15 MB", body = super::ErrorBody),
        (status = 415, description = "Not JPEG or PNG", body = super::ErrorBody),
        (status = 503, description = "No face engine is configured", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn search(
    _caller: Authorized<AnalystOrIngest>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
    req: Request,
) -> Result<Json<SearchOut>, ApiError> {
    let mut f = Fields::default();
    let collection_id = f.check("collection_id", CollectionId::parse(&q.collection_id));
    let face_id = q
        .face_id
        .as_deref()
        .map(|id| f.check("face_id", FaceId::parse(id)));
    let threshold = f.check(
        "threshold",
        Similarity::new(q.threshold.unwrap_or(DEFAULT_SEARCH_THRESHOLD)),
    );
    let max_faces = q.max_faces.unwrap_or(DEFAULT_MAX_MATCHES);
    if !(1..=crate::engine::local::MAX_RESULTS).contains(&max_faces) {
        f.push("max_faces", "must be from 1 to 4096");
    }
    f.finish()?;
    let (Some(collection_id), Some(threshold)) = (collection_id, threshold) else {
        return Err(ApiError::field("query", "invalid parameters"));
    };
    let face_id = face_id.flatten();
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, state.config().image_limit).await?;
    let probe =
        match (face_id, bytes.is_empty()) {
            (Some(id), true) => Probe::Face(id),
            (None, false) => {
                match media_type(&parts.headers).as_deref() {
                    Some("image/jpeg" | "image/png") if sniff(&bytes).is_some() => {}
                    _ => return Err(ApiError::UnsupportedMediaType(
                        "the body must be an image (image/jpeg or image/png, by its content too)"
                            .to_owned(),
                    )),
                }
                Probe::Image(bytes)
            }
            (Some(_), false) => {
                return Err(ApiError::field(
                    "face_id",
                    "give a face id or an image to search by, not both",
                ))
            }
            (None, true) => {
                return Err(ApiError::field(
                    "face_id",
                    "give a face id, or an image as the body, to search by",
                ))
            }
        };
    let engine = engine(&state)?;
    let report = state
        .blocking(move |app| {
            let by = match &probe {
                Probe::Image(bytes) => SearchBy::Image(bytes),
                Probe::Face(id) => SearchBy::Face(id),
            };
            app.search(
                engine.as_ref(),
                &SearchRequest {
                    collection_id: &collection_id,
                    by,
                    threshold,
                    max_faces,
                },
            )
        })
        .await?;
    Ok(Json(SearchOut::from(&report)))
}
