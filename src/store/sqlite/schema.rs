//! The SQLite store's schema: the connection's settings and the migrations, applied in order and
//! tracked in `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::{backend, in_file};
use crate::store::StoreError;

/// The schema migrations, oldest first; migration `i` brings the store to `user_version` `i + 1`.
/// A released migration is never edited: a change to the schema is a new file at the end.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_uploads.sql"),
    include_str!("migrations/0003_scoped.sql"),
    include_str!("migrations/0004_stream.sql"),
];

/// The schema version this build writes: the number of migrations it knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Readies a freshly opened connection: settings first, then the schema migrated to
/// [`SCHEMA_VERSION`]. A store written by a newer facegraph is refused with
/// [`StoreError::SchemaTooNew`] before anything is written to it. `file` names the store's file in
/// errors.
pub(super) fn prepare(conn: &mut Connection, file: Option<&Path>) -> Result<(), StoreError> {
    let open_error = |source| in_file(file, "open", source);
    // The busy timeout comes first so that the pragmas below wait for another process's lock
    // instead of failing.
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(open_error)?;
    // Checked before anything writes to the file, so that a newer facegraph's store is left as
    // it was (switching it to WAL would already be a change).
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_error)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    configure(conn, file)?;
    migrate(conn, found).map_err(|e| match e {
        StoreError::Backend { operation, source } => in_file(file, operation, source),
        other => other,
    })
}

/// Sets the journal, synchronisation, cache and statement cache of the connection.
fn configure(conn: &mut Connection, file: Option<&Path>) -> Result<(), StoreError> {
    let open_error = |source| in_file(file, "open", source);
    // WAL lets readers (the API, an analyst's SQLite shell) run while a batch is written;
    // NORMAL synchronisation survives application crashes and keeps bulk ingest fast.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_error)?;
    if file.is_some() && !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            journal_mode = %mode,
            "the graph store's file system does not support WAL; readers will block writers"
        );
    }
    // A bulk ingest touches more pages than the default 2 MiB cache holds; 64 MiB is a bound,
    // not an allocation.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )
    .map_err(open_error)?;
    // Every statement the store runs is cached; the default of 16 would evict some of them.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Applies the migrations after `from` in one transaction, so that a failed migration leaves the
/// store at its old version.
fn migrate(conn: &mut Connection, from: i64) -> Result<(), StoreError> {
    if from >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("migrate"))?;
    // Another process may have migrated between the check in `init` and this transaction.
    let current: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(backend("migrate"))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    let start = usize::try_from(current.max(0)).unwrap_or(usize::MAX);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(sql).map_err(backend("migrate"))?;
        if i == 1 {
            super::uploads::split_uploads(&tx)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(backend("migrate"))?;
    tx.commit().map_err(backend("migrate"))?;
    tracing::info!(
        from = current,
        to = SCHEMA_VERSION,
        "migrated the graph store schema"
    );
    Ok(())
}
