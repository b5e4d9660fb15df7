//! Routed collections end to end with the local engine and the sample photos: `ingest` into a
//! routed collection id splits it at the route's face limit, and what the pipeline found (every
//! match, with its similarity) is what one collection finds; `collections` and `search` on the
//! command line and on the REST API (`/v1/collections`, `/v1/search`), with their roles.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/matches.rs"]
mod matches;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use facegraph::engine::local::models::samples_dir;
use facegraph::engine::FaceEngine;
use facegraph::settings::{Overrides, Settings};
use facegraph::startup::{Access, App, LockWait};
use serde_json::Value;

/// The sample photos with a face, all of tenant acme but biden's (globex).
const PHOTOS: [(&str, &str); 5] = [
    ("obama.jpg", "acme:c-1"),
    ("obama2.jpg", "acme:c-2"),
    ("obama3.jpg", "acme:c-3"),
    ("32bit.png", "acme:c-4"),
    ("biden.jpg", "globex:c-5"),
];

const ROUTES: &str = "[[routes]]\ncollection_id = \"customers\"\nkey = \"tenant\"\nmax_faces = 2\n";

fn samples() -> PathBuf {
    let dir = samples_dir(&Settings::load(&Overrides::default()).unwrap().models_dir);
    assert!(
        dir.join("biden.jpg").is_file(),
        "{} has no sample photos: run `facegraph models fetch` (scripts/test does) before the tests",
        dir.display()
    );
    dir
}

/// A data directory, the photos and their subjects, and a config file with the route (or none).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(routes: &str) -> Self {
        let f = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(f.path("photos")).unwrap();
        let mut csv = "external_image_id,subject_id\n".to_owned();
        for (p, subject) in PHOTOS {
            std::fs::copy(samples().join(p), f.path("photos").join(p)).unwrap();
            csv.push_str(&format!("{p},{subject}\n"));
        }
        std::fs::write(f.path("subjects.csv"), csv).unwrap();
        std::fs::write(f.path("facegraph.toml"), routes).unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_facegraph"))
            .arg("--data-dir")
            .arg(self.path("data"))
            .arg("--config")
            .arg(self.path("facegraph.toml"))
            .args(args)
            .env_remove("FACEGRAPH_RULES")
            .env_remove("FACEGRAPH_DATA_DIR")
            .env_remove("FACEGRAPH_COLLECTION_ID")
            .env_remove("FACEGRAPH_ENGINE")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "facegraph {args:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn ingest(&self) -> String {
        let photos = self.path("photos");
        let subjects = self.path("subjects.csv");
        self.ok(&[
            "ingest",
            "--collection-id",
            "customers",
            "--subjects",
            subjects.to_str().unwrap(),
            photos.to_str().unwrap(),
        ])
    }

    /// Every match as (the two external image ids, sorted; similarity).
    fn matches(&self) -> BTreeMap<(String, String), f64> {
        matches::by_external_ids(&self.ok(&["matches", "--json"]))
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s.trim()).unwrap()
}

