//! The `facegraph` command: parses the command line and runs it.

fn main() {}
