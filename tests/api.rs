//! End-to-end tests of the REST API: each test spawns the server on port 0 over a fresh data
//! directory and talks HTTP to it: every endpoint's success path, authentication and roles, field
//! errors, body limits and media types, the canonical case, a decision that changes a cluster, the
//! OpenAPI document against the routes, graceful shutdown, and the timeouts, connection cap and
//! shutdown deadline that bound slow clients.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use facegraph::api::ApiConfig;
use facegraph::engine::local::models::samples_dir;
use facegraph::engine::FaceEngine;
use facegraph::files::walk;
use facegraph::model::CollectionId;
use facegraph::service::{read_subjects_csv, RekognitionIngest};
use facegraph::settings::{Overrides, Settings};
use facegraph::startup::{Access, App, LockWait};
use facegraph::store::GraphStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rekognition");

/// An analyst's key.
const ALICE: &str = "alice-analyst-key-0001";
/// A loader's key: ingest only.
const LOADER: &str = "loader-ingest-key-0001";
/// An administrator's key: admin only.
const ROOT: &str = "root-admin-key-000001";

fn face(n: u32) -> String {
    format!("aaaaaaaa-0000-4000-8000-{n:012}")
}

/// A running server over its own data directory.
struct TestApp {
    addr: SocketAddr,
    client: reqwest::Client,
    store: Arc<dyn GraphStore>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Holds the data directory's lock for the server's lifetime, as `serve` does.
    _app: App,
    _dir: tempfile::TempDir,
}

#[derive(Default)]
struct Options {
    fixtures: bool,
    insecure: bool,
    /// The local engine with the models of the cache (scripts/test fetches them).
    engine: bool,
    /// The HTTP layer's limits.
    config: ApiConfig,
}

async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

async fn spawn_with_fixtures() -> TestApp {
    spawn_with(Options {
        fixtures: true,
        ..Options::default()
    })
    .await
}

/// The settings of a test server over `dir`: its keys in `FACEGRAPH_API_KEYS` (unless insecure),
/// the model cache of the environment, nothing else from it.
fn test_settings(dir: &std::path::Path, insecure: bool) -> Settings {
    let keys = format!("alice:analyst:{ALICE},loader:ingest:{LOADER},root:admin:{ROOT}");
    let overrides = Overrides {
        data_dir: Some(dir.to_owned()),
        ..Overrides::default()
    };
    Settings::load_with_env(&overrides, |k| match k {
        "FACEGRAPH_API_KEYS" => (!insecure).then(|| keys.clone()),
        "FACEGRAPH_MODELS_DIR" | "HOME" | "XDG_CACHE_HOME" => std::env::var(k).ok(),
        _ => None,
    })
    .unwrap()
}

