//! Saved Rekognition responses: recognising which API a saved JSON file answers, in either of the
//! spellings teams save them in, and converting it into the domain model.
//!
//! # Spellings
//!
//! A saved IndexFaces, SearchFaces, SearchFacesByImage or ListFaces response comes either as the
//! service returns it (PascalCase: AWS CLI output, or boto3's with a top-level `ResponseMetadata`), or
//! as the AWS Java SDK v1 result bean serialised by Jackson (camelCase member names, `null` for absent
//! members, and top-level `sdkResponseMetadata` and `sdkHttpMetadata`). [`parse_saved`] reads both:
//! it upper-cases the first letter of every object key (never of a value: enum values such as `eyeLeft`
//! are spelled the same in both), drops `null` members and the three metadata members, and then
//! deserialises the [`wire`] types. Error paths are therefore given in the service's PascalCase
//! spelling, such as `FaceMatches[1].Similarity`, whichever spelling the file used.
//!
//! # Recognition
//!
//! The kind of response is recognised from its top-level members, never from the file name:
//! `FaceRecords` is IndexFaces, `SearchedFaceId` with `FaceMatches` is SearchFaces,
//! `SearchedFaceBoundingBox` with `FaceMatches` is SearchFacesByImage, and `Faces` is ListFaces.
//! Unknown members are ignored inside the response (the service adds members over time), but a
//! top-level member that the recognised response does not have is an error: it means the file is the
//! response of another API that happens to share a member name (GetFaceDetection also has `Faces`).
//!
//! # Conversion
//!
//! - [`index_faces_to_domain`] gives an [`IndexedImage`] whose `image` is `None` when the response has
//!   no face records (every face was left out): the service's image id travels only inside face
//!   records, and inventing one (say, from the file's bytes) would give the image an identity that
//!   matches nothing the service knows. The reasons of the unindexed faces are kept either way.
//! - [`search_to_domain`] gives the searched face id and its matches.
//! - [`search_by_image_to_domain`]: a SearchFacesByImage response does not say which face of the
//!   collection was searched. In a cross-match run every searched face was itself indexed first, so
//!   the searched face is found among the matches as the one whose bounding box equals
//!   `SearchedFaceBoundingBox` within 1e-3 on every side with a similarity of at least 99. It becomes
//!   the searched face and is removed from the matches. When no match qualifies the response is
//!   refused ([`SavedResponseError::SearchedFaceNotInCollection`]), and when two or more do (the same
//!   picture indexed twice) it is refused as ambiguous rather than attached to a face picked at random.
//! - [`list_faces_to_domain`] gives the faces of a ListFaces page, without classifier attributes.
//!
//! Every value out of range is refused with the JSON path of the member that holds it.

mod convert;
mod normalise;
pub mod wire;

pub use convert::{
    face_matches_to_domain, index_faces_to_domain, list_faces_to_domain, search_by_image_to_domain,
    search_to_domain, IndexedImage, Match, SearchResult,
};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use wire::{
    IndexFacesResponse, ListFacesResponse, SearchFacesByImageResponse, SearchFacesResponse,
};

/// A saved response, recognised from its content.
#[derive(Clone, Debug, PartialEq)]
pub enum SavedResponse {
    /// An `IndexFaces` response.
    IndexFaces(IndexFacesResponse),
    /// A `SearchFaces` response.
    SearchFaces(SearchFacesResponse),
    /// A `SearchFacesByImage` response.
    SearchFacesByImage(SearchFacesByImageResponse),
    /// A `ListFaces` response.
    ListFaces(ListFacesResponse),
}

impl SavedResponse {
    /// The name of the API that the response answers: `IndexFaces`, `SearchFaces`,
    /// `SearchFacesByImage` or `ListFaces`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IndexFaces(_) => Kind::IndexFaces.name(),
            Self::SearchFaces(_) => Kind::SearchFaces.name(),
            Self::SearchFacesByImage(_) => Kind::SearchFacesByImage.name(),
            Self::ListFaces(_) => Kind::ListFaces.name(),
        }
    }
}

