//! End-to-end tests of the photo commands (`match-faces`, `ingest`, `eval`) on the sample photos that
//! `facegraph models fetch` puts in the model cache (scripts/test runs it first): five photos of
//! Obama (two of them partial faces, one a 32-bit PNG), one of Biden.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use facegraph::engine::local::models::samples_dir;
use facegraph::settings::{Overrides, Settings};
use serde_json::Value;

const OBAMA: [&str; 5] = [
    "32bit.png",
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "obama_partial_face.jpg",
];

fn samples() -> PathBuf {
    let dir = samples_dir(&Settings::load(&Overrides::default()).unwrap().models_dir);
    assert!(
        dir.join("biden.jpg").is_file(),
        "{} has no sample photos: run `facegraph models fetch` (scripts/test does) before the tests",
        dir.display()
    );
    dir
}

/// A fresh data directory, a directory of photos copied from the samples, and a way to run
/// facegraph against them.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new(photos: &[&str]) -> Self {
        let app = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(app.photos()).unwrap();
        for p in photos {
            std::fs::copy(samples().join(p), app.photos().join(p)).unwrap();
        }
        app
    }

    fn photos(&self) -> PathBuf {
        self.dir.path().join("photos")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_facegraph"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env_remove("FACEGRAPH_RULES")
            .env_remove("FACEGRAPH_CONFIG")
            .env_remove("FACEGRAPH_DATA_DIR")
            .env_remove("FACEGRAPH_COLLECTION_ID")
            .output()
            .unwrap()
    }

    fn run_ok(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "facegraph {args:?}:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap()
}

#[test]
fn match_faces_cross_matches_a_directory_and_reports_bad_files_without_stopping() {
    let app = App::new(&["obama.jpg", "obama2.jpg", "biden.jpg", "32bit.png"]);
    std::fs::write(app.photos().join("notes.txt"), "not a photo").unwrap();
    std::fs::write(app.photos().join("empty.jpg"), "").unwrap();
    let photos = app.photos();
    let photos = photos.to_str().unwrap();
    let (table, stderr) = app.run_ok(&["match-faces", photos], 2);
    assert!(
        stderr.contains("notes.txt: invalid image: the image is not JPEG or PNG"),
        "{stderr}"
    );
    assert!(
        stderr.contains("empty.jpg: invalid image: the image is empty"),
        "{stderr}"
    );
    assert!(
        table.contains("Indexed 4 images (4 faces)") && table.contains("2 failed"),
        "{table}"
    );
    assert!(
        table.contains(
            "Source Face ID                       | Source File | Target Face ID                       | Target File | Similarity"
        ),
        "{table}"
    );

    // The JSON rows: every Obama photo matches the other two, Biden matches nobody.
    let (rows, _) = app.run_ok(&["match-faces", "--json", "-v", photos], 2);
    let rows = json_lines(&rows);
    assert_eq!(rows.len(), 6, "{rows:#?}");
    for r in &rows {
        assert!(OBAMA.contains(&s(r, "source_file")), "{r}");
        assert!(OBAMA.contains(&s(r, "target_file")), "{r}");
        assert_ne!(s(r, "source_file"), s(r, "target_file"));
        assert_ne!(s(r, "source_face_id"), s(r, "target_face_id"));
        let sim = r["similarity"].as_f64().unwrap();
        assert!((80.0..=100.0).contains(&sim), "{r}");
    }

    // A re-run skips what is indexed; out-of-range thresholds are refused by value.
    let (stdout, stderr) = app.run_ok(&["match-faces", "-v", photos], 2);
    assert_eq!(
        stderr.lines().count(),
        2,
        "only the two bad files: {stderr}"
    );
    assert!(
        stdout.contains("Skipping image obama.jpg: already indexed")
            && stdout.contains("Indexed 0 images"),
        "a re-run indexes nothing again: {stdout}"
    );
    for bad in ["120", "-5", "high"] {
        let out = app.run(&["match-faces", "--match-confidence-threshold", bad, photos]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(bad) && err.contains("0 to 100"), "{err}");
    }
}