/// The server as `facegraph serve` builds it (`App::build`), on port 0 over a fresh data directory.
async fn spawn_with(opts: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = test_settings(dir.path(), opts.insecure);
    let mut access = Access::write(LockWait::NoWait);
    if opts.engine {
        access = access.with_engine();
    }
    let app = App::build(&settings, access, &|_| {}).expect("the app builds");
    if opts.fixtures {
        let walked = walk(&[
            PathBuf::from(format!("{FIXTURES}/pascal")),
            PathBuf::from(format!("{FIXTURES}/camel")),
        ]);
        let report = app
            .graph()
            .ingest_rekognition(
                &walked.files,
                &RekognitionIngest {
                    collection_id: CollectionId::parse("test-collection").unwrap(),
                    subjects: read_subjects_csv(&PathBuf::from(format!("{FIXTURES}/subjects.csv")))
                        .unwrap(),
                },
            )
            .expect("fixtures ingest");
        assert_eq!(report.rejected().count(), 0);
    }
    let engine: Option<Arc<dyn FaceEngine>> = opts.engine.then(|| {
        app.engine().unwrap_or_else(|e| {
            panic!("{e}: run `facegraph models fetch` (scripts/test does) before the tests")
        })
    });
    let state = app.api_state(engine, opts.insecure, opts.config).unwrap();
    let store = Arc::clone(app.graph().store());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(facegraph::api::run(listener, state, async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        // Loopback only: never through a proxy that the environment may name.
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        store,
        shutdown: Some(tx),
        server: Some(server),
        _app: app,
        _dir: dir,
    }
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        self.send(req).await
    }

    async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        self.send(req).await
    }

    async fn post_bytes(
        &self,
        path: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let req = self
            .client
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        self.send(req).await
    }

    /// Sends raw bytes on a new connection and returns everything the server answered.
    async fn raw(&self, request: &[u8]) -> String {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn fields(v: &Value) -> BTreeSet<String> {
    v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}

fn codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

fn canonical() -> Value {
    json!({
        "similarity": 97.99,
        "face_a": {"face_id": face(4), "gender": {"value": "Male", "confidence": 96.0}},
        "face_b": {"face_id": face(5), "gender": {"value": "Female", "confidence": 100.0}}
    })
}

#[tokio::test]
async fn probes_are_open_and_metrics_count_requests() {
    let app = spawn_app().await;
    let (s, v) = app.get("/healthz", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));
    let (s, v) = app.get("/readyz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"status": "ready", "store": "sqlite", "engine": "none"})
    );
    let (s, v) = app.get("/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(
        text.contains(
            r#"facegraph_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("facegraph_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"facegraph_store_operation_duration_seconds_count{operation="stats"} 1"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_canonical_case_goes_to_review_for_gender_contradiction() {
    let app = spawn_app().await;
    let (s, v) = app
        .post_json("/v1/adjudications", Some(LOADER), &canonical())
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["verdict"], "review");
    assert_eq!(v["stored"], false);
    assert!(v["rule_set"].as_str().unwrap().starts_with("rs-"));
    assert_eq!(codes(&v), ["similarity_band", "gender_contradiction"]);
    let gender = &v["reasons"][1];
    assert_eq!(gender["evidence"]["confidence_a"], 96.0);
    assert_eq!(gender["evidence"]["confidence_b"], 100.0);
    assert!(gender["message"]
        .as_str()
        .unwrap()
        .contains("at most review"));
    assert!(v["score"].as_f64().unwrap() < 97.99);

    let (_, m) = app.get("/metrics", None).await;
    assert!(
        m.as_str()
            .unwrap()
            .contains(r#"facegraph_verdicts_total{mode="stateless",verdict="review"} 1"#),
        "{m}"
    );
    app.stop().await;
}

#[tokio::test]
async fn shared_images_and_subjects_in_the_body_fire_their_rules() {
    let app = spawn_app().await;
    let body = json!({
        "similarity": 99.1,
        "face_a": {"face_id": face(1), "image_id": "upload-17"},
        "face_b": {"face_id": face(2), "image_id": "upload-17"}
    });
    let (s, v) = app
        .post_json("/v1/adjudications", Some(LOADER), &body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["verdict"], "rejected");
    assert!(codes(&v).contains(&"same_image".to_owned()), "{v:#}");

    let body = json!({
        "similarity": 99.1,
        "face_a": {"face_id": face(1), "subject_id": "C042"},
        "face_b": {"face_id": face(2), "subject_id": "C042"}
    });
    let (_, v) = app
        .post_json("/v1/adjudications", Some(LOADER), &body)
        .await;
    assert_eq!(v["verdict"], "confirmed");
    assert!(codes(&v).contains(&"same_subject".to_owned()), "{v:#}");

    let body = json!({
        "similarity": 99.1,
        "face_a": {"face_id": face(1), "age_range": {"low": 3, "high": 7}},
        "face_b": {"face_id": face(2), "age_range": {"low": 55, "high": 65}, "quality": {"brightness": 80, "sharpness": 80}}
    });
    let (_, v) = app
        .post_json("/v1/adjudications", Some(LOADER), &body)
        .await;
    assert_eq!(v["verdict"], "review");
    assert!(codes(&v).contains(&"age_contradiction".to_owned()), "{v:#}");
    app.stop().await;
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let app = spawn_app().await;
    let body = json!({
        "similarity": 101.0,
        "face_a": {"face_id": "not-a-face", "gender": {"value": "Robot", "confidence": 120.0}},
        "face_b": {"face_id": face(2), "age_range": {"low": 40, "high": 30}}
    });
    let (s, v) = app
        .post_json("/v1/adjudications", Some(LOADER), &body)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v:#}");
    assert_eq!(error_code(&v), "invalid_request");
    let want: BTreeSet<String> = [
        "similarity",
        "face_a.face_id",
        "face_a.gender.value",
        "face_a.gender.confidence",
        "face_b.age_range",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(fields(&v), want, "{v:#}");

    // Wrong types and unknown fields are named by their JSON path.
    let (s, v) = app
        .post_json(
            "/v1/adjudications",
            Some(LOADER),
            &json!({"similarity": "high", "face_a": {"face_id": face(1)}, "face_b": {"face_id": face(2)}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&v), ["similarity".to_owned()].into());
    let (s, v) = app
        .post_json(
            "/v1/adjudications",
            Some(LOADER),
            &json!({"similarity": 99, "face_a": {"face_id": face(1), "gendre": {}}, "face_b": {"face_id": face(2)}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("gendre"),
        "{v:#}"
    );

    // The same face twice.
    let (s, v) = app
        .post_json(
            "/v1/adjudications",
            Some(LOADER),
            &json!({"similarity": 99, "face_a": {"face_id": face(1)}, "face_b": {"face_id": face(1)}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&v), ["face_b.face_id".to_owned()].into());

    // Not JSON at all.
    let (s, v) = app
        .post_bytes(
            "/v1/adjudications",
            LOADER,
            "application/json",
            b"{".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&v), "invalid_request");
    app.stop().await;
}

#[tokio::test]
async fn keys_and_roles_are_enforced() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/v1/adjudications"))
        .json(&canonical())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&v), "unauthorized");

    let (s, _) = app
        .post_json(
            "/v1/adjudications",
            Some("not-a-key-at-all-123"),
            &canonical(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = app
        .post_json("/v1/adjudications", Some(ALICE), &canonical())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&v), "forbidden");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("ingest"),
        "{v:#}"
    );
    let (s, _) = app.get("/v1/review", Some(LOADER)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get("/v1/review", Some(ALICE)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .post_bytes(
            "/v1/rulesets/what-if",
            ALICE,
            "application/toml",
            b"".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Authentication comes before the body is looked at.
    let (s, _) = app
        .post_bytes("/v1/adjudications", "", "application/json", b"{".to_vec())
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limits_are_refused_unread() {
    let app = spawn_app().await;
    let json_over = format!(
        "POST /v1/adjudications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {LOADER}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        1024 * 1024 + 1
    );
    let answer = app.raw(json_over.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");

    let image_over = format!(
        "POST /v1/collections/c1/images?external_image_id=a.jpg HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {LOADER}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        15 * 1024 * 1024 + 1
    );
    let answer = app.raw(image_over.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A body sent without a length is cut off at the limit while it streams.
    let big = vec![b' '; 1024 * 1024 + 10];
    let (s, v) = app
        .post_bytes("/v1/rulesets/what-if", ROOT, "application/toml", big)
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v:#}");
    app.stop().await;
}

fn sample(name: &str) -> Vec<u8> {
    let dir = samples_dir(&Settings::load(&Overrides::default()).unwrap().models_dir);
    std::fs::read(dir.join(name)).unwrap_or_else(|e| {
        panic!("{name}: {e}: run `facegraph models fetch` (scripts/test does) before the tests")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_images_are_indexed_searched_and_adjudicated_by_the_local_engine() {
    let app = spawn_with(Options {
        engine: true,
        ..Options::default()
    })
    .await;
    let (s, v) = app.get("/readyz", None).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["engine"], "local", "{v:#}");

    let upload = |name: &'static str, subject: &'static str| {
        let path = format!(
            "/v1/collections/onboarding/images?external_image_id={name}&subject_id={subject}"
        );
        let mime = if name.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let bytes = sample(name);
        let app = &app;
        async move { app.post_bytes(&path, LOADER, mime, bytes).await }
    };
    let (s, first) = upload("obama.jpg", "C1").await;
    assert_eq!(s, StatusCode::OK, "{first:#}");
    assert_eq!(first["faces"].as_array().unwrap().len(), 1, "{first:#}");
    assert_eq!(first["matches"], json!([]), "nothing to match yet");

    // The same person under another customer: a confirmed match between the two subjects.
    let (s, second) = upload("obama2.jpg", "C2").await;
    assert_eq!(s, StatusCode::OK, "{second:#}");
    let matches = second["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{second:#}");
    let m = &matches[0];
    assert_eq!(m["verdict"], "confirmed", "{m:#}");
    assert!(m["similarity"].as_f64().unwrap() >= 98.5, "{m:#}");
    let subjects: BTreeSet<&str> = [&m["subject_a"], &m["subject_b"]]
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(subjects, BTreeSet::from(["C1", "C2"]));

    // Someone else matches nobody.
    let (s, third) = upload("biden.jpg", "C3").await;
    assert_eq!(s, StatusCode::OK, "{third:#}");
    assert_eq!(third["matches"], json!([]), "{third:#}");

    // A JPEG that stops after its header is refused by name of the field, and nothing is stored.
    let mut cut = sample("obama3.jpg");
    cut.truncate(cut.len() / 3);
    let (s, v) = app
        .post_bytes(
            "/v1/collections/onboarding/images?external_image_id=cut.jpg",
            LOADER,
            "image/jpeg",
            cut,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v:#}");
    assert!(fields(&v).contains("image"), "{v:#}");
    assert_eq!(app.store.stats().unwrap().images, 3);
    app.stop().await;
}

#[tokio::test]
async fn images_are_checked_before_the_engine_and_refused_without_one() {
    let app = spawn_app().await;
    let path = "/v1/collections/c1/images?external_image_id=a.jpg&subject_id=C1";
    let (s, v) = app
        .post_bytes(path, LOADER, "image/jpeg", b"GIF89a not really".to_vec())
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v:#}");
    assert_eq!(error_code(&v), "unsupported_media_type");
    let (s, _) = app
        .post_bytes(path, LOADER, "image/gif", b"GIF89a".to_vec())
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = app
        .post_json("/v1/adjudications", Some(LOADER), &canonical())
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post_bytes("/v1/adjudications", LOADER, "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v:#}");

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let (s, v) = app.post_bytes(path, LOADER, "image/png", png.clone()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v:#}");
    assert_eq!(error_code(&v), "unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no face engine"),
        "{v:#}"
    );
    let (s, v) = app
        .post_bytes("/v1/collections/bad:id/images", LOADER, "image/png", png)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&v),
        ["collection_id".to_owned(), "external_image_id".to_owned()].into()
    );
    app.stop().await;
}

#[tokio::test]
async fn stored_adjudication_records_the_match_and_returns_the_stored_verdict() {
    let app = spawn_with_fixtures().await;
    // Faces 1 and 4 have no edge yet.
    let body =
        json!({"similarity": 93.5, "face_a": {"face_id": face(1)}, "face_b": {"face_id": face(4)}});
    let (s, v) = app
        .post_json("/v1/adjudications?store=true", Some(LOADER), &body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["stored"], true);
    assert_eq!(v["verdict"], "review");
    assert!(
        codes(&v).contains(&"gender_contradiction".to_owned()),
        "{v:#}"
    );
    assert_eq!(v["match"]["subject_a"], "C001");
    assert_eq!(v["match"]["similarity"], 93.5);
    let pair = facegraph::model::FacePair::new(
        facegraph::model::FaceId::parse(&face(1)).unwrap(),
        facegraph::model::FaceId::parse(&face(4)).unwrap(),
    )
    .unwrap();
    let stored = app.store.edge(&pair).unwrap().expect("the edge is stored");
    assert_eq!(
        stored.judgement.unwrap().verdict,
        facegraph::model::Verdict::Review
    );

    // Two bare stored ids adjudicate against the graph without asking.
    let body = json!({"similarity": 97.99, "face_a": {"face_id": face(4)}, "face_b": {"face_id": face(5)}});
    let (_, v) = app
        .post_json("/v1/adjudications", Some(LOADER), &body)
        .await;
    assert_eq!(v["stored"], true, "{v:#}");
    assert_eq!(v["verdict"], "review");

    // With store=true every face must be stored.
    let body = json!({"similarity": 97.99, "face_a": {"face_id": face(4)}, "face_b": {"face_id": face(99)}});
    let (s, v) = app
        .post_json("/v1/adjudications?store=true", Some(LOADER), &body)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v:#}");
    assert!(v["error"]["message"].as_str().unwrap().contains(&face(99)));
    // Without it, bare unknown ids are judged on their own.
    let (s, v) = app
        .post_json("/v1/adjudications", Some(LOADER), &body)
        .await;
    assert_eq!((s, v["stored"].clone()), (StatusCode::OK, json!(false)));
    app.stop().await;
}

#[tokio::test]
async fn faces_and_subjects_list_their_matches() {
    let app = spawn_with_fixtures().await;
    let (s, v) = app
        .get(&format!("/v1/faces/{}", face(4)), Some(ALICE))
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["subject_id"], "C004");
    assert_eq!(v["gender"], json!({"value": "Male", "confidence": 96.0}));
    assert_eq!(v["external_image_id"], "bob_1.jpg");

    let (s, v) = app
        .get(&format!("/v1/faces/{}/matches", face(4)), Some(ALICE))
        .await;
    assert_eq!(s, StatusCode::OK);
    let verdicts: Vec<&str> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["review", "rejected"], "{v:#}");
    let (_, v) = app
        .get(
            &format!("/v1/faces/{}/matches?verdict=rejected", face(4)),
            Some(ALICE),
        )
        .await;
    assert_eq!(v["matches"].as_array().unwrap().len(), 1);
    assert_eq!(v["matches"][0]["face_b"], face(8));
    let (s, v) = app
        .get(
            &format!("/v1/faces/{}/matches?verdict=maybe", face(4)),
            Some(ALICE),
        )
        .await;
    assert_eq!(
        (s, fields(&v)),
        (StatusCode::BAD_REQUEST, ["verdict".to_owned()].into())
    );
    let (s, _) = app
        .get(&format!("/v1/faces/{}", face(99)), Some(ALICE))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app.get("/v1/faces/NOT-A-UUID", Some(ALICE)).await;
    assert_eq!(
        (s, fields(&v)),
        (StatusCode::BAD_REQUEST, ["face_id".to_owned()].into())
    );

    let (s, v) = app.get("/v1/subjects/C007/matches", Some(ALICE)).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["faces"].as_array().unwrap().len(), 2);
    // Dave's two selfies match each other; bob's face also hit dave's first one.
    let pairs: Vec<(String, String, String)> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["face_a"].as_str().unwrap().to_owned(),
                m["face_b"].as_str().unwrap().to_owned(),
                m["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (face(8), face(9), "confirmed".to_owned()),
            (face(4), face(8), "rejected".to_owned())
        ]
    );
    let (s, _) = app.get("/v1/subjects/C999/matches", Some(ALICE)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn clusters_page_with_a_cursor_and_show_their_detail() {
    let app = spawn_with_fixtures().await;
    let (s, v) = app.get("/v1/clusters?min_subjects=2", Some(ALICE)).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    let all = v["clusters"].as_array().unwrap().clone();
    assert_eq!(all.len(), 2);
    assert!(v["next_cursor"].is_null());

    let mut paged = Vec::new();
    let mut url = "/v1/clusters?min_subjects=2&limit=1".to_owned();
    loop {
        let (s, v) = app.get(&url, Some(ALICE)).await;
        assert_eq!(s, StatusCode::OK, "{v:#}");
        paged.extend(v["clusters"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/clusters?min_subjects=2&limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all);

    let anna = all
        .iter()
        .find(|c| c["faces"].as_array().unwrap().len() == 3)
        .unwrap();
    let id = anna["cluster_id"].as_str().unwrap();
    let (s, v) = app.get(&format!("/v1/clusters/{id}"), Some(ALICE)).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["fraud_lead"], true);
    assert_eq!(v["subjects"], json!(["C001", "C002", "C003"]));
    assert_eq!(v["faces"].as_array().unwrap().len(), 3);
    assert_eq!(v["links"].as_array().unwrap().len(), 3);
    assert!(v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["verdict"] == "confirmed"));
    assert_eq!(v["conflicts"], json!([]));

    let (s, _) = app
        .get("/v1/clusters/cl-0000000000000000", Some(ALICE))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app.get("/v1/clusters?cursor=zz", Some(ALICE)).await;
    assert_eq!(
        (s, fields(&v)),
        (StatusCode::BAD_REQUEST, ["cursor".to_owned()].into())
    );
    let (s, v) = app.get("/v1/clusters?limit=0", Some(ALICE)).await;
    assert_eq!(
        (s, fields(&v)),
        (StatusCode::BAD_REQUEST, ["limit".to_owned()].into())
    );
    app.stop().await;
}

#[tokio::test]
async fn the_review_queue_pages_in_score_order() {
    let app = spawn_with_fixtures().await;
    let (s, v) = app.get("/v1/review", Some(ALICE)).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    let all = v["matches"].as_array().unwrap().clone();
    assert!(!all.is_empty());
    assert!(all
        .iter()
        .all(|m| m["verdict"] == "review" && m["in_review_queue"] == true));
    let scores: Vec<f64> = all.iter().map(|m| m["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(all
        .iter()
        .any(|m| m["face_a"] == face(4) && m["face_b"] == face(5)));

    let mut paged = Vec::new();
    let mut url = "/v1/review?limit=1".to_owned();
    loop {
        let (_, v) = app.get(&url, Some(ALICE)).await;
        paged.extend(v["matches"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/review?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all);
    app.stop().await;
}

#[tokio::test]
async fn a_decision_changes_a_cluster_and_is_recorded_under_the_keys_name() {
    let app = spawn_with_fixtures().await;
    let leads = |v: &Value| -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = v["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                c["faces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect();
        out.sort();
        out
    };
    let (_, before) = app.get("/v1/clusters?min_subjects=2", Some(ALICE)).await;
    assert!(!leads(&before).contains(&vec![face(4), face(5)]));

    let body = json!({"face_a": face(5), "face_b": face(4), "decision": "same", "note": "same passport photo"});
    let (s, v) = app.post_json("/v1/decisions", Some(ALICE), &body).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["analyst"], "alice");
    assert_eq!(v["decision"], "same");
    let changed = v["changed"].as_array().unwrap();
    let this = changed
        .iter()
        .find(|c| c["face_a"] == face(4) && c["face_b"] == face(5))
        .expect("the decided pair changed");
    assert_eq!(
        (this["before"].clone(), this["after"].clone()),
        (json!("review"), json!("confirmed"))
    );
    assert!(codes(this).contains(&"analyst_same".to_owned()));

    let (_, after) = app.get("/v1/clusters?min_subjects=2", Some(ALICE)).await;
    assert!(leads(&after).contains(&vec![face(4), face(5)]), "{after:#}");
    assert_eq!(after["clusters"].as_array().unwrap().len(), 3);

    let decisions = app.store.decisions().unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].analyst, "alice");
    assert_eq!(decisions[0].note.as_deref(), Some("same passport photo"));

    let bad = json!({"face_a": face(4), "face_b": face(99), "decision": "same"});
    let (s, _) = app.post_json("/v1/decisions", Some(ALICE), &bad).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let bad = json!({"face_a": face(4), "face_b": face(5), "decision": "maybe"});
    let (s, v) = app.post_json("/v1/decisions", Some(ALICE), &bad).await;
    assert_eq!(
        (s, fields(&v)),
        (StatusCode::BAD_REQUEST, ["decision".to_owned()].into())
    );
    app.stop().await;
}

#[tokio::test]
async fn what_if_reads_toml_and_json_and_changes_nothing() {
    let app = spawn_with_fixtures().await;
    let (_, before) = app.get("/v1/review", Some(ALICE)).await;
    // The canonical pair (97.99) would be confirmed at a lower threshold but for the gender rule.
    let toml = b"[bands]\nconfirm_at = 97.0\n[gender]\nenabled = false\n".to_vec();
    let (s, v) = app
        .post_bytes("/v1/rulesets/what-if", ROOT, "application/toml", toml)
        .await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_ne!(v["rule_set"], v["current_rule_set"]);
    let changes = v["changes"].as_array().unwrap();
    let canonical = changes
        .iter()
        .find(|c| c["face_a"] == face(4) && c["face_b"] == face(5))
        .expect("without the gender rule the canonical case changes");
    assert_eq!(canonical["after"], "confirmed");

    let (s, j) = app
        .post_json(
            "/v1/rulesets/what-if",
            Some(ROOT),
            &json!({"gender": {"enabled": false}, "bands": {"confirm_at": 97.0}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        j["rule_set"], v["rule_set"],
        "the same rules in JSON have the same version"
    );

    let (s, v) = app
        .post_bytes(
            "/v1/rulesets/what-if",
            ROOT,
            "application/toml",
            b"[bands]\nconfirm_at = 150\n".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v:#}");
    assert_eq!(fields(&v), ["bands.confirm_at".to_owned()].into());
    let (s, _) = app
        .post_bytes("/v1/rulesets/what-if", ROOT, "text/plain", b"".to_vec())
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (_, after) = app.get("/v1/review", Some(ALICE)).await;
    assert_eq!(before, after, "what-if changed nothing");
    app.stop().await;
}

/// Every operation the API serves, by method and path template.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/v1/adjudications"),
    ("post", "/v1/collections/{collection_id}/images"),
    ("get", "/v1/collections"),
    ("post", "/v1/collections"),
    ("get", "/v1/collections/{collection_id}"),
    ("delete", "/v1/collections/{collection_id}"),
    ("post", "/v1/search"),
    ("get", "/v1/faces/{face_id}"),
    ("get", "/v1/faces/{face_id}/matches"),
    ("get", "/v1/subjects/{subject_id}/matches"),
    ("get", "/v1/clusters"),
    ("get", "/v1/clusters/{cluster_id}"),
    ("get", "/v1/review"),
    ("post", "/v1/decisions"),
    ("post", "/v1/rulesets/what-if"),
];

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app().await;
    let (s, spec) = app.get("/openapi.json", Some(ALICE)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());

    // Every documented operation is served: none answers 404 or 405.
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{face_id}", &face(1))
            .replace("{collection_id}", "c1")
            .replace("{subject_id}", "C001")
            .replace("{cluster_id}", "cl-0");
        let req = match *method {
            "get" => app.client.get(app.url(&concrete)),
            "delete" => app.client.delete(app.url(&concrete)),
            _ => app.client.post(app.url(&concrete)),
        };
        let status = req.bearer_auth(ROOT).send().await.unwrap().status();
        let served = match *path {
            // These answer 404 because the graph is empty, with the API's own error body.
            "/v1/faces/{face_id}"
            | "/v1/faces/{face_id}/matches"
            | "/v1/subjects/{subject_id}/matches"
            | "/v1/clusters/{cluster_id}" => status == StatusCode::FORBIDDEN,
            _ => status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
        };
        assert!(served, "{method} {path} answered {status}");
    }

    let (s, v) = app.get("/v1/nothing-here", Some(ALICE)).await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let resp = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test]
async fn without_authentication_everyone_is_anonymous() {
    let app = spawn_with(Options {
        fixtures: true,
        insecure: true,
        ..Options::default()
    })
    .await;
    let (s, _) = app.get("/v1/review", None).await;
    assert_eq!(s, StatusCode::OK);
    let body = json!({"face_a": face(4), "face_b": face(5), "decision": "different"});
    let (s, v) = app.post_json("/v1/decisions", None, &body).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["analyst"], "anonymous");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut app = spawn_app().await;
    let body = serde_json::to_vec(&canonical()).unwrap();
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/adjudications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {LOADER}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // The server asks for the body once the handler reads it: the request is in flight.
    let mut buf = [0u8; 25];
    conn.read_exact(&mut buf).await.unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&buf)
    );

    app.shutdown.take().unwrap().send(()).unwrap();
    // The server stops accepting new connections but waits for this one.
    let server = app.server.take().unwrap();
    tokio::task::yield_now().await;
    assert!(!server.is_finished());

    conn.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("\"verdict\":\"review\""), "{answer}");
    server.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(app.addr).await.is_err(),
        "the listener is closed"
    );
}

/// A server with these limits and nothing else.
async fn spawn_limited(config: ApiConfig) -> TestApp {
    spawn_with(Options {
        config,
        ..Options::default()
    })
    .await
}

/// A connection that has sent the start of a request and not the end of its header.
async fn half_header(app: &TestApp) -> TcpStream {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Reads until the server closes the connection (a reset counts as closed) and returns what it
/// sent; panics when it is still open after `within`, so that a server that holds the connection
/// fails the test instead of hanging it.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> String {
    let mut buf = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut buf)).await {
        Ok(_) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => panic!(
            "the server still holds the connection after {within:?}; it sent {:?}",
            String::from_utf8_lossy(&buf)
        ),
    }
}

