//! The Neo4j store's use of the driver: the connection on a runtime of its own, transactions
//! retried on transient failures, and the statement helpers (`UNWIND` batches, row collection,
//! map parameters, counters) that every read and write goes through.

use std::future::Future;
use std::time::Duration;

use neo4rs::{query, BoltMap, BoltType, ConfigBuilder, Graph, Neo4jErrorKind, Query, Row, Txn};
use secrecy::ExposeSecret;

use super::decode::{corrupt, int};
use super::{Login, Neo4jStore, BATCH_ROWS};
use crate::model::FaceId;
use crate::store::StoreError;

/// How often a transaction that failed transiently is tried in all.
const ATTEMPTS: u32 = 6;

/// How often a transaction that broke a uniqueness constraint is tried in all.
const RACE_ATTEMPTS: u32 = 3;

/// Why a unit of work stopped: the driver failed, or the store refuses the input.
pub(super) enum Failure {
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

/// What a unit of work inside a transaction returns.
pub(super) type Work<T> = Result<T, Failure>;

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

/// A uniqueness constraint broken, which another writer racing this one causes.
fn is_constraint_violation(e: &neo4rs::Error) -> bool {
    matches!(e, neo4rs::Error::Neo4j(e) if e.code() == "Neo.ClientError.Schema.ConstraintValidationFailed")
}

/// The driver's error as a [`StoreError::Backend`] naming what the store was doing.
pub(super) fn driver_error(operation: &'static str, e: neo4rs::Error) -> StoreError {
    StoreError::Backend {
        operation,
        source: Box::new(e),
    }
}

/// Starts the store's runtime and the driver's connection pool for `login`. Nothing is sent to
/// the server yet.
pub(super) fn open(login: &Login) -> Result<(tokio::runtime::Runtime, Graph), StoreError> {
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
    Ok((runtime, graph))
}

impl Neo4jStore {
    /// Runs `future` to completion on the store's runtime.
    pub(super) fn block_on<F: Future>(&self, future: F) -> F::Output {
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
    pub(super) fn transaction<T>(
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

/// Runs `q` and collects every row it returns.
pub(super) async fn rows(tx: &mut Txn, q: Query) -> Result<Vec<Row>, neo4rs::Error> {
    let mut stream = tx.execute(q).await?;
    let mut out = Vec::new();
    while let Some(row) = stream.next(tx.handle()).await? {
        out.push(row);
    }
    Ok(out)
}

/// Runs `cypher` once per chunk of [`BATCH_ROWS`] rows, the chunk as `$rows`.
pub(super) async fn unwind(
    tx: &mut Txn,
    cypher: &str,
    all: Vec<BoltType>,
) -> Result<(), neo4rs::Error> {
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
pub(super) async fn unwind_rows(
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
pub(super) struct Map(BoltMap);

impl Map {
    pub(super) fn with(mut self, key: &str, value: impl Into<BoltType>) -> Self {
        self.0.put(key.into(), value.into());
        self
    }
}

impl From<Map> for BoltType {
    fn from(m: Map) -> Self {
        BoltType::Map(m.0)
    }
}

/// Face ids as a list parameter.
pub(super) fn ids<'a>(faces: impl IntoIterator<Item = &'a FaceId>) -> Vec<BoltType> {
    faces.into_iter().map(|f| f.as_str().into()).collect()
}

/// Runs `cypher` once with `rows_param` as `$rows` and collects what it returns.
pub(super) async fn rows_of(
    tx: &mut Txn,
    cypher: &str,
    rows_param: Vec<BoltType>,
) -> Work<Vec<Row>> {
    Ok(rows(tx, query(cypher).param("rows", rows_param)).await?)
}

/// Takes `n` numbers from the counter `name`: returns the first; the counter then holds the last.
pub(super) async fn take_numbers(tx: &mut Txn, name: &str, n: usize) -> Work<i64> {
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

/// Numbers `rows` (maps) in order from the counter `name`: each gets the key `seq`.
pub(super) async fn numbered(tx: &mut Txn, name: &str, rows: Vec<BoltType>) -> Work<Vec<BoltType>> {
    let first = take_numbers(tx, name, rows.len()).await?;
    Ok(rows
        .into_iter()
        .zip(first..)
        .map(|(row, seq)| match row {
            BoltType::Map(mut m) => {
                m.put("seq".into(), seq.into());
                BoltType::Map(m)
            }
            other => other,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_told_from_the_others() {
        assert!(is_transient(&neo4rs::Error::ConnectionError));
        assert!(!is_transient(&neo4rs::Error::ConversionError));
    }
}
