//! The match graph in Neo4j, over Bolt with `neo4rs`: the production store that several facegraph
//! instances share and that analysts open in Neo4j Browser.
//!
//! The graph model is the one of `docs/ARCHITECTURE.md`: `(:Face)-[:IN_IMAGE]->(:Image)`,
//! `(:Image)-[:OF_SUBJECT]->(:Subject)`, `(:Face)-[:IN_COLLECTION]->(:Collection)`, one
//! `(:Face)-[:SIMILAR]->(:Face)` per unordered pair (from the face whose id sorts first), and the
//! analysts' `SAME_PERSON` / `DIFFERENT_PERSON` relationships, which are only ever added. Beside it:
//! `(:Search)` nodes (which face was searched, against which collection, with what bound),
//! `(:Judgement)` nodes (every verdict an edge ever had), `(:SubjectLink)` nodes (a subject named for
//! an external image id before any image with it arrived) and `(:Counter)` nodes that number faces,
//! decisions and searches in insertion order.
//!
//! Every method is one explicit transaction, retried with backoff when the server reports a
//! transient failure (a deadlock, a leader switch, a dropped connection); other failures, a
//! constraint violation among them, are returned at once. Bulk writes go through `UNWIND` in
//! batches of [`BATCH_ROWS`] rows; nodes are written with `MERGE` on their unique keys, so writing
//! the same input again adds nothing. The uniqueness constraints of `cypher/schema.cypher` are
//! created when the store is opened, before any write.
//!
//! The trait is synchronous; the store runs the driver on a small runtime of its own. Call it from
//! plain threads or `spawn_blocking`, never from inside an async task.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use neo4rs::{query, BoltMap, BoltType, ConfigBuilder, Graph, Neo4jErrorKind, Query, Row, Txn};
use secrecy::{ExposeSecret, SecretString};

use super::codec::{group_clusters, reasons_from_json, reasons_to_json};
use super::{
    ClusterMembership, EdgeRecord, FaceRecord, GraphStore, IngestBatch, IngestOutcome, StoreError,
    StoreStats, VerdictUpdate,
};
use crate::model::{
    AgeRange, BoundingBox, CollectionId, Confidence, Decision, DecisionKind, Edge, ExternalImageId,
    Face, FaceAttributes, FaceId, FacePair, Gender, GenderValue, ImageId, Judgement, Pose, Quality,
    SearchRecord, Similarity, SubjectId, Timestamp, Verdict,
};
use crate::settings::Neo4jSettings;

/// Rows per `UNWIND` statement: large enough that round trips do not dominate, small enough that
/// one statement's parameters stay a few megabytes.
pub const BATCH_ROWS: usize = 10_000;

/// The schema, applied when the store opens and by `facegraph neo4j init`.
pub const SCHEMA: &str = include_str!("../../../cypher/schema.cypher");

/// How often a transaction that failed transiently is tried in all.
const ATTEMPTS: u32 = 6;

/// How often a transaction that broke a uniqueness constraint is tried in all.
const RACE_ATTEMPTS: u32 = 3;

/// Where and as whom to connect.
#[derive(Clone)]
pub struct Login {
    /// `bolt://HOST:PORT` or `neo4j://HOST:PORT`.
    pub url: String,
    /// The user.
    pub user: String,
    /// The password.
    pub password: SecretString,
    /// The database, selected by name on every transaction.
    pub database: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The login for `url` from the settings; no password is an empty one.
    pub fn from_settings(url: &str, settings: &Neo4jSettings) -> Self {
        Self {
            url: url.to_owned(),
            user: settings.user.clone(),
            password: settings
                .password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
            database: settings.database.clone(),
        }
    }
}