#[test]
fn match_faces_saves_responses_that_ingest_rekognition_turns_into_the_same_graph() {
    let app = App::new(&["obama.jpg", "obama2.jpg", "biden.jpg"]);
    std::fs::create_dir(app.photos().join("more")).unwrap();
    std::fs::copy(
        samples().join("obama3.jpg"),
        app.photos().join("more/obama3.jpg"),
    )
    .unwrap();
    let out_dir = app.path("image-data");
    let (stdout, stderr) = app.run_ok(
        &[
            "match-faces",
            "--collection-id",
            "poc",
            "--force-recreate",
            "--delete",
            "--save-image-data",
            "--output-dir",
            out_dir.to_str().unwrap(),
            "--verbose",
            "--json",
            "--match-confidence-threshold",
            "0",
            app.photos().to_str().unwrap(),
        ],
        0,
    );
    assert!(
        stderr.contains("Found 1 faces in image more/obama3.jpg in "),
        "{stderr}"
    );
    assert!(stderr.contains("Deleted collection poc"), "{stderr}");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("more:obama3.jpg.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved["FaceRecords"][0]["Face"]["ExternalImageId"], "more:obama3.jpg",
        "{saved:#}"
    );
    assert!(saved["FaceRecords"][0]["FaceDetail"]["Gender"]["Value"].is_string());
    // The cross-match as printed: one row per search direction.
    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows.len(),
        4 * 3,
        "every face finds the other three at 0: {stdout}"
    );

    // The collection was deleted: a second run indexes everything again.
    let (stdout, _) = app.run_ok(
        &[
            "match-faces",
            "--collection-id",
            "poc",
            app.photos().to_str().unwrap(),
        ],
        0,
    );
    assert!(stdout.contains("Indexed 4 images (4 faces)"), "{stdout}");

    let other = App::new(&[]);
    let (stdout, _) = other.run_ok(
        &[
            "ingest-rekognition",
            "--collection-id",
            "poc",
            out_dir.to_str().unwrap(),
        ],
        0,
    );
    assert!(
        stdout.contains(
            "Files read: 8 (8 ingested: 4 IndexFaces, 4 SearchFaces; 0 rejected; 0 in conflict)"
        ) && stdout.contains("Faces: 4 in the files, 4 new")
            && stdout.contains("Edges: 6 new"),
        "{stdout}"
    );
    // The graph holds every printed row: each pair once, with both directions' similarities.
    let (matches, _) = other.run_ok(&["matches", "--json"], 0);
    let mut edges = std::collections::HashMap::new();
    for line in matches.lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        let (a, b) = (m["face_a"].as_str().unwrap(), m["face_b"].as_str().unwrap());
        edges.insert(
            (a.to_owned(), b.to_owned()),
            m["similarity_ab"].as_f64().unwrap(),
        );
        edges.insert(
            (b.to_owned(), a.to_owned()),
            m["similarity_ba"].as_f64().unwrap(),
        );
    }
    assert_eq!(edges.len(), rows.len());
    for row in &rows {
        let key = (
            row["source_face_id"].as_str().unwrap().to_owned(),
            row["target_face_id"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            edges.get(&key),
            row["similarity"].as_f64().as_ref(),
            "{row}"
        );
    }
}

