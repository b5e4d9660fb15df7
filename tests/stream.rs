//! The streaming service end to end against a real Kafka-protocol broker (tansu from
//! `scripts/kafka`; `FACEGRAPH_KAFKA_BROKERS` names it, and a test fails when it is missing): the
//! pipeline on the sample photos, dead letters, async mode's commit watermark, the Bloom filter,
//! the backfill, a worker killed at random moments, and adjudication workers sharing a group on the
//! Bolt test server. Each test uses topics and groups of its own, so tests share one broker.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/stream.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use facegraph::engine::local::generated::{generated_image, slow_generated_image};
use facegraph::engine::local::models::samples_dir;
use facegraph::model::Verdict;
use facegraph::model::{ContentHash, ExternalImageId, ImageId};
use facegraph::settings::{Overrides, Settings};
use facegraph::store::GraphStore;
use facegraph::stream::bloom::{KeyFilter, FILE_NAME, HEADER_BYTES};
use serde_json::Value;
use support::{text, upload, wait_until, Record, Setup};

/// How long a test waits for the stream to finish what it was sent.
const DRAIN: Duration = Duration::from_secs(240);

fn samples() -> PathBuf {
    let dir = samples_dir(&Settings::load(&Overrides::default()).unwrap().models_dir);
    assert!(
        dir.join("biden.jpg").is_file(),
        "{} has no sample photos: run `facegraph models fetch` (scripts/test does) before the tests",
        dir.display()
    );
    dir
}

/// The events of a matches topic.
struct Events {
    /// The latest event of each pair, by key.
    last: BTreeMap<String, Value>,
    /// Every copy of each event, by id.
    by_id: BTreeMap<String, Vec<Vec<u8>>>,
    /// The distinct events of each pair, in the order they were sent.
    by_pair: BTreeMap<String, Vec<Value>>,
}

fn events(records: &[Record]) -> Events {
    let mut e = Events {
        last: BTreeMap::new(),
        by_id: BTreeMap::new(),
        by_pair: BTreeMap::new(),
    };
    // A pair's events share a key, so one partition: its offsets are the order they were sent in.
    for r in records {
        let v = r.json();
        let id = v["event_id"].as_str().unwrap().to_owned();
        let copies = e.by_id.entry(id).or_default();
        let key = r.key.clone().unwrap();
        if copies.is_empty() {
            e.by_pair.entry(key.clone()).or_default().push(v.clone());
        }
        copies.push(r.payload.clone());
        e.last.insert(key, v);
    }
    e
}

/// Checks what the issue promises of the events: every confirmed pair of the store has an event
/// whose latest verdict is its own, every pair's latest event says the pair's current verdict, a
/// repeated event is the same bytes, and a pair's distinct events change the verdict each time
/// (so nothing but a repeat of the same event is ever sent twice). Returns the repeated copies.
fn check_events(store: &dyn GraphStore, records: &[Record]) -> usize {
    let e = events(records);
    for edge in store.edges(None).unwrap() {
        let key = format!("{}:{}", edge.edge.pair.a(), edge.edge.pair.b());
        let verdict = edge.judgement.as_ref().map(|j| j.verdict);
        match e.last.get(&key) {
            Some(last) => assert_eq!(
                last["verdict"].as_str(),
                verdict.map(Verdict::as_str),
                "the last event of {key} says the pair's verdict"
            ),
            None => assert_ne!(
                verdict,
                Some(Verdict::Confirmed),
                "the confirmed pair {key} has no event"
            ),
        }
    }
    let mut repeats = 0;
    for (id, copies) in &e.by_id {
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "event {id} was sent with different content"
        );
        repeats += copies.len() - 1;
    }
    for (key, sent) in &e.by_pair {
        assert_eq!(
            sent[0]["verdict"], "confirmed",
            "{key}: first a confirmation"
        );
        assert!(sent[0]["previous_verdict"].is_null(), "{key}");
        for w in sent.windows(2) {
            assert_ne!(w[0]["verdict"], w[1]["verdict"], "{key}: {sent:#?}");
            assert_eq!(w[1]["previous_verdict"], w[0]["verdict"], "{key}");
        }
    }
    repeats
}

