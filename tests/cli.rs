//! End-to-end tests of the `facegraph` command over the project's own saved Rekognition responses
//! (PascalCase and the Java SDK's camelCase): verdicts, reasons, clusters, decisions, what-if, the
//! review queue, bad input and idempotent re-ingest, each in a fresh data directory.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rekognition");

fn face(n: u32) -> String {
    format!("aaaaaaaa-0000-4000-8000-{n:012}")
}

/// A fresh data directory and a way to run facegraph against it.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_facegraph"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env_remove("FACEGRAPH_RULES")
            .env_remove("FACEGRAPH_CONFIG")
            .env_remove("FACEGRAPH_DATA_DIR")
            .output()
            .expect("run facegraph")
    }

    /// Runs a command that must succeed and returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "facegraph {args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    fn ingest_fixtures(&self) -> String {
        self.ok(&[
            "ingest-rekognition",
            "--subjects",
            &format!("{FIXTURES}/subjects.csv"),
            &format!("{FIXTURES}/pascal"),
            &format!("{FIXTURES}/camel"),
        ])
    }

    fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        self.ok(args)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Matches keyed by their pair of face numbers, smaller first.
    fn matches(&self) -> HashMap<(u32, u32), Value> {
        self.json_lines(&["matches", "--json"])
            .into_iter()
            .map(|m| {
                let n = |k: &str| m[k].as_str().unwrap()[24..].parse::<u32>().unwrap();
                ((n("face_a"), n("face_b")), m)
            })
            .collect()
    }
}

