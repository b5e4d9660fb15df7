//! Rows of the SQLite store read back as domain values: the columns each query selects, and the
//! decoding that turns a value the schema would not hold into a [`StoreError::Corrupt`] naming the
//! record, the column and the value.

use rusqlite::types::ValueRef;
use rusqlite::Row;

use super::backend;
use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, ContentHash, Decision, DecisionKind, Edge,
    ExternalImageId, Face, FaceAttributes, FaceId, FacePair, Gender, GenderValue, ImageId,
    Judgement, ParseError, Pose, Quality, SearchRecord, Similarity, SubjectId, Timestamp, Verdict,
};
use crate::store::codec::reasons_from_json;
use crate::store::{EdgeRecord, FaceRecord, StoreError};

/// The columns of a face record, in the order [`face_record`] reads them.
pub(super) const FACE_SELECT: &str = "SELECT f.seq, f.face_id, f.collection_id, f.image_id,
        f.external_image_id, f.bbox_left, f.bbox_top, f.bbox_width, f.bbox_height,
        f.detection_confidence, f.gender, f.gender_confidence, f.age_low, f.age_high,
        f.brightness, f.sharpness, f.yaw, f.pitch, f.roll, f.is_largest, f.indexed_at, f.raw,
        i.subject_id, i.content_sha256
    FROM faces f LEFT JOIN images i ON i.image_id = f.image_id";

/// The columns of an edge record, in the order [`edge_record`] reads them, with the faces' ids.
pub(super) const EDGE_SELECT: &str = "SELECT face_a, face_b, similarity_ab, similarity_ba, engine,
        searched_at, verdict, score, rule_set, reasons, adjudicated_at FROM similar_edges";

/// Reads a row of [`FACE_SELECT`].
pub(super) fn face_record(row: &Row<'_>) -> Result<FaceRecord, StoreError> {
    let mut c = Cells::new(row, "face");
    let seq = c.int()?;
    let face_id = c.parse(FaceId::parse)?;
    let collection_id = c.parse(CollectionId::parse)?;
    let image_id = c.parse(ImageId::parse)?;
    let external_image_id = c.opt_parse(ExternalImageId::parse)?;
    let bbox = BoundingBox {
        left: c.real()? as f32,
        top: c.real()? as f32,
        width: c.real()? as f32,
        height: c.real()? as f32,
    };
    let detection_confidence = c.opt_parse_real(Confidence::new)?;
    let attributes = attributes(&mut c)?;
    let is_largest = match c.int()? {
        0 => false,
        1 => true,
        n => return Err(c.corrupt_last(format!("holds {n}, expected 0 or 1"))),
    };
    let indexed_at = Timestamp::from_millis(c.int()?);
    let raw = c.opt_text()?.map(str::to_owned);
    let subject = c.opt_parse(SubjectId::parse)?;
    let content_sha256 = c.opt_parse(ContentHash::parse)?;
    Ok(FaceRecord {
        face: Face {
            face_id,
            collection_id,
            image_id,
            external_image_id,
            bbox,
            detection_confidence,
            attributes,
            is_largest,
            indexed_at,
            raw,
        },
        subject,
        content_sha256,
        seq,
    })
}

/// Reads a face's classifier attributes, from `gender` to `roll`. Columns that travel together
/// (gender and its confidence, the age bounds, quality, pose) are all present or all absent.
fn attributes(c: &mut Cells<'_, '_>) -> Result<FaceAttributes, StoreError> {
    let gender_value = c.opt_parse(|s| {
        GenderValue::parse(s).ok_or_else(|| ParseError {
            what: "gender",
            value: s.to_owned(),
            rule: "must be Male or Female".to_owned(),
        })
    })?;
    let gender_confidence = c.opt_parse_real(Confidence::new)?;
    let gender = match (gender_value, gender_confidence) {
        (Some(value), Some(confidence)) => Some(Gender { value, confidence }),
        (None, None) => None,
        _ => return Err(c.corrupt_last("gender and its confidence must both be present or absent")),
    };
    let age = match (c.opt_u32()?, c.opt_u32()?) {
        (Some(low), Some(high)) => {
            Some(AgeRange::new(low, high).map_err(|e| c.corrupt_last(e.to_string()))?)
        }
        (None, None) => None,
        _ => return Err(c.corrupt_last("age_low and age_high must both be present or absent")),
    };
    let quality = match (c.opt_real()?, c.opt_real()?) {
        (Some(b), Some(s)) => Some(Quality::new(b, s).map_err(|e| c.corrupt_last(e.to_string()))?),
        (None, None) => None,
        _ => return Err(c.corrupt_last("brightness and sharpness must both be present or absent")),
    };
    let pose = match (c.opt_real()?, c.opt_real()?, c.opt_real()?) {
        (Some(yaw), Some(pitch), Some(roll)) => {
            Some(Pose::new(yaw, pitch, roll).map_err(|e| c.corrupt_last(e.to_string()))?)
        }
        (None, None, None) => None,
        _ => return Err(c.corrupt_last("yaw, pitch and roll must all be present or absent")),
    };
    Ok(FaceAttributes {
        gender,
        age,
        quality,
        pose,
    })
}

