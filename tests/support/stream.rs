//! What the stream's tests share: a set of topics of their own on the test broker (named after the
//! test, so that tests share one broker), `facegraph stream` workers run as processes, a producer,
//! a reader of whole topics, the groups' committed offsets, and the wait until the stream has
//! finished everything sent.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facegraph::store::sqlite::SqliteStore;
use facegraph::store::GraphStore;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The test broker, from the environment; a test without one fails, it is never skipped.
pub fn brokers() -> String {
    std::env::var("FACEGRAPH_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "FACEGRAPH_KAFKA_BROKERS is not set: the stream's tests need a Kafka broker. Start one \
             with `scripts/kafka start` and `eval \"$(scripts/kafka env)\"` (scripts/test does both)"
        )
    })
}

/// The stream's session timeout in the tests' settings: how long the broker keeps a member that
/// died without leaving.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Polls `done` every 100 ms until it holds, failing with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One test's topics, consumer groups, config file and data directories.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub brokers: String,
    pub partitions: u32,
}

impl Setup {
    /// Topics `<test>-<pid>-<n>.<topic>` with `partitions` partitions, and a config file naming
    /// them; `extra` is added to the `[kafka]` table.
    pub fn new(test: &str, partitions: u32, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let prefix = format!("{test}-{}-{nanos}", std::process::id());
        let config = format!(
            "[kafka]\ngroup = \"{prefix}\"\nuploads_topic = \"{prefix}.uploads\"\n\
             faces_topic = \"{prefix}.faces\"\nhits_topic = \"{prefix}.hits\"\n\
             matches_topic = \"{prefix}.matches\"\ndlq_topic = \"{prefix}.dlq\"\n\
             partitions = {partitions}\nsession_timeout_ms = {}\n{extra}\n",
            SESSION_TIMEOUT.as_millis()
        );
        std::fs::write(dir.path().join("facegraph.toml"), config).unwrap();
        Self {
            dir,
            prefix,
            brokers: brokers(),
            partitions,
        }
    }

    pub fn topic(&self, which: &str) -> String {
        format!("{}.{which}", self.prefix)
    }