fn codes(m: &Value) -> Vec<String> {
    let mut c: Vec<String> = m["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .filter(|c| c != "similarity_band")
        .collect();
    c.sort();
    c
}

#[test]
fn ingest_adjudicates_the_fixture_scenario() {
    let app = App::new();
    let summary = app.ingest_fixtures();
    assert!(summary.contains("Files read: 29 (29 ingested"), "{summary}");
    assert!(summary.contains("0 rejected"), "{summary}");
    assert!(
        summary.contains("Faces: 21 in the files, 16 new"),
        "{summary}"
    );
    assert!(summary.contains("Edges: 12 new"), "{summary}");

    let m = app.matches();
    assert_eq!(m.len(), 12, "{m:#?}");
    let expect: &[((u32, u32), &str, &[&str])] = &[
        ((1, 2), "confirmed", &[]),
        ((2, 3), "confirmed", &[]),
        ((1, 3), "confirmed", &[]),
        ((4, 5), "review", &["gender_contradiction"]),
        ((4, 8), "rejected", &[]),
        ((6, 7), "rejected", &["same_image", "same_subject"]),
        ((8, 9), "confirmed", &["same_subject"]),
        ((10, 11), "confirmed", &[]),
        ((11, 12), "review", &["transitivity"]),
        ((10, 12), "rejected", &[]),
        ((13, 14), "review", &["age_contradiction"]),
        ((15, 16), "review", &["low_quality"]),
    ];
    for (pair, verdict, want) in expect {
        let got = &m[pair];
        assert_eq!(got["verdict"], *verdict, "{pair:?}: {got:#}");
        assert_eq!(codes(got), want.to_vec(), "{pair:?}: {got:#}");
        assert!(got["rule_set"].as_str().unwrap().starts_with("rs-"));
    }

    // The canonical case: 97.99% similar, 96% male against 100% female.
    let canonical = &m[&(4, 5)];
    assert_eq!(canonical["similarity"], 97.99);
    assert_eq!(
        (
            canonical["subject_a"].as_str(),
            canonical["subject_b"].as_str()
        ),
        (Some("C004"), Some("C005"))
    );
    assert_eq!(canonical["external_image_id_a"], "bob_1.jpg");
    let gender = canonical["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "gender_contradiction")
        .unwrap();
    assert_eq!(gender["evidence"]["confidence_a"], 96.0);
    assert_eq!(gender["evidence"]["confidence_b"], 100.0);
    assert!(gender["message"]
        .as_str()
        .unwrap()
        .contains("at most review"));

    // Both search directions fold into one edge and keep both values.
    assert_eq!(m[&(1, 2)]["similarity_ab"], 99.312345);
    assert_eq!(m[&(1, 2)]["similarity_ba"], 99.312338);

    let only_review = app.json_lines(&["matches", "--verdict", "review", "--json"]);
    assert_eq!(only_review.len(), 4);
    assert!(only_review.iter().all(|m| m["verdict"] == "review"));

    let clusters = app.json_lines(&["clusters", "--json"]);
    let members = |c: &Value| -> Vec<u32> {
        c["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap()[24..].parse().unwrap())
            .collect()
    };
    let mut all: Vec<Vec<u32>> = clusters.iter().map(members).collect();
    all.sort();
    assert_eq!(all, vec![vec![1, 2, 3], vec![8, 9], vec![10, 11]]);
    let anna = clusters.iter().find(|c| members(c) == [1, 2, 3]).unwrap();
    assert_eq!(
        anna["subjects"],
        serde_json::json!(["C001", "C002", "C003"])
    );
    assert_eq!(anna["fraud_lead"], true);
    assert_eq!(anna["edges"].as_array().unwrap().len(), 3);
    let leads = app.json_lines(&["clusters", "--min-subjects", "2", "--json"]);
    assert_eq!(
        leads.len(),
        2,
        "dave's two selfies are one customer, not a fraud lead"
    );
}

#[test]
fn re_ingest_changes_nothing() {
    let app = App::new();
    app.ingest_fixtures();
    let before = app.ok(&["matches", "--json"]);
    let clusters_before = app.ok(&["clusters", "--json"]);
    let again = app.ingest_fixtures();
    assert!(again.contains("Faces: 21 in the files, 0 new"), "{again}");
    assert!(again.contains("Edges: 0 new, 0 changed"), "{again}");
    assert!(again.contains("0 changed\n"), "{again}");
    assert_eq!(app.ok(&["matches", "--json"]), before);
    assert_eq!(app.ok(&["clusters", "--json"]), clusters_before);
    assert_eq!(app.ok(&["stats"]), {
        let other = App::new();
        other.ingest_fixtures();
        other.ok(&["stats"])
    });
}

#[test]
fn bad_files_are_reported_and_the_rest_is_ingested() {
    let app = App::new();
    let out = app.run(&[
        "ingest-rekognition",
        "--subjects",
        &format!("{FIXTURES}/subjects.csv"),
        &format!("{FIXTURES}/pascal"),
        &format!("{FIXTURES}/camel"),
        &format!("{FIXTURES}/bad"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "some files rejected: exit 2\n{stdout}"
    );
    assert!(stdout.contains("Files read: 34 (29 ingested"), "{stdout}");
    assert!(stdout.contains("5 rejected"), "{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("Rejected") && l.contains(name))
            .unwrap_or_else(|| panic!("no rejection of {name}:\n{stdout}"))
            .to_owned()
    };
    assert!(line("empty.json").contains("empty"));
    assert!(line("truncated.json").contains("malformed JSON"));
    assert!(line("unknown-shape.json").contains("not a saved IndexFaces"));
    let oor = line("out-of-range.json");
    assert!(
        oor.contains("FaceMatches[") && oor.contains("Similarity") && oor.contains("101.5"),
        "{oor}"
    );
    let unknown = line("unknown-face.json");
    assert!(
        unknown.contains("aaaaaaaa-0000-4000-8000-000000000099")
            && unknown.contains("FaceMatches["),
        "{unknown}"
    );
    assert_eq!(app.matches().len(), 12, "the good files are all in");
}

#[test]
fn a_face_that_contradicts_the_stored_one_is_a_conflict_and_writes_nothing() {
    let app = App::new();
    let dir = app.dir.path().join("responses");
    std::fs::create_dir(&dir).unwrap();
    // Face 01's IndexFaces response, then two copies of it that disagree with it: one says the
    // face is male, the other puts it in another image.
    let original: Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/pascal/resp-020.json")).unwrap())
            .unwrap();
    let variant = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut v = original.clone();
        change(&mut v["FaceRecords"][0]);
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        dir.join(name).display().to_string()
    };
    variant("a-anna.json", &|_| {});
    let male = variant("b-anna-male.json", &|r| {
        r["FaceDetail"]["Gender"]["Value"] = "Male".into();
    });
    let moved = variant("c-anna-moved.json", &|r| {
        r["Face"]["ImageId"] = "bbbbbbbb-0000-4000-8000-000000000077".into();
    });

    let out = app.run(&["ingest-rekognition", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "conflicts: exit 2\n{stdout}");
    assert!(
        stdout.contains("Files read: 3 (1 ingested: 1 IndexFaces; 0 rejected; 2 in conflict)"),
        "{stdout}"
    );
    let face_1 = face(1);
    let expected = [
        format!(
            "Conflict {male}: face {face_1}: gender differs \
             (stored Female (99.5), this file Male (99.5))"
        ),
        format!(
            "Conflict {moved}: face {face_1}: image id differs (stored \
             bbbbbbbb-0000-4000-8000-000000000001, this file bbbbbbbb-0000-4000-8000-000000000077)"
        ),
    ];
    for line in &expected {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?}:\n{stdout}"
        );
    }
    let stats = app.ok(&["stats"]);
    assert!(
        stats.contains("images 1\n") && stats.contains("faces 1\n"),
        "no image or face of a file in conflict is stored:\n{stats}"
    );

    // The store remembers: the male file alone, in a later run, is still a conflict.
    let again = app.run(&["ingest-rekognition", &male]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains(&expected[0]), "{stdout}");
}

#[test]
fn a_decision_overrides_the_rules_and_changes_clusters() {
    let app = App::new();
    app.ingest_fixtures();
    let (f4, f5) = (face(4), face(5));
    let out = app.ok(&[
        "decide",
        &f4,
        &f5,
        "same",
        "--analyst",
        "ann",
        "--note",
        "same mole on the left cheek",
    ]);
    assert!(out.contains("1 verdicts changed"), "{out}");
    let m = app.matches();
    assert_eq!(m[&(4, 5)]["verdict"], "confirmed");
    assert!(codes(&m[&(4, 5)]).contains(&"analyst_same".to_owned()));
    let clusters = app.json_lines(&["clusters", "--min-subjects", "2", "--json"]);
    assert!(
        clusters
            .iter()
            .any(|c| c["faces"] == serde_json::json!([f4, f5])),
        "{clusters:#?}"
    );

    app.ok(&["decide", &f5, &f4, "different", "--analyst", "bob"]);
    assert_eq!(app.matches()[&(4, 5)]["verdict"], "rejected");
    let explain = app.ok(&["explain", &f4, &f5, "--json"]);
    let ex: Value = serde_json::from_str(&explain).unwrap();
    let history = ex["decisions"].as_array().unwrap();
    assert_eq!(history.len(), 2, "decisions are an append-only history");
    assert_eq!(
        (
            history[0]["analyst"].as_str(),
            history[0]["decision"].as_str()
        ),
        (Some("ann"), Some("same"))
    );
    assert_eq!(history[0]["note"], "same mole on the left cheek");
    assert_eq!(
        (
            history[1]["analyst"].as_str(),
            history[1]["decision"].as_str()
        ),
        (Some("bob"), Some("different"))
    );
    assert_eq!(ex["match"]["verdict"], "rejected");

    let text = app.ok(&["explain", &f4, &f5]);
    assert!(
        text.contains("analyst_different") && text.contains("gender_contradiction"),
        "{text}"
    );
}

#[test]
fn what_if_previews_without_changing() {
    let app = App::new();
    app.ingest_fixtures();
    let before = app.ok(&["matches", "--json"]);
    let rules = app.dir.path().join("strict.toml");
    std::fs::write(&rules, "[bands]\nconfirm_at = 99.5\n").unwrap();
    let changes = app.json_lines(&["what-if", rules.to_str().unwrap(), "--json"]);
    let mut pairs: Vec<(String, String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["face_a"].as_str().unwrap()[24..].to_owned(),
                c["before"].as_str().unwrap().to_owned(),
                c["after"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    // Every confirmed hit below 99.5 falls to review; dave's 99.6 self-match stays.
    assert_eq!(pairs.len(), 4, "{changes:#?}");
    assert!(pairs
        .iter()
        .all(|(_, b, a)| b == "confirmed" && a == "review"));
    assert_eq!(
        app.ok(&["matches", "--json"]),
        before,
        "what-if changes nothing"
    );

    let bad = app.dir.path().join("bad.toml");
    std::fs::write(&bad, "[bands]\nconfirm_at = 120\n").unwrap();
    let out = app.run(&["what-if", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bands.confirm_at"));
}

#[test]
fn review_queue_opens_as_csv() {
    let app = App::new();
    app.ingest_fixtures();
    let csv_text = app.ok(&["review", "--csv"]);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert!(headers.iter().any(|h| h == "reason_codes"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "{csv_text}");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert!(rows
        .iter()
        .any(|r| r[col("reason_codes")].contains("gender_contradiction")
            && &r[col("similarity")] == "97.99"));
    assert!(rows.iter().all(|r| &r[col("verdict")] == "review"));
    let table = app.ok(&["review"]);
    assert!(table.contains("4 matches to review"), "{table}");
}

#[test]
fn rules_prints_the_effective_rule_set_and_its_version() {
    let app = App::new();
    let out = app.ok(&["rules"]);
    let version = out
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    assert!(version.starts_with("rs-"), "{out}");
    let body: String = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let parsed: toml::Value = toml::from_str(&body).unwrap();
    assert_eq!(parsed["bands"]["confirm_at"].as_float(), Some(98.5));
    assert_eq!(parsed["bands"]["review_from"].as_float(), Some(90.0));

    let custom = app.dir.path().join("r.toml");
    std::fs::write(&custom, "[bands]\nconfirm_at = 99\n").unwrap();
    let other = app.ok(&["--rules", custom.to_str().unwrap(), "rules"]);
    assert!(
        !other.contains(&version),
        "another rule set has another version"
    );
}

#[test]
fn clear_errors_for_bad_input() {
    let app = App::new();
    let out = app.run(&["matches"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no graph"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    app.ingest_fixtures();
    let out = app.run(&["explain", "not-a-face", &face(1)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("face id") && err.contains("not-a-face"),
        "{err}"
    );

    let out = app.run(&["decide", &face(1), &face(98), "same", "--analyst", "ann"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&face(98)) && err.contains("not in the graph"),
        "{err}"
    );

    let subjects = app.dir.path().join("subjects.csv");
    std::fs::write(
        &subjects,
        "external_image_id,subject_id\nok.jpg,C1\nbad id.jpg,C2\n",
    )
    .unwrap();
    let out = app.run(&[
        "ingest-rekognition",
        "--subjects",
        subjects.to_str().unwrap(),
        &format!("{FIXTURES}/pascal"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 3") && err.contains("bad id.jpg"),
        "{err}"
    );
}

#[test]
fn camel_and_pascal_files_ingest_the_same_graph() {
    let (a, b) = (App::new(), App::new());
    let eq = Path::new(FIXTURES).join("equivalent");
    let files = |suffix: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&eq)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        v.sort();
        v
    };
    let run = |app: &App, suffix: &str| {
        let mut args = vec!["ingest-rekognition".to_owned()];
        args.extend(files(suffix).iter().map(|p| p.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        app.run(&args)
    };
    let (ra, rb) = (run(&a, ".pascal.json"), run(&b, ".camel.json"));
    assert_eq!(ra.status.code(), rb.status.code());
    assert_eq!(a.ok(&["stats"]), b.ok(&["stats"]));
    let strip = |app: &App| {
        app.json_lines(&["matches", "--json"])
            .into_iter()
            .map(|mut m| {
                m.as_object_mut().unwrap().remove("rule_set");
                m
            })
            .collect::<Vec<_>>()
    };
    let matches = strip(&a);
    assert!(!matches.is_empty());
    assert_eq!(matches, strip(&b));
}

#[test]
fn bad_folder_entries_are_skipped_by_path_and_the_run_goes_on() {
    let app = App::new();
    let dir = app.dir.path().join("responses");
    std::fs::create_dir(&dir).unwrap();
    let mut good = 0;
    for spelling in ["pascal", "camel"] {
        for f in std::fs::read_dir(format!("{FIXTURES}/{spelling}")).unwrap() {
            let f = f.unwrap().path();
            let name = format!("{spelling}-{}", f.file_name().unwrap().to_str().unwrap());
            std::fs::copy(&f, dir.join(name)).unwrap();
            good += 1;
        }
    }
    // A FIFO would block a reader forever; a link to /dev/zero never ends; a link back to the
    // folder loops; a sparse file is too large to read.
    assert!(Command::new("mkfifo")
        .arg(dir.join("pipe.json"))
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.json")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("again")).unwrap();
    std::fs::File::create(dir.join("sparse.json"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let out = app.run(&["ingest-rekognition", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let said = |needle: &str, what: &str| {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(needle) && l.contains(what)),
            "no line with {needle} and {what}:\n{stdout}"
        );
    };
    said("pipe.json", "FIFO");
    said("zero.json", "character device");
    said("again", "link back");
    said("sparse.json", "more than the limit");
    assert!(
        stdout.contains(&format!("Files read: {} ({good} ingested", good + 1)),
        "every good file is in: {stdout}"
    );
}

#[test]
fn a_second_writer_waits_or_fails_naming_the_holder_and_readers_go_on() {
    let app = App::new();
    app.ingest_fixtures();
    let data = app.dir.path().join("data");
    let held = facegraph::startup::DataDirLock::acquire(
        &data,
        facegraph::startup::LockWait::NoWait,
        &|_| {},
    )
    .unwrap();
    // A reader works alongside the writer.
    assert_eq!(app.matches().len(), 12);
    // A writer with --no-wait fails at once and names the holder.
    let decide = [
        "decide",
        &face(4),
        &face(5),
        "different",
        "--analyst",
        "ana",
    ];
    let out = app.run(&[&["--no-wait"][..], &decide[..]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("process {}", std::process::id()))
            && stderr.contains("another facegraph process writes to"),
        "{stderr}"
    );
    // Without it, the writer says whom it waits for and goes on once the lock is released.
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegraph"))
        .arg("--data-dir")
        .arg(&data)
        .args(decide)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("waiting for another facegraph"), "{line}");
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Recorded: analyst ana"));
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let app = App::new();
    app.ingest_fixtures();
    for args in [
        &["matches", "--json"][..],
        &["matches"],
        &["review", "--csv"],
        &["clusters", "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_facegraph"))
            .arg("--data-dir")
            .arg(app.dir.path().join("data"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first line is written, as `| head -0` would be.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_filled_review_sheet_is_imported_once_with_bad_rows_reported_by_line() {
    let app = App::new();
    app.ingest_fixtures();
    let sheet = app.ok(&["review", "--csv"]);
    let mut reader = csv::Reader::from_reader(sheet.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().rev().take(2).collect::<Vec<_>>(),
        ["note", "decision"]
    );
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    // The analyst decides the first two rows, leaves the third, and garbles the fourth.
    let fill = |r: &csv::StringRecord, decision: &str, note: &str| {
        let mut cells: Vec<String> = r.iter().map(str::to_owned).collect();
        cells[col("decision")] = decision.to_owned();
        cells[col("note")] = note.to_owned();
        csv::StringRecord::from(cells)
    };
    rows[0] = fill(&rows[0], "different", "checked the IDs");
    rows[1] = fill(&rows[1], "Same", "");
    rows[3] = fill(&rows[3], "maybe", "");
    let path = app.dir.path().join("sheet.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(&headers).unwrap();
    for r in &rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    let sheet_arg = path.to_str().unwrap();
    let out = app.run(&["decide", "--from", sheet_arg, "--analyst", "ana"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a refused row: exit 2\n{stdout}"
    );
    assert!(
        stdout.contains("Decisions: 2 applied, 0 already applied, 1 rows not decided, 1 refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Refused line 5: decision \"maybe\" is not same or different"),
        "{stdout}"
    );
    let (a, b) = (&rows[0][col("face_a")], &rows[0][col("face_b")]);
    let explained = app.ok(&["explain", a, b]);
    assert!(
        explained.contains("ana decided different: checked the IDs")
            && explained.contains("analyst_different"),
        "{explained}"
    );
    // The same sheet again records nothing twice.
    let out = app.run(&["decide", "--from", sheet_arg, "--analyst", "ana"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Decisions: 0 applied, 2 already applied"),
        "{stdout}"
    );
    let stats = app.ok(&["stats"]);
    assert!(stats.contains("decisions 2"), "{stats}");
}
