//! Reads every saved Rekognition response under `tests/fixtures/rekognition/` the way ingest does:
//! each is recognised by content and converts into the domain model, both spellings of one response
//! give the same values, and each broken file is refused with a message that names the problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use facegraph::model::{CollectionId, Face, Timestamp};
use facegraph::rekognition::{
    index_faces_to_domain, list_faces_to_domain, parse_saved, search_by_image_to_domain,
    search_to_domain, IndexedImage, SavedResponse, SavedResponseError, SearchResult,
};

/// What a scenario file is expected to hold.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An IndexFaces response for the image with this external image id, with this many faces.
    Index(&'static str, usize),
    /// A SearchFaces response for face number N.
    Search(u32),
    /// A SearchFacesByImage response whose searched face is face number N.
    SearchByImage(u32),
    /// A ListFaces page with these face numbers.
    List(&'static [u32]),
}

use Expect::*;

const SCENARIO: &[(&str, Expect)] = &[
    ("camel/resp-002.json", Search(1)),
    ("camel/resp-005.json", Search(8)),
    ("camel/resp-007.json", Index("anna_2.jpg", 1)),
    ("camel/resp-008.json", Index("dave_2.jpg", 1)),
    ("camel/resp-010.json", Search(12)),
    ("camel/resp-011.json", Search(5)),
    ("camel/resp-015.json", Index("erin_2.jpg", 1)),
    ("camel/resp-017.json", Index("gina_1.jpg", 1)),
    ("camel/resp-018.json", Index("bob_1.jpg", 1)),
    ("camel/resp-021.json", Index("group.jpg", 2)),
    ("camel/resp-023.json", Search(3)),
    ("camel/resp-027.json", Search(10)),
    ("camel/resp-028.json", Index("finn_1.jpg", 1)),
    ("camel/resp-029.json", List(&[1, 2, 3, 4, 5])),
    ("pascal/resp-001.json", Search(9)),
    ("pascal/resp-003.json", Index("carol_1.jpg", 1)),
    ("pascal/resp-004.json", Search(13)),
    ("pascal/resp-006.json", Search(11)),
    ("pascal/resp-009.json", Search(2)),
    ("pascal/resp-012.json", Index("erin_3.jpg", 1)),
    ("pascal/resp-013.json", Index("erin_1.jpg", 1)),
    ("pascal/resp-014.json", Index("gina_2.jpg", 1)),
    ("pascal/resp-016.json", SearchByImage(16)),
    ("pascal/resp-019.json", Search(4)),
    ("pascal/resp-020.json", Index("anna_1.jpg", 1)),
    ("pascal/resp-022.json", Index("anna_3.jpg", 1)),
    ("pascal/resp-024.json", Index("dave_1.jpg", 1)),
    ("pascal/resp-025.json", Index("finn_2.jpg", 1)),
    ("pascal/resp-026.json", Search(6)),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rekognition")
}

fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse(rel: &str) -> SavedResponse {
    parse_saved(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn face_id(n: u32) -> String {
    format!("aaaaaaaa-0000-4000-8000-{n:012}")
}

fn collection() -> CollectionId {
    CollectionId::parse("fixtures").expect("a valid collection id")
}

const INDEXED_AT: i64 = 1_741_082_400_000;

/// The domain values of any saved response, so that two files can be compared whatever their kind.
#[derive(Debug, PartialEq)]
enum Domain {
    Indexed(IndexedImage),
    Searched(SearchResult),
    Listed(Vec<Face>),
}

fn to_domain(resp: &SavedResponse) -> Result<Domain, SavedResponseError> {
    let at = Timestamp::from_millis(INDEXED_AT);
    Ok(match resp {
        SavedResponse::IndexFaces(r) => {
            Domain::Indexed(index_faces_to_domain(r, &collection(), at)?)
        }
        SavedResponse::SearchFaces(r) => Domain::Searched(search_to_domain(r)?),
        SavedResponse::SearchFacesByImage(r) => Domain::Searched(search_by_image_to_domain(r)?),
        SavedResponse::ListFaces(r) => Domain::Listed(list_faces_to_domain(r, &collection(), at)?),
    })
}

fn json_files(dir: &str) -> BTreeSet<String> {
    let entries = std::fs::read_dir(fixtures().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"));
    entries
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .map(|name| format!("{dir}/{name}"))
        .collect()
}

#[test]
fn every_scenario_file_is_listed_here() {
    let on_disk: BTreeSet<String> = json_files("pascal")
        .into_iter()
        .chain(json_files("camel"))
        .collect();
    let listed: BTreeSet<String> = SCENARIO.iter().map(|(rel, _)| (*rel).to_owned()).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn every_scenario_file_is_recognised_and_converts() {
    for (rel, expect) in SCENARIO {
        let resp = parse(rel);
        let domain = to_domain(&resp).unwrap_or_else(|e| panic!("{rel}: {e}"));
        match (expect, domain) {
            (Index(external, count), Domain::Indexed(indexed)) => {
                assert_eq!(resp.kind(), "IndexFaces", "{rel}");
                let image = indexed
                    .image
                    .as_ref()
                    .unwrap_or_else(|| panic!("{rel}: no image"));
                assert_eq!(
                    image.external_image_id.as_ref().map(|e| e.as_str()),
                    Some(*external),
                    "{rel}"
                );
                assert_eq!(indexed.faces.len(), *count, "{rel}");
                assert_eq!(
                    indexed.faces.iter().filter(|f| f.is_largest).count(),
                    1,
                    "{rel}"
                );
                assert_eq!(indexed.face_model_version.as_deref(), Some("6.0"), "{rel}");
                for face in &indexed.faces {
                    let attributes = face.attributes;
                    assert!(
                        attributes.gender.is_some() && attributes.age.is_some(),
                        "{rel}"
                    );
                    assert!(
                        attributes.quality.is_some() && attributes.pose.is_some(),
                        "{rel}"
                    );
                    let raw = face.raw.as_deref().unwrap_or_default();
                    assert!(
                        raw.contains(r#""Landmarks":[{"Type":"eyeLeft""#),
                        "{rel}: {raw}"
                    );
                }
            }
            (Search(n), Domain::Searched(result)) => {
                assert_eq!(resp.kind(), "SearchFaces", "{rel}");
                assert_eq!(result.searched_face_id.as_str(), face_id(*n), "{rel}");
                assert!(!result.matches.is_empty(), "{rel}");
            }
            (SearchByImage(n), Domain::Searched(result)) => {
                assert_eq!(resp.kind(), "SearchFacesByImage", "{rel}");
                assert_eq!(result.searched_face_id.as_str(), face_id(*n), "{rel}");
            }
            (List(numbers), Domain::Listed(faces)) => {
                assert_eq!(resp.kind(), "ListFaces", "{rel}");
                let ids: Vec<String> = faces.iter().map(|f| f.face_id.to_string()).collect();
                let expected: Vec<String> = numbers.iter().map(|n| face_id(*n)).collect();
                assert_eq!(ids, expected, "{rel}");
                let SavedResponse::ListFaces(page) = &resp else {
                    unreachable!()
                };
                assert!(
                    page.next_token.is_some(),
                    "{rel}: the page has a next token"
                );
            }
            (expect, domain) => panic!("{rel}: expected {expect:?}, got {domain:?}"),
        }
    }
}

#[test]
fn the_scenario_is_the_one_the_readme_describes() {
    let mut faces: BTreeMap<String, Face> = BTreeMap::new();
    let mut unindexed = Vec::new();
    let mut hits: BTreeMap<(u32, u32), f64> = BTreeMap::new();
    let number = |id: &str| -> u32 { id[24..].parse().expect("a scenario face id") };
    for (rel, _) in SCENARIO {
        match to_domain(&parse(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")) {
            Domain::Indexed(indexed) => {
                unindexed.extend(indexed.unindexed);
                for face in indexed.faces {
                    assert!(
                        faces.insert(face.face_id.to_string(), face).is_none(),
                        "{rel}: face indexed twice"
                    );
                }
            }
            Domain::Searched(result) => {
                let searched = number(result.searched_face_id.as_str());
                for m in result.matches {
                    hits.insert((searched, number(m.face_id.as_str())), m.similarity.get());
                }
            }
            Domain::Listed(_) => {}
        }
    }
    assert_eq!(faces.len(), 16);
    assert_eq!(
        unindexed,
        [vec![
            "LOW_SHARPNESS".to_owned(),
            "SMALL_BOUNDING_BOX".to_owned()
        ]]
    );

    // Every face a search names was introduced by an index response.
    for (searched, found) in hits.keys() {
        assert!(
            faces.contains_key(&face_id(*searched)),
            "face {searched} is not indexed"
        );
        assert!(
            faces.contains_key(&face_id(*found)),
            "face {found} is not indexed"
        );
    }
    let similarity = |a: u32, b: u32| hits.get(&(a, b)).map(|s| (s * 1000.0).round() / 1000.0);
    assert_eq!(similarity(1, 2), Some(99.312));
    assert_eq!(similarity(4, 5), Some(97.99));
    assert_eq!(similarity(16, 15), Some(99.0));
    assert_eq!(
        similarity(16, 16),
        None,
        "the searched face is not its own match"
    );
    assert_eq!(
        hits.len(),
        21,
        "directed hits: 20 SearchFaces matches and one by image"
    );

    let group = |n: u32| &faces[&face_id(n)];
    assert!(group(6).is_largest && !group(7).is_largest);
    assert_eq!(group(6).image_id, group(7).image_id);
    let gina = group(15).attributes.quality.expect("face 15 has a quality");
    assert_eq!((gina.brightness(), gina.sharpness()), (8.0, 4.0));
    assert_eq!(
        group(13).attributes.age.map(|a| (a.low(), a.high())),
        Some((3, 7))
    );
}

#[test]
fn both_spellings_of_a_response_give_the_same_domain_values() {
    for pair in ["pair-1", "pair-2", "pair-3", "pair-4"] {
        let pascal = parse(&format!("equivalent/{pair}.pascal.json"));
        let camel = parse(&format!("equivalent/{pair}.camel.json"));
        assert_eq!(pascal.kind(), camel.kind(), "{pair}");
        assert_eq!(pascal, camel, "{pair}: the wire values differ");
        let pascal = to_domain(&pascal).unwrap_or_else(|e| panic!("{pair}: {e}"));
        let camel = to_domain(&camel).unwrap_or_else(|e| panic!("{pair}: {e}"));
        assert_eq!(pascal, camel, "{pair}");
    }
}

#[test]
fn a_truncated_file_is_refused_with_its_position() {
    let err = parse_saved(&read("bad/truncated.json")).expect_err("a truncated file is refused");
    assert!(
        matches!(err, SavedResponseError::Json { line, .. } if line > 1),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.starts_with("malformed JSON at line "), "{message}");
    assert!(message.contains("EOF while parsing"), "{message}");
}

#[test]
fn another_apis_response_is_refused_with_its_members() {
    let err = parse_saved(&read("bad/unknown-shape.json")).expect_err("DetectLabels is refused");
    assert_eq!(
        err.to_string(),
        "not a saved IndexFaces, SearchFaces, SearchFacesByImage or ListFaces response \
         (top-level members: LabelModelVersion, Labels)"
    );
}

#[test]
fn an_out_of_range_similarity_is_refused_with_its_path() {
    let resp = parse("bad/out-of-range.json");
    assert_eq!(resp.kind(), "SearchFaces");
    let err = to_domain(&resp).expect_err("a similarity of 101.5 is refused");
    assert_eq!(
        err.to_string(),
        "FaceMatches[0].Similarity: similarity \"101.5\" is invalid: must be a number from 0 to 100"
    );
}

#[test]
fn a_search_naming_an_unknown_face_still_parses() {
    // Only ingest knows which faces were indexed; the parser takes the response as it is.
    let Domain::Searched(result) = to_domain(&parse("bad/unknown-face.json")).expect("converts")
    else {
        panic!("expected a search");
    };
    assert_eq!(result.searched_face_id.as_str(), face_id(1));
    assert!(result
        .matches
        .iter()
        .any(|m| m.face_id.as_str() == face_id(99)));
}

#[test]
fn an_empty_file_is_refused_as_empty() {
    let err = parse_saved(&read("bad/empty.json")).expect_err("an empty file is refused");
    assert_eq!(err, SavedResponseError::Empty);
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn every_image_has_a_subject() {
    let text = String::from_utf8(read("subjects.csv")).expect("subjects.csv is UTF-8");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("external_image_id,subject_id"));
    let subjects: BTreeMap<&str, &str> = lines.filter_map(|l| l.split_once(',')).collect();
    assert_eq!(subjects.len(), 15);
    for (rel, expect) in SCENARIO {
        if let Index(external, _) = expect {
            assert!(
                subjects.contains_key(external),
                "{rel}: {external} has no subject"
            );
        }
    }
    assert_eq!(subjects.get("dave_1.jpg"), subjects.get("dave_2.jpg"));
}