/// Reads the leading columns every edge query selects: face ids, similarities, engine, searched
/// at, and the verdict.
fn edge_with_verdict(c: &mut Cells<'_, '_>) -> Result<(Edge, Option<Verdict>), StoreError> {
    let a = c.parse(FaceId::parse)?;
    let b = c.parse(FaceId::parse)?;
    let pair = match FacePair::new(a.clone(), b.clone()) {
        Some(pair) if *pair.a() == a => pair,
        _ => {
            return Err(c.corrupt_last(format!(
                "face_a {a} must sort before face_b {b}: an edge joins two faces in canonical order"
            )))
        }
    };
    let edge = Edge {
        pair,
        similarity_ab: c.opt_parse_real(Similarity::new)?,
        similarity_ba: c.opt_parse_real(Similarity::new)?,
        engine: c.text()?.to_owned(),
        searched_at: Timestamp::from_millis(c.int()?),
    };
    let verdict = c.opt_parse(|s| {
        Verdict::parse(s).ok_or_else(|| ParseError {
            what: "verdict",
            value: s.to_owned(),
            rule: "must be confirmed, review or rejected".to_owned(),
        })
    })?;
    Ok((edge, verdict))
}

/// Reads a row of [`EDGE_SELECT`].
pub(super) fn edge_record(row: &Row<'_>) -> Result<EdgeRecord, StoreError> {
    let mut c = Cells::new(row, "edge");
    let (edge, verdict) = edge_with_verdict(&mut c)?;
    let (a, b) = (edge.pair.a(), edge.pair.b());
    let score = c.opt_real()?;
    let rule_set = c.opt_text()?;
    let reasons = c.opt_text()?;
    let adjudicated_at = c.opt_int()?.map(Timestamp::from_millis);
    let judgement = match (verdict, score, rule_set, reasons) {
        (Some(verdict), Some(score), Some(rule_set), Some(reasons)) => Some(Judgement {
            verdict,
            score,
            rule_set: rule_set.to_owned(),
            reasons: reasons_from_json(reasons)
                .map_err(|detail| c.corrupt_last(format!("of {a} - {b}: {detail}")))?,
        }),
        (None, _, _, _) => None,
        _ => {
            return Err(c.corrupt_last(format!(
                "of {a} - {b}: a verdict needs its score, rule set and reasons"
            )))
        }
    };
    Ok(EdgeRecord {
        edge,
        judgement,
        adjudicated_at,
    })
}

/// Reads a row of an edge without its judgement: face ids, similarities, engine, searched at, and
/// its verdict.
pub(super) fn light_edge(row: &Row<'_>) -> Result<(Edge, Option<Verdict>), StoreError> {
    edge_with_verdict(&mut Cells::new(row, "edge"))
}

/// Reads a row of the decisions table: pair, kind, analyst, note, time.
pub(super) fn decision(row: &Row<'_>) -> Result<Decision, StoreError> {
    let mut c = Cells::new(row, "decision");
    let a = c.parse(FaceId::parse)?;
    let b = c.parse(FaceId::parse)?;
    let Some(pair) = FacePair::new(a, b) else {
        return Err(c.corrupt_last("a decision joins two distinct faces"));
    };
    let kind = c.parse(|s| {
        DecisionKind::parse(s).ok_or_else(|| ParseError {
            what: "decision kind",
            value: s.to_owned(),
            rule: "must be same or different".to_owned(),
        })
    })?;
    let analyst = c.text()?.to_owned();
    let note = c.opt_text()?.map(str::to_owned);
    let at = Timestamp::from_millis(c.int()?);
    Ok(Decision {
        pair,
        kind,
        analyst,
        at,
        note,
    })
}

/// Reads a row of the searches table: face, collection, bound, collection seq, time.
pub(super) fn search_record(row: &Row<'_>) -> Result<SearchRecord, StoreError> {
    let mut c = Cells::new(row, "search");
    Ok(SearchRecord {
        face_id: c.parse(FaceId::parse)?,
        collection_id: c.parse(CollectionId::parse)?,
        bound: c.opt_parse_real(Similarity::new)?,
        collection_seq: c.int()?,
        searched_at: Timestamp::from_millis(c.int()?),
    })
}

