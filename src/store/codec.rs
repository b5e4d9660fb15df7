//! Encodings that both store adapters share: a judgement's reasons as JSON text, which keeps the
//! evidence's order and every number exactly.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use super::{ClusterMembership, StoreError};
use crate::model::{Evidence, FaceId, Reason, ReasonCode};

/// A reason as the store keeps it. The format is private to this adapter; it keeps the evidence as
/// a list so that its order survives, which a JSON object would not promise.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonWire {
    code: String,
    message: String,
    evidence: Vec<EvidenceWire>,
}

/// One piece of evidence: `{"key": k, "number": n}` or `{"key": k, "text": t}`. A number is read
/// back from its JSON text with Rust's exact parser (serde_json's default float parsing may be off
/// by one unit in the last place); a number JSON cannot hold (NaN, infinities) is written as a
/// string.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceWire {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number: Option<Box<serde_json::value::RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

pub(crate) fn reasons_to_json(reasons: &[Reason]) -> Result<String, StoreError> {
    let wire = reasons
        .iter()
        .map(|r| {
            let evidence = r
                .evidence
                .iter()
                .map(|(key, value)| {
                    let (number, text) = match value {
                        Evidence::Number(x) => {
                            let json = if x.is_finite() {
                                serde_json::to_string(x)
                            } else {
                                serde_json::to_string(&x.to_string())
                            }?;
                            (Some(serde_json::value::RawValue::from_string(json)?), None)
                        }
                        Evidence::Text(t) => (None, Some(t.clone())),
                    };
                    Ok(EvidenceWire {
                        key: key.to_string(),
                        number,
                        text,
                    })
                })
                .collect::<Result<Vec<_>, serde_json::Error>>()?;
            Ok(ReasonWire {
                code: r.code.as_str().to_owned(),
                message: r.message.clone(),
                evidence,
            })
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|source| StoreError::Backend {
            operation: "record verdicts",
            source: Box::new(source),
        })?;
    serde_json::to_string(&wire).map_err(|source| StoreError::Backend {
        operation: "record verdicts",
        source: Box::new(source),
    })
}

/// Parses stored reasons; the error says what is wrong, for a [`StoreError::Corrupt`].
pub(crate) fn reasons_from_json(json: &str) -> Result<Vec<Reason>, String> {
    let wire: Vec<ReasonWire> =
        serde_json::from_str(json).map_err(|e| format!("holds reasons that do not parse: {e}"))?;
    wire.into_iter()
        .map(|r| {
            let code = ReasonCode::parse(&r.code)
                .ok_or_else(|| format!("holds an unknown reason code {:?}", r.code))?;
            let evidence = r
                .evidence
                .into_iter()
                .map(|e| {
                    let value = match (e.number, e.text) {
                        (Some(raw), None) => {
                            let json = raw.get();
                            let text = match serde_json::from_str::<String>(json) {
                                Ok(s) => s,
                                Err(_) => json.to_owned(),
                            };
                            Evidence::Number(text.parse().map_err(|_| {
                                format!("holds evidence {:?} that is not a number: {json}", e.key)
                            })?)
                        }
                        (None, Some(text)) => Evidence::Text(text),
                        _ => {
                            return Err(format!(
                                "holds evidence {:?} without exactly one of number and text",
                                e.key
                            ))
                        }
                    };
                    Ok((std::borrow::Cow::Owned(e.key), value))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Reason {
                code,
                message: r.message,
                evidence,
            })
        })
        .collect()
}

/// Cluster members as stored, one `(cluster id, face)` per row, grouped into clusters: in the order
/// the clusters first appear, each with its faces in row order.
pub(crate) fn group_clusters(
    members: impl IntoIterator<Item = (String, FaceId, bool)>,
) -> Vec<ClusterMembership> {
    let mut clusters: Vec<ClusterMembership> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (cluster_id, face, fraud_lead) in members {
        let i = *index.entry(cluster_id.clone()).or_insert_with(|| {
            clusters.push(ClusterMembership {
                cluster_id,
                faces: Vec::new(),
                fraud_lead,
            });
            clusters.len() - 1
        });
        clusters[i].faces.push(face);
    }
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_exactly_through_json() {
        let reasons = vec![
            Reason::new(
                ReasonCode::SimilarityBand,
                "97.99 is in the review band",
                vec![
                    ("similarity", Evidence::from(97.99_f32)),
                    ("z_first", 0.1_f64.into()),
                    ("band", "review".into()),
                    ("tiny", Evidence::Number(5e-324)),
                    ("negative_zero", Evidence::Number(-0.0)),
                ],
            ),
            Reason::new(ReasonCode::HubFace, "", vec![]),
        ];
        let json = reasons_to_json(&reasons).expect("serialises");
        assert_eq!(reasons_from_json(&json).expect("parses"), reasons);
        let inf = vec![Reason::new(
            ReasonCode::LowQuality,
            "x",
            vec![("inf", Evidence::Number(f64::INFINITY))],
        )];
        let json = reasons_to_json(&inf).expect("serialises");
        assert_eq!(reasons_from_json(&json).expect("parses"), inf);
    }

    #[test]
    fn unknown_reason_codes_are_refused() {
        let err = reasons_from_json(r#"[{"code":"telepathy","message":"","evidence":[]}]"#)
            .expect_err("unknown code");
        assert!(err.contains("telepathy"), "{err}");
    }
}