/// Why a saved response could not be read or converted; each message says where and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SavedResponseError {
    /// The file is empty or holds only white space.
    #[error("the file is empty: a saved Rekognition response is a JSON object")]
    Empty,
    /// The file is not well-formed JSON (cut short, or not JSON at all).
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1 (0 at the start of a line).
        column: usize,
        /// What the JSON parser found wrong.
        message: String,
    },
    /// The file holds JSON that is not an object.
    #[error("a saved Rekognition response is a JSON object, but the file holds {found}")]
    NotAnObject {
        /// What it holds instead ("an array", "a string", ...).
        found: &'static str,
    },
    /// The top-level members are not those of any of the four responses.
    #[error(
        "not a saved IndexFaces, SearchFaces, SearchFacesByImage or ListFaces response (top-level members: {})",
        if members.is_empty() { "none".to_owned() } else { members.join(", ") }
    )]
    UnknownShape {
        /// The top-level member names as the file spells them, without the SDKs' metadata members.
        members: Vec<String>,
    },
    /// A member is missing, has the wrong type, or holds a value out of range.
    #[error("{path}: {message}")]
    Field {
        /// The member's JSON path in the service's spelling, such as `FaceMatches[1].Similarity`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A SearchFacesByImage response whose searched face is not among its matches.
    #[error(
        "SearchFacesByImage response: no match has the searched face's bounding box, so the searched \
         face is not in the collection and its matches cannot be attached to a face"
    )]
    SearchedFaceNotInCollection,
    /// A SearchFacesByImage response in which several matches could be the searched face.
    #[error(
        "SearchFacesByImage response: {} matches ({}) have the searched face's bounding box and a \
         similarity of 99 or more, so which of them is the searched face is ambiguous",
        face_ids.len(),
        face_ids.join(", ")
    )]
    SearchedFaceAmbiguous {
        /// The face ids of the matches that qualify.
        face_ids: Vec<String>,
    },
}

/// Reads a saved IndexFaces, SearchFaces, SearchFacesByImage or ListFaces response in either
/// spelling (see the [module documentation](self)) and recognises which it is from its content.
pub fn parse_saved(bytes: &[u8]) -> Result<SavedResponse, SavedResponseError> {
    // Editors on Windows save JSON with a byte order mark, which serde_json refuses.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SavedResponseError::Empty);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(json_error)?;
    let top = match value {
        Value::Object(map) => map,
        other => {
            return Err(SavedResponseError::NotAnObject {
                found: json_kind(&other),
            })
        }
    };
    let normalised = normalise::top_level(top)?;
    let Some(kind) = Kind::recognise(&normalised.members) else {
        return Err(SavedResponseError::UnknownShape {
            members: normalised.original_names,
        });
    };
    if let Some(stray) = normalised
        .members
        .keys()
        .find(|k| !kind.members().contains(&k.as_str()))
    {
        return Err(SavedResponseError::Field {
            path: stray.clone(),
            message: format!(
                "is not a member of a {} response (its members are {}), so the file looks like the \
                 response of another API",
                kind.name(),
                kind.members().join(", ")
            ),
        });
    }
    let members = Value::Object(normalised.members);
    Ok(match kind {
        Kind::IndexFaces => SavedResponse::IndexFaces(deserialize(members)?),
        Kind::SearchFaces => SavedResponse::SearchFaces(deserialize(members)?),
        Kind::SearchFacesByImage => SavedResponse::SearchFacesByImage(deserialize(members)?),
        Kind::ListFaces => SavedResponse::ListFaces(deserialize(members)?),
    })
}

/// The four responses, with the top-level members the API model gives each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    IndexFaces,
    SearchFaces,
    SearchFacesByImage,
    ListFaces,
}

impl Kind {
    fn recognise(members: &Map<String, Value>) -> Option<Self> {
        let has = |name: &str| members.contains_key(name);
        if has("FaceRecords") {
            Some(Self::IndexFaces)
        } else if has("SearchedFaceId") && has("FaceMatches") {
            Some(Self::SearchFaces)
        } else if has("SearchedFaceBoundingBox") && has("FaceMatches") {
            Some(Self::SearchFacesByImage)
        } else if has("Faces") {
            Some(Self::ListFaces)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::IndexFaces => "IndexFaces",
            Self::SearchFaces => "SearchFaces",
            Self::SearchFacesByImage => "SearchFacesByImage",
            Self::ListFaces => "ListFaces",
        }
    }

