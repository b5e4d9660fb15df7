//! The Neo4j graph store against a real Bolt server: the adapter contract unchanged, re-ingest,
//! the schema, the investigation queries of `cypher/browser/`, and the read commands on either store.
//!
//! The server is the one `FACEGRAPH_TEST_BOLT_URL` names (with `FACEGRAPH_TEST_BOLT_USER`,
//! `FACEGRAPH_TEST_BOLT_PASSWORD` and `FACEGRAPH_TEST_BOLT_DATABASE`); without it, the tests install
//! and start the ArcadeDB server of `scripts/arcadedb` and fail when it cannot start. They are never
//! skipped. The tests share the server's one database, so each takes a lock and starts from an
//! empty graph.

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use neo4rs::{BoltMap, BoltType, Row};
use secrecy::ExposeSecret;
use serde_json::Value;

use facegraph::store::contract::fixtures::{batch, observation};
use facegraph::store::neo4j::Neo4jStore;
use facegraph::store::GraphStore;

static SERVER: Mutex<()> = Mutex::new(());

/// The store on an empty database, with the lock that keeps other tests off it.
fn empty_store() -> (MutexGuard<'static, ()>, Neo4jStore) {
    let guard = SERVER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let store = Neo4jStore::connect(&bolt::login()).expect("connects to the test Bolt server");
    store.delete_everything().expect("empties the database");
    (guard, store)
}

#[test]
fn the_neo4j_store_passes_the_contract_suite() {
    let mut failures = Vec::new();
    for (name, check) in facegraph::store::contract::ALL {
        let (guard, store) = empty_store();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&store)));
        drop(guard);
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} contract checks failed:\n{}",
        failures.len(),
        facegraph::store::contract::ALL.len(),
        failures.join("\n")
    );
}

#[test]
fn reingesting_a_large_batch_adds_nothing() {
    let (_guard, store) = empty_store();
    let faces: Vec<(u32, u32)> = (1..=300).map(|n| (n, n)).collect();
    let mut input = batch(&faces);
    input.observations = (1..300)
        .map(|n| observation(n, n + 1, 80.0 + f64::from(n % 20)))
        .collect();
    let first = store.ingest(&input).expect("first ingest");
    assert_eq!((first.new_faces, first.new_edges), (300, 299));
    let again = store.ingest(&input).expect("second ingest");
    assert_eq!(
        (again.new_faces, again.new_edges, again.changed_edges),
        (0, 0, 0)
    );
    let stats = store.stats().expect("stats");
    assert_eq!((stats.faces, stats.edges, stats.images), (300, 299, 300));
}

#[test]
fn two_instances_writing_the_same_faces_at_once_both_succeed_and_store_them_once() {
    let (_guard, store) = empty_store();
    let other = Neo4jStore::connect(&bolt::login()).expect("a second instance connects");
    let faces: Vec<(u32, u32)> = (1..=50).map(|n| (n, n)).collect();
    let mut input = batch(&faces);
    input.observations = (1..50).map(|n| observation(n, n + 1, 99.0)).collect();
    let outcomes = std::thread::scope(|s| {
        let a = s.spawn(|| store.ingest(&input));
        let b = s.spawn(|| other.ingest(&input));
        [a.join().expect("joins"), b.join().expect("joins")]
    });
    let mut new_faces = 0;
    for outcome in outcomes {
        new_faces += outcome.expect("both writers succeed").new_faces;
    }
    assert_eq!(new_faces, 50, "each face is new to exactly one writer");
    let stats = store.stats().expect("stats");
    assert_eq!((stats.faces, stats.edges, stats.images), (50, 49, 50));
    let seqs: Vec<i64> = store
        .all_faces()
        .expect("faces")
        .iter()
        .map(|f| f.seq)
        .collect();
    assert_eq!(
        seqs,
        (1..=50).collect::<Vec<_>>(),
        "one sequence, no gaps or repeats"
    );
}

