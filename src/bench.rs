//! Benchmarks on generated data, printed as figures: `facegraph bench`.

use clap::Args;

/// Options of `facegraph bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {}

/// Runs the benchmarks and prints their figures.
pub fn run(_args: &BenchArgs, _out: &mut impl std::io::Write) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
