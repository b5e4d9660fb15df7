//! The adjudication rule engine.
