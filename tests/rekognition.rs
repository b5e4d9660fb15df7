//! The Rekognition engine and the Rekognition-compatible endpoint, end to end: each test spawns
//! the endpoint on port 0 with the local engine over a fresh data directory (and the models and
//! sample photos of the cache), and talks to it through aws-sdk-rekognition (the adapter, and the
//! SDK directly for refusals), raw HTTP (the error shapes), boto3 (an independent client) and the
//! `facegraph` binary with `--engine rekognition`. Answers are compared with the local engine's
//! own, called directly on the same collections.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/matches.rs"]
mod matches;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_rekognition::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_rekognition::error::ProvideErrorMetadata;
use facegraph::api::rekognition::sigv4::format_amz_date;
use facegraph::api::rekognition::{AccessKeys, EndpointConfig, ThrottleError};
use facegraph::engine::local::models::samples_dir;
use facegraph::engine::rekognition::{RekognitionConfig, RekognitionEngine};
use facegraph::engine::{
    EngineError, FaceEngine, ImageSource, IndexFacesRequest, QualityFilter, UnindexedReason,
};
use facegraph::model::{CollectionId, ExternalImageId, FaceId, Similarity};
use facegraph::settings::{AccessKeySetting, Overrides, Settings};
use facegraph::store::GraphStore;
use secrecy::SecretString;
use serde_json::Value;

/// The access key the endpoint accepts.
const KEY_ID: &str = "AKIDFACEGRAPHTEST";
const SECRET: &str = "facegraph-test-secret-0123456789abcdef";

/// The sample photos with a face the local engine indexes.
const PHOTOS: [&str; 5] = [
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "biden.jpg",
    "32bit.png",
];

fn settings() -> Settings {
    Settings::load(&Overrides::default()).unwrap()
}

fn samples() -> PathBuf {
    let dir = samples_dir(&settings().models_dir);
    assert!(
        dir.join("biden.jpg").is_file(),
        "{} has no sample photos: run `facegraph models fetch` (scripts/test does) before the tests",
        dir.display()
    );
    dir
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(samples().join(name)).unwrap()
}

