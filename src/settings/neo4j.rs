//! The `[neo4j]` table: how to log in to a Neo4j store when `store` is a Bolt URL.

use secrecy::SecretString;
use serde::Deserialize;

/// How to log in to a Neo4j store.
#[derive(Debug, Clone)]
pub struct Neo4jSettings {
    /// `FACEGRAPH_NEO4J_USER`, or `user` in `[neo4j]`; default `neo4j`.
    pub user: String,
    /// `FACEGRAPH_NEO4J_PASSWORD`, or `password` in `[neo4j]`.
    pub password: Option<SecretString>,
    /// `FACEGRAPH_NEO4J_DATABASE`, or `database` in `[neo4j]`; default `neo4j`.
    pub database: String,
}

/// The `[neo4j]` table of the settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Neo4jFile {
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
}

/// The Neo4j login: `FACEGRAPH_NEO4J_…` over `[neo4j]` over the defaults.
pub(super) fn neo4j_settings(
    file: Neo4jFile,
    env: &impl Fn(&str) -> Option<String>,
) -> Neo4jSettings {
    Neo4jSettings {
        user: env("FACEGRAPH_NEO4J_USER")
            .or(file.user)
            .unwrap_or_else(|| "neo4j".to_owned()),
        password: env("FACEGRAPH_NEO4J_PASSWORD")
            .or(file.password)
            .map(SecretString::from),
        database: env("FACEGRAPH_NEO4J_DATABASE")
            .or(file.database)
            .unwrap_or_else(|| "neo4j".to_owned()),
    }
}
