//! The Neo4j graph store against a real Bolt server: the adapter contract unchanged, re-ingest,
//! the schema, the investigation queries of `cypher/browser/`, and the read commands on either store.
//!
//! The server is the one `FACEGRAPH_TEST_BOLT_URL` names (with `FACEGRAPH_TEST_BOLT_USER`,
//! `FACEGRAPH_TEST_BOLT_PASSWORD` and `FACEGRAPH_TEST_BOLT_DATABASE`); without it, the tests install
//! and start the ArcadeDB server of `scripts/arcadedb` and fail when it cannot start. They are never
//! skipped. The tests share the server's one database, so each takes a lock and starts from an
//! empty graph.

use std::sync::{Mutex, MutexGuard};

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
fn the_schema_creates_the_uniqueness_constraints_and_is_idempotent() {
    let (_guard, store) = empty_store();
    let statements = store.apply_schema().expect("applies the schema");
    assert_eq!(statements, store.apply_schema().expect("applies it again"));
    // The face id is unique: a second face with the same id is refused by the server, and the
    // refusal is not retried as a transient failure.
    let mut input = batch(&[(1, 1)]);
    store.ingest(&input).expect("ingest");
    let err = store
        .read_rows(
            "CREATE (:Face {face_id: $id}) RETURN 1 AS one",
            [("id".into(), input.faces[0].face_id.as_str().into())]
                .into_iter()
                .collect(),
        )
        .expect_err("a duplicate face id is refused");
    let text = format!("{err:#}")
        + &std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default();
    assert!(
        text.to_lowercase().contains("duplicate") || text.contains("Constraint"),
        "{text}"
    );
    input.faces.clear();
    assert_eq!(store.stats().expect("stats").faces, 1);
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
