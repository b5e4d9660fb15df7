//! Brings the Java SDK's camelCase spelling of a saved response to the service's PascalCase: object
//! keys get an upper-case first letter, `null` members are dropped, and so are the SDKs' top-level
//! metadata members.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::SavedResponseError;

/// The top-level members that the SDKs add to a response: boto3's `ResponseMetadata`, and the Java
/// SDK's `sdkResponseMetadata` and `sdkHttpMetadata` (after their first letter is upper-cased).
const SDK_METADATA: [&str; 3] = ["ResponseMetadata", "SdkResponseMetadata", "SdkHttpMetadata"];

/// A response's top-level object in the service's spelling.
#[derive(Debug)]
pub(super) struct Normalised {
    /// The members, PascalCase, without nulls and without the SDKs' metadata.
    pub(super) members: Map<String, Value>,
    /// The names of those members as the file spells them, for messages.
    pub(super) original_names: Vec<String>,
}

/// Normalises a response's top-level object.
pub(super) fn top_level(top: Map<String, Value>) -> Result<Normalised, SavedResponseError> {
    let mut original_names = Vec::new();
    let kept = top.into_iter().filter(|(key, value)| {
        let keep = !value.is_null() && !SDK_METADATA.contains(&pascal_case(key).as_str());
        if keep {
            original_names.push(key.clone());
        }
        keep
    });
    let members = object(kept, "")?;
    Ok(Normalised {
        members,
        original_names,
    })
}

/// The key with its first letter upper-cased: `faceMatches` becomes `FaceMatches`.
fn pascal_case(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn object(
    members: impl Iterator<Item = (String, Value)>,
    path: &str,
) -> Result<Map<String, Value>, SavedResponseError> {
    let mut out = Map::new();
    // The spelling each normalised key came from, to name both when two keys collide.
    let mut spelled: HashMap<String, String> = HashMap::new();
    for (key, value) in members {
        if value.is_null() {
            continue;
        }
        let name = pascal_case(&key);
        let member_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        let value = normalise(value, &member_path)?;
        match out.get(&name) {
            // Both spellings of one member with the same value say the same thing; anything else is
            // a contradiction that no choice would resolve honestly.
            Some(previous) if *previous != value => {
                let first = spelled.get(&name).map_or(name.as_str(), String::as_str);
                return Err(SavedResponseError::Field {
                    path: member_path,
                    message: format!(
                        "given twice with different values, as `{first}` and as `{key}`"
                    ),
                });
            }
            Some(_) => {}
            None => {
                spelled.insert(name.clone(), key);
                out.insert(name, value);
            }
        }
    }
    Ok(out)
}

fn normalise(value: Value, path: &str) -> Result<Value, SavedResponseError> {
    Ok(match value {
        Value::Object(map) => Value::Object(object(map.into_iter(), path)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| normalise(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        scalar => scalar,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn normalised(value: Value) -> Result<Value, SavedResponseError> {
        match value {
            Value::Object(map) => top_level(map).map(|n| Value::Object(n.members)),
            _ => panic!("test input must be an object"),
        }
    }

    #[test]
    fn keys_become_pascal_case_and_values_stay() {
        let value = json!({
            "faceRecords": [{"faceDetail": {"landmarks": [{"type": "eyeLeft", "x": 0.5, "y": null}]}}],
            "orientationCorrection": null,
            "sdkResponseMetadata": {"requestId": "r"},
            "sdkHttpMetadata": {"httpStatusCode": 200},
        });
        assert_eq!(
            normalised(value).expect("normalises"),
            json!({"FaceRecords": [{"FaceDetail": {"Landmarks": [{"Type": "eyeLeft", "X": 0.5}]}}]})
        );
    }

    #[test]
    fn boto3_metadata_is_dropped_only_at_the_top() {
        let value =
            json!({"Faces": [{"ResponseMetadata": 1}], "ResponseMetadata": {"RequestId": "r"}});
        assert_eq!(
            normalised(value).expect("normalises"),
            json!({"Faces": [{"ResponseMetadata": 1}]})
        );
    }

    #[test]
    fn two_spellings_of_one_member_must_agree() {
        let same = json!({"Faces": [{"faceId": "x", "FaceId": "x"}]});
        assert_eq!(
            normalised(same).expect("agreeing spellings are fine"),
            json!({"Faces": [{"FaceId": "x"}]})
        );
        let differ = json!({"Faces": [{"FaceId": "x", "faceId": "y"}]});
        let err = normalised(differ).expect_err("disagreeing spellings are refused");
        assert_eq!(
            err.to_string(),
            "Faces[0].FaceId: given twice with different values, as `FaceId` and as `faceId`"
        );
    }
}
