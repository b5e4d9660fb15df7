//! Rows of the Neo4j store read back as domain values: the columns each query returns, and the
//! decoding that turns a property the graph model would not hold into a [`StoreError::Corrupt`]
//! naming the record and the column.

use neo4rs::Row;

use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, ContentHash, Decision, DecisionKind, Edge,
    ExternalImageId, Face, FaceAttributes, FaceId, FacePair, Gender, GenderValue, ImageId,
    Judgement, Pose, Quality, SearchRecord, Similarity, SubjectId, Timestamp, Verdict,
};
use crate::store::codec::reasons_from_json;
use crate::store::{EdgeRecord, FaceRecord, StoreError};

/// A [`StoreError::Corrupt`] about a `what` record.
pub(super) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// Column `key` of a `what` row, as `T`.
pub(super) fn get<T: serde::de::DeserializeOwned>(
    row: &Row,
    what: &'static str,
    key: &str,
) -> Result<T, StoreError> {
    row.get::<T>(key)
        .map_err(|e| corrupt(what, format!("column {key}: {e}")))
}

/// An integer column, such as a count.
pub(super) fn int(row: &Row, key: &str) -> Result<i64, StoreError> {
    get(row, "count", key)
}

/// A text column that must be present.
pub(super) fn text(row: &Row, what: &'static str, key: &str) -> Result<String, StoreError> {
    get(row, what, key)
}

/// A text column that must be present, parsed into a domain value.
pub(super) fn parsed<T, E: std::fmt::Display>(
    row: &Row,
    what: &'static str,
    key: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    let s = text(row, what, key)?;
    parse(&s).map_err(|e| corrupt(what, format!("column {key}: {e}")))
}

/// A text column that may be null, parsed into a domain value when present.
pub(super) fn opt_parsed<T, E: std::fmt::Display>(
    row: &Row,
    what: &'static str,
    key: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    match get::<Option<String>>(row, what, key)? {
        Some(s) => parse(&s)
            .map(Some)
            .map_err(|e| corrupt(what, format!("column {key}: {e}"))),
        None => Ok(None),
    }
}

/// A number column that may be null, made into a domain value when present.
pub(super) fn opt_real<T, E: std::fmt::Display>(
    row: &Row,
    what: &'static str,
    key: &str,
    make: impl FnOnce(f64) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    match get::<Option<f64>>(row, what, key)? {
        Some(x) => make(x)
            .map(Some)
            .map_err(|e| corrupt(what, format!("column {key}: {e}"))),
        None => Ok(None),
    }
}

/// Two properties that are both present or both absent.
fn both<A, B>(
    what: &'static str,
    names: &str,
    a: Option<A>,
    b: Option<B>,
) -> Result<Option<(A, B)>, StoreError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        _ => Err(corrupt(
            what,
            format!("{names} must both be present or absent"),
        )),
    }
}

/// A stored integer as a count that fits in 32 bits.
fn u32_of(x: i64) -> Result<u32, String> {
    u32::try_from(x).map_err(|_| format!("{x} is not a count"))
}

/// What a face query returns, in the columns that [`face_record`] reads.
pub(super) const FACE_COLUMNS: &str =
    "f.seq AS seq, f.face_id AS face_id, f.collection_id AS collection_id,
    f.image_id AS image_id, f.external_image_id AS external_image_id, f.bbox_left AS bbox_left,
    f.bbox_top AS bbox_top, f.bbox_width AS bbox_width, f.bbox_height AS bbox_height,
    f.detection_confidence AS detection_confidence, f.gender AS gender,
    f.gender_confidence AS gender_confidence, f.age_low AS age_low, f.age_high AS age_high,
    f.brightness AS brightness, f.sharpness AS sharpness, f.yaw AS yaw, f.pitch AS pitch,
    f.roll AS roll, f.is_largest AS is_largest, f.indexed_at AS indexed_at, f.raw AS raw";

/// Face `f`'s image `fi` and its subject `s`, for [`FACE_EXTRA`].
pub(super) const FACE_SUBJECT: &str =
    "OPTIONAL MATCH (f)-[:IN_IMAGE]->(fi:Image) OPTIONAL MATCH (fi)-[:OF_SUBJECT]->(s:Subject)";

/// The columns of a face record that come from its image `fi` and subject `s`.
pub(super) const FACE_EXTRA: &str = "s.subject_id AS subject, fi.content_sha256 AS content";