/// The endpoint with the local engine over a fresh data directory, served on its own runtime.
struct Endpoint {
    url: String,
    local: Arc<dyn FaceEngine>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    dir: tempfile::TempDir,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Endpoint {
    fn spawn(throttle_first: u32, throttle_error: ThrottleError) -> Self {
        Self::with(|c| {
            c.throttle_first = throttle_first;
            c.throttle_error = throttle_error;
        })
    }

    /// The endpoint with its configuration changed by `configure`.
    fn with(configure: impl FnOnce(&mut EndpointConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn FaceEngine> = Arc::new(
            facegraph::startup::open_local_engine(&dir.path().join("data"), &settings().models_dir)
                .unwrap_or_else(|e| {
                    panic!("{e}: run `facegraph models fetch` (scripts/test does) before the tests")
                }),
        );
        let mut config = EndpointConfig::new(AccessKeys::new(&[AccessKeySetting {
            access_key_id: KEY_ID.to_owned(),
            secret_access_key: SecretString::from(SECRET.to_owned()),
        }]));
        configure(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(facegraph::api::rekognition::run(
            listener,
            Arc::clone(&local),
            config,
            async {
                let _ = rx.await;
            },
        ));
        Self {
            url,
            local,
            runtime: Some(runtime),
            shutdown: Some(tx),
            dir,
        }
    }

    fn plain() -> Self {
        Self::spawn(0, ThrottleError::Throttling)
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.as_ref().unwrap().block_on(f)
    }

    /// The adapter, as `--engine rekognition` opens it, pointed at this endpoint with the test key
    /// (the binary's tests below take the key from the AWS default chain instead).
    fn adapter(&self, max_attempts: u32) -> RekognitionEngine {
        RekognitionEngine::open(&RekognitionConfig {
            region: Some("us-east-1".to_owned()),
            endpoint: Some(self.url.clone()),
            max_attempts,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            credentials: Some((KEY_ID.to_owned(), SecretString::from(SECRET.to_owned()))),
            ..RekognitionConfig::default()
        })
        .unwrap()
    }

    /// The SDK itself with the given key, for refusals the adapter's key would not meet.
    fn sdk(&self, key_id: &str, secret: &str) -> aws_sdk_rekognition::Client {
        let http = aws_smithy_http_client::Builder::new().build_http();
        let config = aws_sdk_rekognition::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(key_id, secret, None, None, "test"))
            .http_client(http)
            .retry_config(aws_sdk_rekognition::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_rekognition::Client::from_conf(config)
    }
}

fn cid(s: &str) -> CollectionId {
    CollectionId::parse(s).unwrap()
}

fn ext(s: &str) -> ExternalImageId {
    ExternalImageId::parse(s).unwrap()
}

fn zero() -> Similarity {
    Similarity::new(0.0).unwrap()
}

/// (face id, similarity) of every hit, in order.
fn hits(matches: &[facegraph::engine::FaceMatch]) -> Vec<(String, f64)> {
    matches
        .iter()
        .map(|m| (m.face_id.to_string(), m.similarity.get()))
        .collect()
}

fn all_faces(engine: &dyn FaceEngine, c: &CollectionId, page: u32) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let p = engine.list_faces(c, token.as_deref(), page).unwrap();
        pages += 1;
        ids.extend(p.faces.iter().map(|f| f.face_id.to_string()));
        match p.next_token {
            Some(t) => token = Some(t),
            None => return (ids, pages),
        }
    }
}

#[test]
fn the_sdk_adapter_answers_as_the_local_engine_does() {
    let ep = Endpoint::plain();
    let rek = ep.adapter(3);
    let c = cid("faces");
    let created = rek.create_collection(&c).unwrap();
    assert_eq!(
        created.face_model_version,
        ep.local.describe_collection(&c).unwrap().face_model_version
    );
    assert!(matches!(
        rek.create_collection(&c),
        Err(EngineError::CollectionExists(id)) if id == c
    ));
    assert_eq!(rek.describe_collection(&c).unwrap().face_count, 0);

    let mut indexed: Vec<(String, String)> = Vec::new();
    for name in PHOTOS {
        let bytes = photo(name);
        let e = ext(name);
        let result = rek
            .index_faces(&IndexFacesRequest {
                collection_id: &c,
                image: ImageSource::Bytes(&bytes),
                external_image_id: Some(&e),
                subject_id: None,
                max_faces: Some(1),
                quality_filter: QualityFilter::Auto,
            })
            .unwrap();
        assert_eq!(result.faces.len(), 1, "{name}: one face, the largest");
        let face = &result.faces[0];
        assert!(face.is_largest);
        assert_eq!(face.external_image_id.as_ref(), Some(&e));
        assert!(
            face.attributes.gender.is_some() && face.attributes.age.is_some(),
            "{name}: DetectionAttributes ALL brings the classifiers' findings"
        );
        let raw = face.raw.as_deref().unwrap();
        assert!(
            raw.starts_with(r#"{"Face":{"FaceId":""#) && raw.contains(r#""Landmarks":["#),
            "{name}: the record is kept as the service sent it: {raw}"
        );
        indexed.push((name.to_owned(), face.face_id.to_string()));
    }
    assert_eq!(
        rek.describe_collection(&c).unwrap().face_count,
        PHOTOS.len() as u64
    );

    // Searches: the same faces with the same similarities as the engine called directly.
    for (name, id) in &indexed {
        let face = FaceId::parse(id).unwrap();
        let through = rek.search_faces(&c, &face, zero(), 100).unwrap();
        let direct = ep.local.search_faces(&c, &face, zero(), 100).unwrap();
        assert_eq!(hits(&through), hits(&direct), "SearchFaces of {name}");
        assert_eq!(through.len(), PHOTOS.len() - 1);
        let exts: Vec<_> = through
            .iter()
            .map(|m| m.external_image_id.clone())
            .collect();
        let direct_exts: Vec<_> = direct.iter().map(|m| m.external_image_id.clone()).collect();
        assert_eq!(exts, direct_exts);
    }
    let probe = photo("obama2.jpg");
    let through = rek.search_faces_by_image(&c, &probe, zero(), 100).unwrap();
    let direct = ep
        .local
        .search_faces_by_image(&c, &probe, zero(), 100)
        .unwrap();
    assert_eq!(hits(&through.matches), hits(&direct.matches));
    assert_eq!(through.searched_bbox, direct.searched_bbox);
    assert_eq!(
        through.matches[0]
            .external_image_id
            .as_ref()
            .map(|e| e.as_str()),
        Some("obama2.jpg"),
        "the image's own face first"
    );
    let only_strong = rek
        .search_faces_by_image(&c, &probe, Similarity::new(99.0).unwrap(), 100)
        .unwrap();
    assert!(only_strong
        .matches
        .iter()
        .all(|m| m.similarity.get() >= 99.0));

    // ListFaces, two per page, through the SDK's NextToken.
    let (listed, pages) = all_faces(&rek, &c, 2);
    let (direct, _) = all_faces(ep.local.as_ref(), &c, 4096);
    assert_eq!(pages, PHOTOS.len().div_ceil(2));
    assert_eq!(listed, direct, "the same faces in the same order");

    // find_indexed finds an upload by its external image id.
    let obama = ext("obama.jpg");
    let content = facegraph::model::ContentHash::of_bytes(&photo("obama.jpg"));
    let found = rek
        .find_indexed(&c, Some(&obama), &content)
        .unwrap()
        .unwrap();
    let ids: Vec<String> = found.faces.iter().map(|f| f.face_id.to_string()).collect();
    assert_eq!(ids, [indexed[0].1.clone()]);
    assert!(found.faces[0].is_largest);
    assert!(rek
        .find_indexed(&c, Some(&ext("nobody.jpg")), &content)
        .unwrap()
        .is_none());

    // DeleteFaces skips unknown ids; a deleted face is not found any more.
    let gone = FaceId::parse(&indexed[0].1).unwrap();
    let unknown = FaceId::parse("aaaaaaaa-0000-4000-8000-000000000009").unwrap();
    let deleted = rek.delete_faces(&c, &[gone.clone(), unknown]).unwrap();
    assert_eq!(deleted, std::slice::from_ref(&gone));
    assert_eq!(
        rek.describe_collection(&c).unwrap().face_count,
        PHOTOS.len() as u64 - 1
    );
    assert!(matches!(
        rek.search_faces(&c, &gone, zero(), 10),
        Err(EngineError::FaceNotFound { .. })
    ));

    assert!(rek.list_collections().unwrap().contains(&c));
    rek.delete_collection(&c).unwrap();
    assert!(matches!(
        rek.describe_collection(&c),
        Err(EngineError::CollectionNotFound(id)) if id == c
    ));
    assert!(rek
        .find_indexed(&c, Some(&obama), &content)
        .unwrap()
        .is_none());
}

/// Two sample photos side by side: an image with two faces of different sizes.
fn two_faces() -> Vec<u8> {
    let a = image::load_from_memory(&photo("obama.jpg"))
        .unwrap()
        .to_rgb8();
    let b = image::load_from_memory(&photo("biden.jpg"))
        .unwrap()
        .to_rgb8();
    let mut canvas = image::RgbImage::new(a.width() + b.width(), a.height().max(b.height()));
    image::imageops::replace(&mut canvas, &a, 0, 0);
    image::imageops::replace(&mut canvas, &b, i64::from(a.width()), 0);
    let mut out = std::io::Cursor::new(Vec::new());
    canvas.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn the_largest_face_is_kept_and_the_others_deleted() {
    let ep = Endpoint::plain();
    let rek = ep.adapter(3);
    let group = two_faces();
    let (kept, everyone) = (cid("kept"), cid("everyone"));
    rek.create_collection(&kept).unwrap();
    ep.local.create_collection(&everyone).unwrap();
    let all = ep
        .local
        .index_faces(&IndexFacesRequest {
            collection_id: &everyone,
            image: ImageSource::Bytes(&group),
            external_image_id: Some(&ext("group.png")),
            subject_id: None,
            max_faces: None,
            quality_filter: QualityFilter::Auto,
        })
        .unwrap();
    assert_eq!(
        all.faces.len(),
        2,
        "both faces are indexed without MaxFaces"
    );

    let one = rek
        .index_faces(&IndexFacesRequest {
            collection_id: &kept,
            image: ImageSource::Bytes(&group),
            external_image_id: Some(&ext("group.png")),
            subject_id: None,
            max_faces: Some(1),
            quality_filter: QualityFilter::Auto,
        })
        .unwrap();
    assert_eq!(one.faces.len(), 1);
    assert_eq!(
        one.faces[0].bbox, all.faces[0].bbox,
        "the largest face is kept"
    );
    let beyond: Vec<_> = one
        .unindexed
        .iter()
        .filter(|u| u.reasons == [UnindexedReason::ExceedsMaxFaces])
        .collect();
    assert_eq!(beyond.len(), 1);
    assert_eq!(
        beyond[0].bbox, all.faces[1].bbox,
        "the smaller face is left out"
    );
    assert!(beyond[0].bbox.area() < one.faces[0].bbox.area());
    // The smaller face was indexed by the service and deleted at once: the collection holds one.
    let (ids, _) = all_faces(ep.local.as_ref(), &kept, 100);
    assert_eq!(ids, [one.faces[0].face_id.to_string()]);
    assert_eq!(one.image.face_count, 2, "both faces were detected");
}

#[test]
fn throttling_is_retried_with_backoff() {
    for error in [
        ThrottleError::Throttling,
        ThrottleError::ProvisionedThroughputExceeded,
    ] {
        let ep = Endpoint::spawn(3, error);
        let rek = ep.adapter(5);
        let c = cid("busy");
        rek.create_collection(&c)
            .unwrap_or_else(|e| panic!("{error:?} three times, then served: {e}"));
        assert_eq!(rek.describe_collection(&c).unwrap().face_count, 0);
    }
    // More throttling than attempts: the last refusal is the caller's error.
    let ep = Endpoint::spawn(10, ThrottleError::Throttling);
    let rek = ep.adapter(3);
    let err = rek.create_collection(&cid("busy")).unwrap_err();
    let chain = facegraph::errors::chain(&err);
    assert!(
        matches!(err, EngineError::Backend { .. }) && chain.contains("ThrottlingException"),
        "{chain}"
    );
}

#[test]
fn the_rate_limit_spaces_the_calls() {
    let ep = Endpoint::plain();
    let rek = RekognitionEngine::open(&RekognitionConfig {
        region: Some("us-east-1".to_owned()),
        endpoint: Some(ep.url.clone()),
        requests_per_second: Some(20.0),
        credentials: Some((KEY_ID.to_owned(), SecretString::from(SECRET.to_owned()))),
        ..RekognitionConfig::default()
    })
    .unwrap();
    let c = cid("paced");
    rek.create_collection(&c).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..10 {
        rek.describe_collection(&c).unwrap();
    }
    // Eleven calls at 20 per second: the tenth after this loop began waits its slot, 450 ms
    // after the first of the loop at the earliest (the first may have been due at once).
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

/// A raw POST with the given headers, answered with (status, error type header, body).
fn raw(ep: &Endpoint, headers: &[(&str, String)], body: &str) -> (u16, String, Value) {
    ep.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut req = client.post(format!("{}/", ep.url)).body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("x-amzn-ErrorType")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert_eq!(
            resp.headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            Some("application/x-amz-json-1.1")
        );
        (status, kind, resp.json().await.unwrap())
    })
}

#[test]
fn refusals_come_in_rekognitions_shape() {
    let ep = Endpoint::plain();
    let now = SystemTime::now();
    let date = format_amz_date(now);
    let auth = |key: &str, date: &str, signed: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={key}/{}/us-east-1/rekognition/aws4_request, \
             SignedHeaders={signed}, Signature={}",
            &date[..8],
            "0".repeat(64)
        )
    };
    let target = (
        "x-amz-target",
        "RekognitionService.ListCollections".to_owned(),
    );
    let ctype = ("content-type", "application/x-amz-json-1.1".to_owned());
    let cases = [
        (
            vec![target.clone(), ctype.clone()],
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        (
            vec![
                target.clone(),
                ctype.clone(),
                ("x-amz-date", date.clone()),
                ("authorization", auth(KEY_ID, &date, "host;x-amz-date")),
            ],
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        ),
        (
            vec![
                target.clone(),
                ctype.clone(),
                ("x-amz-date", date.clone()),
                (
                    "authorization",
                    auth("AKIDNOBODY", &date, "host;x-amz-date"),
                ),
            ],
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            vec![
                target.clone(),
                ctype.clone(),
                ("x-amz-date", date.clone()),
                ("authorization", auth(KEY_ID, &date, "x-amz-date")),
            ],
            "IncompleteSignatureException",
            "'host' must be a 'SignedHeader' in the AWS Authorization.",
        ),
    ];
    for (headers, kind, message) in cases {
        let (status, header, body) = raw(&ep, &headers, "{}");
        assert_eq!((status, header.as_str()), (403, kind), "{body}");
        assert_eq!(body["__type"], kind);
        assert!(
            body["message"].as_str().unwrap().starts_with(message),
            "{body}"
        );
    }
    let old = format_amz_date(now - Duration::from_secs(3600));
    let (status, header, body) = raw(
        &ep,
        &[
            target,
            ctype,
            ("x-amz-date", old.clone()),
            ("authorization", auth(KEY_ID, &old, "host;x-amz-date")),
        ],
        "{}",
    );
    assert_eq!(
        (status, header.as_str()),
        (403, "InvalidSignatureException")
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Signature expired: {old} is now earlier than")),
        "{body}"
    );

    // The same through the SDK, which reads the error's code as any AWS client does.
    let code = |client: aws_sdk_rekognition::Client, collection: &str| {
        let collection = collection.to_owned();
        ep.block_on(async move {
            let err = client
                .describe_collection()
                .collection_id(collection)
                .send()
                .await
                .unwrap_err();
            let e = err.into_service_error();
            (
                e.code().unwrap_or_default().to_owned(),
                e.message().unwrap_or_default().to_owned(),
            )
        })
    };
    let (c, _) = code(ep.sdk(KEY_ID, "not-the-secret"), "faces");
    assert_eq!(c, "InvalidSignatureException");
    let (c, _) = code(ep.sdk("AKIDNOBODY", SECRET), "faces");
    assert_eq!(c, "UnrecognizedClientException");
    let (c, m) = code(ep.sdk(KEY_ID, SECRET), "bad id!");
    assert_eq!(c, "InvalidParameterException");
    assert_eq!(
        m,
        "1 validation error detected: Value 'bad id!' at 'collectionId' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+"
    );
    let (c, m) = code(ep.sdk(KEY_ID, SECRET), "missing");
    assert_eq!(c, "ResourceNotFoundException");
    assert_eq!(m, "The collection id: missing does not exist");
}

/// Runs scripts/boto3-check against the endpoint and returns its report.
fn boto3(ep: &Endpoint, collection: &str, photos: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/boto3-check");
    let mut cmd = Command::new(script);
    cmd.arg("run").arg(&ep.url).arg(collection);
    for p in photos {
        cmd.arg(format!("{p}={}", samples().join(p).display()));
    }
    let out = cmd
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/facegraph-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/facegraph-test/credentials",
        )
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_REKOGNITION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3-check failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn boto3_is_an_independent_client_with_the_same_answers() {
    let ep = Endpoint::plain();
    let c = cid("boto3-faces");
    let report = boto3(&ep, c.as_str(), &PHOTOS);

    assert_eq!(report["create"]["status_code"], 200);
    assert_eq!(
        report["create"]["arn"],
        "arn:aws:rekognition:eu-west-1:000000000000:collection/boto3-faces"
    );
    assert_eq!(
        report["create_again"]["code"],
        "ResourceAlreadyExistsException"
    );
    assert_eq!(report["create_again"]["status"], 400);

    let mut face_ids = BTreeSet::new();
    for name in PHOTOS {
        let faces = report["indexed"][name].as_array().unwrap();
        assert_eq!(faces.len(), 1, "{name}");
        assert_eq!(faces[0]["external_image_id"], name);
        assert!(faces[0]["gender"].is_string(), "{name}: {}", faces[0]);
        assert_eq!(faces[0]["landmarks"], 5);
        let image_id = faces[0]["image_id"].as_str().unwrap();
        assert!(
            uuid_like(image_id),
            "Rekognition's ImageId is a UUID: {image_id}"
        );
        face_ids.insert(faces[0]["face_id"].as_str().unwrap().to_owned());
    }
    // Every search as the local engine answers it: same faces, same similarities, same order.
    for id in &face_ids {
        let direct = ep
            .local
            .search_faces(&c, &FaceId::parse(id).unwrap(), zero(), 100)
            .unwrap();
        let seen: Vec<(String, f64)> = report["searches"][id]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m[0].as_str().unwrap().to_owned(), m[1].as_f64().unwrap()))
            .collect();
        assert_eq!(seen, hits(&direct), "SearchFaces of {id}");
    }
    let direct = ep
        .local
        .search_faces_by_image(&c, &photo(PHOTOS[0]), zero(), 100)
        .unwrap();
    let seen: Vec<(String, f64)> = report["by_image"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[0].as_str().unwrap().to_owned(), m[1].as_f64().unwrap()))
        .collect();
    assert_eq!(seen, hits(&direct.matches));

    assert_eq!(report["listed"]["pages"], PHOTOS.len().div_ceil(2));
    let listed: BTreeSet<String> = report["listed"]["face_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, face_ids);
    assert_eq!(
        report["collections"],
        serde_json::json!(["boto3-faces", "boto3-faces-scratch"])
    );
    assert_eq!(report["face_count"], PHOTOS.len());
    let deleted = &report["deleted"];
    assert_eq!(deleted["deleted"], serde_json::json!([deleted["asked"]]));
    assert_eq!(deleted["unsuccessful"], serde_json::json!([]));
    assert_eq!(deleted["face_count_after"], 0);

    for (case, code) in [
        ("bad_secret", "InvalidSignatureException"),
        ("unknown_key", "UnrecognizedClientException"),
    ] {
        assert_eq!(report[case]["code"], code, "{case}");
        assert_eq!(report[case]["status"], 403, "{case}");
    }
    assert_eq!(
        report["invalid_collection_id"]["code"],
        "InvalidParameterException"
    );
    assert_eq!(report["invalid_collection_id"]["status"], 400);
    assert_eq!(report["delete_collection"], 200);
    assert_eq!(
        report["describe_deleted"]["code"],
        "ResourceNotFoundException"
    );
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

/// Runs the `facegraph` binary with `--engine rekognition` against the endpoint.
fn facegraph(ep: &Endpoint, args: &[&str], crash_at: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegraph"));
    cmd.arg("--engine")
        .arg("rekognition")
        .arg("--data-dir")
        .arg(ep.dir.path().join("graph"))
        .args(args)
        // The SDK's own variable names the endpoint: no facegraph setting is needed for it.
        .env("AWS_ENDPOINT_URL_REKOGNITION", &ep.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/facegraph-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/facegraph-test/credentials",
        )
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("FACEGRAPH_CONFIG")
        .env_remove("FACEGRAPH_DATA_DIR")
        .env_remove("FACEGRAPH_ENGINE")
        .env_remove("FACEGRAPH_REKOGNITION_ENDPOINT")
        .env_remove("FACEGRAPH_CRASH_AT");
    if let Some(point) = crash_at {
        cmd.env("FACEGRAPH_CRASH_AT", point);
    }
    cmd.output().unwrap()
}

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn photo_dir(ep: &Endpoint, names: &[&str]) -> PathBuf {
    let dir = ep.dir.path().join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    for n in names {
        std::fs::copy(samples().join(n), dir.join(n)).unwrap();
    }
    dir
}

#[test]
fn match_faces_runs_through_the_endpoint() {
    let ep = Endpoint::plain();
    let dir = photo_dir(&ep, &PHOTOS);
    let stdout = ok(&facegraph(
        &ep,
        &[
            "match-faces",
            "--collection-id",
            "cli",
            "--json",
            dir.to_str().unwrap(),
        ],
        None,
    ));
    let pairs: BTreeSet<(String, String)> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|m| {
            let mut p = [
                m["source_file"].as_str().unwrap().to_owned(),
                m["target_file"].as_str().unwrap().to_owned(),
            ];
            p.sort();
            (p[0].clone(), p[1].clone())
        })
        .collect();
    assert!(
        pairs.contains(&("obama.jpg".to_owned(), "obama2.jpg".to_owned())),
        "{stdout}"
    );
    assert!(
        pairs
            .iter()
            .all(|(a, b)| !a.starts_with("biden") && !b.starts_with("biden")),
        "Biden matches nobody at 80: {stdout}"
    );
    // The faces are in the endpoint's collection, and the data directory holds no engine state.
    let (ids, _) = all_faces(ep.local.as_ref(), &cid("cli"), 100);
    assert_eq!(ids.len(), PHOTOS.len());
    assert!(!ep.dir.path().join("graph").join("collections").exists());
}