    pub fn group(&self, stage: &str) -> String {
        format!("{}.{stage}", self.prefix)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `facegraph` with this setup's config and data directory `data`, and nothing of the
    /// caller's environment that would change them.
    pub fn facegraph(&self, data: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_facegraph"));
        c.arg("--config")
            .arg(self.path("facegraph.toml"))
            .arg("--data-dir")
            .arg(self.path(data))
            .env("FACEGRAPH_KAFKA_BROKERS", &self.brokers)
            .env_remove("FACEGRAPH_KAFKA_GROUP")
            .env_remove("FACEGRAPH_CONFIG")
            .env_remove("FACEGRAPH_DATA_DIR")
            .env_remove("FACEGRAPH_RULES")
            .env_remove("FACEGRAPH_COLLECTION_ID")
            .env_remove("FACEGRAPH_STORE")
            .env_remove("FACEGRAPH_CRASH_AT");
        c
    }

    /// Starts `facegraph stream ARGS` on data directory `data`.
    pub fn worker(&self, data: &str, args: &[&str]) -> Worker {
        self.worker_with(data, args, |_| {})
    }

    /// Starts `facegraph ARGS` (any long-running command) on data directory `data`.
    pub fn process(&self, data: &str, args: &[&str]) -> Worker {
        let mut c = self.facegraph(data);
        c.args(args);
        Worker::spawn(c)
    }

    /// Like [`Setup::worker`], with more settings of the command (environment, store).
    pub fn worker_with(
        &self,
        data: &str,
        args: &[&str],
        more: impl FnOnce(&mut Command),
    ) -> Worker {
        let mut c = self.facegraph(data);
        c.arg("stream").args(args);
        more(&mut c);
        Worker::spawn(c)
    }

    /// The embedded store of data directory `data`, opened as a reader.
    pub fn store(&self, data: &str) -> SqliteStore {
        SqliteStore::open(&self.path(data).join("facegraph.sqlite3")).unwrap()
    }

    /// Produces messages (key, value) to `topic` and waits for the broker to have them.
    pub fn produce(&self, topic: &str, messages: &[(String, Vec<u8>)]) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", "5")
            .create()
            .unwrap();
        ensure_topic(&self.brokers, topic, self.partitions);
        for (key, value) in messages {
            loop {
                match producer.send(BaseRecord::to(topic).key(key).payload(value)) {
                    Ok(()) => break,
                    Err((e, _)) => {
                        // The local queue is full: let it drain.
                        assert!(e.to_string().contains("Queue full"), "cannot produce: {e}");
                        producer.poll(Duration::from_millis(50));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Every message of `topic`, by partition and offset.
    pub fn read_all(&self, topic: &str) -> Vec<Record> {
        read_all(&self.brokers, topic)
    }

    /// The offsets committed by a stage's group on its topic, by partition.
    pub fn committed(&self, stage: &str, topic: &str) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", self.group(stage))
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        for p in 0..partitions(&self.brokers, topic) {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .unwrap();
        committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1).max(0)))
            .collect()
    }

    /// The high watermarks of `topic`, by partition.
    pub fn ends(&self, topic: &str) -> BTreeMap<i32, i64> {
        ends(&self.brokers, topic)
    }

    /// Whether every stage's group has committed everything of its topic and the outbox of the
    /// store of `data` has sent every event of every judgement.
    pub fn drained(&self, data: &str) -> bool {
        self.stages_drained() && outbox_drained(&self.store(data))
    }

    /// Each stage's committed offsets and its topic's ends, for a failure's message.
    pub fn describe(&self) -> String {
        [
            ("index", "uploads"),
            ("search", "faces"),
            ("adjudicate", "hits"),
        ]
        .iter()
        .map(|(stage, topic)| {
            let topic = self.topic(topic);
            format!(
                "{stage}: committed {:?} of {:?}",
                self.committed(stage, &topic),
                self.ends(&topic)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
    }

    /// Waits, after the stages' workers died without leaving their groups (SIGKILL, a crash
    /// point), until the broker has dropped them: a session outlives its member by the session
    /// timeout, and the test broker (tansu) keeps the partitions assigned to a dropped member
    /// unassigned when a new member joined before the drop. tansu answers no group listing, so
    /// the timeout itself, with a margin, is what there is to wait on.
    pub fn wait_members_dropped(&self) {
        std::thread::sleep(SESSION_TIMEOUT + Duration::from_secs(3));
    }

    /// Whether every stage's group has committed everything of its topic.
    pub fn stages_drained(&self) -> bool {
        [
            ("index", "uploads"),
            ("search", "faces"),
            ("adjudicate", "hits"),
        ]
        .iter()
        .all(|(stage, topic)| {
            let topic = self.topic(topic);
            self.committed(stage, &topic) == self.ends(&topic)
        })
    }
}

/// Whether the outbox has derived and sent the events of every judgement in the store.
pub fn outbox_drained(store: &dyn GraphStore) -> bool {
    let cursor: i64 = store
        .stream_cursor("match_events")
        .unwrap()
        .map_or(0, |c| c.parse().unwrap());
    store.judgements_after(cursor, 1).unwrap().is_empty()
        && store.unsent_match_events(1).unwrap().is_empty()
}

/// A message read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// Creates `topic` when missing (a test produces before the stream has created its topics).
pub fn ensure_topic(brokers: &str, topic: &str, partitions: u32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The stream creates the same topics with the same partitions; whichever comes first, a
    // second create is refused and changes nothing.
    let _ = rt.block_on(admin.create_topics(
        &[NewTopic::new(
            topic,
            i32::try_from(partitions).unwrap(),
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new(),
    ));
}

fn partitions(brokers: &str, topic: &str) -> i32 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len() as i32)
}

fn ends(brokers: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..partitions(brokers, topic))
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            (p, high)
        })
        .collect()
}

fn read_all(brokers: &str, topic: &str) -> Vec<Record> {
    let ends = ends(brokers, topic);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in ends.keys() {
        list.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    let mut next: BTreeMap<i32, i64> = ends.keys().map(|p| (*p, 0)).collect();
    let start = Instant::now();
    while next.iter().any(|(p, n)| *n < ends[p]) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "reading {topic} took too long"
        );
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let mut headers = BTreeMap::new();
        if let Some(h) = m.headers() {
            for Header { key, value } in h.iter() {
                headers.insert(
                    key.to_owned(),
                    String::from_utf8_lossy(value.unwrap_or_default()).into_owned(),
                );
            }
        }
        next.insert(m.partition(), m.offset() + 1);
        out.push(Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// A `facegraph stream` process; killed when dropped.
pub struct Worker {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    fn spawn(mut c: Command) -> Self {
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self { child, stderr }
    }

    /// What it wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The port of its metrics server (`--listen 127.0.0.1:0`), once it says.
    pub fn metrics_port(&self) -> u16 {
        self.port_after("metrics on http://127.0.0.1:")
    }

    /// The port it names after `marker` on standard error, once it does.
    pub fn port_after(&self, marker: &str) -> u16 {
        let mut port = None;
        wait_until(Duration::from_secs(120), "the listening address", || {
            port = self.stderr.lock().unwrap().iter().find_map(|l| {
                l.split(marker)
                    .nth(1)?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            });
            port.is_some()
        });
        port.unwrap()
    }

    /// Its metrics, as Prometheus text.
    pub fn metrics(&self, port: u16) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    }

    /// Sends SIGTERM and waits for it to exit (at most 30 s, the shutdown's promise): its status
    /// and how long it took.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let start = Instant::now();
        signal(&self.child, "TERM");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the worker did not stop within 30 s of SIGTERM:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        signal(&self.child, "KILL");
        self.child.wait().unwrap();
    }

    /// Waits for it to exit by itself (a crash point), at most `limit`.
    pub fn wait_exit(mut self, limit: Duration) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.stderr());
            }
            assert!(
                start.elapsed() < limit,
                "the worker did not exit:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(&self.child, "KILL");
            let _ = self.child.wait();
        }
    }
}

/// Sends a signal (`TERM`, `KILL`) with kill(1): the crate forbids unsafe code, libc's kill among it.
fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {name} {} failed", child.id());
}

/// A path's text, for messages.
pub fn text(p: &Path) -> String {
    p.display().to_string()
}

/// An upload message as JSON.
pub fn upload(image: &str, external: &str, subject: Option<&str>, key: Option<&str>) -> Vec<u8> {
    let mut v = serde_json::json!({"version": 1, "image": image, "external_image_id": external});
    if let Some(s) = subject {
        v["subject_id"] = s.into();
    }
    if let Some(k) = key {
        v["idempotency_key"] = k.into();
    }
    serde_json::to_vec(&v).unwrap()
}