/// Reads a row of [`FACE_COLUMNS`] and [`FACE_EXTRA`].
pub(super) fn face_record(row: &Row) -> Result<FaceRecord, StoreError> {
    const W: &str = "face";
    let real = |key: &str| -> Result<f32, StoreError> { Ok(get::<f64>(row, W, key)? as f32) };
    Ok(FaceRecord {
        face: Face {
            face_id: parsed(row, W, "face_id", FaceId::parse)?,
            collection_id: parsed(row, W, "collection_id", CollectionId::parse)?,
            image_id: parsed(row, W, "image_id", ImageId::parse)?,
            external_image_id: opt_parsed(row, W, "external_image_id", ExternalImageId::parse)?,
            bbox: BoundingBox {
                left: real("bbox_left")?,
                top: real("bbox_top")?,
                width: real("bbox_width")?,
                height: real("bbox_height")?,
            },
            detection_confidence: opt_real(row, W, "detection_confidence", Confidence::new)?,
            attributes: attributes(row)?,
            is_largest: get(row, W, "is_largest")?,
            indexed_at: Timestamp::from_millis(get(row, W, "indexed_at")?),
            raw: get(row, W, "raw")?,
        },
        subject: opt_parsed(row, W, "subject", SubjectId::parse)?,
        content_sha256: opt_parsed(row, W, "content", ContentHash::parse)?,
        seq: get(row, W, "seq")?,
    })
}

/// Reads a face's classifier attributes. Properties that travel together (gender and its
/// confidence, the age bounds, quality, pose) are all present or all absent.
fn attributes(row: &Row) -> Result<FaceAttributes, StoreError> {
    const W: &str = "face";
    let opt = |key: &str| get::<Option<f64>>(row, W, key);
    let gender = both(
        W,
        "gender and gender_confidence",
        opt_parsed(row, W, "gender", |s| {
            GenderValue::parse(s).ok_or_else(|| format!("{s:?} is not Male or Female"))
        })?,
        opt_real(row, W, "gender_confidence", Confidence::new)?,
    )?
    .map(|(value, confidence)| Gender { value, confidence });
    let age = both(
        W,
        "age_low and age_high",
        get::<Option<i64>>(row, W, "age_low")?,
        get::<Option<i64>>(row, W, "age_high")?,
    )?
    .map(|(low, high)| AgeRange::new(u32_of(low)?, u32_of(high)?).map_err(|e| e.to_string()))
    .transpose()
    .map_err(|e| corrupt(W, e))?;
    let quality = both(
        W,
        "brightness and sharpness",
        opt("brightness")?,
        opt("sharpness")?,
    )?
    .map(|(b, s)| Quality::new(b, s))
    .transpose()
    .map_err(|e| corrupt(W, e.to_string()))?;
    let pose = match (opt("yaw")?, opt("pitch")?, opt("roll")?) {
        (Some(yaw), Some(pitch), Some(roll)) => {
            Some(Pose::new(yaw, pitch, roll).map_err(|e| corrupt(W, e.to_string()))?)
        }
        (None, None, None) => None,
        _ => {
            return Err(corrupt(
                W,
                "yaw, pitch and roll must all be present or absent",
            ))
        }
    };
    Ok(FaceAttributes {
        gender,
        age,
        quality,
        pose,
    })
}

/// What an edge query returns from `(a)-[e:SIMILAR]->(b)`, in the columns [`edge_record`] reads.
pub(super) const EDGE_COLUMNS: &str = "a.face_id AS face_a, b.face_id AS face_b,
    e.similarity_ab AS similarity_ab, e.similarity_ba AS similarity_ba, e.engine AS engine,
    e.searched_at AS searched_at, e.verdict AS verdict, e.score AS score, e.rule_set AS rule_set,
    e.reasons AS reasons, e.adjudicated_at AS adjudicated_at";