#[test]
fn an_interrupted_ingest_is_completed_without_indexing_again() {
    let ep = Endpoint::plain();
    let dir = photo_dir(&ep, &["obama.jpg", "obama2.jpg", "biden.jpg"]);
    let args = ["ingest", "--collection-id", "ingest", dir.to_str().unwrap()];
    // The run stops right after the service indexed the first photo, before the graph heard of
    // its faces.
    let crashed = facegraph(&ep, &args, Some("upload.after_log_append:1"));
    assert!(
        crashed.status.code().is_none(),
        "the run crashed: {}",
        String::from_utf8_lossy(&crashed.stderr)
    );
    // Photos are staged two at a time, so another IndexFaces may have been under way too (and
    // finished by the endpoint after the client died).
    let (before, _) = all_faces(ep.local.as_ref(), &cid("ingest"), 100);
    assert!(
        !before.is_empty(),
        "the service holds the first photo's face"
    );

    let stdout = ok(&facegraph(&ep, &args, None));
    let resumed: usize = stdout
        .split("Resumed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the run says what it resumed: {stdout}"));
    assert!(
        (before.len()..=2).contains(&resumed),
        "the uploads the service had indexed are completed from it: the service held {} faces \
         after the crash ({before:?}); the run said: {stdout}",
        before.len()
    );
    let (after, _) = all_faces(ep.local.as_ref(), &cid("ingest"), 100);
    assert_eq!(
        after.len(),
        3,
        "one face per photo, none doubled: {after:?}"
    );
    assert!(
        after.contains(&before[0]),
        "the first face was kept, not indexed again"
    );

    let store = facegraph::store::sqlite::SqliteStore::open(
        &ep.dir.path().join("graph").join("facegraph.sqlite3"),
    )
    .unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.images, stats.faces), (3, 3));
    assert!(store.pending_images().unwrap().is_empty());
    assert_eq!(stats.edges, 1, "obama and obama2 match");

    // A third run finds every photo complete and sends nothing to index.
    let stdout = ok(&facegraph(&ep, &args, None));
    assert!(stdout.contains("3 already ingested"), "{stdout}");
    let (last, _) = all_faces(ep.local.as_ref(), &cid("ingest"), 100);
    assert_eq!(last.len(), 3);
}

