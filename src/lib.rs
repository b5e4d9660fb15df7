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
//! - [`stream`]: the streaming service on Kafka: the index, search and adjudicate stages, dead
//!   letters, the persistent Bloom filter of message keys, match events from the stored
//!   judgements, and the backfill.
//! - [`files`]: walking folders and reading files within bounds, for every command and server.
//! - [`api`]: the REST API (axum): one router per resource, API keys with roles, one error body,
//!   Prometheus metrics, the OpenAPI document, and a server that bounds slow clients.
//! - [`settings`]: one typed configuration from file and `FACEGRAPH_…` environment variables.
//! - [`startup`]: `App::build`, the one place that wires store, rules, engine, keys and the data
//!   directory's writer lock; every command, `serve` and the tests start there.
//! - [`errors`]: the one formatter of an error and its causes.
//! - [`cli`]: the shell: clap definitions, one file per command family (the graph commands, the
//!   photo commands, `serve`, the benchmarks), and every shape the CLI prints.
//!
//! The core (`model`, `adjudication`, `cluster`) does no I/O and imports no runtime, database or
//! engine crate; nothing below [`cli`] imports clap, anyhow or the CLI; `tests/architecture.rs`
//! enforces both.

pub mod adjudication;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod errors;
pub mod faults;
pub mod files;
pub mod model;
pub mod rekognition;
pub mod service;
pub mod settings;
pub mod startup;
pub mod store;
pub mod stream;