#[test]
fn the_pipeline_matches_two_customers_dead_letters_what_cannot_succeed_and_a_replay_sends_nothing()
{
    let setup = Setup::new("pipeline", 2, "");
    let photos = setup.path("photos");
    std::fs::create_dir(&photos).unwrap();
    for p in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
        std::fs::copy(samples().join(p), photos.join(p)).unwrap();
    }
    std::fs::write(photos.join("broken.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
    let worker = setup.worker("data", &["--listen", "127.0.0.1:0"]);
    let port = worker.metrics_port();

    let good: Vec<(String, Vec<u8>)> = vec![
        (
            "obama".into(),
            upload(
                &text(&photos.join("obama.jpg")),
                "obama",
                Some("cust-1"),
                None,
            ),
        ),
        (
            "obama2".into(),
            upload(
                &format!("file://{}", text(&photos.join("obama2.jpg"))),
                "obama2",
                Some("cust-2"),
                Some("upload-obama2"),
            ),
        ),
        (
            "obama3".into(),
            upload(&text(&photos.join("obama3.jpg")), "obama3", None, None),
        ),
        (
            "biden".into(),
            upload(
                &text(&photos.join("biden.jpg")),
                "biden",
                Some("cust-3"),
                None,
            ),
        ),
    ];
    let bad: Vec<(String, Vec<u8>)> = vec![
        ("json".into(), b"{\"version\": 1, \"image\": ".to_vec()),
        (
            "missing".into(),
            upload(&text(&photos.join("nowhere.jpg")), "missing", None, None),
        ),
        (
            "broken".into(),
            upload(&text(&photos.join("broken.jpg")), "broken", None, None),
        ),
        (
            "s3".into(),
            upload("s3://bucket/key.jpg", "in-s3", None, None),
        ),
    ];
    // The bad ones go first: the good ones behind them show that the stream goes on.
    setup.produce(&setup.topic("uploads"), &bad);
    setup.produce(&setup.topic("uploads"), &good);
    wait_until(DRAIN, "the stream to finish the uploads", || {
        setup.drained("data")
    });

    // Dead letters: the original bytes, and why.
    let dlq = setup.read_all(&setup.topic("dlq"));
    let uploads = setup.read_all(&setup.topic("uploads"));
    let reasons: BTreeMap<String, &Record> = dlq
        .iter()
        .map(|r| (r.headers["reason"].clone(), r))
        .collect();
    assert_eq!(
        reasons.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "invalid_image",
            "invalid_message",
            "missing_file",
            "unsupported_source"
        ],
        "{dlq:#?}"
    );
    for (key, payload) in &bad {
        let d = dlq
            .iter()
            .find(|r| r.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no dead letter for {key}"));
        assert_eq!(&d.payload, payload, "the original bytes");
        assert_eq!(d.headers["stage"], "index");
        assert_eq!(d.headers["attempts"], "1");
        assert_eq!(d.headers["source_topic"], setup.topic("uploads"));
        let source = uploads
            .iter()
            .find(|u| u.key.as_deref() == Some(key))
            .unwrap();
        assert_eq!(d.headers["source_partition"], source.partition.to_string());
        assert_eq!(d.headers["source_offset"], source.offset.to_string());
    }
    assert!(reasons["missing_file"].headers["detail"].contains("nowhere.jpg"));

    // The match across two customers, in the shape the issue gives.
    let matches = setup.read_all(&setup.topic("matches"));
    let Events { last, by_id, .. } = events(&matches);
    let across: Vec<&Value> = last
        .values()
        .filter(|e| {
            let subjects = BTreeSet::from([e["subject_a"].as_str(), e["subject_b"].as_str()]);
            subjects == BTreeSet::from([Some("cust-1"), Some("cust-2")])
        })
        .collect();
    assert_eq!(across.len(), 1, "{matches:#?}");
    let e = across[0];
    assert_eq!(e["verdict"], "confirmed");
    assert!(e["previous_verdict"].is_null());
    assert_eq!(e["version"], 1);
    assert_eq!(e["event_id"].as_str().unwrap().len(), 32);
    let ext = BTreeSet::from([
        e["external_image_id_a"].as_str().unwrap(),
        e["external_image_id_b"].as_str().unwrap(),
    ]);
    assert_eq!(ext, BTreeSet::from(["obama", "obama2"]));
    assert!(e["similarity"].as_f64().unwrap() >= 98.5, "{e}");
    assert!(e["score"].as_f64().is_some());
    assert!(e["rule_set"].as_str().unwrap().starts_with("rs-"));
    assert_eq!(e["reasons"][0]["code"], "similarity_band");
    assert!(e["reasons"][0]["message"].is_string() && e["reasons"][0]["evidence"].is_object());
    assert!(e["at"].as_str().unwrap().ends_with('Z'));
    let keyed = matches
        .iter()
        .find(|r| r.json()["event_id"] == e["event_id"])
        .unwrap();
    assert_eq!(
        keyed.key.as_deref().unwrap(),
        format!(
            "{}:{}",
            e["face_a"].as_str().unwrap(),
            e["face_b"].as_str().unwrap()
        ),
        "keyed by the face pair"
    );
    assert!(
        !serde_json::to_string(&last).unwrap().contains("cust-3"),
        "Biden matches no one"
    );
    assert!(by_id.values().all(|p| p.len() == 1), "no event twice");

    // Every confirmed pair of the graph has its event.
    let store = setup.store("data");
    assert_eq!(check_events(&store, &matches), 0);
    let stats = store.stats().unwrap();
    assert_eq!(stats.images, 4, "the undecodable image is not kept");

    let metrics = worker.metrics(port);
    for line in [
        "facegraph_stream_dead_letters_total{reason=\"missing_file\",stage=\"index\"} 1",
        "facegraph_stream_messages_total{outcome=\"processed\",stage=\"index\"} 4",
        "facegraph_stream_messages_per_second{stage=\"search\"}",
        "facegraph_stream_lag_messages{partition=\"0\",stage=\"index\"",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    // A replay of the same uploads adds nothing and sends nothing.
    let faces_before = setup.read_all(&setup.topic("faces")).len();
    setup.produce(&setup.topic("uploads"), &good);
    wait_until(DRAIN, "the stream to finish the replay", || {
        setup.drained("data")
    });
    assert_eq!(setup.store("data").stats().unwrap(), stats);
    assert_eq!(setup.read_all(&setup.topic("matches")).len(), matches.len());
    assert_eq!(
        setup.read_all(&setup.topic("faces")).len(),
        faces_before,
        "complete uploads send nothing downstream"
    );
    let metrics = worker.metrics(port);
    assert!(
        metrics
            .contains("facegraph_stream_messages_total{outcome=\"duplicate\",stage=\"index\"} 4"),
        "{metrics}"
    );

    let (status, took) = worker.terminate();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(30));
}

/// Writes generated images; returns their paths.
fn write_images(setup: &Setup, images: &[(String, Vec<u8>)]) -> Vec<PathBuf> {
    let dir = setup.path("images");
    std::fs::create_dir_all(&dir).unwrap();
    images
        .iter()
        .map(|(name, bytes)| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

/// The upload id of bytes under an external image id, as the store keys it.
fn upload_id(bytes: &[u8], external: &str) -> ImageId {
    ImageId::of_upload(
        &ContentHash::of_bytes(bytes),
        Some(&ExternalImageId::parse(external).unwrap()),
    )
}

#[test]
fn async_mode_commits_no_offset_past_an_unfinished_message() {
    let setup = Setup::new("watermark", 1, "");
    let mut images = vec![("fast-0".to_owned(), generated_image(100, 1, 1))];
    images.push(("slow".to_owned(), slow_generated_image(200, 1, 1, 15_000)));
    for i in 1..5 {
        images.push((format!("fast-{i}"), generated_image(100 + i, 1, 1)));
    }
    let paths = write_images(&setup, &images);
    let uploads: Vec<(String, Vec<u8>)> = images
        .iter()
        .zip(&paths)
        .map(|((name, _), p)| (name.clone(), upload(&text(p), name, None, None)))
        .collect();
    let args = [
        "--engine",
        "generated",
        "--stage",
        "index",
        "--mode",
        "async",
        "--concurrency",
        "4",
    ];
    let worker = setup.worker("data", &args);
    let topic = setup.topic("uploads");
    setup.produce(&topic, &uploads);
    // Offsets: 0 fast, 1 slow, 2-5 fast. The first is committed...
    wait_until(DRAIN, "the first upload to be committed", || {
        setup.committed("index", &topic) == BTreeMap::from([(0, 1)])
    });
    // ... and the four behind the slow one finish while it runs.
    wait_until(DRAIN, "the fast uploads", || {
        setup.read_all(&setup.topic("faces")).len() == 5
    });
    for _ in 0..10 {
        assert_eq!(
            setup.committed("index", &topic),
            BTreeMap::from([(0, 1)]),
            "committed past the slow upload, which is still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let slow = upload_id(&images[1].1, "slow");
    assert!(
        setup
            .store("data")
            .images(std::slice::from_ref(&slow))
            .unwrap()[0]
            .pending
    );
    // Killed while the slow upload runs: it is not lost.
    worker.kill();
    let worker = setup.worker("data", &args);
    wait_until(DRAIN, "every upload to be committed", || {
        setup.committed("index", &topic) == BTreeMap::from([(0, 6)])
    });
    let faces = setup.read_all(&setup.topic("faces"));
    assert!(
        faces.iter().any(|f| f.json()["image_id"] == slow.as_str()),
        "the slow upload was indexed after the restart"
    );
    let (status, _) = worker.terminate();
    assert!(status.success());
}

#[test]
fn the_bloom_filter_survives_a_restart_and_a_false_positive_drops_nothing() {
    let setup = Setup::new(
        "bloom",
        1,
        "bloom_items = 1000\nbloom_false_positive_rate = 0.01",
    );
    let images: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| (format!("img-{i}"), generated_image(300 + i, 1, 1)))
        .collect();
    let paths = write_images(&setup, &images);
    let uploads: Vec<(String, Vec<u8>)> = images
        .iter()
        .zip(&paths)
        .enumerate()
        .map(|(i, ((name, _), p))| {
            let key = format!("k-{i}");
            (name.clone(), upload(&text(p), name, None, Some(&key)))
        })
        .collect();
    let args = ["--engine", "generated", "--listen", "127.0.0.1:0"];
    let worker = setup.worker("data", &args);
    setup.produce(&setup.topic("uploads"), &uploads[..5]);
    wait_until(DRAIN, "the first uploads", || setup.drained("data"));
    let (status, _) = worker.terminate();
    assert!(status.success());

    // The keys are in the file after the restart...
    let path = setup.path("data").join(FILE_NAME);
    let filter = KeyFilter::open(&path, 1000, 0.01).unwrap();
    for i in 0..5 {
        assert!(filter.may_contain(format!("key:k-{i}").as_bytes()), "k-{i}");
    }
    drop(filter);
    // ... and the stream finds them there: a replay asks the store, and does nothing.
    let worker = setup.worker("data", &args);
    let port = worker.metrics_port();
    setup.produce(&setup.topic("uploads"), &uploads[..5]);
    wait_until(DRAIN, "the replay", || setup.drained("data"));
    let metrics = worker.metrics(port);
    for line in [
        "facegraph_stream_bloom_answers_total{answer=\"maybe_seen\"} 5",
        "facegraph_stream_messages_total{outcome=\"duplicate\",stage=\"index\"} 5",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(!metrics.contains("answer=\"false_positive\""), "{metrics}");
    let (status, _) = worker.terminate();
    assert!(status.success());

    // A filter that answers "maybe seen" for every key (every bit set) drops nothing: the store
    // says the new keys are new.
    let (m, _) = KeyFilter::open(&path, 1000, 0.01).unwrap().shape();
    let ones = vec![0xffu8; usize::try_from(m / 8).unwrap()];
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[HEADER_BYTES as usize..].copy_from_slice(&ones);
    std::fs::write(&path, bytes).unwrap();
    let worker = setup.worker("data", &args);
    let port = worker.metrics_port();
    setup.produce(&setup.topic("uploads"), &uploads[5..]);
    wait_until(DRAIN, "the new uploads", || setup.drained("data"));
    let metrics = worker.metrics(port);
    assert!(
        metrics.contains("facegraph_stream_bloom_answers_total{answer=\"false_positive\"} 3"),
        "{metrics}"
    );
    let ids: Vec<ImageId> = images
        .iter()
        .map(|(name, bytes)| upload_id(bytes, name))
        .collect();
    let stored = setup.store("data").images(&ids).unwrap();
    assert_eq!(stored.len(), 8);
    assert!(stored.iter().all(|i| !i.pending && i.face_count == 1));
    let (status, _) = worker.terminate();
    assert!(status.success());
}
