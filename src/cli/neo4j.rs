//! `facegraph neo4j init|bench`: the Neo4j store's schema and its benchmark.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use super::bench::neo4j::Neo4jBenchArgs;
use crate::settings::{Settings, StoreLocation};
use crate::store::neo4j::{Login, Neo4jStore};

/// `facegraph neo4j …`.
#[derive(Debug, Subcommand)]
pub enum Neo4jCommand {
    /// Create the constraints and indexes of cypher/schema.cypher (idempotent).
    Init,
    /// Edges written per second, batched against one transaction per edge, and query latencies.
    Bench(Neo4jBenchArgs),
}

/// Runs a `neo4j` command.
pub(super) fn run(settings: &Settings, action: &Neo4jCommand, out: &mut impl Write) -> Result<i32> {
    match action {
        Neo4jCommand::Init => {
            let StoreLocation::Bolt(url) = &settings.store else {
                bail!("neo4j init needs a Neo4j store: give --store bolt://HOST:PORT (or set FACEGRAPH_STORE)");
            };
            let login = Login::from_settings(url, &settings.neo4j);
            // Connecting applies the schema; applying it again reports what it holds.
            let store =
                Neo4jStore::connect(&login).with_context(|| format!("cannot connect to {url}"))?;
            let statements = store.apply_schema()?;
            writeln!(
                out,
                "applied cypher/schema.cypher to database {} at {url}: {statements} constraints and indexes",
                settings.neo4j.database
            )?;
        }
        Neo4jCommand::Bench(args) => super::bench::neo4j::run(settings, args, out)?,
    }
    Ok(0)
}