/// Longer than the short limits the tests set, shorter than every default one: a test passes only
/// through the limit it sets.
const PATIENCE: Duration = Duration::from_secs(8);

#[tokio::test]
async fn a_half_sent_header_is_closed_after_the_header_read_timeout() {
    let app = spawn_limited(ApiConfig {
        header_read_timeout: Duration::from_secs(1),
        ..ApiConfig::default()
    })
    .await;
    let mut slow = half_header(&app).await;
    let answer = read_until_closed(&mut slow, PATIENCE).await;
    assert!(!answer.contains(" 200 "), "{answer}");
    // The server goes on serving others.
    let (s, _) = app.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let app = spawn_limited(ApiConfig {
        keep_alive_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(30),
        ..ApiConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    // HTTP/1.1 keeps the connection open after the answer unless told otherwise.
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut s, PATIENCE).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_a_slot_frees() {
    let app = spawn_limited(ApiConfig {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(30),
        ..ApiConfig::default()
    })
    .await;
    let first = half_header(&app).await;
    let second = half_header(&app).await;
    // The third connection completes in the kernel's backlog, after the first two, but the server
    // does not take it while both slots are held.
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte))
            .await
            .is_err(),
        "a connection past the cap was served"
    );
    // The first slow client gives up: its slot goes to the waiting connection.
    drop(first);
    let answer = read_until_closed(&mut third, PATIENCE).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Otherwise the server would wait for its header until the shutdown deadline.
    drop(second);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_closes_what_cannot_finish_at_the_deadline() {
    let mut app = spawn_limited(ApiConfig {
        shutdown_deadline: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(30),
        ..ApiConfig::default()
    })
    .await;
    let mut slow_header = half_header(&app).await;
    // A request in flight whose body never comes: the server asks for it once the handler reads.
    let mut slow_body = TcpStream::connect(app.addr).await.unwrap();
    slow_body
        .write_all(
            format!(
                "POST /v1/adjudications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {LOADER}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\
                 Expect: 100-continue\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = [0u8; 25];
    slow_body.read_exact(&mut buf).await.unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&buf)
    );

    app.shutdown.take().unwrap().send(()).unwrap();
    let server = app.server.take().unwrap();
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the server returns once the deadline has passed")
        .unwrap()
        .unwrap();
    let answer = read_until_closed(&mut slow_body, PATIENCE).await;
    assert!(!answer.contains(" 200 "), "{answer}");
    read_until_closed(&mut slow_header, PATIENCE).await;
    assert!(
        TcpStream::connect(app.addr).await.is_err(),
        "the listener is closed"
    );
}

#[test]
fn serve_refuses_to_start_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facegraph"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("FACEGRAPH_API_KEYS")
        .env_remove("FACEGRAPH_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no API keys are configured"), "{err}");
    assert!(err.contains("--insecure-no-auth"), "{err}");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_facegraph"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("FACEGRAPH_API_KEYS", format!("alice:analyst:{ALICE}"))
        .env_remove("FACEGRAPH_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve exited early"
        );
        if let Some(rest) = line.trim().strip_prefix("facegraph: serving on http://") {
            break rest.to_owned();
        }
    };
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.contains("facegraph: stopped"), "{rest}");
}

#[test]
fn generated_keys_hash_to_the_config_entry_they_come_with() {
    use std::io::Write;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facegraph"))
        .args([
            "api-key",
            "generate",
            "--name",
            "bob",
            "--roles",
            "analyst+admin",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("# fgk_"))
        .map(|k| format!("fgk_{k}"))
        .expect("the key is printed once");
    let sha = text
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .map(|s| s.trim_end_matches('"').to_owned())
        .expect("the config entry");
    assert!(text.contains("roles = [\"analyst\", \"admin\"]"), "{text}");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_facegraph"))
        .args(["api-key", "hash"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{key}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), sha);
}