#[test]
fn a_slow_client_is_cut_off_as_on_the_rest_api() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ep = Endpoint::with(|c| c.http.header_read_timeout = Duration::from_secs(1));
    let addr = ep.url.trim_start_matches("http://").to_owned();
    let answer = ep.block_on(async {
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar")
            .await
            .unwrap();
        // Longer than the limit set above, shorter than the default one: the connection can only
        // close through the limit.
        let mut buf = Vec::new();
        // Closed or reset, either ends the connection.
        let _ended = tokio::time::timeout(Duration::from_secs(8), slow.read_to_end(&mut buf))
            .await
            .expect("the endpoint closes a connection whose header does not come");
        String::from_utf8_lossy(&buf).into_owned()
    });
    assert!(!answer.contains(" 200 "), "{answer}");
    // The endpoint goes on serving others.
    let rek = ep.adapter(1);
    assert!(rek.list_collections().unwrap().is_empty());
}

/// A plain-colour PNG: an image in which no detector finds a face.
fn blank_png(rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(320, 240, image::Rgb(rgb));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

/// The count after `label` in the summary line, such as `5 made`.
fn count_before(line: &str, label: &str) -> u64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line}"));
    line[..at]
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

fn calls_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("Rekognition calls: "))
        .unwrap_or_else(|| panic!("the summary has the calls line: {stdout}"))
}

