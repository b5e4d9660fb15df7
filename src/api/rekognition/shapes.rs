//! The request shapes of the endpoint's operations, with the members and constraints of the
//! Rekognition API model (2016-06-27), and their checking: every broken constraint is reported in
//! one `InvalidParameterException`, worded as AWS words validation errors ("1 validation error
//! detected: Value 'x' at 'collectionId' failed to satisfy constraint: …").

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};

use super::error::RekognitionError;

/// The API model's `CollectionId` pattern.
const COLLECTION_ID_PATTERN: &str = "[a-zA-Z0-9_.\\-]+";
/// The API model's `ExternalImageId` pattern.
const EXTERNAL_IMAGE_ID_PATTERN: &str = "[a-zA-Z0-9_.\\-:]+";
/// The API model's `FaceId` pattern.
const FACE_ID_PATTERN: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/// The API model's `ImageBlob` maximum, in bytes.
pub const MAX_IMAGE_BYTES: usize = 5_242_880;
/// The API model's `PageSize`, `MaxFaces` and `FaceIdList` maximum.
pub const MAX_PAGE: i64 = 4096;

/// `CreateCollection`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateCollection {
    pub collection_id: Option<String>,
    pub tags: Option<HashMap<String, String>>,
}

/// `DescribeCollection` and `DeleteCollection`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CollectionOnly {
    pub collection_id: Option<String>,
}

/// `ListCollections`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCollections {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// The API model's `Image`: bytes (base64 in JSON) or an S3 object.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Image {
    #[serde(default, deserialize_with = "blob")]
    pub bytes: Option<Vec<u8>>,
    pub s3_object: Option<serde_json::Value>,
}

/// `IndexFaces`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexFaces {
    pub collection_id: Option<String>,
    pub image: Option<Image>,
    pub external_image_id: Option<String>,
    pub detection_attributes: Option<Vec<String>>,
    pub max_faces: Option<i64>,
    pub quality_filter: Option<String>,
}

/// `SearchFaces`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchFaces {
    pub collection_id: Option<String>,
    pub face_id: Option<String>,
    pub max_faces: Option<i64>,
    pub face_match_threshold: Option<f64>,
}

/// `SearchFacesByImage`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchFacesByImage {
    pub collection_id: Option<String>,
    pub image: Option<Image>,
    pub max_faces: Option<i64>,
    pub face_match_threshold: Option<f64>,
    pub quality_filter: Option<String>,
}

/// `ListFaces`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFaces {
    pub collection_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub user_id: Option<String>,
    pub face_ids: Option<Vec<String>>,
}

/// `DeleteFaces`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteFaces {
    pub collection_id: Option<String>,
    pub face_ids: Option<Vec<String>>,
}

/// Reads a request body; a body that is not the shape's JSON is a `SerializationException`. An
/// empty body is an empty object, as the SDKs send for operations without required members.
pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RekognitionError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| RekognitionError::serialization(e.to_string()))
}

fn blob<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("Image.Bytes is not base64: {e}")))
}

/// A pattern of the API model: its text for messages, and the characters it allows.
pub type Pattern<'a> = (&'a str, fn(char) -> bool);

/// The constraints a request breaks, gathered so that all are reported at once.
#[derive(Debug, Default)]
pub struct Check {
    errors: Vec<String>,
}

impl Check {
    fn fail(&mut self, value: &str, path: &str, constraint: &str) {
        self.errors.push(format!(
            "Value {value} at '{path}' failed to satisfy constraint: Member must {constraint}"
        ));
    }