#[test]
fn the_schema_creates_the_uniqueness_constraints_and_is_idempotent() {
    let (_guard, store) = empty_store();
    let statements = store.apply_schema().expect("applies the schema");
    assert_eq!(statements, store.apply_schema().expect("applies it again"));
    // The server lists a uniqueness constraint for every id of the graph model.
    let constraints = store
        .read_rows("SHOW CONSTRAINTS", BoltMap::new())
        .expect("lists the constraints");
    for (label, property) in [
        ("Collection", "collection_id"),
        ("Image", "image_id"),
        ("Face", "face_id"),
        ("Subject", "subject_id"),
    ] {
        assert!(
            constraints.iter().any(|c| {
                c.get::<String>("type").is_ok_and(|t| t.contains("UNIQUE"))
                    && c.get::<Vec<String>>("labelsOrTypes")
                        .is_ok_and(|l| l == [label])
                    && c.get::<Vec<String>>("properties")
                        .is_ok_and(|p| p == [property])
            }),
            "no uniqueness constraint on {label}.{property}"
        );
    }
    // A second face with a stored id is refused by the server (not retried as transient), and
    // nothing is written.
    let mut input = batch(&[(1, 1)]);
    store.ingest(&input).expect("ingest");
    store
        .read_rows(
            "CREATE (:Face {face_id: $id}) RETURN 1 AS one",
            [("id".into(), input.faces[0].face_id.as_str().into())]
                .into_iter()
                .collect(),
        )
        .expect_err("a duplicate face id is refused");
    input.faces.clear();
    assert_eq!(store.stats().expect("stats").faces, 1);
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rekognition");

fn face(n: u32) -> String {
    format!("aaaaaaaa-0000-4000-8000-{n:012}")
}

/// Runs the facegraph binary on a data directory, with the graph in the embedded store or, with
/// `bolt`, in the test server; returns standard output and fails the test when the command fails.
fn facegraph(data: &Path, bolt: bool, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegraph"));
    cmd.arg("--data-dir").arg(data);
    for k in [
        "FACEGRAPH_RULES",
        "FACEGRAPH_CONFIG",
        "FACEGRAPH_DATA_DIR",
        "FACEGRAPH_STORE",
    ] {
        cmd.env_remove(k);
    }
    if bolt {
        let login = bolt::login();
        cmd.args(["--store", &login.url])
            .env("FACEGRAPH_NEO4J_USER", &login.user)
            .env("FACEGRAPH_NEO4J_PASSWORD", login.password.expose_secret())
            .env("FACEGRAPH_NEO4J_DATABASE", &login.database);
    }
    let out = cmd.args(args).output().expect("runs facegraph");
    assert!(
        out.status.success(),
        "facegraph {args:?} (bolt: {bolt}) failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Ingests the saved Rekognition scenario of `tests/fixtures/rekognition` with the CLI.
fn ingest_scenario(data: &Path, bolt: bool) {
    facegraph(
        data,
        bolt,
        &[
            "ingest-rekognition",
            "--subjects",
            &format!("{FIXTURES}/subjects.csv"),
            &format!("{FIXTURES}/pascal"),
            &format!("{FIXTURES}/camel"),
        ],
    );
}

/// Alice decides that bob (face 04) and carol (face 05), the canonical contradiction, are two people.
fn decide_04_05_different(data: &Path, bolt: bool) -> String {
    let (a, b) = (face(4), face(5));
    facegraph(
        data,
        bolt,
        &[
            "decide",
            &a,
            &b,
            "different",
            "--analyst",
            "alice",
            "--note",
            "two people",
        ],
    )
}

/// What the read commands print, with the times of day (which differ between two runs) blanked.
fn read_commands(data: &Path, bolt: bool) -> Vec<(String, String)> {
    let commands: Vec<Vec<String>> = vec![
        vec!["matches".into()],
        vec!["matches".into(), "--json".into()],
        vec![
            "matches".into(),
            "--verdict".into(),
            "review".into(),
            "--json".into(),
        ],
        vec!["clusters".into(), "--json".into()],
        vec!["clusters".into(), "--min-subjects".into(), "2".into()],
        vec!["review".into(), "--csv".into()],
        vec!["explain".into(), face(4), face(5), "--json".into()],
        vec!["explain".into(), face(13), face(14)],
        vec!["stats".into()],
    ];
    commands
        .into_iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = facegraph(data, bolt, &args);
            (args.join(" "), blank_times(&out))
        })
        .collect()
}

/// Replaces ISO 8601 times and millisecond timestamps, which record when a command ran.
fn blank_times(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // 2026-11-28T12:34:56...Z
        let is_time = i + 19 <= chars.len()
            && chars[i..i + 4].iter().all(char::is_ascii_digit)
            && chars[i + 4] == '-'
            && chars[i + 10] == 'T';
        if is_time {
            let mut j = i + 19;
            while j < chars.len()
                && (chars[j].is_ascii_digit() || matches!(chars[j], '.' | 'Z' | ':' | '+'))
            {
                j += 1;
            }
            out.push_str("<time>");
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn read_commands_answer_the_same_on_either_store() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = dir.path().join("sqlite");
    ingest_scenario(&sqlite, false);
    let on_sqlite = read_commands(&sqlite, false);

    let (_guard, _store) = empty_store();
    let neo4j = dir.path().join("neo4j");
    ingest_scenario(&neo4j, true);
    let on_neo4j = read_commands(&neo4j, true);
    assert!(
        !neo4j.join("facegraph.sqlite3").exists(),
        "with --store bolt:// nothing goes into the embedded store"
    );
    for ((command, a), (_, b)) in on_sqlite.iter().zip(&on_neo4j) {
        assert!(!a.trim().is_empty(), "{command} printed nothing");
        assert_eq!(a, b, "facegraph {command} differs between sqlite and neo4j");
    }

    // A decision through the CLI changes the same verdicts on both.
    assert_eq!(
        blank_times(&decide_04_05_different(&sqlite, false)),
        blank_times(&decide_04_05_different(&neo4j, true))
    );
    assert_eq!(read_commands(&sqlite, false), read_commands(&neo4j, true));
}

/// A query file of `cypher/browser/`: its text without the comment lines and the final `;`.
fn browser_query(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cypher/browser")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with("//")).collect();
    assert!(
        header.iter().any(|l| l.contains("Parameters")),
        "{name} must say which parameters it takes"
    );
    assert!(header.len() >= 2, "{name} must say what it answers");
    let body: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    body.join("\n").trim().trim_end_matches(';').to_owned()
}

fn params(pairs: &[(&str, BoltType)]) -> BoltMap {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}

fn column<T: serde::de::DeserializeOwned>(rows: &[Row], name: &str) -> Vec<T> {
    rows.iter()
        .map(|r| {
            r.get::<T>(name)
                .unwrap_or_else(|e| panic!("column {name}: {e}"))
        })
        .collect()
}

#[test]
fn every_investigation_query_runs_on_ingested_data_and_answers() {
    let files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("cypher/browser"))
            .expect("cypher/browser")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
    let (_guard, store) = empty_store();
    let store = std::sync::Arc::new(store);
    let dir = tempfile::tempdir().expect("a temporary directory");
    ingest_scenario(dir.path(), true);
    decide_04_05_different(dir.path(), true);
    let mut checked = Vec::new();
    let mut run = |name: &str, p: &[(&str, BoltType)]| -> Vec<Row> {
        checked.push(name.to_owned());
        store
            .read_rows(&browser_query(name), params(p))
            .unwrap_or_else(|e| {
                panic!(
                    "{name} failed: {e:#} ({:?})",
                    std::error::Error::source(&e).map(ToString::to_string)
                )
            })
    };

    // Fraud leads: the clusters facegraph reports with two or more subjects.
    let leads = run(
        "fraud_leads.cypher",
        &[("min_subjects", 2_i64.into()), ("limit", 25_i64.into())],
    );
    let cli: Vec<Value> = facegraph(
        dir.path(),
        true,
        &["clusters", "--min-subjects", "2", "--json"],
    )
    .lines()
    .map(|l| serde_json::from_str(l).expect("JSON"))
    .collect();
    assert!(!cli.is_empty(), "the scenario has fraud leads");
    let mut from_query: Vec<Vec<String>> = column::<Vec<String>>(&leads, "subjects")
        .into_iter()
        .map(|mut s| {
            s.sort();
            s
        })
        .collect();
    let mut from_cli: Vec<Vec<String>> = cli
        .iter()
        .map(|c| {
            let mut s: Vec<String> = c["subjects"]
                .as_array()
                .expect("subjects")
                .iter()
                .map(|v| v.as_str().expect("a subject id").to_owned())
                .collect();
            s.sort();
            s
        })
        .collect();
    from_query.sort();
    from_cli.sort();
    assert_eq!(from_query, from_cli);
    assert!(from_query.contains(&vec![
        "C001".to_owned(),
        "C002".to_owned(),
        "C003".to_owned()
    ]));

    // Downgraded hits: the canonical 97.99 match between a man and a woman is among them, with its
    // reason; nothing confirmed is.
    let hits = run(
        "downgraded_hits.cypher",
        &[
            ("min_similarity", 90.0_f64.into()),
            ("limit", 50_i64.into()),
        ],
    );
    let verdicts: Vec<String> = column(&hits, "verdict");
    assert!(verdicts.iter().all(|v| v != "confirmed"), "{verdicts:?}");
    let pairs: Vec<(String, String)> = column::<String>(&hits, "face_a")
        .into_iter()
        .zip(column::<String>(&hits, "face_b"))
        .collect();
    let canonical = pairs
        .iter()
        .position(|p| *p == (face(4), face(5)))
        .expect("faces 04 and 05 are a downgraded hit");
    let reasons: Vec<String> = column(&hits, "reasons");
    assert!(
        reasons[canonical].contains("gender_contradiction"),
        "{}",
        reasons[canonical]
    );

    // A face's neighbourhood: anna's other two photos one hop away.
    let near = run("face_neighbourhood.cypher", &[("face_id", face(1).into())]);
    let ids: Vec<String> = column(&near, "face_id");
    let hops: Vec<i64> = column(&near, "hops");
    assert_eq!(ids, vec![face(2), face(3)]);
    assert_eq!(hops, vec![1, 1]);
    let near = run("face_neighbourhood.cypher", &[("face_id", face(5).into())]);
    let ids: Vec<String> = column(&near, "face_id");
    assert_eq!(
        ids,
        vec![face(4), face(8)],
        "05 - 04 - 08; dave's 09 is a third hop away"
    );
    assert_eq!(column::<i64>(&near, "hops"), vec![1, 2]);
    // What Browser draws: the faces as nodes, and the paths to them, whose edges carry their
    // verdict, score and reason codes.
    let nodes: Vec<neo4rs::Node> = column(&near, "face");
    assert_eq!(
        nodes
            .iter()
            .map(|n| n.get::<String>("face_id").unwrap())
            .collect::<Vec<_>>(),
        vec![face(4), face(8)]
    );
    let paths: Vec<Vec<neo4rs::Path>> = column(&near, "paths");
    let first_hop = &paths[0][0];
    assert_eq!(first_hop.nodes().len(), 2);
    let rel = &first_hop.rels()[0];
    assert_eq!(rel.typ(), "SIMILAR");
    assert_eq!(rel.get::<String>("verdict").unwrap(), "rejected");
    let codes: Vec<String> = rel.get("reason_codes").unwrap();
    assert!(codes.contains(&"analyst_different".to_owned()), "{codes:?}");
    assert!(rel.get::<f64>("score").is_ok());

    // Paths between subjects: C001 and C003 are one edge apart; C001 and C004 are not joined.
    let paths = run(
        "paths_between_subjects.cypher",
        &[("subject_a", "C001".into()), ("subject_b", "C003".into())],
    );
    let hops: Vec<i64> = column(&paths, "hops");
    assert_eq!(hops.first(), Some(&1), "{hops:?}");
    let faces: Vec<Vec<String>> = column(&paths, "faces");
    assert_eq!(faces[0], vec![face(1), face(3)]);
    let drawn: Vec<neo4rs::Path> = column(&paths, "p");
    assert_eq!(
        drawn[0]
            .nodes()
            .iter()
            .map(|n| n.get::<String>("face_id").unwrap())
            .collect::<Vec<_>>(),
        vec![face(1), face(3)]
    );
    assert_eq!(
        drawn[0].rels()[0].get::<String>("verdict").unwrap(),
        "confirmed"
    );
    let none = run(
        "paths_between_subjects.cypher",
        &[("subject_a", "C001".into()), ("subject_b", "C004".into())],
    );
    assert!(none.is_empty());

    // Hub faces: bob's face 04 matches carol (C005) and dave (C007); dave's face 09 matches only
    // his other photo.
    let hubs = run(
        "hub_faces.cypher",
        &[
            ("min_similarity", 80.0_f64.into()),
            ("min_subjects", 2_i64.into()),
            ("limit", 25_i64.into()),
        ],
    );
    let ids: Vec<String> = column(&hubs, "face_id");
    assert!(ids.contains(&face(4)), "{ids:?}");
    assert!(!ids.contains(&face(9)), "{ids:?}");
    assert!(column::<i64>(&hubs, "subjects").iter().all(|&n| n >= 2));

    // The history of 04 - 05: the rules' review, alice's decision, then the verdict it brought.
    let history = run(
        "pair_history.cypher",
        &[("face_a", face(5).into()), ("face_b", face(4).into())],
    );
    let kinds: Vec<String> = column(&history, "kind");
    let outcomes: Vec<String> = column(&history, "outcome");
    let by: Vec<String> = column(&history, "by");
    let decision = kinds
        .iter()
        .position(|k| k == "decision")
        .expect("alice's decision");
    assert_eq!(outcomes[decision], "DIFFERENT_PERSON");
    assert_eq!(by[decision], "alice");
    assert_eq!(
        outcomes.first().map(String::as_str),
        Some("review"),
        "{outcomes:?}"
    );
    assert!(
        kinds[decision + 1..].iter().any(|k| k == "verdict"),
        "{kinds:?}"
    );
    let at: Vec<i64> = column(&history, "at");
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "oldest first: {at:?}");

    // A cluster by id: the fraud lead C001-C002-C003 with its faces, images, subjects and edges.
    let lead = cli
        .iter()
        .find(|c| c["subjects"].as_array().unwrap().len() == 3)
        .expect("the three-subject lead");
    let cluster = run(
        "cluster.cypher",
        &[("cluster_id", lead["cluster_id"].as_str().unwrap().into())],
    );
    let members: Vec<String> = column(&cluster, "face_id");
    let expected: Vec<String> = lead["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(members, expected);
    let subjects: Vec<Option<String>> = column(&cluster, "subject_id");
    assert!(subjects.iter().all(Option::is_some), "{subjects:?}");
    assert!(column::<neo4rs::Node>(&cluster, "image")
        .iter()
        .all(|i| i.labels().contains(&"Image")));
    let similar: Vec<Vec<neo4rs::Relation>> = column(&cluster, "similar");
    let edges: usize = similar.iter().map(Vec::len).sum();
    assert!(
        edges >= members.len() - 1,
        "a cluster is joined: {edges} edges"
    );
    assert!(similar.iter().flatten().all(
        |r| r.get::<String>("verdict").is_ok() && r.get::<Vec<String>>("reason_codes").is_ok()
    ));

    // Rings: the scenario's leads are chains of photos, not rings.
    let rings = run(
        "rings.cypher",
        &[("min_subjects", 2_i64.into()), ("limit", 25_i64.into())],
    );
    assert!(rings.is_empty(), "no ring in the scenario");
    // Six photos of one man under six customers, every pair matching: a ring, one cluster.
    ring_of_six(&store);
    let rings = run(
        "rings.cypher",
        &[("min_subjects", 3_i64.into()), ("limit", 25_i64.into())],
    );
    assert_eq!(rings.len(), 1, "one ring");
    assert_eq!(rings[0].get::<i64>("subject_count").unwrap(), 6);
    assert_eq!(rings[0].get::<i64>("face_count").unwrap(), 6);
    let ring_edges: Vec<neo4rs::Relation> = rings[0].get("ring_edges").unwrap();
    assert_eq!(ring_edges.len(), 15, "every pair of the six");
    assert!(ring_edges.iter().all(|e| {
        e.get::<String>("verdict").unwrap() == "confirmed"
            && e.get::<Vec<String>>("reason_codes")
                .unwrap()
                .contains(&"ring".to_owned())
    }));

    checked.sort();
    let mut files = files;
    files.sort();
    checked.dedup();
    assert_eq!(checked, files, "every file of cypher/browser runs here");
}

/// Stores six faces of one man under six customers, every pair 99.3 similar, and adjudicates.
fn ring_of_six(store: &std::sync::Arc<Neo4jStore>) {
    use facegraph::adjudication::{Adjudicator, RuleSet};
    use facegraph::model::{ExternalImageId, SubjectId};
    use facegraph::service::Facegraph;
    let faces: Vec<(u32, u32)> = (101..=106).map(|n| (n, n)).collect();
    let mut b = batch(&faces);
    for a in 101..=106 {
        for c in a + 1..=106 {
            b.observations.push(observation(a, c, 99.3));
        }
    }
    b.subjects = (101..=106)
        .map(|n| {
            (
                ExternalImageId::parse(&format!("image-{n}.jpg")).expect("an id"),
                SubjectId::parse(&format!("R{n}")).expect("a subject"),
            )
        })
        .collect();
    store.ingest(&b).expect("the ring ingests");
    let app = Facegraph::new(
        std::sync::Arc::clone(store) as std::sync::Arc<dyn GraphStore>,
        Adjudicator::new(RuleSet::default()),
    );
    app.readjudicate().expect("adjudicates");
}

/// The test server: the one the environment names, or ArcadeDB started by `scripts/arcadedb`.
mod bolt {
    use std::path::Path;
    use std::process::Command;
    use std::sync::OnceLock;

    use facegraph::store::neo4j::Login;
    use secrecy::SecretString;

    /// The login of the test server, starting it once per test binary when the environment names
    /// none.
    pub fn login() -> Login {
        static LOGIN: OnceLock<(String, String, String, String)> = OnceLock::new();
        let (url, user, password, database) = LOGIN.get_or_init(|| {
            if let Ok(url) = std::env::var("FACEGRAPH_TEST_BOLT_URL") {
                let var = |k: &str, default: &str| {
                    std::env::var(k).unwrap_or_else(|_| default.to_owned())
                };
                return (
                    url,
                    var("FACEGRAPH_TEST_BOLT_USER", "root"),
                    var("FACEGRAPH_TEST_BOLT_PASSWORD", ""),
                    var("FACEGRAPH_TEST_BOLT_DATABASE", "faces"),
                );
            }
            start_arcadedb()
        });
        Login {
            url: url.clone(),
            user: user.clone(),
            password: SecretString::from(password.clone()),
            database: database.clone(),
        }
    }

    fn start_arcadedb() -> (String, String, String, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/arcadedb");
        for step in ["install", "start"] {
            let status = Command::new("bash")
                .arg(&script)
                .arg(step)
                .status()
                .unwrap_or_else(|e| panic!("cannot run {} {step}: {e}", script.display()));
            assert!(
                status.success(),
                "{} {step} failed ({status}): the Neo4j store tests need a Bolt server",
                script.display()
            );
        }
        let out = Command::new("bash")
            .arg(&script)
            .arg("env")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} env: {e}", script.display()));
        assert!(out.status.success(), "{} env failed", script.display());
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |name: &str| -> String {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("export "))
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim_matches(|c| c == '"' || c == '\'').to_owned())
                .unwrap_or_else(|| panic!("{} env does not set {name}:\n{text}", script.display()))
        };
        (
            value("FACEGRAPH_TEST_BOLT_URL"),
            value("FACEGRAPH_TEST_BOLT_USER"),
            value("FACEGRAPH_TEST_BOLT_PASSWORD"),
            value("FACEGRAPH_TEST_BOLT_DATABASE"),
        )
    }
}

