//! CLI output shapes.
