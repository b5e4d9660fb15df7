//! facegraph: a graph-augmented face-match adjudication service.
//!
//! A tour of the crate, from the pure core outwards:
//!
//! - [`model`]: validated identifiers and values, faces, similarity edges, verdicts and decisions.
//! - [`adjudication`]: the rule engine. It weighs each candidate match against both faces'
//!   attributes and the graph around it, and explains every verdict. Rule sets are TOML, versioned by
//!   the hash of their normalised content.
//! - [`cluster`]: match clusters on petgraph; a cluster with two or more subjects is a fraud lead.
//! - [`rekognition`]: wire types of saved Rekognition responses (PascalCase and the Java SDK's camelCase)
//!   and their conversion into the model.
//! - [`engine`]: the `FaceEngine` port with Rekognition's collection semantics.
//! - [`store`]: the `GraphStore` port and its embedded SQLite adapter, with a contract suite that
//!   every adapter passes.
//! - [`service`]: the use cases that tie them together: ingest, adjudicate, decide, cluster, what-if.
//! - [`api`]: the REST API (axum): one router per resource, API keys with roles, one error body,
//!   Prometheus metrics, the OpenAPI document, and `serve` with graceful shutdown.
//! - [`photos`]: the commands that run the local engine on directories of photos: `ingest`,
//!   `match-faces`, `eval`.
//! - [`settings`]: one typed configuration from file and `FACEGRAPH_…` environment variables.
//! - [`report`]: the JSON and table shapes the CLI prints.
//!
//! The core (`model`, `adjudication`, `cluster`) does no I/O and imports no runtime, database or
//! engine crate; `tests/architecture.rs` enforces it.

pub mod adjudication;
pub mod api;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod model;
pub mod photos;
pub mod rekognition;
pub mod report;
pub mod service;
pub mod settings;
pub mod store;