/// Reads every row with `read`, which turns a row into a domain value or says why it cannot.
pub(super) fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    operation: &'static str,
    read: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend(operation))? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// Ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: one statement for any number
/// of ids, where a list of parameters would hit SQLite's limit on variables.
pub(super) fn id_list<'a>(ids: impl IntoIterator<Item = &'a FaceId>) -> String {
    let mut s = String::from("[");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Face ids are lowercase UUIDs, which need no escaping in JSON.
        s.push('"');
        s.push_str(id.as_str());
        s.push('"');
    }
    s.push(']');
    s
}

/// Reads a row's columns one after the other, turning values that the schema would not hold into
/// [`StoreError::Corrupt`] errors that name the record, the column and the value.
pub(super) struct Cells<'a, 'r> {
    row: &'a Row<'r>,
    what: &'static str,
    next: usize,
}

impl<'a, 'r> Cells<'a, 'r> {
    pub(super) fn new(row: &'a Row<'r>, what: &'static str) -> Self {
        Self { row, what, next: 0 }
    }

    fn value(&mut self) -> Result<ValueRef<'a>, StoreError> {
        let i = self.next;
        self.next += 1;
        self.row.get_ref(i).map_err(backend("read a row"))
    }

    /// An error about the column read last.
    pub(super) fn corrupt_last(&self, detail: impl std::fmt::Display) -> StoreError {
        let column = self
            .next
            .checked_sub(1)
            .and_then(|i| self.row.as_ref().column_name(i).ok())
            .unwrap_or("?");
        StoreError::Corrupt {
            what: self.what,
            detail: format!("column {column} {detail}"),
        }
    }

    fn unexpected(&self, value: ValueRef<'_>, expected: &str) -> StoreError {
        self.corrupt_last(format!("holds {}, expected {expected}", describe(value)))
    }

    pub(super) fn opt_text(&mut self) -> Result<Option<&'a str>, StoreError> {
        match self.value()? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|_| self.corrupt_last("holds text that is not UTF-8")),
            other => Err(self.unexpected(other, "text")),
        }
    }

    pub(super) fn text(&mut self) -> Result<&'a str, StoreError> {
        self.opt_text()?
            .ok_or_else(|| self.corrupt_last("is NULL, expected text"))
    }

    pub(super) fn opt_int(&mut self) -> Result<Option<i64>, StoreError> {
        match self.value()? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            other => Err(self.unexpected(other, "an integer")),
        }
    }

    pub(super) fn int(&mut self) -> Result<i64, StoreError> {
        self.opt_int()?
            .ok_or_else(|| self.corrupt_last("is NULL, expected an integer"))
    }

    pub(super) fn opt_u32(&mut self) -> Result<Option<u32>, StoreError> {
        match self.opt_int()? {
            None => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| self.corrupt_last(format!("holds {n}, expected 0 to {}", u32::MAX))),
        }
    }

    pub(super) fn opt_real(&mut self) -> Result<Option<f64>, StoreError> {
        match self.value()? {
            ValueRef::Null => Ok(None),
            ValueRef::Real(x) => Ok(Some(x)),
            // A foreign writer may have stored a whole number as an integer.
            ValueRef::Integer(n) => Ok(Some(n as f64)),
            other => Err(self.unexpected(other, "a number")),
        }
    }

    pub(super) fn real(&mut self) -> Result<f64, StoreError> {
        self.opt_real()?
            .ok_or_else(|| self.corrupt_last("is NULL, expected a number"))
    }

    pub(super) fn opt_parse<T>(
        &mut self,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, StoreError> {
        match self.opt_text()? {
            None => Ok(None),
            Some(s) => parse(s)
                .map(Some)
                .map_err(|e| self.corrupt_last(format!("holds an invalid value: {e}"))),
        }
    }

    pub(super) fn parse<T>(
        &mut self,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, StoreError> {
        self.opt_parse(parse)?
            .ok_or_else(|| self.corrupt_last("is NULL, expected text"))
    }

    pub(super) fn opt_parse_real<T>(
        &mut self,
        parse: impl FnOnce(f64) -> Result<T, ParseError>,
    ) -> Result<Option<T>, StoreError> {
        match self.opt_real()? {
            None => Ok(None),
            Some(x) => parse(x)
                .map(Some)
                .map_err(|e| self.corrupt_last(format!("holds an invalid value: {e}"))),
        }
    }
}

/// A stored value as an error message shows it.
fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(n) => format!("the integer {n}"),
        ValueRef::Real(x) => format!("the number {x}"),
        ValueRef::Text(t) => format!("the text {:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}
