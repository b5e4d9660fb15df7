//! The Neo4j schema: the constraints and indexes of `cypher/schema.cypher`, applied when the store
//! opens (before any write: without the uniqueness constraints, bulk writes are 100x slower) and by
//! `facegraph neo4j init`.

use neo4rs::query;

use super::Neo4jStore;
use crate::store::StoreError;

/// The schema, applied when the store opens and by `facegraph neo4j init`.
pub const SCHEMA: &str = include_str!("../../../cypher/schema.cypher");

impl Neo4jStore {
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
}