#[test]
fn the_prefilter_keeps_faceless_photos_from_rekognition_and_the_summary_counts_them() {
    let ep = Endpoint::plain();
    let dir = photo_dir(&ep, &["obama.jpg", "biden.jpg"]);
    for (i, rgb) in [[0, 0, 0], [255, 255, 255], [30, 120, 200]]
        .iter()
        .enumerate()
    {
        std::fs::write(dir.join(format!("blank-{i}.png")), blank_png(*rgb)).unwrap();
    }
    let args = ["ingest", "--collection-id", "pre", dir.to_str().unwrap()];
    let stdout = ok(&facegraph(&ep, &args, None));
    let line = calls_line(&stdout);
    assert!(
        line.contains("(pre-filter 3, duplicates 0, Bloom filter 0)"),
        "{line}"
    );
    assert_eq!(count_before(line, " avoided"), 3, "{line}");
    assert!(
        stdout.contains(
            "avoided by the pre-filter (no face found locally, or not an image): IndexFaces 3"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  made: IndexFaces 2, SearchFaces 2,"),
        "{stdout}"
    );
    assert!(
        stdout.contains("estimated cost: 0.0040 USD made, 0.0030 USD avoided"),
        "{stdout}"
    );
    for i in 0..3 {
        assert!(
            stdout.contains(&format!(
                "No face indexed from blank-{i}.png: no face detected"
            )),
            "the faceless photos are recorded as such: {stdout}"
        );
    }
    let (ids, _) = all_faces(ep.local.as_ref(), &cid("pre"), 100);
    assert_eq!(
        ids.len(),
        2,
        "only the photos with a face reached the service"
    );
    let store = facegraph::store::sqlite::SqliteStore::open(
        &ep.dir.path().join("graph").join("facegraph.sqlite3"),
    )
    .unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.images, stats.faces),
        (5, 2),
        "faceless uploads are stored"
    );

    // A second run sends nothing: every photo is a duplicate, the faceless ones too.
    let stdout = ok(&facegraph(&ep, &args, None));
    let line = calls_line(&stdout);
    assert!(
        line.contains("(pre-filter 0, duplicates 5, Bloom filter 0)"),
        "{line}"
    );
    assert!(!stdout.contains("IndexFaces 2"), "{stdout}");

    // Without the pre-filter the same faceless photos are sent, and billed.
    let other = ep.dir.path().join("blanks");
    std::fs::create_dir_all(&other).unwrap();
    for (i, rgb) in [[1, 2, 3], [200, 10, 10]].iter().enumerate() {
        std::fs::write(other.join(format!("b{i}.png")), blank_png(*rgb)).unwrap();
    }
    let out = facegraph_env(
        &ep,
        &[
            "ingest",
            "--collection-id",
            "nopre",
            other.to_str().unwrap(),
        ],
        &[("FACEGRAPH_REKOGNITION_PREFILTER", "false")],
    );
    let stdout = ok(&out);
    let line = calls_line(&stdout);
    assert_eq!(count_before(line, " avoided"), 0, "{line}");
    assert!(stdout.contains("  made: IndexFaces 2,"), "{stdout}");
}