#[test]
fn ingest_splits_a_routed_collection_and_finds_what_one_collection_finds() {
    let routed = Fixture::new(ROUTES);
    let plain = Fixture::new("");
    routed.ingest();
    plain.ingest();

    // acme's four faces went two by two into two collections, globex's one into its own.
    let listed: Vec<Value> = routed
        .ok(&["collections", "list", "--json"])
        .lines()
        .map(json)
        .collect();
    let counts: BTreeMap<&str, u64> = listed
        .iter()
        .map(|c| {
            (
                c["collection_id"].as_str().unwrap(),
                c["face_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("customers", 5),
            ("customers.acme.0001", 2),
            ("customers.acme.0002", 2),
            ("customers.globex.0001", 1),
        ]),
        "{listed:?}"
    );
    let anchor = listed
        .iter()
        .find(|c| c["collection_id"] == "customers")
        .unwrap();
    assert_eq!(anchor["route"]["key"], "tenant");
    assert_eq!(anchor["route"]["max_faces"], 2);
    assert_eq!(anchor["route"]["collections"].as_array().unwrap().len(), 3);
    let member = listed
        .iter()
        .find(|c| c["collection_id"] == "customers.acme.0002")
        .unwrap();
    assert_eq!(
        (member["routed_by"].as_str(), member["route_key"].as_str()),
        (Some("customers"), Some("acme"))
    );

    // The pipeline's searches found across the split what one collection finds: the same pairs
    // with the same similarities.
    let (with_routes, without) = (routed.matches(), plain.matches());
    assert!(
        without.contains_key(&("obama.jpg".to_owned(), "obama2.jpg".to_owned())),
        "{without:?}"
    );
    assert_eq!(with_routes, without);

    let table = routed.ok(&["collections", "describe", "customers"]);
    assert!(table.contains("Faces: 5"), "{table}");
    assert!(
        table.contains("routed by tenant, 3 collections of at most 2 faces"),
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("customers.acme.0002 "))
        .unwrap_or_else(|| panic!("{table}"))
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(row[..2], ["customers.acme.0002", "2"], "{table}");
}

#[test]
fn search_finds_faces_in_every_collection_of_the_route() {
    let f = Fixture::new(ROUTES);
    f.ingest();
    let faces: Vec<Value> = f.ok(&["matches", "--json"]).lines().map(json).collect();
    assert!(!faces.is_empty());
    // obama.jpg's face, searched by id, finds the other three Obama photos, in both of acme's
    // collections, and not Biden (globex).
    let found_by_id = |face: &str| -> Vec<(String, String)> {
        let out = json(&f.ok(&[
            "search",
            "--face-id",
            face,
            "--collection-id",
            "customers",
            "--threshold",
            "0",
            "--json",
        ]));
        out["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["external_image_id"].as_str().unwrap().to_owned(),
                    m["collection_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let obama_face = face_of(&f, "obama.jpg");
    let mut found = found_by_id(&obama_face);
    found.sort();
    let exts: Vec<&str> = found.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(exts, ["32bit.png", "obama2.jpg", "obama3.jpg"]);
    // Uploads run two at a time, so which photo went where varies; the hits span both of acme's
    // collections whatever the order.
    let mut homes: Vec<&str> = found.iter().map(|(_, c)| c.as_str()).collect();
    homes.sort_unstable();
    homes.dedup();
    assert_eq!(homes, ["customers.acme.0001", "customers.acme.0002"]);

    // By image: every collection of the route, globex's too; each hit with its subject.
    let probe = samples().join("obama2.jpg");
    let out = json(&f.ok(&[
        "search",
        "--image",
        probe.to_str().unwrap(),
        "--collection-id",
        "customers",
        "--threshold",
        "0",
        "--json",
    ]));
    let hits = out["matches"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "{out:#}");
    assert_eq!(
        hits[0]["external_image_id"], "obama2.jpg",
        "its own face first"
    );
    assert_eq!(hits[0]["subject_id"], "acme:c-2");
    assert!(hits.iter().all(|h| h["in_graph"] == true));
    assert!(out["searched_bounding_box"]["width"].as_f64().unwrap() > 0.0);
    let similarities: Vec<f64> = hits
        .iter()
        .map(|h| h["similarity"].as_f64().unwrap())
        .collect();
    assert!(
        similarities.windows(2).all(|w| w[0] >= w[1]),
        "most similar first"
    );

    // The table for people.
    let table = f.ok(&[
        "search",
        "--face-id",
        &obama_face,
        "--collection-id",
        "customers",
    ]);
    assert!(table.contains("obama2.jpg"), "{table}");
    assert!(table.contains("acme:c-2"), "{table}");

    // Create and delete: a plain collection, then the routed id's whole family.
    let created = json(&f.ok(&["collections", "create", "spare", "--json"]));
    assert_eq!(created["face_count"], 0);
    let refused = f.run(&["collections", "create", "spare"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already exists"));
    f.ok(&["collections", "delete", "customers"]);
    let left: Vec<String> = f
        .ok(&["collections", "list", "--json"])
        .lines()
        .map(|l| json(l)["collection_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["spare"]);
    let missing = f.run(&[
        "search",
        "--face-id",
        &obama_face,
        "--collection-id",
        "customers",
    ]);
    assert_eq!(missing.status.code(), Some(1));
}

/// The face id of a photo's face, from the graph.
fn face_of(f: &Fixture, external_image_id: &str) -> String {
    f.ok(&["matches", "--json"])
        .lines()
        .map(json)
        .find_map(|m| {
            ["a", "b"].iter().find_map(|side| {
                (m[format!("external_image_id_{side}")] == external_image_id)
                    .then(|| m[format!("face_{side}")].as_str().unwrap().to_owned())
            })
        })
        .unwrap()
}

/// The REST API as `serve` builds it over the fixture's data directory and route, with keys of
/// each role; its address.
fn serve(f: &Fixture, runtime: &tokio::runtime::Runtime) -> (App, String) {
    let overrides = Overrides {
        data_dir: Some(f.path("data")),
        config: Some(f.path("facegraph.toml")),
        ..Overrides::default()
    };
    let settings = Settings::load_with_env(&overrides, |k| match k {
        "FACEGRAPH_API_KEYS" => Some(
            "alice:analyst:alice-analyst-key-0001,loader:ingest:loader-ingest-key-0001,\
             root:admin:root-admin-key-000001"
                .to_owned(),
        ),
        "FACEGRAPH_MODELS_DIR" | "HOME" | "XDG_CACHE_HOME" => std::env::var(k).ok(),
        _ => None,
    })
    .unwrap();
    let app = App::build(
        &settings,
        Access::write(LockWait::NoWait).with_engine(),
        &|_| {},
    )
    .unwrap();
    let engine: Arc<dyn FaceEngine> = app.engine().unwrap();
    let state = app
        .api_state(Some(engine), false, facegraph::api::ApiConfig::default())
        .unwrap();
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(facegraph::api::run(listener, state, std::future::pending()));
        addr
    });
    (app, format!("http://{addr}"))
}

#[test]
fn the_rest_api_lists_describes_creates_deletes_and_searches_collections_by_role() {
    let f = Fixture::new(ROUTES);
    f.ingest();
    let obama_face = face_of(&f, "obama.jpg");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_app, api) = serve(&f, &runtime);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let call = |req: reqwest::RequestBuilder| -> (u16, Value) {
        runtime.block_on(async {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    };
    const ALICE: &str = "alice-analyst-key-0001";
    const LOADER: &str = "loader-ingest-key-0001";
    const ROOT: &str = "root-admin-key-000001";

    // Reading: analyst and ingest, not admin alone.
    let (s, list) = call(
        client
            .get(format!("{api}/v1/collections"))
            .bearer_auth(ALICE),
    );
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collection_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "customers",
            "customers.acme.0001",
            "customers.acme.0002",
            "customers.globex.0001"
        ]
    );
    let (s, one) = call(
        client
            .get(format!("{api}/v1/collections/customers"))
            .bearer_auth(LOADER),
    );
    assert_eq!((s, one["face_count"].as_u64()), (200, Some(5)), "{one}");
    let (s, body) = call(
        client
            .get(format!("{api}/v1/collections"))
            .bearer_auth(ROOT),
    );
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("analyst or ingest"));
    let (s, _) = call(client.get(format!("{api}/v1/collections")));
    assert_eq!(s, 401);
    let (s, body) = call(
        client
            .get(format!("{api}/v1/collections/nope"))
            .bearer_auth(ALICE),
    );
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (s, body) = call(
        client
            .get(format!("{api}/v1/collections/bad%20id"))
            .bearer_auth(ALICE),
    );
    assert_eq!(s, 400, "{body}");

    // Searching: by face id, by image; analyst and ingest.
    let (s, found) = call(
        client
            .post(format!(
                "{api}/v1/search?collection_id=customers&face_id={obama_face}&threshold=0"
            ))
            .bearer_auth(LOADER),
    );
    assert_eq!(s, 200, "{found}");
    let mut exts: Vec<&str> = found["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["external_image_id"].as_str().unwrap())
        .collect();
    exts.sort_unstable();
    assert_eq!(exts, ["32bit.png", "obama2.jpg", "obama3.jpg"]);
    let image = std::fs::read(samples().join("biden.jpg")).unwrap();
    let (s, found) = call(
        client
            .post(format!(
                "{api}/v1/search?collection_id=customers&max_faces=1"
            ))
            .bearer_auth(ALICE)
            .header("content-type", "image/jpeg")
            .body(image.clone()),
    );
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["matches"][0]["external_image_id"], "biden.jpg");
    assert_eq!(found["matches"][0]["subject_id"], "globex:c-5");
    assert_eq!(found["matches"].as_array().unwrap().len(), 1);
    let (s, body) = call(
        client
            .post(format!(
                "{api}/v1/search?collection_id=customers&face_id={obama_face}"
            ))
            .bearer_auth(ALICE)
            .header("content-type", "image/jpeg")
            .body(image),
    );
    assert_eq!(s, 400, "both a face id and an image: {body}");
    let (s, body) = call(
        client
            .post(format!("{api}/v1/search?collection_id=customers"))
            .bearer_auth(ALICE),
    );
    assert_eq!(s, 400, "neither: {body}");
    let (s, body) = call(
        client
            .post(format!(
                "{api}/v1/search?collection_id=customers&face_id={obama_face}&threshold=101&max_faces=0"
            ))
            .bearer_auth(ALICE),
    );
    assert_eq!(s, 400, "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["threshold", "max_faces"]);
    let (s, _) = call(
        client
            .post(format!(
                "{api}/v1/search?collection_id=customers&face_id={obama_face}"
            ))
            .bearer_auth(ROOT),
    );
    assert_eq!(s, 403);

    // Creating and deleting: admin only.
    let new = serde_json::json!({"collection_id": "spare"});
    let (s, _) = call(
        client
            .post(format!("{api}/v1/collections"))
            .bearer_auth(ALICE)
            .json(&new),
    );
    assert_eq!(s, 403);
    let (s, created) = call(
        client
            .post(format!("{api}/v1/collections"))
            .bearer_auth(ROOT)
            .json(&new),
    );
    assert_eq!((s, created["collection_id"].as_str()), (201, Some("spare")));
    let (s, body) = call(
        client
            .post(format!("{api}/v1/collections"))
            .bearer_auth(ROOT)
            .json(&new),
    );
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("conflict")));
    let (s, _) = call(
        client
            .delete(format!("{api}/v1/collections/customers"))
            .bearer_auth(LOADER),
    );
    assert_eq!(s, 403);
    let (s, _) = call(
        client
            .delete(format!("{api}/v1/collections/customers"))
            .bearer_auth(ROOT),
    );
    assert_eq!(s, 204);
    let (_, list) = call(
        client
            .get(format!("{api}/v1/collections"))
            .bearer_auth(ALICE),
    );
    let ids: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collection_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["spare"]);
}