    fn members(self) -> &'static [&'static str] {
        match self {
            Self::IndexFaces => &[
                "FaceRecords",
                "OrientationCorrection",
                "FaceModelVersion",
                "UnindexedFaces",
            ],
            Self::SearchFaces => &["SearchedFaceId", "FaceMatches", "FaceModelVersion"],
            Self::SearchFacesByImage => &[
                "SearchedFaceBoundingBox",
                "SearchedFaceConfidence",
                "FaceMatches",
                "FaceModelVersion",
            ],
            Self::ListFaces => &["Faces", "NextToken", "FaceModelVersion"],
        }
    }
}

fn deserialize<T: DeserializeOwned>(value: Value) -> Result<T, SavedResponseError> {
    serde_path_to_error::deserialize(value).map_err(|e| SavedResponseError::Field {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

fn json_error(e: serde_json::Error) -> SavedResponseError {
    let (line, column) = (e.line(), e.column());
    // serde_json appends the position to its message; it is given separately here.
    let full = e.to_string();
    let message = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full)
        .to_owned();
    SavedResponseError::Json {
        line,
        column,
        message,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{CollectionId, GenderValue, Timestamp};

    const FACE_1: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const FACE_2: &str = "aaaaaaaa-0000-4000-8000-000000000002";
    const FACE_3: &str = "aaaaaaaa-0000-4000-8000-000000000003";
    const IMAGE_1: &str = "bbbbbbbb-0000-4000-8000-000000000001";

    fn parse(value: &Value) -> Result<SavedResponse, SavedResponseError> {
        parse_saved(value.to_string().as_bytes())
    }

    fn collection() -> CollectionId {
        CollectionId::parse("faces").expect("a valid collection id")
    }

    fn index_faces(value: &Value) -> Result<IndexedImage, SavedResponseError> {
        match parse(value)? {
            SavedResponse::IndexFaces(r) => {
                index_faces_to_domain(&r, &collection(), Timestamp::from_millis(1_000))
            }
            other => panic!("expected IndexFaces, got {}", other.kind()),
        }
    }

    fn search(value: &Value) -> Result<SearchResult, SavedResponseError> {
        match parse(value)? {
            SavedResponse::SearchFaces(r) => search_to_domain(&r),
            SavedResponse::SearchFacesByImage(r) => search_by_image_to_domain(&r),
            other => panic!("expected a search, got {}", other.kind()),
        }
    }

    fn pascal_index() -> Value {
        json!({
            "FaceRecords": [
                {
                    "Face": {
                        "FaceId": FACE_1,
                        "BoundingBox": {"Width": 0.1, "Height": 0.2, "Left": 0.1, "Top": 0.1},
                        "ImageId": IMAGE_1,
                        "ExternalImageId": "group.jpg",
                        "Confidence": 99.9
                    },
                    "FaceDetail": {
                        "AgeRange": {"Low": 25, "High": 33},
                        "Gender": {"Value": "Female", "Confidence": 99.5},
                        "Landmarks": [{"Type": "eyeLeft", "X": 0.12, "Y": 0.15}],
                        "Pose": {"Roll": 1.0, "Yaw": -2.5, "Pitch": 3.0},
                        "Quality": {"Brightness": 85.0, "Sharpness": 90.0},
                        "Confidence": 99.9
                    }
                },
                {
                    "Face": {
                        "FaceId": FACE_2,
                        "BoundingBox": {"Width": 0.3, "Height": 0.4, "Left": 0.5, "Top": 0.1},
                        "ImageId": IMAGE_1,
                        "ExternalImageId": "group.jpg",
                        "Confidence": 99.8
                    },
                    "FaceDetail": {"Gender": {"Value": "Male", "Confidence": 99.8}}
                }
            ],
            "FaceModelVersion": "6.0",
            "UnindexedFaces": [{"Reasons": ["LOW_SHARPNESS", "SMALL_BOUNDING_BOX"], "FaceDetail": {}}]
        })
    }

    fn camel_index() -> Value {
        json!({
            "faceRecords": [
                {
                    "face": {
                        "faceId": FACE_1,
                        "boundingBox": {"width": 0.1, "height": 0.2, "left": 0.1, "top": 0.1},
                        "imageId": IMAGE_1,
                        "externalImageId": "group.jpg",
                        "confidence": 99.9,
                        "indexFacesModelVersion": null,
                        "userId": null
                    },
                    "faceDetail": {
                        "boundingBox": null,
                        "ageRange": {"low": 25, "high": 33},
                        "gender": {"value": "Female", "confidence": 99.5},
                        "landmarks": [{"type": "eyeLeft", "x": 0.12, "y": 0.15}],
                        "pose": {"roll": 1.0, "yaw": -2.5, "pitch": 3.0},
                        "quality": {"brightness": 85.0, "sharpness": 90.0},
                        "confidence": 99.9,
                        "eyeDirection": null
                    }
                },
                {
                    "face": {
                        "faceId": FACE_2,
                        "boundingBox": {"width": 0.3, "height": 0.4, "left": 0.5, "top": 0.1},
                        "imageId": IMAGE_1,
                        "externalImageId": "group.jpg",
                        "confidence": 99.8
                    },
                    "faceDetail": {"gender": {"value": "Male", "confidence": 99.8}}
                }
            ],
            "orientationCorrection": null,
            "faceModelVersion": "6.0",
            "unindexedFaces": [{"reasons": ["LOW_SHARPNESS", "SMALL_BOUNDING_BOX"], "faceDetail": {}}],
            "sdkResponseMetadata": {"requestId": "3f1c6a52-8d2e-4b8e-9c61-0a2b7e5d9f10"},
            "sdkHttpMetadata": {
                "httpHeaders": {"Content-Type": "application/x-amz-json-1.1"},
                "httpStatusCode": 200,
                "allHttpHeaders": {"Content-Type": ["application/x-amz-json-1.1"]}
            }
        })
    }

    #[test]
    fn pascal_and_camel_spellings_convert_to_the_same_faces() {
        let pascal = index_faces(&pascal_index()).expect("PascalCase converts");
        let camel = index_faces(&camel_index()).expect("camelCase converts");
        assert_eq!(pascal, camel);

        assert_eq!(pascal.faces.len(), 2);
        let first = &pascal.faces[0];
        assert_eq!(first.face_id.as_str(), FACE_1);
        assert_eq!(first.image_id.as_str(), IMAGE_1);
        let gender = first.attributes.gender.expect("gender is reported");
        assert_eq!(gender.value, GenderValue::Female);
        assert_eq!(
            first.attributes.age.map(|a| (a.low(), a.high())),
            Some((25, 33))
        );
        assert_eq!(
            first
                .attributes
                .quality
                .map(|q| (q.brightness(), q.sharpness())),
            Some((85.0, 90.0))
        );
        assert_eq!(first.attributes.pose.map(|p| p.yaw()), Some(-2.5));
        let raw = first.raw.as_deref().expect("the record is kept");
        assert!(raw.starts_with(r#"{"Face":{"FaceId":"aaaaaaaa"#), "{raw}");
        assert!(raw.contains(r#""Landmarks":[{"Type":"eyeLeft""#), "{raw}");
    }

    #[test]
    fn the_face_with_the_largest_box_is_the_only_largest() {
        let indexed = index_faces(&pascal_index()).expect("converts");
        let largest: Vec<_> = indexed
            .faces
            .iter()
            .filter(|f| f.is_largest)
            .map(|f| f.face_id.as_str())
            .collect();
        assert_eq!(largest, [FACE_2]);
        let image = indexed.image.expect("an image with faces is known");
        assert_eq!(image.image_id.as_str(), IMAGE_1);
        assert_eq!(image.face_count, 3, "two indexed and one left out");
        assert_eq!(
            indexed.unindexed,
            [vec![
                "LOW_SHARPNESS".to_owned(),
                "SMALL_BOUNDING_BOX".to_owned()
            ]]
        );
        assert_eq!(indexed.face_model_version.as_deref(), Some("6.0"));
    }

    #[test]
    fn an_image_whose_faces_were_all_left_out_has_no_known_image() {
        let indexed = index_faces(&json!({
            "FaceRecords": [],
            "UnindexedFaces": [{"Reasons": ["EXCEEDS_MAX_FACES"]}]
        }))
        .expect("converts");
        assert_eq!(indexed.image, None);
        assert!(indexed.faces.is_empty());
        assert_eq!(indexed.unindexed, [vec!["EXCEEDS_MAX_FACES".to_owned()]]);
    }

    #[test]
    fn records_of_two_images_in_one_response_are_refused() {
        let mut value = pascal_index();
        value["FaceRecords"][1]["Face"]["ImageId"] = json!("bbbbbbbb-0000-4000-8000-000000000002");
        let err = index_faces(&value).expect_err("two images are refused");
        assert!(
            err.to_string()
                .starts_with("FaceRecords[1].Face.ImageId: image id"),
            "{err}"
        );
    }

    #[test]
    fn boto3_response_metadata_is_ignored() {
        let mut value = pascal_index();
        value["ResponseMetadata"] = json!({
            "RequestId": "r",
            "HTTPStatusCode": 200,
            "HTTPHeaders": {"content-type": "application/x-amz-json-1.1"},
            "RetryAttempts": 0
        });
        assert_eq!(
            index_faces(&value).expect("converts"),
            index_faces(&pascal_index()).expect("converts")
        );
    }

    #[test]
    fn out_of_range_values_name_their_path() {
        let mut value = pascal_index();
        value["FaceRecords"][0]["Face"]["Confidence"] = json!(120);
        let err = index_faces(&value).expect_err("120 is out of range");
        assert_eq!(
            err.to_string(),
            "FaceRecords[0].Face.Confidence: confidence \"120\" is invalid: must be a number from 0 to 100"
        );

        let mut value = pascal_index();
        value["FaceRecords"][1]["FaceDetail"]["Pose"] = json!({"Roll": 0, "Yaw": 200, "Pitch": 0});
        let err = index_faces(&value).expect_err("yaw 200 is out of range");
        assert_eq!(
            err.to_string(),
            "FaceRecords[1].FaceDetail.Pose.Yaw: yaw \"200\" is invalid: must be a number from -180 to 180"
        );

        // The saved-response path holds ages to the same bound as the API: the model type's.
        let mut value = pascal_index();
        value["FaceRecords"][0]["FaceDetail"]["AgeRange"] = json!({"Low": 20, "High": 200});
        let err = index_faces(&value).expect_err("an age of 200 is out of range");
        assert_eq!(
            err.to_string(),
            "FaceRecords[0].FaceDetail.AgeRange: age range \"20-200\" is invalid: must have low <= high <= 150"
        );

        let err = search(&json!({
            "SearchedFaceId": FACE_1,
            "FaceMatches": [
                {"Similarity": 99.0, "Face": {"FaceId": FACE_2}},
                {"Similarity": 101.5, "Face": {"FaceId": FACE_3}}
            ]
        }))
        .expect_err("101.5 is out of range");
        assert_eq!(
            err.to_string(),
            "FaceMatches[1].Similarity: similarity \"101.5\" is invalid: must be a number from 0 to 100"
        );
    }

    #[test]
    fn wrong_types_and_missing_ids_name_their_path() {
        let err = parse(&json!({
            "searchedFaceId": FACE_1,
            "faceMatches": [{"similarity": "high", "face": {"faceId": FACE_2}}]
        }))
        .expect_err("a string similarity is refused");
        match &err {
            SavedResponseError::Field { path, message } => {
                assert_eq!(path, "FaceMatches[0].Similarity");
                assert!(
                    message.contains("invalid type: string \"high\""),
                    "{message}"
                );
            }
            other => panic!("expected a field error, got {other:?}"),
        }

        let err = search(
            &json!({"SearchedFaceId": FACE_1, "FaceMatches": [{"Similarity": 90.0, "Face": {}}]}),
        )
        .expect_err("a match without face id is refused");
        assert_eq!(err.to_string(), "FaceMatches[0].Face.FaceId: is missing");

        let err = search(&json!({"SearchedFaceId": "AAAA", "FaceMatches": []}))
            .expect_err("a bad searched face id is refused");
        assert!(
            err.to_string()
                .starts_with("SearchedFaceId: face id \"AAAA\""),
            "{err}"
        );
    }

    #[test]
    fn search_faces_converts_in_both_spellings() {
        let pascal = search(&json!({
            "SearchedFaceId": FACE_1,
            "FaceMatches": [{"Similarity": 99.312345, "Face": {"FaceId": FACE_2, "ImageId": IMAGE_1, "ExternalImageId": "anna_2.jpg"}}],
            "FaceModelVersion": "6.0"
        }))
        .expect("converts");
        let camel = search(&json!({
            "searchedFaceId": FACE_1,
            "faceMatches": [{"similarity": 99.312345, "face": {"faceId": FACE_2, "imageId": IMAGE_1, "externalImageId": "anna_2.jpg", "userId": null}}],
            "faceModelVersion": "6.0",
            "sdkResponseMetadata": {"requestId": "r"},
            "sdkHttpMetadata": {"httpStatusCode": 200}
        }))
        .expect("converts");
        assert_eq!(pascal, camel);
        assert_eq!(pascal.searched_face_id.as_str(), FACE_1);
        assert_eq!(pascal.matches.len(), 1);
        assert_eq!(pascal.matches[0].face_id.as_str(), FACE_2);
        assert_eq!(
            pascal.matches[0]
                .external_image_id
                .as_ref()
                .map(|e| e.as_str()),
            Some("anna_2.jpg")
        );
    }

    fn by_image(self_similarity: f64, self_left: f64) -> Value {
        let searched = json!({"Width": 0.25, "Height": 0.3, "Left": 0.4, "Top": 0.2});
        json!({
            "SearchedFaceBoundingBox": searched,
            "SearchedFaceConfidence": 99.99,
            "FaceMatches": [
                {"Similarity": self_similarity, "Face": {"FaceId": FACE_3,
                    "BoundingBox": {"Width": 0.2502, "Height": 0.3, "Left": self_left, "Top": 0.1999}}},
                {"Similarity": 99.0, "Face": {"FaceId": FACE_2,
                    "BoundingBox": {"Width": 0.2, "Height": 0.3, "Left": 0.1, "Top": 0.1}}}
            ],
            "FaceModelVersion": "6.0"
        })
    }

    #[test]
    fn search_by_image_finds_the_searched_face_among_its_matches() {
        let result = search(&by_image(99.99, 0.4)).expect("resolves");
        assert_eq!(result.searched_face_id.as_str(), FACE_3);
        let found: Vec<_> = result.matches.iter().map(|m| m.face_id.as_str()).collect();
        assert_eq!(found, [FACE_2]);
    }

    #[test]
    fn search_by_image_without_the_searched_face_is_refused() {
        for value in [by_image(98.9, 0.4), by_image(99.99, 0.402)] {
            let err = search(&value).expect_err("no match is the searched face");
            assert_eq!(err, SavedResponseError::SearchedFaceNotInCollection);
            assert!(err.to_string().contains("not in the collection"), "{err}");
        }
    }

    #[test]
    fn search_by_image_with_two_candidates_is_ambiguous() {
        let mut value = by_image(99.99, 0.4);
        value["FaceMatches"][1]["Face"]["BoundingBox"] =
            json!({"Width": 0.25, "Height": 0.3, "Left": 0.4, "Top": 0.2});
        let err = search(&value).expect_err("two candidates are ambiguous");
        assert_eq!(
            err,
            SavedResponseError::SearchedFaceAmbiguous {
                face_ids: vec![FACE_3.to_owned(), FACE_2.to_owned()]
            }
        );
    }

    #[test]
    fn list_faces_converts_without_attributes() {
        let value = json!({
            "faces": [{"faceId": FACE_1, "boundingBox": {"width": 0.1, "height": 0.2, "left": 0.3, "top": 0.4},
                       "imageId": IMAGE_1, "externalImageId": "anna_1.jpg", "confidence": 99.99,
                       "indexFacesModelVersion": "6.0", "userId": null}],
            "nextToken": "token",
            "faceModelVersion": "6.0"
        });
        let SavedResponse::ListFaces(resp) = parse(&value).expect("parses") else {
            panic!("expected ListFaces");
        };
        let faces = list_faces_to_domain(&resp, &collection(), Timestamp::from_millis(5))
            .expect("converts");
        assert_eq!(faces.len(), 1);
        assert_eq!(faces[0].attributes, Default::default());
        assert!(!faces[0].is_largest);
        assert_eq!(
            faces[0].detection_confidence.map(|c| c.get() > 99.98),
            Some(true)
        );
    }

    #[test]
    fn the_kind_is_recognised_from_the_members() {
        let cases = [
            (json!({"FaceRecords": []}), "IndexFaces"),
            (
                json!({"SearchedFaceId": FACE_1, "FaceMatches": []}),
                "SearchFaces",
            ),
            (
                json!({"SearchedFaceBoundingBox": {}, "FaceMatches": []}),
                "SearchFacesByImage",
            ),
            (json!({"faces": [], "nextToken": "t"}), "ListFaces"),
        ];
        for (value, kind) in cases {
            assert_eq!(parse(&value).expect("parses").kind(), kind, "{value}");
        }
    }

    #[test]
    fn other_responses_are_refused_with_their_members() {
        let err = parse(&json!({
            "Labels": [],
            "LabelModelVersion": "3.0",
            "ResponseMetadata": {"RequestId": "r"}
        }))
        .expect_err("DetectLabels is not a saved response");
        assert_eq!(
            err.to_string(),
            "not a saved IndexFaces, SearchFaces, SearchFacesByImage or ListFaces response \
             (top-level members: LabelModelVersion, Labels)"
        );

        // GetFaceDetection also has `Faces`; its other members give it away.
        let err = parse(&json!({"Faces": [], "JobStatus": "SUCCEEDED"}))
            .expect_err("GetFaceDetection is not ListFaces");
        match err {
            SavedResponseError::Field { path, message } => {
                assert_eq!(path, "JobStatus");
                assert!(
                    message.contains("not a member of a ListFaces response"),
                    "{message}"
                );
            }
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_and_empty_files_are_refused_clearly() {
        assert_eq!(parse_saved(b""), Err(SavedResponseError::Empty));
        assert_eq!(parse_saved(b" \n\t"), Err(SavedResponseError::Empty));
        let err = parse_saved(b"{\n  \"FaceRecords\": [\n    {\"Face\": ").expect_err("truncated");
        match &err {
            SavedResponseError::Json { line, message, .. } => {
                assert_eq!(*line, 3);
                assert!(message.starts_with("EOF while parsing"), "{message}");
            }
            other => panic!("expected a JSON error, got {other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("malformed JSON at line 3, column"),
            "{err}"
        );
        assert_eq!(
            parse_saved(b"[1, 2]"),
            Err(SavedResponseError::NotAnObject { found: "an array" })
        );
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), br#"{"Faces": []}"#].concat();
        assert_eq!(parse_saved(&with_bom).map(|r| r.kind()), Ok("ListFaces"));
    }

    #[test]
    fn a_serialised_response_reads_back() {
        let SavedResponse::IndexFaces(resp) = parse(&camel_index()).expect("parses") else {
            panic!("expected IndexFaces");
        };
        let written = serde_json::to_vec(&resp).expect("serialises");
        let text = String::from_utf8_lossy(&written);
        assert!(
            text.starts_with(r#"{"FaceRecords":[{"Face":{"FaceId""#),
            "{text}"
        );
        assert!(!text.contains("null"), "{text}");
        assert_eq!(
            parse_saved(&written).expect("reads back"),
            SavedResponse::IndexFaces(resp)
        );
    }
}