/// [`facegraph`] with extra environment variables.
fn facegraph_env(ep: &Endpoint, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    facegraph_in(ep, "graph", args, env)
}

/// [`facegraph`] over the data directory `data` of the endpoint's directory, with extra
/// environment variables.
fn facegraph_in(
    ep: &Endpoint,
    data: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegraph"));
    cmd.arg("--engine")
        .arg("rekognition")
        .arg("--data-dir")
        .arg(ep.dir.path().join(data))
        .args(args)
        .env("AWS_ENDPOINT_URL_REKOGNITION", &ep.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/facegraph-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/facegraph-test/credentials",
        )
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("FACEGRAPH_CONFIG")
        .env_remove("FACEGRAPH_DATA_DIR")
        .env_remove("FACEGRAPH_ENGINE")
        .env_remove("FACEGRAPH_REKOGNITION_ENDPOINT")
        .env_remove("FACEGRAPH_REKOGNITION_PREFILTER")
        .env_remove("FACEGRAPH_CRASH_AT")
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

/// The REST API as `serve --engine rekognition` builds it, with the Rekognition engine pointed at
/// the endpoint, served on the endpoint's runtime; its address.
fn rest_api_over(ep: &Endpoint, data: &Path) -> (facegraph::startup::App, String) {
    let overrides = Overrides {
        data_dir: Some(data.to_owned()),
        ..Overrides::default()
    };
    let url = ep.url.clone();
    let mut settings = Settings::load_with_env(&overrides, |k| match k {
        "FACEGRAPH_ENGINE" => Some("rekognition".to_owned()),
        "FACEGRAPH_REKOGNITION_ENDPOINT" => Some(url.clone()),
        "FACEGRAPH_REKOGNITION_REGION" => Some("us-east-1".to_owned()),
        "FACEGRAPH_MODELS_DIR" | "HOME" | "XDG_CACHE_HOME" => std::env::var(k).ok(),
        _ => None,
    })
    .unwrap();
    settings.rekognition.credentials =
        Some((KEY_ID.to_owned(), SecretString::from(SECRET.to_owned())));
    let app = facegraph::startup::App::build(
        &settings,
        facegraph::startup::Access::write(facegraph::startup::LockWait::NoWait).with_engine(),
        &|_| {},
    )
    .unwrap();
    let engine = app.engine().unwrap();
    let state = app
        .api_state(Some(engine), true, facegraph::api::ApiConfig::default())
        .unwrap();
    let addr = ep.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(facegraph::api::run(listener, state, std::future::pending()));
        addr
    });
    (app, format!("http://{addr}"))
}