#[test]
fn images_keyed_by_their_bytes_are_split_into_one_image_per_upload() {
    use facegraph::model::{
        Collection, ContentHash, ExternalImageId, Image, ImageId, SubjectId, Timestamp,
    };
    use facegraph::store::contract::fixtures::{face, face_id};
    use facegraph::store::IngestBatch;
    let (_guard, store) = empty_store();
    // As the local engine stored them before uploads had their own ids: one photo uploaded under
    // a.jpg (S1) and b.jpg (S2), both faces in one image named by the bytes' hash.
    let content = ContentHash::of_bytes(b"the same selfie");
    let old = ImageId::parse(content.as_str()).unwrap();
    let ext = |e: &str| ExternalImageId::parse(e).unwrap();
    let collection = Collection {
        engine: "local".to_owned(),
        ..facegraph::store::contract::fixtures::collection()
    };
    let mut faces = vec![face(1, 1), face(2, 1)];
    for (f, e) in faces.iter_mut().zip(["a.jpg", "b.jpg"]) {
        f.image_id = old.clone();
        f.external_image_id = Some(ext(e));
    }
    store
        .ingest(&IngestBatch {
            collections: vec![collection],
            images: vec![Image {
                image_id: old.clone(),
                external_image_id: Some(ext("a.jpg")),
                content_sha256: None,
                collection_id: None,
                pending: false,
                source: None,
                width: Some(640),
                height: Some(480),
                face_count: 1,
                received_at: Timestamp::from_millis(5),
            }],
            faces,
            subjects: vec![
                (ext("a.jpg"), SubjectId::parse("S1").unwrap()),
                (ext("b.jpg"), SubjectId::parse("S2").unwrap()),
            ],
            ..IngestBatch::default()
        })
        .expect("the old layout ingests");
    assert_eq!(store.split_uploads().expect("splits"), (1, 2));
    assert_eq!(store.split_uploads().expect("again"), (0, 0), "idempotent");
    let read = store.faces(&[face_id(1), face_id(2)]).unwrap();
    for (n, e, subject) in [(1, "a.jpg", "S1"), (2, "b.jpg", "S2")] {
        let f = read.iter().find(|f| f.face.face_id == face_id(n)).unwrap();
        assert_eq!(f.face.image_id, ImageId::of_upload(&content, Some(&ext(e))));
        assert_eq!(f.subject.as_ref().map(SubjectId::as_str), Some(subject));
        assert_eq!(f.content_sha256.as_ref(), Some(&content));
    }
    assert_eq!(store.stats().unwrap().images, 2);
}
