//! Tests of the local engine's collection semantics.