/// The value of a metric line, such as `name{labels} 3`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_count_the_rekognition_calls_made_and_avoided() {
    let ep = Endpoint::plain();
    let (_app, api) = rest_api_over(&ep, &ep.dir.path().join("api"));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let upload = |name: &str, bytes: Vec<u8>, media: &str| {
        let url = format!("{api}/v1/collections/rest/images?external_image_id={name}");
        let req = client.post(url).header("content-type", media).body(bytes);
        ep.block_on(async {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    let (s, body) = upload("blank.png", blank_png([9, 9, 9]), "image/png");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["faces"], serde_json::json!([]), "{body}");
    let (s, body) = upload("obama.jpg", photo("obama.jpg"), "image/jpeg");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["faces"].as_array().unwrap().len(), 1);
    let (s, body) = upload("obama.jpg", photo("obama.jpg"), "image/jpeg");
    assert_eq!(
        (s, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    let text = ep.block_on(async {
        client
            .get(format!("{api}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let avoided = "facegraph_rekognition_calls_avoided_total";
    assert_eq!(
        metric(
            &text,
            &format!("{avoided}{{operation=\"IndexFaces\",reason=\"prefilter\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{avoided}{{operation=\"IndexFaces\",reason=\"duplicate\"}}")
        ),
        1.0
    );
    let made = "facegraph_rekognition_calls_total";
    assert_eq!(
        metric(&text, &format!("{made}{{operation=\"IndexFaces\"}}")),
        1.0
    );
    assert_eq!(
        metric(&text, &format!("{made}{{operation=\"SearchFaces\"}}")),
        1.0
    );
    let cost = "facegraph_rekognition_estimated_cost";
    assert_eq!(
        metric(
            &text,
            &format!("{cost}{{calls=\"avoided\",currency=\"USD\"}}")
        ),
        0.002
    );
    assert_eq!(
        metric(&text, &format!("{cost}{{calls=\"made\",currency=\"USD\"}}")),
        0.002
    );
}

/// Every match of a data directory as (the two external image ids, sorted; similarity).
fn matches_in(ep: &Endpoint, data: &str) -> std::collections::BTreeMap<(String, String), f64> {
    matches::by_external_ids(&ok(&facegraph_in(ep, data, &["matches", "--json"], &[])))
}

#[test]
fn a_routed_collection_on_rekognition_is_searched_across_its_family_by_image() {
    let ep = Endpoint::plain();
    let dir = photo_dir(&ep, &PHOTOS);
    let csv = ep.dir.path().join("subjects.csv");
    let mut rows = "external_image_id,subject_id\n".to_owned();
    for (i, p) in PHOTOS.iter().enumerate() {
        let tenant = if p.starts_with("biden") {
            "globex"
        } else {
            "acme"
        };
        rows.push_str(&format!("{p},{tenant}:c-{i}\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    let config = ep.dir.path().join("routes.toml");
    std::fs::write(
        &config,
        "[[routes]]\ncollection_id = \"customers\"\nkey = \"tenant\"\nmax_faces = 2\n",
    )
    .unwrap();
    let ingest = |data: &str, collection: &str, config: Option<&Path>| {
        let mut args = vec![
            "ingest",
            "--collection-id",
            collection,
            "--subjects",
            csv.to_str().unwrap(),
            dir.to_str().unwrap(),
        ];
        if let Some(c) = config {
            args.extend(["--config", c.to_str().unwrap()]);
        }
        ok(&facegraph_in(&ep, data, &args, &[]))
    };
    let routed = ingest("routed", "customers", Some(&config));
    ingest("plain", "plain", None);

    // The service holds the family: acme's four faces two by two, globex's one.
    let mut listed: Vec<String> = ep
        .local
        .list_collections()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "customers",
            "customers.acme.0001",
            "customers.acme.0002",
            "customers.globex.0001",
            "plain"
        ]
    );
    // Rekognition compares a face only within its collection: the other collection of the
    // tenant was searched with the upload's image.
    let made = routed
        .lines()
        .find(|l| l.starts_with("  made: "))
        .unwrap_or_else(|| panic!("{routed}"));
    assert!(made.contains("SearchFacesByImage"), "{made}");
    // And the pipeline found what one collection finds: the same pairs, the similarities of the
    // image searched again equal to the stored face's within rounding.
    let (with_routes, without) = (matches_in(&ep, "routed"), matches_in(&ep, "plain"));
    assert!(without.len() >= 3, "{without:?}");
    assert_eq!(
        with_routes.keys().collect::<Vec<_>>(),
        without.keys().collect::<Vec<_>>()
    );
    for (pair, s) in &without {
        assert!(
            (with_routes[pair] - s).abs() < 1e-3,
            "{pair:?}: {} vs {s}",
            with_routes[pair]
        );
    }
}
