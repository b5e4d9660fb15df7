//! Reading `facegraph matches --json` back in tests that compare two graphs' matches.

use std::collections::BTreeMap;

use serde_json::Value;

/// Every match of `matches --json` output as (the two external image ids, sorted; similarity).
pub fn by_external_ids(json_lines: &str) -> BTreeMap<(String, String), f64> {
    json_lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|m| {
            let mut pair = [
                m["external_image_id_a"].as_str().unwrap().to_owned(),
                m["external_image_id_b"].as_str().unwrap().to_owned(),
            ];
            pair.sort();
            let [a, b] = pair;
            ((a, b), m["similarity"].as_f64().unwrap())
        })
        .collect()
}