/// The graph store on a Neo4j server (or another server speaking Bolt and Cypher).
pub struct Neo4jStore {
    graph: Graph,
    database: String,
    url: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Neo4jStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jStore")
            .field("url", &self.url)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Drop for Neo4jStore {
    fn drop(&mut self) {
        // A runtime may not be dropped inside another one's task; this works anywhere.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Why a unit of work stopped: the driver failed, or the store refuses the input.
enum Failure {
    Driver(neo4rs::Error),
    Store(StoreError),
}

impl From<neo4rs::Error> for Failure {
    fn from(e: neo4rs::Error) -> Self {
        Self::Driver(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

type Work<T> = Result<T, Failure>;

/// A failure the server says may succeed when tried again, or a connection that broke.
fn is_transient(e: &neo4rs::Error) -> bool {
    match e {
        neo4rs::Error::Neo4j(e) => {
            matches!(e.kind(), Neo4jErrorKind::Transient)
                || e.code().starts_with("Neo.TransientError.")
                || e.code() == "Neo.ClientError.Cluster.NotALeader"
        }
        neo4rs::Error::IOError { .. }
        | neo4rs::Error::ConnectionError
        | neo4rs::Error::ConnectionTimedOut
        | neo4rs::Error::ServerUnavailableError(_) => true,
        _ => false,
    }
}

fn is_constraint_violation(e: &neo4rs::Error) -> bool {
    matches!(e, neo4rs::Error::Neo4j(e) if e.code() == "Neo.ClientError.Schema.ConstraintValidationFailed")
}

fn driver_error(operation: &'static str, e: neo4rs::Error) -> StoreError {
    StoreError::Backend {
        operation,
        source: Box::new(e),
    }
}

/// A caller's mistake that the store refuses (a verdict on a pair without an edge, say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InvalidWrite(String);

impl Neo4jStore {
    /// Connects, checks that the database answers, and applies [`SCHEMA`].
    pub fn connect(login: &Login) -> Result<Self, StoreError> {
        const OP: &str = "connect";
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("facegraph-neo4j")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend {
                operation: OP,
                source: Box::new(e),
            })?;
        let config = ConfigBuilder::default()
            .uri(login.url.as_str())
            .user(login.user.as_str())
            .password(login.password.expose_secret())
            .db(login.database.as_str())
            .max_connections(8)
            .connection_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| driver_error(OP, e))?;
        let graph = runtime
            .block_on(async { Graph::connect(config) })
            .map_err(|e| driver_error(OP, e))?;
        let store = Self {
            graph,
            database: login.database.clone(),
            url: login.url.clone(),
            runtime: Some(runtime),
        };
        store.transaction(OP, async |tx| {
            rows(tx, query("RETURN 1 AS one")).await?;
            Ok(())
        })?;
        store.apply_schema()?;
        Ok(store)
    }

    /// Applies [`SCHEMA`]: every statement is idempotent. Returns how many statements ran.
    pub fn apply_schema(&self) -> Result<usize, StoreError> {
        let statements = schema_statements(SCHEMA);
        for statement in &statements {
            // Schema changes may not share a transaction with other statements in Neo4j.
            self.transaction("apply the schema", async |tx| {
                tx.run(query(statement)).await?;
                Ok(())
            })?;
        }
        Ok(statements.len())
    }

    /// Deletes every node and relationship of the database, relationships first, a few thousand
    /// per transaction (one huge transaction would hold the whole graph in the server's memory): for
    /// tests and benchmarks that need an empty graph.
    pub fn delete_everything(&self) -> Result<(), StoreError> {
        for cypher in [
            "MATCH ()-[r]->() WITH r LIMIT 5000 DELETE r RETURN count(*) AS deleted",
            "MATCH (n) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS deleted",
        ] {
            loop {
                let deleted = self.transaction("delete everything", async |tx| {
                    let found = rows(tx, query(cypher)).await?;
                    Ok(found.first().map_or(Ok(0), |r| int(r, "deleted"))?)
                })?;
                if deleted == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Runs one read-only query and returns its rows (for investigation queries and their tests).
    pub fn read_rows(&self, cypher: &str, params: BoltMap) -> Result<Vec<Row>, StoreError> {
        self.transaction("run a query", async |tx| {
            Ok(rows(tx, query(cypher).with_params(params.clone())).await?)
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime lives until the store is dropped"),
        }
    }

    /// Runs `work` in one transaction on the store's database and commits it; a transient failure
    /// rolls back and tries again after a growing pause. A uniqueness violation is tried again too,
    /// up to [`RACE_ATTEMPTS`] attempts in all: every write merges on unique ids (or creates only
    /// what it has just read to be absent), so a violation means that another writer created the
    /// same node first (servers with optimistic locking, ArcadeDB among them, report that race this
    /// way, at the statement or at commit), and the next attempt reads that node and merges into
    /// it. A violation that persists is an error.
    fn transaction<T>(
        &self,
        operation: &'static str,
        work: impl AsyncFn(&mut Txn) -> Work<T>,
    ) -> Result<T, StoreError> {
        self.block_on(async {
            let mut pause = Duration::from_millis(50);
            for attempt in 1..=ATTEMPTS {
                let error = match self.graph.start_txn_on(self.database.as_str()).await {
                    Err(e) => e,
                    Ok(mut tx) => match work(&mut tx).await {
                        Ok(value) => match tx.commit().await {
                            Ok(_) => return Ok(value),
                            Err(e) => e,
                        },
                        Err(failure) => {
                            // The outcome of a rollback does not matter: an uncommitted
                            // transaction is discarded by the server when its connection ends.
                            let _ = tx.rollback().await;
                            match failure {
                                Failure::Store(e) => return Err(e),
                                Failure::Driver(e) => e,
                            }
                        }
                    },
                };
                let raced = attempt < RACE_ATTEMPTS && is_constraint_violation(&error);
                if !(is_transient(&error) || raced) || attempt == ATTEMPTS {
                    return Err(driver_error(operation, error));
                }
                tracing::warn!(%error, attempt, operation, "transient Neo4j failure; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            unreachable!("the last attempt returns")
        })
    }
}

/// The statements of a Cypher script: `;`-separated, `//` comments and blank lines dropped.
pub fn schema_statements(script: &str) -> Vec<String> {
    let text: String = script
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Driver helpers

async fn rows(tx: &mut Txn, q: Query) -> Result<Vec<Row>, neo4rs::Error> {
    let mut stream = tx.execute(q).await?;
    let mut out = Vec::new();
    while let Some(row) = stream.next(tx.handle()).await? {
        out.push(row);
    }
    Ok(out)
}

/// Runs `cypher` once per chunk of [`BATCH_ROWS`] rows, the chunk as `$rows`.
async fn unwind(tx: &mut Txn, cypher: &str, all: Vec<BoltType>) -> Result<(), neo4rs::Error> {
    for chunk in all.chunks(BATCH_ROWS) {
        let started = std::time::Instant::now();
        tx.run(query(cypher).param("rows", chunk.to_vec())).await?;
        log_statement(cypher, chunk.len(), started);
    }
    Ok(())
}

/// The time each bulk statement took, for finding the slow one (`FACEGRAPH_LOG=facegraph=debug`).
fn log_statement(cypher: &str, rows: usize, started: std::time::Instant) {
    let statement: String = cypher.split_whitespace().collect::<Vec<_>>().join(" ");
    tracing::debug!(
        rows,
        ms = started.elapsed().as_secs_f64() * 1e3,
        statement = %statement.chars().take(120).collect::<String>(),
        "Neo4j statement"
    );
}

/// Like [`unwind`], collecting what each chunk returns.
async fn unwind_rows(
    tx: &mut Txn,
    cypher: &str,
    all: Vec<BoltType>,
) -> Result<Vec<Row>, neo4rs::Error> {
    let mut out = Vec::new();
    for chunk in all.chunks(BATCH_ROWS) {
        let started = std::time::Instant::now();
        out.extend(rows(tx, query(cypher).param("rows", chunk.to_vec())).await?);
        log_statement(cypher, chunk.len(), started);
    }
    Ok(out)
}

/// A map parameter built field by field.
#[derive(Default)]
struct Map(BoltMap);

impl Map {
    fn with(mut self, key: &str, value: impl Into<BoltType>) -> Self {
        self.0.put(key.into(), value.into());
        self
    }
}

impl From<Map> for BoltType {
    fn from(m: Map) -> Self {
        BoltType::Map(m.0)
    }
}

fn ids<'a>(faces: impl IntoIterator<Item = &'a FaceId>) -> Vec<BoltType> {
    faces.into_iter().map(|f| f.as_str().into()).collect()
}

fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

fn get<T: serde::de::DeserializeOwned>(
    row: &Row,
    what: &'static str,
    key: &str,
) -> Result<T, StoreError> {
    row.get::<T>(key)
        .map_err(|e| corrupt(what, format!("column {key}: {e}")))
}

fn int(row: &Row, key: &str) -> Result<i64, StoreError> {
    get(row, "count", key)
}

fn text(row: &Row, what: &'static str, key: &str) -> Result<String, StoreError> {
    get(row, what, key)
}

fn parsed<T, E: std::fmt::Display>(
    row: &Row,
    what: &'static str,
    key: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    let s = text(row, what, key)?;
    parse(&s).map_err(|e| corrupt(what, format!("column {key}: {e}")))
}

fn opt_parsed<T, E: std::fmt::Display>(
    row: &Row,
    what: &'static str,
    key: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    match get::<Option<String>>(row, what, key)? {
        Some(s) => parse(&s)
            .map(Some)
            .map_err(|e| corrupt(what, format!("column {key}: {e}"))),
        None => Ok(None),
    }
}

fn opt_real<T, E: std::fmt::Display>(
    row: &Row,
    what: &'static str,
    key: &str,
    make: impl FnOnce(f64) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    match get::<Option<f64>>(row, what, key)? {
        Some(x) => make(x)
            .map(Some)
            .map_err(|e| corrupt(what, format!("column {key}: {e}"))),
        None => Ok(None),
    }
}

fn both<A, B>(
    what: &'static str,
    names: &str,
    a: Option<A>,
    b: Option<B>,
) -> Result<Option<(A, B)>, StoreError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        _ => Err(corrupt(
            what,
            format!("{names} must both be present or absent"),
        )),
    }
}

fn u32_of(x: i64) -> Result<u32, String> {
    u32::try_from(x).map_err(|_| format!("{x} is not a count"))
}

// ---------------------------------------------------------------------------------------------
// Reads

/// What a face query returns, in the columns that [`face_record`] reads.
const FACE_COLUMNS: &str = "f.seq AS seq, f.face_id AS face_id, f.collection_id AS collection_id,
    f.image_id AS image_id, f.external_image_id AS external_image_id, f.bbox_left AS bbox_left,
    f.bbox_top AS bbox_top, f.bbox_width AS bbox_width, f.bbox_height AS bbox_height,
    f.detection_confidence AS detection_confidence, f.gender AS gender,
    f.gender_confidence AS gender_confidence, f.age_low AS age_low, f.age_high AS age_high,
    f.brightness AS brightness, f.sharpness AS sharpness, f.yaw AS yaw, f.pitch AS pitch,
    f.roll AS roll, f.is_largest AS is_largest, f.indexed_at AS indexed_at, f.raw AS raw";

/// The subject of face `f`'s image, as column `subject`.
const FACE_SUBJECT: &str = "OPTIONAL MATCH (f)-[:IN_IMAGE]->(:Image)-[:OF_SUBJECT]->(s:Subject)";

fn face_record(row: &Row) -> Result<FaceRecord, StoreError> {
    const W: &str = "face";
    let real = |key: &str| -> Result<f32, StoreError> { Ok(get::<f64>(row, W, key)? as f32) };
    let opt = |key: &str| get::<Option<f64>>(row, W, key);
    let gender = both(
        W,
        "gender and gender_confidence",
        opt_parsed(row, W, "gender", |s| {
            GenderValue::parse(s).ok_or_else(|| format!("{s:?} is not Male or Female"))
        })?,
        opt_real(row, W, "gender_confidence", Confidence::new)?,
    )?
    .map(|(value, confidence)| Gender { value, confidence });
    let age = both(
        W,
        "age_low and age_high",
        get::<Option<i64>>(row, W, "age_low")?,
        get::<Option<i64>>(row, W, "age_high")?,
    )?
    .map(|(low, high)| Ok::<_, String>(AgeRange::new(u32_of(low)?, u32_of(high)?)))
    .transpose()
    .map_err(|e| corrupt(W, e))?;
    let quality = both(
        W,
        "brightness and sharpness",
        opt("brightness")?,
        opt("sharpness")?,
    )?
    .map(|(b, s)| Quality {
        brightness: b as f32,
        sharpness: s as f32,
    });
    let pose = match (opt("yaw")?, opt("pitch")?, opt("roll")?) {
        (Some(yaw), Some(pitch), Some(roll)) => Some(Pose {
            yaw: yaw as f32,
            pitch: pitch as f32,
            roll: roll as f32,
        }),
        (None, None, None) => None,
        _ => {
            return Err(corrupt(
                W,
                "yaw, pitch and roll must all be present or absent",
            ))
        }
    };
    Ok(FaceRecord {
        face: Face {
            face_id: parsed(row, W, "face_id", FaceId::parse)?,
            collection_id: parsed(row, W, "collection_id", CollectionId::parse)?,
            image_id: parsed(row, W, "image_id", ImageId::parse)?,
            external_image_id: opt_parsed(row, W, "external_image_id", ExternalImageId::parse)?,
            bbox: BoundingBox {
                left: real("bbox_left")?,
                top: real("bbox_top")?,
                width: real("bbox_width")?,
                height: real("bbox_height")?,
            },
            detection_confidence: opt_real(row, W, "detection_confidence", Confidence::new)?,
            attributes: FaceAttributes {
                gender,
                age,
                quality,
                pose,
            },
            is_largest: get(row, W, "is_largest")?,
            indexed_at: Timestamp::from_millis(get(row, W, "indexed_at")?),
            raw: get(row, W, "raw")?,
        },
        subject: opt_parsed(row, W, "subject", SubjectId::parse)?,
        seq: get(row, W, "seq")?,
    })
}

/// What an edge query returns from `(a)-[e:SIMILAR]->(b)`, in the columns [`edge_record`] reads.
const EDGE_COLUMNS: &str = "a.face_id AS face_a, b.face_id AS face_b,
    e.similarity_ab AS similarity_ab, e.similarity_ba AS similarity_ba, e.engine AS engine,
    e.searched_at AS searched_at, e.verdict AS verdict, e.score AS score, e.rule_set AS rule_set,
    e.reasons AS reasons, e.adjudicated_at AS adjudicated_at";

fn edge_record(row: &Row) -> Result<EdgeRecord, StoreError> {
    const W: &str = "edge";
    let a = parsed(row, W, "face_a", FaceId::parse)?;
    let b = parsed(row, W, "face_b", FaceId::parse)?;
    let pair = match FacePair::new(a.clone(), b.clone()) {
        Some(pair) if *pair.a() == a => pair,
        _ => {
            return Err(corrupt(
                W,
                format!("{a} -> {b}: a SIMILAR edge leads from the face whose id sorts first"),
            ))
        }
    };
    let verdict = opt_parsed(row, W, "verdict", |s| {
        Verdict::parse(s).ok_or_else(|| format!("{s:?} is not confirmed, review or rejected"))
    })?;
    let score = get::<Option<f64>>(row, W, "score")?;
    let rule_set = get::<Option<String>>(row, W, "rule_set")?;
    let reasons = get::<Option<String>>(row, W, "reasons")?;
    let judgement = match (verdict, score, rule_set, reasons) {
        (Some(verdict), Some(score), Some(rule_set), Some(reasons)) => Some(Judgement {
            verdict,
            score,
            rule_set,
            reasons: reasons_from_json(&reasons)
                .map_err(|detail| corrupt(W, format!("{a} - {b}: {detail}")))?,
        }),
        (None, _, _, _) => None,
        _ => {
            return Err(corrupt(
                W,
                format!("{a} - {b}: a verdict needs its score, rule set and reasons"),
            ))
        }
    };
    Ok(EdgeRecord {
        edge: Edge {
            pair,
            similarity_ab: opt_real(row, W, "similarity_ab", Similarity::new)?,
            similarity_ba: opt_real(row, W, "similarity_ba", Similarity::new)?,
            engine: text(row, W, "engine")?,
            searched_at: Timestamp::from_millis(get(row, W, "searched_at")?),
        },
        judgement,
        adjudicated_at: get::<Option<i64>>(row, W, "adjudicated_at")?.map(Timestamp::from_millis),
    })
}

fn all<T>(
    found: Vec<Row>,
    read: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    found.iter().map(read).collect()
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Takes `n` numbers from the counter `name`: returns the first; the counter then holds the last.
async fn take_numbers(tx: &mut Txn, name: &str, n: usize) -> Work<i64> {
    let n = i64::try_from(n).map_err(|_| corrupt("counter", "too many numbers at once"))?;
    let found = rows(
        tx,
        query(
            "MERGE (k:Counter {name: $name}) ON CREATE SET k.value = 0
             SET k.value = k.value + $n
             RETURN k.value AS last",
        )
        .param("name", name)
        .param("n", n),
    )
    .await?;
    let last = found
        .first()
        .map(|r| int(r, "last"))
        .transpose()?
        .ok_or_else(|| corrupt("counter", format!("{name} returned nothing")))?;
    Ok(last - n + 1)
}

/// The stored faces among `wanted`, each with whether it has a `SIMILAR` edge already (asked only
/// with `links`; `false` otherwise).
async fn stored_faces(
    tx: &mut Txn,
    wanted: &HashSet<&FaceId>,
    links: bool,
) -> Work<HashMap<String, bool>> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let cypher = if links {
        "UNWIND $rows AS id MATCH (f:Face {face_id: id})
         RETURN f.face_id AS id, EXISTS { (f)-[:SIMILAR]-() } AS linked"
    } else {
        "UNWIND $rows AS id MATCH (f:Face {face_id: id}) RETURN f.face_id AS id, false AS linked"
    };
    let found = unwind_rows(tx, cypher, ids(wanted.iter().copied())).await?;
    let mut faces = HashMap::with_capacity(found.len());
    for row in &found {
        faces.insert(text(row, "face", "id")?, get(row, "face", "linked")?);
    }
    Ok(faces)
}

fn face_row(face: &Face, seq: Option<i64>) -> BoltType {
    let a = &face.attributes;
    let mut m = Map::default()
        .with("face_id", face.face_id.as_str())
        .with("collection_id", face.collection_id.as_str())
        .with("image_id", face.image_id.as_str())
        .with(
            "external_image_id",
            face.external_image_id.as_ref().map(ExternalImageId::as_str),
        )
        .with("bbox_left", f64::from(face.bbox.left))
        .with("bbox_top", f64::from(face.bbox.top))
        .with("bbox_width", f64::from(face.bbox.width))
        .with("bbox_height", f64::from(face.bbox.height))
        .with(
            "detection_confidence",
            face.detection_confidence.map(Confidence::get),
        )
        .with("gender", a.gender.map(|g| g.value.as_str()))
        .with("gender_confidence", a.gender.map(|g| g.confidence.get()))
        .with("age_low", a.age.map(|r| i64::from(r.low)))
        .with("age_high", a.age.map(|r| i64::from(r.high)))
        .with("brightness", a.quality.map(|q| f64::from(q.brightness)))
        .with("sharpness", a.quality.map(|q| f64::from(q.sharpness)))
        .with("yaw", a.pose.map(|p| f64::from(p.yaw)))
        .with("pitch", a.pose.map(|p| f64::from(p.pitch)))
        .with("roll", a.pose.map(|p| f64::from(p.roll)))
        .with("is_largest", face.is_largest)
        .with("indexed_at", face.indexed_at.millis())
        .with("raw", face.raw.clone());
    if let Some(seq) = seq {
        m = m.with("seq", seq);
    }
    m.into()
}

/// An edge's stored similarities (a to b, b to a) and when it was last observed.
type StoredSims = (Option<Similarity>, Option<Similarity>, Timestamp);

/// The batch's observations folded into one edge per pair, in the order the pairs first appear.
fn fold_observations(batch: &IngestBatch) -> Vec<Edge> {
    let mut folded: Vec<Edge> = Vec::new();
    let mut index: HashMap<FacePair, usize> = HashMap::new();
    for obs in &batch.observations {
        let Some(pair) = FacePair::new(obs.searched.clone(), obs.found.clone()) else {
            continue;
        };
        match index.get(&pair) {
            Some(&i) => folded[i].fold(obs),
            None => {
                if let Some(edge) = Edge::from_observation(obs) {
                    index.insert(pair, folded.len());
                    folded.push(edge);
                }
            }
        }
    }
    folded
}

fn edge_row(
    pair: &FacePair,
    ab: Option<Similarity>,
    ba: Option<Similarity>,
    engine: &str,
    at: Timestamp,
) -> BoltType {
    let best = match (ab, ba) {
        (Some(x), Some(y)) => Some(x.get().max(y.get())),
        (x, y) => x.or(y).map(Similarity::get),
    };
    Map::default()
        .with("a", pair.a().as_str())
        .with("b", pair.b().as_str())
        .with("ab", ab.map(Similarity::get))
        .with("ba", ba.map(Similarity::get))
        .with("similarity", best)
        .with("engine", engine)
        .with("at", at.millis())
        .into()
}

async fn ingest(tx: &mut Txn, batch: &IngestBatch) -> Work<IngestOutcome> {
    let mut outcome = IngestOutcome::default();

    // Every face that observations and searches name must be stored or in the batch.
    let in_batch: HashSet<&FaceId> = batch.faces.iter().map(|f| &f.face_id).collect();
    let named: HashSet<&FaceId> = batch
        .observations
        .iter()
        .filter(|o| o.searched != o.found)
        .flat_map(|o| [&o.searched, &o.found])
        .chain(batch.searches.iter().map(|s| &s.face_id))
        .collect();
    let wanted: HashSet<&FaceId> = in_batch.union(&named).copied().collect();
    let stored = stored_faces(tx, &wanted, true).await?;
    let mut missing: Vec<&FaceId> = named
        .iter()
        .filter(|id| !in_batch.contains(*id) && !stored.contains_key(id.as_str()))
        .copied()
        .collect();
    missing.sort();
    if let Some(id) = missing.first() {
        return Err(StoreError::UnknownFace((*id).clone()).into());
    }

    if !batch.collections.is_empty() {
        let rows: Vec<BoltType> = batch
            .collections
            .iter()
            .map(|c| {
                Map::default()
                    .with("id", c.collection_id.as_str())
                    .with("engine", c.engine.as_str())
                    .with("version", c.face_model_version.clone())
                    .with("at", c.created_at.millis())
                    .into()
            })
            .collect();
        // A placeholder (no engine) has a guessed creation time; the record knows.
        unwind(
            tx,
            "UNWIND $rows AS r
             MERGE (c:Collection {collection_id: r.id})
             ON CREATE SET c.engine = r.engine, c.face_model_version = r.version,
                           c.created_at = r.at
             ON MATCH SET c.created_at = CASE WHEN c.engine IS NULL THEN r.at ELSE c.created_at END,
                          c.engine = coalesce(c.engine, r.engine),
                          c.face_model_version = coalesce(c.face_model_version, r.version)",
            rows,
        )
        .await?;
    }

    let mut touched_images: Vec<&ImageId> = Vec::new();
    if !batch.images.is_empty() {
        let rows: Vec<BoltType> = batch
            .images
            .iter()
            .map(|i| {
                touched_images.push(&i.image_id);
                Map::default()
                    .with("id", i.image_id.as_str())
                    .with(
                        "ext",
                        i.external_image_id.as_ref().map(ExternalImageId::as_str),
                    )
                    .with("source", i.source.clone())
                    .with("width", i.width.map(i64::from))
                    .with("height", i.height.map(i64::from))
                    .with("faces", i64::from(i.face_count))
                    .with("at", i.received_at.millis())
                    .into()
            })
            .collect();
        // A placeholder (no face count) has a guessed receipt time; the record knows.
        unwind(
            tx,
            "UNWIND $rows AS r
             MERGE (i:Image {image_id: r.id})
             ON CREATE SET i.external_image_id = r.ext, i.source = r.source, i.width = r.width,
                           i.height = r.height, i.face_count = r.faces, i.received_at = r.at
             ON MATCH SET i.received_at =
                              CASE WHEN i.face_count IS NULL THEN r.at ELSE i.received_at END,
                          i.external_image_id = coalesce(i.external_image_id, r.ext),
                          i.source = coalesce(i.source, r.source),
                          i.width = coalesce(i.width, r.width),
                          i.height = coalesce(i.height, r.height),
                          i.face_count = coalesce(i.face_count, r.faces)",
            rows,
        )
        .await?;
    }

    // New faces are created with the next sequence numbers; a face already stored (or seen earlier
    // in the batch) gains the attributes it lacked and keeps those it had.
    let mut fresh: Vec<&Face> = Vec::new();
    let mut again: Vec<&Face> = Vec::new();
    let mut seen: HashSet<&FaceId> = HashSet::new();
    for face in &batch.faces {
        touched_images.push(&face.image_id);
        if stored.contains_key(face.face_id.as_str()) || !seen.insert(&face.face_id) {
            again.push(face);
        } else {
            fresh.push(face);
        }
    }
    if !fresh.is_empty() {
        let first = take_numbers(tx, "face", fresh.len()).await?;
        let rows: Vec<BoltType> = fresh
            .iter()
            .zip(first..)
            .map(|(face, seq)| face_row(face, Some(seq)))
            .collect();
        // A face may arrive before the records of its collection and image (a ListFaces response
        // names neither in full); those get placeholders that their own records complete later.
        unwind(
            tx,
            "UNWIND $rows AS r
             MERGE (c:Collection {collection_id: r.collection_id})
             ON CREATE SET c.created_at = r.indexed_at
             MERGE (i:Image {image_id: r.image_id})
             ON CREATE SET i.received_at = r.indexed_at
             SET i.external_image_id = coalesce(i.external_image_id, r.external_image_id)
             CREATE (f:Face)
             SET f = r
             CREATE (f)-[:IN_IMAGE]->(i)
             CREATE (f)-[:IN_COLLECTION]->(c)",
            rows,
        )
        .await?;
        outcome.new_faces = fresh.len();
    }
    if !again.is_empty() {
        let rows: Vec<BoltType> = again.iter().map(|face| face_row(face, None)).collect();
        // Attributes that travel together are written together, so per-property coalescing keeps
        // them whole; `is_largest` can only become true.
        unwind(
            tx,
            "UNWIND $rows AS r
             MATCH (f:Face {face_id: r.face_id})
             SET f.external_image_id = coalesce(f.external_image_id, r.external_image_id),
                 f.detection_confidence = coalesce(f.detection_confidence, r.detection_confidence),
                 f.gender = coalesce(f.gender, r.gender),
                 f.gender_confidence = coalesce(f.gender_confidence, r.gender_confidence),
                 f.age_low = coalesce(f.age_low, r.age_low),
                 f.age_high = coalesce(f.age_high, r.age_high),
                 f.brightness = coalesce(f.brightness, r.brightness),
                 f.sharpness = coalesce(f.sharpness, r.sharpness),
                 f.yaw = coalesce(f.yaw, r.yaw),
                 f.pitch = coalesce(f.pitch, r.pitch),
                 f.roll = coalesce(f.roll, r.roll),
                 f.is_largest = f.is_largest OR r.is_largest,
                 f.raw = coalesce(f.raw, r.raw)",
            rows,
        )
        .await?;
    }

    outcome.subject_links = link_subjects(tx, batch, &touched_images).await?;
    let (new_edges, changed_edges) = upsert_edges(tx, batch, &stored).await?;
    outcome.new_edges = new_edges;
    outcome.changed_edges = changed_edges;

    if !batch.searches.is_empty() {
        let first = take_numbers(tx, "search", batch.searches.len()).await?;
        let rows: Vec<BoltType> = batch
            .searches
            .iter()
            .zip(first..)
            .map(|(s, seq)| {
                Map::default()
                    .with(
                        "key",
                        format!(
                            "{}|{}|{}",
                            s.face_id.as_str(),
                            s.collection_id.as_str(),
                            s.searched_at.millis()
                        ),
                    )
                    .with("face_id", s.face_id.as_str())
                    .with("collection_id", s.collection_id.as_str())
                    .with("bound", s.bound.map(Similarity::get))
                    .with("collection_seq", s.collection_seq)
                    .with("at", s.searched_at.millis())
                    .with("seq", seq)
                    .into()
            })
            .collect();
        unwind(
            tx,
            "UNWIND $rows AS r
             MERGE (s:Search {search_key: r.key})
             ON CREATE SET s.face_id = r.face_id, s.collection_id = r.collection_id,
                           s.bound = r.bound, s.collection_seq = r.collection_seq,
                           s.searched_at = r.at, s.seq = r.seq",
            rows,
        )
        .await?;
    }
    Ok(outcome)
}

/// Links images to the batch's subjects by external image id, and images of this batch to subjects
/// that earlier batches named for their external id. Returns how many image links changed.
async fn link_subjects(tx: &mut Txn, batch: &IngestBatch, touched: &[&ImageId]) -> Work<usize> {
    let mut changed = 0;
    for chunk in batch.subjects.chunks(BATCH_ROWS) {
        let rows: Vec<BoltType> = chunk
            .iter()
            .map(|(ext, subject)| {
                Map::default()
                    .with("ext", ext.as_str())
                    .with("subject", subject.as_str())
                    .into()
            })
            .collect();
        tx.run(
            query(
                "UNWIND $rows AS r
                 MERGE (s:Subject {subject_id: r.subject})
                 MERGE (k:SubjectLink {external_image_id: r.ext})
                 SET k.subject_id = r.subject",
            )
            .param("rows", rows.clone()),
        )
        .await?;
        // Images with these external ids whose subject is another (or none) change.
        let found = rows_of(
            tx,
            "UNWIND $rows AS r
             MATCH (i:Image {external_image_id: r.ext})
             OPTIONAL MATCH (i)-[:OF_SUBJECT]->(old:Subject)
             WITH i, r, old WHERE old IS NULL OR old.subject_id <> r.subject
             RETURN i.image_id AS image_id, r.subject AS subject",
            rows,
        )
        .await?;
        let relink: Vec<BoltType> = found
            .iter()
            .map(|row| {
                Ok(Map::default()
                    .with("image", text(row, "image", "image_id")?)
                    .with("subject", text(row, "subject", "subject")?)
                    .into())
            })
            .collect::<Result<_, StoreError>>()?;
        changed += relink.len();
        if !relink.is_empty() {
            tx.run(
                query(
                    "UNWIND $rows AS r
                     MATCH (i:Image {image_id: r.image})
                     OPTIONAL MATCH (i)-[old:OF_SUBJECT]->()
                     DELETE old
                     WITH DISTINCT i, r
                     MATCH (s:Subject {subject_id: r.subject})
                     CREATE (i)-[:OF_SUBJECT]->(s)",
                )
                .param("rows", relink),
            )
            .await?;
        }
    }
    let mut unique: Vec<&ImageId> = touched.to_vec();
    unique.sort();
    unique.dedup();
    let images: Vec<BoltType> = unique.iter().map(|i| i.as_str().into()).collect();
    let adopted = unwind_rows(
        tx,
        "UNWIND $rows AS id
         MATCH (i:Image {image_id: id})
         WHERE i.external_image_id IS NOT NULL AND NOT (i)-[:OF_SUBJECT]->()
         MATCH (k:SubjectLink {external_image_id: i.external_image_id})
         MATCH (s:Subject {subject_id: k.subject_id})
         CREATE (i)-[:OF_SUBJECT]->(s)
         RETURN count(*) AS adopted",
        images,
    )
    .await?;
    for row in &adopted {
        changed += usize::try_from(int(row, "adopted")?).unwrap_or(0);
    }
    Ok(changed)
}

async fn rows_of(tx: &mut Txn, cypher: &str, rows_param: Vec<BoltType>) -> Work<Vec<Row>> {
    Ok(rows(tx, query(cypher).param("rows", rows_param)).await?)
}

/// Folds the batch's observations into one edge per pair and writes them: pairs between faces that
/// both had edges before the batch are read first and rewritten only when the batch changed them;
/// every other pair is new (a face without edges cannot have this one), which spares the lookup
/// when a backfill writes the faces first and their search hits after. Returns the counts of new
/// and changed edges.
async fn upsert_edges(
    tx: &mut Txn,
    batch: &IngestBatch,
    stored: &HashMap<String, bool>,
) -> Work<(usize, usize)> {
    let folded = fold_observations(batch);
    if folded.is_empty() {
        return Ok((0, 0));
    }
    let maybe_known: Vec<BoltType> = folded
        .iter()
        .filter(|e| {
            // Only two faces that both have edges already can have this one.
            stored.get(e.pair.a().as_str()) == Some(&true)
                && stored.get(e.pair.b().as_str()) == Some(&true)
        })
        .map(|e| {
            Map::default()
                .with("a", e.pair.a().as_str())
                .with("b", e.pair.b().as_str())
                .into()
        })
        .collect();
    let mut known: HashMap<(String, String), StoredSims> = HashMap::new();
    if !maybe_known.is_empty() {
        let found = unwind_rows(
            tx,
            "UNWIND $rows AS p
             MATCH (a:Face {face_id: p.a})-[e:SIMILAR]->(b:Face {face_id: p.b})
             RETURN p.a AS a, p.b AS b, e.similarity_ab AS ab, e.similarity_ba AS ba,
                    e.searched_at AS at",
            maybe_known,
        )
        .await?;
        for row in &found {
            known.insert(
                (text(row, "edge", "a")?, text(row, "edge", "b")?),
                (
                    opt_real(row, "edge", "ab", Similarity::new)?,
                    opt_real(row, "edge", "ba", Similarity::new)?,
                    Timestamp::from_millis(get(row, "edge", "at")?),
                ),
            );
        }
    }
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    let mut changed_sims = 0;
    for e in &folded {
        let key = (
            e.pair.a().as_str().to_owned(),
            e.pair.b().as_str().to_owned(),
        );
        match known.get(&key) {
            None => new.push(edge_row(
                &e.pair,
                e.similarity_ab,
                e.similarity_ba,
                &e.engine,
                e.searched_at,
            )),
            Some(&(stored_ab, stored_ba, stored_at)) => {
                // The batch's observations are newer: each direction it observed replaces the
                // stored value, as `Edge::fold` does.
                let ab = e.similarity_ab.or(stored_ab);
                let ba = e.similarity_ba.or(stored_ba);
                let at = stored_at.max(e.searched_at);
                let sims_changed = ab != stored_ab || ba != stored_ba;
                if sims_changed || at != stored_at {
                    changed.push(edge_row(&e.pair, ab, ba, &e.engine, at));
                }
                if sims_changed {
                    changed_sims += 1;
                }
            }
        }
    }
    let new_count = new.len();
    if !new.is_empty() {
        unwind(
            tx,
            "UNWIND $rows AS r
             MATCH (a:Face {face_id: r.a})
             MATCH (b:Face {face_id: r.b})
             CREATE (a)-[:SIMILAR {similarity_ab: r.ab, similarity_ba: r.ba,
                                   similarity: r.similarity, engine: r.engine,
                                   searched_at: r.at}]->(b)",
            new,
        )
        .await?;
    }
    if !changed.is_empty() {
        unwind(
            tx,
            "UNWIND $rows AS r
             MATCH (a:Face {face_id: r.a})-[e:SIMILAR]->(b:Face {face_id: r.b})
             SET e.similarity_ab = r.ab, e.similarity_ba = r.ba, e.similarity = r.similarity,
                 e.searched_at = r.at",
            changed,
        )
        .await?;
    }
    Ok((new_count, changed_sims))
}

/// The current judgement of one edge, as stored.
#[derive(PartialEq)]
struct StoredJudgement {
    verdict: Option<String>,
    score: Option<f64>,
    rule_set: Option<String>,
    reasons: Option<String>,
}

async fn record_verdicts(tx: &mut Txn, updates: &[VerdictUpdate]) -> Work<usize> {
    const OP: &str = "record verdicts";
    let mut pairs: Vec<&FacePair> = updates.iter().map(|u| &u.pair).collect();
    pairs.sort();
    pairs.dedup();
    let faces: HashSet<&FaceId> = pairs.iter().flat_map(|p| [p.a(), p.b()]).collect();
    let stored = stored_faces(tx, &faces, false).await?;
    let pair_rows: Vec<BoltType> = pairs
        .iter()
        .map(|p| {
            Map::default()
                .with("a", p.a().as_str())
                .with("b", p.b().as_str())
                .into()
        })
        .collect();
    let found = unwind_rows(
        tx,
        "UNWIND $rows AS p
         MATCH (a:Face {face_id: p.a})-[e:SIMILAR]->(b:Face {face_id: p.b})
         RETURN p.a AS a, p.b AS b, e.verdict AS verdict, e.score AS score,
                e.rule_set AS rule_set, e.reasons AS reasons",
        pair_rows,
    )
    .await?;
    let mut current: HashMap<(String, String), StoredJudgement> = HashMap::new();
    for row in &found {
        current.insert(
            (text(row, "edge", "a")?, text(row, "edge", "b")?),
            StoredJudgement {
                verdict: get(row, "edge", "verdict")?,
                score: get(row, "edge", "score")?,
                rule_set: get(row, "edge", "rule_set")?,
                reasons: get(row, "edge", "reasons")?,
            },
        );
    }
    let mut writes: Vec<BoltType> = Vec::new();
    for u in updates {
        let (a, b) = (u.pair.a().as_str(), u.pair.b().as_str());
        let j = &u.judgement;
        if j.score.is_nan() {
            return Err(StoreError::Backend {
                operation: OP,
                source: Box::new(InvalidWrite(format!(
                    "the judgement of {a} - {b} has a score that is not a number"
                ))),
            }
            .into());
        }
        for id in [u.pair.a(), u.pair.b()] {
            if !stored.contains_key(id.as_str()) {
                return Err(StoreError::UnknownFace(id.clone()).into());
            }
        }
        let Some(now) = current.get_mut(&(a.to_owned(), b.to_owned())) else {
            return Err(StoreError::Backend {
                operation: OP,
                source: Box::new(InvalidWrite(format!(
                    "no SIMILAR edge between faces {a} and {b}: only observed pairs are judged"
                ))),
            }
            .into());
        };
        let next = StoredJudgement {
            verdict: Some(j.verdict.as_str().to_owned()),
            score: Some(j.score),
            rule_set: Some(j.rule_set.clone()),
            reasons: Some(reasons_to_json(&j.reasons)?),
        };
        if *now == next {
            continue;
        }
        writes.push(
            Map::default()
                .with("a", a)
                .with("b", b)
                .with("verdict", j.verdict.as_str())
                .with("score", j.score)
                .with("rule_set", j.rule_set.as_str())
                .with("reasons", next.reasons.clone())
                .with("at", u.at.millis())
                .into(),
        );
        *now = next;
    }
    let changed = writes.len();
    if !writes.is_empty() {
        let first = take_numbers(tx, "judgement", writes.len()).await?;
        let writes: Vec<BoltType> = writes
            .into_iter()
            .zip(first..)
            .map(|(w, seq)| match w {
                BoltType::Map(mut m) => {
                    m.put("seq".into(), seq.into());
                    BoltType::Map(m)
                }
                other => other,
            })
            .collect();
        // The judgement goes into the history too; the edge holds the latest.
        unwind(
            tx,
            "UNWIND $rows AS r
             MATCH (a:Face {face_id: r.a})-[e:SIMILAR]->(b:Face {face_id: r.b})
             SET e.verdict = r.verdict, e.score = r.score, e.rule_set = r.rule_set,
                 e.reasons = r.reasons, e.adjudicated_at = r.at
             CREATE (:Judgement {face_a: r.a, face_b: r.b, verdict: r.verdict, score: r.score,
                                 rule_set: r.rule_set, reasons: r.reasons, at: r.at,
                                 seq: r.seq})",
            writes,
        )
        .await?;
    }
    Ok(changed)
}

fn decision_type(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::Same => "SAME_PERSON",
        DecisionKind::Different => "DIFFERENT_PERSON",
    }
}

/// Fails with [`StoreError::UnknownFace`] naming the first of `faces` that is not stored.
async fn require_faces(tx: &mut Txn, faces: &[&FaceId]) -> Work<()> {
    let wanted: HashSet<&FaceId> = faces.iter().copied().collect();
    let stored = stored_faces(tx, &wanted, false).await?;
    match faces.iter().find(|f| !stored.contains_key(f.as_str())) {
        Some(f) => Err(StoreError::UnknownFace((*f).clone()).into()),
        None => Ok(()),
    }
}

impl GraphStore for Neo4jStore {
    fn kind(&self) -> &'static str {
        "neo4j"
    }

    fn ingest(&self, batch: &IngestBatch) -> Result<IngestOutcome, StoreError> {
        self.transaction("ingest", async |tx| ingest(tx, batch).await)
    }

    fn record_verdicts(&self, updates: &[VerdictUpdate]) -> Result<usize, StoreError> {
        if updates.is_empty() {
            return Ok(0);
        }
        self.transaction("record verdicts", async |tx| {
            record_verdicts(tx, updates).await
        })
    }

    fn record_decision(&self, decision: &Decision) -> Result<(), StoreError> {
        self.transaction("record a decision", async |tx| {
            require_faces(tx, &[decision.pair.a(), decision.pair.b()]).await?;
            let seq = take_numbers(tx, "decision", 1).await?;
            let cypher = format!(
                "MATCH (a:Face {{face_id: $a}}) MATCH (b:Face {{face_id: $b}})
                 CREATE (a)-[:{} {{analyst: $analyst, note: $note, at: $at, seq: $seq}}]->(b)",
                decision_type(decision.kind)
            );
            tx.run(
                query(&cypher)
                    .param("a", decision.pair.a().as_str())
                    .param("b", decision.pair.b().as_str())
                    .param("analyst", decision.analyst.as_str())
                    .param("note", decision.note.clone())
                    .param("at", decision.at.millis())
                    .param("seq", seq),
            )
            .await?;
            Ok(())
        })
    }

    fn replace_clusters(&self, clusters: &[ClusterMembership]) -> Result<(), StoreError> {
        self.transaction("replace clusters", async |tx| {
            let members: Vec<&FaceId> = clusters.iter().flat_map(|c| &c.faces).collect();
            require_faces(tx, &members).await?;
            tx.run(query(
                "MATCH (f:Face) WHERE f.cluster_id IS NOT NULL
                 REMOVE f.cluster_id, f.cluster_rank",
            ))
            .await?;
            let rows: Vec<BoltType> = clusters
                .iter()
                .flat_map(|c| c.faces.iter().map(move |f| (c, f)))
                .zip(0_i64..)
                .map(|((c, f), rank)| {
                    Map::default()
                        .with("cluster", c.cluster_id.as_str())
                        .with("face", f.as_str())
                        .with("rank", rank)
                        .into()
                })
                .collect();
            unwind(
                tx,
                "UNWIND $rows AS r
                 MATCH (f:Face {face_id: r.face})
                 SET f.cluster_id = r.cluster, f.cluster_rank = r.rank",
                rows,
            )
            .await?;
            Ok(())
        })
    }

    fn faces(&self, ids_wanted: &[FaceId]) -> Result<Vec<FaceRecord>, StoreError> {
        if ids_wanted.is_empty() {
            return Ok(Vec::new());
        }
        let cypher = format!(
            "UNWIND $rows AS id MATCH (f:Face {{face_id: id}}) {FACE_SUBJECT}
             RETURN {FACE_COLUMNS}, s.subject_id AS subject ORDER BY seq"
        );
        let found = self.transaction("read faces", async |tx| {
            Ok(unwind_rows(tx, &cypher, ids(ids_wanted)).await?)
        })?;
        let mut faces = all(found, face_record)?;
        faces.sort_by_key(|f| f.seq);
        faces.dedup_by_key(|f| f.seq);
        Ok(faces)
    }

    fn all_faces(&self) -> Result<Vec<FaceRecord>, StoreError> {
        let cypher = format!(
            "MATCH (f:Face) {FACE_SUBJECT} RETURN {FACE_COLUMNS}, s.subject_id AS subject
             ORDER BY seq"
        );
        let found =
            self.transaction("read faces", async |tx| Ok(rows(tx, query(&cypher)).await?))?;
        all(found, face_record)
    }

    fn faces_of_subject(&self, subject: &SubjectId) -> Result<Vec<FaceRecord>, StoreError> {
        let cypher = format!(
            "MATCH (s:Subject {{subject_id: $subject}})<-[:OF_SUBJECT]-(:Image)<-[:IN_IMAGE]-(f:Face)
             RETURN {FACE_COLUMNS}, s.subject_id AS subject ORDER BY seq"
        );
        let found = self.transaction("read faces", async |tx| {
            Ok(rows(tx, query(&cypher).param("subject", subject.as_str())).await?)
        })?;
        all(found, face_record)
    }

    fn edge(&self, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError> {
        let cypher = format!(
            "MATCH (a:Face {{face_id: $a}})-[e:SIMILAR]->(b:Face {{face_id: $b}})
             RETURN {EDGE_COLUMNS}"
        );
        let found = self.transaction("read edges", async |tx| {
            Ok(rows(
                tx,
                query(&cypher)
                    .param("a", pair.a().as_str())
                    .param("b", pair.b().as_str()),
            )
            .await?)
        })?;
        Ok(all(found, edge_record)?.into_iter().next())
    }

    fn edges_touching(&self, ids_wanted: &[FaceId]) -> Result<Vec<EdgeRecord>, StoreError> {
        if ids_wanted.is_empty() {
            return Ok(Vec::new());
        }
        let outgoing = format!(
            "UNWIND $rows AS id MATCH (a:Face {{face_id: id}})-[e:SIMILAR]->(b:Face)
             RETURN {EDGE_COLUMNS}"
        );
        let incoming = format!(
            "UNWIND $rows AS id MATCH (a:Face)-[e:SIMILAR]->(b:Face {{face_id: id}})
             RETURN {EDGE_COLUMNS}"
        );
        let found = self.transaction("read edges", async |tx| {
            let mut found = unwind_rows(tx, &outgoing, ids(ids_wanted)).await?;
            found.extend(unwind_rows(tx, &incoming, ids(ids_wanted)).await?);
            Ok(found)
        })?;
        let mut seen = HashSet::new();
        let mut edges = Vec::new();
        for record in all(found, edge_record)? {
            if seen.insert(record.edge.pair.clone()) {
                edges.push(record);
            }
        }
        Ok(edges)
    }

    fn edges(&self, verdict: Option<Verdict>) -> Result<Vec<EdgeRecord>, StoreError> {
        let cypher = match verdict {
            Some(_) => format!(
                "MATCH (a:Face)-[e:SIMILAR]->(b:Face) WHERE e.verdict = $verdict
                 RETURN {EDGE_COLUMNS}"
            ),
            None => format!("MATCH (a:Face)-[e:SIMILAR]->(b:Face) RETURN {EDGE_COLUMNS}"),
        };
        let found = self.transaction("read edges", async |tx| {
            let mut q = query(&cypher);
            if let Some(v) = verdict {
                q = q.param("verdict", v.as_str());
            }
            Ok(rows(tx, q).await?)
        })?;
        all(found, edge_record)
    }

    fn decisions(&self) -> Result<Vec<Decision>, StoreError> {
        let found = self.transaction("read decisions", async |tx| {
            Ok(rows(
                tx,
                query(
                    "MATCH (a:Face)-[d:SAME_PERSON|DIFFERENT_PERSON]->(b:Face)
                     RETURN a.face_id AS a, b.face_id AS b, type(d) AS kind,
                            d.analyst AS analyst, d.note AS note, d.at AS at, d.seq AS seq
                     ORDER BY seq",
                ),
            )
            .await?)
        })?;
        all(found, |row| {
            const W: &str = "decision";
            let a = parsed(row, W, "a", FaceId::parse)?;
            let b = parsed(row, W, "b", FaceId::parse)?;
            let pair = FacePair::new(a, b)
                .ok_or_else(|| corrupt(W, "a decision joins two distinct faces"))?;
            let kind = match text(row, W, "kind")?.as_str() {
                "SAME_PERSON" => DecisionKind::Same,
                "DIFFERENT_PERSON" => DecisionKind::Different,
                other => return Err(corrupt(W, format!("unknown relationship type {other}"))),
            };
            Ok(Decision {
                pair,
                kind,
                analyst: text(row, W, "analyst")?,
                at: Timestamp::from_millis(get(row, W, "at")?),
                note: get(row, W, "note")?,
            })
        })
    }

    fn searches(&self, ids_wanted: &[FaceId]) -> Result<Vec<SearchRecord>, StoreError> {
        if ids_wanted.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.transaction("read searches", async |tx| {
            Ok(unwind_rows(
                tx,
                "UNWIND $rows AS id MATCH (s:Search {face_id: id})
                 RETURN s.face_id AS face_id, s.collection_id AS collection_id, s.bound AS bound,
                        s.collection_seq AS collection_seq, s.searched_at AS searched_at,
                        s.seq AS seq",
                ids(ids_wanted),
            )
            .await?)
        })?;
        let mut searches = found
            .iter()
            .map(|row| {
                const W: &str = "search";
                Ok((
                    (
                        get::<i64>(row, W, "searched_at")?,
                        get::<i64>(row, W, "seq")?,
                    ),
                    SearchRecord {
                        face_id: parsed(row, W, "face_id", FaceId::parse)?,
                        collection_id: parsed(row, W, "collection_id", CollectionId::parse)?,
                        bound: opt_real(row, W, "bound", Similarity::new)?,
                        collection_seq: get(row, W, "collection_seq")?,
                        searched_at: Timestamp::from_millis(get(row, W, "searched_at")?),
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        searches.sort_by_key(|(order, _)| *order);
        searches.dedup_by_key(|(order, _)| *order);
        Ok(searches.into_iter().map(|(_, s)| s).collect())
    }

    fn clusters(&self) -> Result<Vec<ClusterMembership>, StoreError> {
        let found = self.transaction("read clusters", async |tx| {
            Ok(rows(
                tx,
                query(
                    "MATCH (f:Face) WHERE f.cluster_id IS NOT NULL
                     RETURN f.cluster_id AS cluster, f.face_id AS face, f.cluster_rank AS rank
                     ORDER BY rank",
                ),
            )
            .await?)
        })?;
        let members = found
            .iter()
            .map(|row| {
                Ok((
                    text(row, "cluster member", "cluster")?,
                    parsed(row, "cluster member", "face", FaceId::parse)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(group_clusters(members))
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        const COUNTS: [&str; 6] = [
            "MATCH (n:Collection) RETURN count(n) AS n",
            "MATCH (n:Image) RETURN count(n) AS n",
            "MATCH (n:Face) RETURN count(n) AS n",
            "MATCH (n:Subject) RETURN count(n) AS n",
            "MATCH (:Face)-[e:SIMILAR]->(:Face) RETURN count(e) AS n",
            "MATCH (:Face)-[d:SAME_PERSON|DIFFERENT_PERSON]->(:Face) RETURN count(d) AS n",
        ];
        let counts = self.transaction("read statistics", async |tx| {
            let mut counts = [0_usize; 6];
            for (slot, cypher) in counts.iter_mut().zip(COUNTS) {
                let found = rows(tx, query(cypher)).await?;
                let n = found.first().map(|r| int(r, "n")).transpose()?.unwrap_or(0);
                *slot = usize::try_from(n).map_err(|_| corrupt("statistics", n))?;
            }
            Ok(counts)
        })?;
        let [collections, images, faces, subjects, edges, decisions] = counts;
        Ok(StoreStats {
            collections,
            images,
            faces,
            subjects,
            edges,
            decisions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_splits_into_its_statements() {
        let statements = schema_statements(SCHEMA);
        assert!(statements.len() >= 4, "{statements:?}");
        assert!(statements
            .iter()
            .all(|s| !s.contains("//") && !s.ends_with(';')));
        assert!(
            statements[0].starts_with("CREATE CONSTRAINT"),
            "{statements:?}"
        );
    }

    #[test]
    fn transient_failures_are_told_from_the_others() {
        assert!(is_transient(&neo4rs::Error::ConnectionError));
        assert!(!is_transient(&neo4rs::Error::ConversionError));
    }
}