    /// A required member.
    pub fn required<'v, T>(&mut self, value: &'v Option<T>, path: &str) -> Option<&'v T> {
        if value.is_none() {
            self.fail("null", path, "not be null");
        }
        value.as_ref()
    }

    /// A string of `min..=max` characters of `allowed`, reported with the model's `pattern`.
    pub fn text(
        &mut self,
        value: &str,
        path: &str,
        (min, max): (usize, usize),
        pattern: Option<Pattern<'_>>,
    ) {
        let quoted = format!("'{value}'");
        let len = value.chars().count();
        if len < min {
            self.fail(
                &quoted,
                path,
                &format!("have length greater than or equal to {min}"),
            );
        }
        if len > max {
            self.fail(
                &quoted,
                path,
                &format!("have length less than or equal to {max}"),
            );
        }
        if let Some((pattern, allowed)) = pattern {
            if len >= min && !value.chars().all(allowed) {
                self.fail(
                    &quoted,
                    path,
                    &format!("satisfy regular expression pattern: {pattern}"),
                );
            }
        }
    }

    /// A collection id.
    pub fn collection_id(&mut self, value: &Option<String>, path: &str) {
        if let Some(v) = self.required(value, path) {
            self.text(
                v,
                path,
                (1, 255),
                Some((COLLECTION_ID_PATTERN, |c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
                })),
            );
        }
    }

    /// An optional external image id.
    pub fn external_image_id(&mut self, value: &Option<String>, path: &str) {
        if let Some(v) = value {
            self.text(
                v,
                path,
                (1, 255),
                Some((EXTERNAL_IMAGE_ID_PATTERN, |c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')
                })),
            );
        }
    }

    /// A face id: a lowercase UUID.
    pub fn face_id(&mut self, value: &str, path: &str) {
        if crate::model::FaceId::parse(value).is_err() {
            self.fail(
                &format!("'{value}'"),
                path,
                &format!("satisfy regular expression pattern: {FACE_ID_PATTERN}"),
            );
        }
    }

    /// An optional integer in `min..=max`.
    pub fn int(&mut self, value: Option<i64>, path: &str, min: i64, max: Option<i64>) {
        let Some(v) = value else { return };
        if v < min {
            self.fail(
                &format!("'{v}'"),
                path,
                &format!("have value greater than or equal to {min}"),
            );
        }
        if let Some(max) = max.filter(|m| v > *m) {
            self.fail(
                &format!("'{v}'"),
                path,
                &format!("have value less than or equal to {max}"),
            );
        }
    }

    /// A list of `min..=max` members.
    pub fn count(&mut self, len: usize, path: &str, min: usize, max: usize) {
        let value = format!("'[{len} members]'");
        if len < min {
            self.fail(
                &value,
                path,
                &format!("have length greater than or equal to {min}"),
            );
        }
        if len > max {
            self.fail(
                &value,
                path,
                &format!("have length less than or equal to {max}"),
            );
        }
    }

    /// An optional percentage, 0 to 100.
    pub fn percent(&mut self, value: Option<f64>, path: &str) {
        let Some(v) = value else { return };
        if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
            self.fail(
                &format!("'{v}'"),
                path,
                "have value greater than or equal to 0 and less than or equal to 100",
            );
        }
    }

    /// An optional string of an enumeration.
    pub fn one_of(&mut self, value: Option<&str>, path: &str, values: &[&str]) {
        let Some(v) = value else { return };
        if !values.contains(&v) {
            self.fail(
                &format!("'{v}'"),
                path,
                &format!("satisfy enum value set: [{}]", values.join(", ")),
            );
        }
    }

    /// An image: bytes of 1 to 5 MB, or an S3 object (which the caller then refuses).
    pub fn image(&mut self, image: &Option<Image>, path: &str) {
        let Some(image) = self.required(image, path) else {
            return;
        };
        if let Some(bytes) = &image.bytes {
            if bytes.is_empty() {
                self.fail(
                    "'0 bytes'",
                    &format!("{path}.bytes"),
                    "have length greater than or equal to 1",
                );
            }
            if bytes.len() > MAX_IMAGE_BYTES {
                self.fail(
                    &format!("'{} bytes'", bytes.len()),
                    &format!("{path}.bytes"),
                    &format!("have length less than or equal to {MAX_IMAGE_BYTES}"),
                );
            }
        }
    }

    /// Every broken constraint as one `InvalidParameterException`.
    pub fn finish(self) -> Result<(), RekognitionError> {
        match self.errors.len() {
            0 => Ok(()),
            1 => Err(RekognitionError::invalid_parameter(format!(
                "1 validation error detected: {}",
                self.errors.join("; ")
            ))),
            n => Err(RekognitionError::invalid_parameter(format!(
                "{n} validation errors detected: {}",
                self.errors.join("; ")
            ))),
        }
    }
}

/// The API model's `QualityFilter` values.
pub const QUALITY_FILTERS: &[&str] = &["NONE", "AUTO", "LOW", "MEDIUM", "HIGH"];

/// The API model's `Attribute` values.
pub const ATTRIBUTES: &[&str] = &[
    "DEFAULT",
    "ALL",
    "AGE_RANGE",
    "BEARD",
    "EMOTIONS",
    "EYE_DIRECTION",
    "EYEGLASSES",
    "EYES_OPEN",
    "GENDER",
    "MOUTH_OPEN",
    "MUSTACHE",
    "FACE_OCCLUDED",
    "SMILE",
    "SUNGLASSES",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_constraint_is_reported_in_aws_wording() {
        let req: IndexFaces =
            parse(br#"{"CollectionId": "bad id!", "MaxFaces": 0, "ExternalImageId": "a/b"}"#)
                .unwrap();
        let mut check = Check::default();
        check.collection_id(&req.collection_id, "collectionId");
        check.image(&req.image, "image");
        check.external_image_id(&req.external_image_id, "externalImageId");
        check.int(req.max_faces, "maxFaces", 1, None);
        let err = check.finish().unwrap_err();
        assert_eq!(err.kind, "InvalidParameterException");
        assert_eq!(
            err.message,
            "4 validation errors detected: Value 'bad id!' at 'collectionId' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+; \
             Value null at 'image' failed to satisfy constraint: Member must not be null; \
             Value 'a/b' at 'externalImageId' failed to satisfy constraint: Member must satisfy \
             regular expression pattern: [a-zA-Z0-9_.\\-:]+; Value '0' at 'maxFaces' failed to \
             satisfy constraint: Member must have value greater than or equal to 1"
        );
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_a_serialization_error() {
        let err = parse::<SearchFaces>(br#"{"MaxFaces": "ten"}"#).unwrap_err();
        assert_eq!(err.kind, "SerializationException");
        let err = parse::<IndexFaces>(br#"{"Image": {"Bytes": "***"}}"#).unwrap_err();
        assert!(err.message.contains("not base64"), "{}", err.message);
        assert!(parse::<ListCollections>(b"").is_ok());
    }
}