#[test]
fn ingest_runs_the_pipeline_and_finds_one_person_behind_several_customers() {
    let app = App::new(&["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]);
    std::fs::write(
        app.path("subjects.csv"),
        "external_image_id,subject_id\nobama.jpg,cust-1\nobama2.jpg,cust-2\nbiden.jpg,cust-3\n",
    )
    .unwrap();
    std::fs::write(
        app.photos().join("broken.jpg"),
        b"\xff\xd8\xff\xe0 truncated",
    )
    .unwrap();
    let (stdout, _) = app.run_ok(
        &[
            "ingest",
            "--subjects",
            app.path("subjects.csv").to_str().unwrap(),
            app.photos().to_str().unwrap(),
        ],
        2,
    );
    assert!(
        stdout.contains(
            "(4 ingested, 0 already ingested into collection ephemeral-faces-collection, 1 rejected)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("subject links: 3"), "{stdout}");
    assert!(
        stdout.contains("Rejected ") && stdout.contains("broken.jpg: invalid image"),
        "{stdout}"
    );
    assert!(stdout.contains("Clusters: 1, fraud leads: 1"), "{stdout}");

    let (clusters, _) = app.run_ok(&["clusters", "--json"], 0);
    let clusters = json_lines(&clusters);
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    let subjects: Vec<&str> = clusters[0]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["cust-1", "cust-2"],
        "Biden's customer is not in the Obama cluster"
    );

    let (matches, _) = app.run_ok(&["matches", "--json"], 0);
    let matches = json_lines(&matches);
    assert_eq!(
        matches.len(),
        3,
        "the three Obama photos pair up: {matches:#?}"
    );
    let text = serde_json::to_string(&matches).unwrap();
    assert!(!text.contains("biden"), "{text}");

    // A re-run finds everything in place and changes nothing.
    let (stdout, _) = app.run_ok(&["ingest", app.photos().to_str().unwrap()], 2);
    assert!(
        stdout.contains(
            "(0 ingested, 4 already ingested into collection ephemeral-faces-collection, 1 rejected)"
        ) && stdout.contains("0 changed"),
        "{stdout}"
    );
}

#[test]
fn ingest_refuses_a_missing_directory_and_a_bad_subjects_file() {
    let app = App::new(&["obama.jpg"]);
    let out = app.run(&["ingest", app.path("nowhere").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nowhere is not a directory"), "{err}");
    std::fs::write(
        app.path("subjects.csv"),
        "external_image_id,subject_id\nobama.jpg\n",
    )
    .unwrap();
    let out = app.run(&[
        "ingest",
        "--subjects",
        app.path("subjects.csv").to_str().unwrap(),
        app.photos().to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("subjects file"), "{err}");
    assert!(
        !app.path("data/collections/ephemeral-faces-collection")
            .exists(),
        "nothing is indexed from a half-read subjects file"
    );
}

#[test]
fn eval_reports_recall_pair_accuracy_and_gender_on_labelled_photos() {
    let app = App::new(&["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]);
    let labels = app.photos().join("labels.csv");
    std::fs::write(
        &labels,
        "file,identity,gender\nobama.jpg,obama,male\nobama2.jpg,obama,male\nobama3.jpg,obama,male\nbiden.jpg,biden,male\n",
    )
    .unwrap();
    let (stdout, _) = app.run_ok(&["eval", "--labels", labels.to_str().unwrap(), "--json"], 0);
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["labelled_faces"], 4);
    assert_eq!(r["detected"], 4);
    assert_eq!(r["genuine_pairs"], 3);
    assert_eq!(r["impostor_pairs"], 3);
    assert_eq!(r["pair_accuracy"], 1.0, "{r:#}");
    assert_eq!(r["roc_auc"], 1.0, "{r:#}");
    assert_eq!(r["gender_accuracy"], 1.0, "{r:#}");

    // A label that names a file the engine cannot read is reported, and costs recall.
    std::fs::write(
        &labels,
        "file,identity,gender\nobama.jpg,obama,male\nmissing.jpg,obama,male\n",
    )
    .unwrap();
    let (stdout, _) = app.run_ok(&["eval", "--labels", labels.to_str().unwrap()], 0);
    assert!(
        stdout.contains("Detection recall: 1/2 labelled faces = 50.00%"),
        "{stdout}"
    );
    assert!(stdout.contains("missing.jpg"), "{stdout}");
}

#[test]
fn commands_that_need_models_say_how_to_get_them() {
    let app = App::new(&["obama.jpg"]);
    let empty = app.path("no-models");
    std::fs::create_dir(&empty).unwrap();
    let out = app.run(&[
        "--models-dir",
        empty.to_str().unwrap(),
        "match-faces",
        app.photos().to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("run `facegraph models fetch` first"), "{err}");
}

/// The graph a run left, as a user sees it, with the random face ids replaced by the external image
/// ids of their photos: the counts, every match with its similarity (to 4 decimals) and verdict,
/// and the clusters.
fn graph_summary(app: &App) -> String {
    let (stats, _) = app.run_ok(&["stats"], 0);
    let (matches, _) = app.run_ok(&["matches", "--json"], 0);
    let mut ext_of = std::collections::HashMap::new();
    let mut edges: Vec<String> = json_lines(&matches)
        .iter()
        .map(|m| {
            ext_of.insert(
                s(m, "face_a").to_owned(),
                s(m, "external_image_id_a").to_owned(),
            );
            ext_of.insert(
                s(m, "face_b").to_owned(),
                s(m, "external_image_id_b").to_owned(),
            );
            let mut pair = [s(m, "external_image_id_a"), s(m, "external_image_id_b")];
            pair.sort();
            format!(
                "{} ~ {} {:.4} {} {}",
                pair[0],
                pair[1],
                m["similarity"].as_f64().unwrap(),
                s(m, "verdict"),
                s(m, "subject_a") != s(m, "subject_b")
            )
        })
        .collect();
    edges.sort();
    let (clusters, _) = app.run_ok(&["clusters", "--json"], 0);
    let mut clusters: Vec<String> = json_lines(&clusters)
        .iter()
        .map(|c| {
            let mut members: Vec<&str> = c["faces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| ext_of[f.as_str().unwrap()].as_str())
                .collect();
            members.sort();
            members.join(",")
        })
        .collect();
    clusters.sort();
    format!("{stats}\n{}\n\n{}", edges.join("\n"), clusters.join("\n"))
}

const CRASH_PHOTOS: [&str; 4] = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"];

fn crash_app() -> App {
    let app = App::new(&CRASH_PHOTOS);
    let subjects: String = CRASH_PHOTOS
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{p},customer-{i}\n"))
        .collect();
    std::fs::write(
        app.path("subjects.csv"),
        format!("external_image_id,subject_id\n{subjects}"),
    )
    .unwrap();
    app
}

fn ingest_args(app: &App) -> [String; 4] {
    [
        "ingest".to_owned(),
        app.photos().display().to_string(),
        "--subjects".to_owned(),
        app.path("subjects.csv").display().to_string(),
    ]
}

#[test]
fn a_crash_at_any_write_boundary_is_finished_by_the_next_run_with_the_same_graph() {
    let clean = crash_app();
    let args = ingest_args(&clean);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    clean.run_ok(&args, 0);
    let expected = graph_summary(&clean);
    assert!(expected.contains("faces 4"), "{expected}");

    let mut rounds = 0;
    for point in facegraph::faults::CRASH_POINTS {
        // Each image passes an upload point once; the adjudication's points are passed once a run.
        let hits: &[u32] = if point.starts_with("upload.") {
            &[1, 3]
        } else {
            &[1]
        };
        for &n in hits {
            let app = crash_app();
            let args = ingest_args(&app);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = Command::new(env!("CARGO_BIN_EXE_facegraph"))
                .arg("--data-dir")
                .arg(app.path("data"))
                .args(&args)
                .env("FACEGRAPH_CRASH_AT", format!("{point}:{n}"))
                .env_remove("FACEGRAPH_DATA_DIR")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code().is_none() && stderr.contains("stopping at"),
                "{point}:{n} did not crash the run ({:?}): {stderr}",
                out.status
            );
            let (stdout, _) = app.run_ok(&args, 0);
            assert_eq!(
                graph_summary(&app),
                expected,
                "after a crash at {point} ({n}), the re-run left another graph:\n{stdout}"
            );
            rounds += 1;
        }
    }
    assert_eq!(rounds, 12);
}

#[test]
fn two_ingests_of_one_folder_at_once_store_every_photo_once() {
    let app = crash_app();
    let args = ingest_args(&app);
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_facegraph"))
            .arg("--data-dir")
            .arg(app.path("data"))
            .args(&args)
            .env_remove("FACEGRAPH_DATA_DIR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let outs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    for out in &outs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (stats, _) = app.run_ok(&["stats"], 0);
    assert!(stats.contains("images 4\nfaces 4"), "{stats}");
    // One of them waited for the other and found every photo ingested.
    let said: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .collect();
    assert!(
        said.iter()
            .any(|s| s.contains("(0 ingested, 4 already ingested")),
        "{said:#?}"
    );
}

#[test]
fn an_upload_a_crash_interrupted_is_completed_from_the_engine_without_its_file() {
    let app = App::new(&["obama.jpg"]);
    let photos = app.photos();
    let out = Command::new(env!("CARGO_BIN_EXE_facegraph"))
        .arg("--data-dir")
        .arg(app.path("data"))
        .args(["ingest", photos.to_str().unwrap()])
        .env("FACEGRAPH_CRASH_AT", "upload.after_log_append:1")
        .env_remove("FACEGRAPH_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.code().is_none(), "the run crashed");
    // The photo is gone from the folder; the engine's log still holds what it indexed.
    std::fs::remove_file(photos.join("obama.jpg")).unwrap();
    std::fs::copy(samples().join("obama2.jpg"), photos.join("obama2.jpg")).unwrap();
    let (stdout, _) = app.run_ok(&["ingest", photos.to_str().unwrap()], 0);
    assert!(
        stdout.contains("Resumed 1 uploads that an earlier run left unfinished"),
        "{stdout}"
    );
    let (matches, _) = app.run_ok(&["matches", "--json"], 0);
    let m = json_lines(&matches);
    assert_eq!(m.len(), 1, "obama and obama2 match: {matches}");
    let mut exts = [
        s(&m[0], "external_image_id_a"),
        s(&m[0], "external_image_id_b"),
    ];
    exts.sort();
    assert_eq!(exts, ["obama.jpg", "obama2.jpg"]);
}

#[test]
fn the_same_photo_uploaded_by_two_customers_is_a_confirmed_match_and_a_fraud_lead() {
    let app = App::new(&["obama.jpg", "biden.jpg"]);
    // The same bytes under a second name, from a second customer, and again from the first.
    std::fs::copy(
        samples().join("obama.jpg"),
        app.photos().join("obama_copy.jpg"),
    )
    .unwrap();
    std::fs::copy(
        samples().join("obama.jpg"),
        app.photos().join("obama_again.jpg"),
    )
    .unwrap();
    std::fs::write(
        app.path("subjects.csv"),
        "external_image_id,subject_id\nobama.jpg,S1\nobama_copy.jpg,S2\nobama_again.jpg,S1\nbiden.jpg,S3\n",
    )
    .unwrap();
    let photos = app.photos();
    let subjects = app.path("subjects.csv");
    let (stdout, _) = app.run_ok(
        &[
            "ingest",
            photos.to_str().unwrap(),
            "--subjects",
            subjects.to_str().unwrap(),
        ],
        0,
    );
    assert!(stdout.contains("(4 ingested"), "{stdout}");
    let (stats, _) = app.run_ok(&["stats"], 0);
    assert!(
        stats.contains("images 4\nfaces 4"),
        "nothing merged: {stats}"
    );
    let (matches, _) = app.run_ok(&["matches", "--json"], 0);
    let reused: Vec<Value> = json_lines(&matches)
        .into_iter()
        .filter(|m| {
            m["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["code"] == "reused_photo")
        })
        .collect();
    assert_eq!(
        reused.len(),
        3,
        "three pairs among the three uploads: {matches}"
    );
    assert!(
        reused.iter().all(|m| m["verdict"] == "confirmed"),
        "{matches}"
    );
    let across = reused
        .iter()
        .find(|m| m["subject_a"] != m["subject_b"])
        .expect("a pair across customers");
    let reason = across["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "reused_photo")
        .unwrap();
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .contains("one person behind two accounts"),
        "{reason}"
    );
    // The three uploads are one cluster: a fraud lead of S1 and S2; biden is not in it.
    let (clusters, _) = app.run_ok(&["clusters", "--min-subjects", "2", "--json"], 0);
    let leads = json_lines(&clusters);
    assert_eq!(leads.len(), 1, "{clusters}");
    assert_eq!(leads[0]["subjects"], serde_json::json!(["S1", "S2"]));
    assert_eq!(leads[0]["faces"].as_array().unwrap().len(), 3);
}

#[test]
fn eval_adjudication_measures_the_rules_against_labelled_photos() {
    let app = App::new(&["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]);
    std::fs::write(
        app.photos().join("labels.csv"),
        "file,identity,gender\nobama.jpg,obama,male\nobama2.jpg,obama,male\nobama3.jpg,obama,male\n\
         biden.jpg,biden,male\n",
    )
    .unwrap();
    let labels = app.photos().join("labels.csv");
    let (stdout, _) = app.run_ok(
        &[
            "eval-adjudication",
            "--labels",
            labels.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    let runs = json_lines(&stdout);
    assert_eq!(
        runs.iter().map(|r| s(r, "name")).collect::<Vec<_>>(),
        ["band alone", "default"]
    );
    for r in &runs {
        // Three photos of one person under three customers, and three pairs of different people.
        assert_eq!(r["genuine_pairs"]["total"], 3, "{r:#}");
        assert_eq!(r["impostor_pairs"]["total"], 3, "{r:#}");
        assert_eq!(r["impostor_pairs"]["confirmed"], 0, "{r:#}");
        assert_eq!(r["genuine_pairs"]["confirmed"], 3, "{r:#}");
        assert_eq!(r["clusters"]["fraud_leads"], 1, "{r:#}");
        assert_eq!(r["clusters"]["identities_as_one_lead"], 1, "{r:#}");
    }
    let targets = runs[1]["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 6);
    assert!(targets.iter().all(|t| t["met"] == true), "{targets:#?}");
    // The user's data directory is untouched: the scratch one is gone.
    assert!(!app.path("data").join("facegraph.sqlite3").exists());
    let (report, _) = app.run_ok(
        &["eval-adjudication", "--labels", labels.to_str().unwrap()],
        0,
    );
    assert!(
        report.contains("== default (rs-") && report.contains("[met] no cluster mixes identities"),
        "{report}"
    );
}
