//! The stream's messages as JSON (docs/streaming.md): an upload on the uploads topic, the indexed
//! face and the search hits between the stages, and the match event on the matches topic. They are
//! wire types: domain values are parsed from them at the edge, and built into them on the way out.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::api::wire::ReasonOut;
use crate::model::{ExternalImageId, FaceId, ImageId, SubjectId};

/// The only version of every message so far.
pub const VERSION: u32 = 1;

/// Why a message is not one the stream takes.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not JSON of the message's shape.
    #[error("not a valid message")]
    Json(#[from] serde_json::Error),
    /// A version this build does not know.
    #[error("message version {0} is not supported (this build reads version 1)")]
    Version(u32),
    /// A field's value is invalid.
    #[error("{field}: {message}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

/// An upload as it arrives on the uploads topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadMessage {
    /// Always 1.
    pub version: u32,
    /// An absolute path, a `file://` URL, or an `s3://bucket/key` reference.
    pub image: String,
    /// The caller's name for the image.
    pub external_image_id: String,
    /// The customer behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// The producer's key for this upload: a second message with the same key is a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Where an upload's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A file on this machine.
    File(PathBuf),
    /// An object in S3, for the Rekognition engine.
    S3 {
        /// The bucket.
        bucket: String,
        /// The object's key.
        key: String,
    },
}

/// An upload with its values parsed.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Where the bytes are.
    pub source: ImageSource,
    /// The caller's name for the image.
    pub external_image_id: ExternalImageId,
    /// The customer behind it.
    pub subject_id: Option<SubjectId>,
    /// The producer's key, when given.
    pub idempotency_key: Option<String>,
}

impl UploadMessage {
    /// Parses a message's bytes into an upload, naming the field that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Upload, MessageError> {
        let m: Self = serde_json::from_slice(bytes)?;
        if m.version != VERSION {
            return Err(MessageError::Version(m.version));
        }
        let field = |field, message: String| MessageError::Field { field, message };
        let external_image_id = ExternalImageId::parse(&m.external_image_id)
            .map_err(|e| field("external_image_id", e.to_string()))?;
        let subject_id = m
            .subject_id
            .as_deref()
            .map(SubjectId::parse)
            .transpose()
            .map_err(|e| field("subject_id", e.to_string()))?;
        let idempotency_key = match m.idempotency_key {
            Some(k) if k.is_empty() || k.len() > 512 => {
                return Err(field(
                    "idempotency_key",
                    "must be 1 to 512 bytes when given".to_owned(),
                ))
            }
            other => other,
        };
        let source = parse_source(&m.image).map_err(|message| field("image", message))?;
        Ok(Upload {
            source,
            external_image_id,
            subject_id,
            idempotency_key,
        })
    }
}

/// An absolute path, a `file://` URL (percent-escapes decoded) or `s3://bucket/key`.
fn parse_source(image: &str) -> Result<ImageSource, String> {
    if let Some(rest) = image.strip_prefix("s3://") {
        return match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(ImageSource::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }),
            _ => Err(format!("{image:?} is not s3://BUCKET/KEY")),
        };
    }
    let path = match image.strip_prefix("file://") {
        // Only local files: file:///path, or file://localhost/path.
        Some(rest) => {
            let rest = rest.strip_prefix("localhost").unwrap_or(rest);
            PathBuf::from(percent_decode(rest).ok_or_else(|| {
                format!("{image:?} has a percent-escape that is not UTF-8 or not two hex digits")
            })?)
        }
        None => PathBuf::from(image),
    };
    if path.is_absolute() {
        Ok(ImageSource::File(path))
    } else {
        Err(format!(
            "{image:?} is not an absolute path, a file:// URL or s3://BUCKET/KEY"
        ))
    }
}

/// Decodes `%XX` escapes; `None` when one is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The index stage's output on the faces topic: an indexed upload and its largest face.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaceMessage {
    /// Always 1.
    pub version: u32,
    /// The upload.
    pub image_id: String,
    /// The caller's name for it.
    pub external_image_id: Option<String>,
    /// Its largest face; `null` for an image without a face, which the search stage completes.
    pub face_id: Option<String>,
    /// The upload message's key.
    pub key: String,
}