/// Reads a row of [`EDGE_COLUMNS`].
pub(super) fn edge_record(row: &Row) -> Result<EdgeRecord, StoreError> {
    const W: &str = "edge";
    let a = parsed(row, W, "face_a", FaceId::parse)?;
    let b = parsed(row, W, "face_b", FaceId::parse)?;
    let pair = match FacePair::new(a.clone(), b.clone()) {
        Some(pair) if *pair.a() == a => pair,
        _ => {
            return Err(corrupt(
                W,
                format!("{a} -> {b}: a SIMILAR edge leads from the face whose id sorts first"),
            ))
        }
    };
    let verdict = opt_parsed(row, W, "verdict", |s| {
        Verdict::parse(s).ok_or_else(|| format!("{s:?} is not confirmed, review or rejected"))
    })?;
    let score = get::<Option<f64>>(row, W, "score")?;
    let rule_set = get::<Option<String>>(row, W, "rule_set")?;
    let reasons = get::<Option<String>>(row, W, "reasons")?;
    let judgement = match (verdict, score, rule_set, reasons) {
        (Some(verdict), Some(score), Some(rule_set), Some(reasons)) => Some(Judgement {
            verdict,
            score,
            rule_set,
            reasons: reasons_from_json(&reasons)
                .map_err(|detail| corrupt(W, format!("{a} - {b}: {detail}")))?,
        }),
        (None, _, _, _) => None,
        _ => {
            return Err(corrupt(
                W,
                format!("{a} - {b}: a verdict needs its score, rule set and reasons"),
            ))
        }
    };
    Ok(EdgeRecord {
        edge: Edge {
            pair,
            similarity_ab: opt_real(row, W, "similarity_ab", Similarity::new)?,
            similarity_ba: opt_real(row, W, "similarity_ba", Similarity::new)?,
            engine: text(row, W, "engine")?,
            searched_at: Timestamp::from_millis(get(row, W, "searched_at")?),
        },
        judgement,
        adjudicated_at: get::<Option<i64>>(row, W, "adjudicated_at")?.map(Timestamp::from_millis),
    })
}

/// Reads every row with `read`.
pub(super) fn all<T>(
    found: Vec<Row>,
    read: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    found.iter().map(read).collect()
}

/// What a decision query returns from `(a)-[d:SAME_PERSON|DIFFERENT_PERSON]->(b)`, in the columns
/// [`decision`] reads, with `seq` to order by.
pub(super) const DECISION_COLUMNS: &str = "a.face_id AS a, b.face_id AS b, type(d) AS kind,
    d.analyst AS analyst, d.note AS note, d.at AS at, d.seq AS seq";

/// Reads a row of [`DECISION_COLUMNS`].
pub(super) fn decision(row: &Row) -> Result<Decision, StoreError> {
    const W: &str = "decision";
    let a = parsed(row, W, "a", FaceId::parse)?;
    let b = parsed(row, W, "b", FaceId::parse)?;
    let pair =
        FacePair::new(a, b).ok_or_else(|| corrupt(W, "a decision joins two distinct faces"))?;
    let kind = match text(row, W, "kind")?.as_str() {
        "SAME_PERSON" => DecisionKind::Same,
        "DIFFERENT_PERSON" => DecisionKind::Different,
        other => return Err(corrupt(W, format!("unknown relationship type {other}"))),
    };
    Ok(Decision {
        pair,
        kind,
        analyst: text(row, W, "analyst")?,
        at: Timestamp::from_millis(get(row, W, "at")?),
        note: get(row, W, "note")?,
    })
}

/// What a search query returns from `(s:Search)`, in the columns [`search_record`] reads.
pub(super) const SEARCH_COLUMNS: &str = "s.face_id AS face_id, s.collection_id AS collection_id,
    s.bound AS bound, s.collection_seq AS collection_seq, s.searched_at AS searched_at,
    s.seq AS seq";

/// Reads a row of [`SEARCH_COLUMNS`], with the order searches are listed in: the time of the
/// search, then the order they were recorded.
pub(super) fn search_record(row: &Row) -> Result<((i64, i64), SearchRecord), StoreError> {
    const W: &str = "search";
    Ok((
        (
            get::<i64>(row, W, "searched_at")?,
            get::<i64>(row, W, "seq")?,
        ),
        SearchRecord {
            face_id: parsed(row, W, "face_id", FaceId::parse)?,
            collection_id: parsed(row, W, "collection_id", CollectionId::parse)?,
            bound: opt_real(row, W, "bound", Similarity::new)?,
            collection_seq: get(row, W, "collection_seq")?,
            searched_at: Timestamp::from_millis(get(row, W, "searched_at")?),
        },
    ))
}

/// Reads a cluster member: columns `cluster` and `face`.
pub(super) fn cluster_member(row: &Row) -> Result<(String, FaceId, bool), StoreError> {
    Ok((
        text(row, "cluster member", "cluster")?,
        parsed(row, "cluster member", "face", FaceId::parse)?,
        get(row, "cluster member", "lead")?,
    ))
}