impl FaceMessage {
    /// Parses a message's bytes: the upload's id and its face.
    pub fn parse(bytes: &[u8]) -> Result<(ImageId, Option<FaceId>), MessageError> {
        let m: Self = serde_json::from_slice(bytes)?;
        if m.version != VERSION {
            return Err(MessageError::Version(m.version));
        }
        let field = |field, message: String| MessageError::Field { field, message };
        let image_id = ImageId::parse(&m.image_id).map_err(|e| field("image_id", e.to_string()))?;
        let face_id = m
            .face_id
            .as_deref()
            .map(FaceId::parse)
            .transpose()
            .map_err(|e| field("face_id", e.to_string()))?;
        Ok((image_id, face_id))
    }
}

/// One hit of a search.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HitOut {
    /// The face found.
    pub face_id: String,
    /// How similar, 0-100.
    pub similarity: f64,
}

/// The search stage's output on the hits topic: the hits of a face, stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HitsMessage {
    /// Always 1.
    pub version: u32,
    /// The upload.
    pub image_id: String,
    /// The face searched; `null` for an upload without a face.
    pub face_id: Option<String>,
    /// Its hits on faces the graph holds, most similar first.
    pub hits: Vec<HitOut>,
}

impl HitsMessage {
    /// Checks a message's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        let m: Self = serde_json::from_slice(bytes)?;
        if m.version != VERSION {
            return Err(MessageError::Version(m.version));
        }
        Ok(m)
    }
}

/// A match event on the matches topic: a newly confirmed match, or a later change of the verdict
/// of a match already sent. Consumers deduplicate on `event_id`.
#[derive(Debug, Serialize)]
pub struct MatchEvent {
    /// Always 1.
    pub version: u32,
    /// The event's id, derived from the judgement it announces: a repeat carries the same.
    pub event_id: String,
    /// The face whose id sorts first.
    pub face_a: String,
    /// The other face.
    pub face_b: String,
    /// The external image id of the first face's image.
    pub external_image_id_a: Option<String>,
    /// The external image id of the second face's image.
    pub external_image_id_b: Option<String>,
    /// The customer behind the first face.
    pub subject_a: Option<String>,
    /// The customer behind the second face.
    pub subject_b: Option<String>,
    /// The similarity the judgement weighed.
    pub similarity: Option<f64>,
    /// `confirmed`, `review` or `rejected`.
    pub verdict: &'static str,
    /// The verdict of the last event sent for the pair; `null` for the first.
    pub previous_verdict: Option<&'static str>,
    /// The judgement's ranking score.
    pub score: f64,
    /// The rule set's version.
    pub rule_set: String,
    /// Why.
    pub reasons: Vec<ReasonOut>,
    /// When the judgement was made (RFC 3339).
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_parse_paths_urls_and_s3_and_name_the_bad_field() {
        let ok = |json: &str| UploadMessage::parse(json.as_bytes()).unwrap();
        let u =
            ok(r#"{"version":1,"image":"/p/a.jpg","external_image_id":"a","subject_id":"c-1"}"#);
        assert_eq!(u.source, ImageSource::File("/p/a.jpg".into()));
        assert_eq!(u.subject_id.unwrap().as_str(), "c-1");
        let u = ok(r#"{"version":1,"image":"file:///p/my%20photo.jpg","external_image_id":"a"}"#);
        assert_eq!(u.source, ImageSource::File("/p/my photo.jpg".into()));
        let u = ok(
            r#"{"version":1,"image":"s3://b/k/x.jpg","external_image_id":"a","idempotency_key":"k1"}"#,
        );
        assert_eq!(
            u.source,
            ImageSource::S3 {
                bucket: "b".into(),
                key: "k/x.jpg".into()
            }
        );
        assert_eq!(u.idempotency_key.as_deref(), Some("k1"));
        let err = |json: &str| {
            UploadMessage::parse(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(r#"{"version":1,"image":"a.jpg","external_image_id":"a"}"#).starts_with("image:")
        );
        assert!(
            err(r#"{"version":2,"image":"/a.jpg","external_image_id":"a"}"#).contains("version 2")
        );
        assert!(
            err(r#"{"version":1,"image":"/a.jpg","external_image_id":"a b"}"#)
                .starts_with("external_image_id:")
        );
        assert!(
            err(r#"{"version":1,"image":"/a.jpg","external_image_id":"a","extra":1}"#)
                .contains("not a valid message")
        );
        assert!(err("not json").contains("not a valid message"));
    }
}
