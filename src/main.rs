//! The `facegraph` command: parses the command line, runs it, and turns errors into a message on
//! standard error and a non-zero exit status.

use clap::Parser;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(std::env::var("FACEGRAPH_LOG").ok().as_deref()))
        .with_writer(std::io::stderr)
        .init();
    let cli = facegraph::cli::Cli::parse();
    match facegraph::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        // A reader that stops early (`facegraph matches | head -1`) is not an error.
        Err(e) if facegraph::cli::is_broken_pipe(&e) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: {}", facegraph::errors::Chain(e.as_ref()));
            std::process::exit(1);
        }
    }
}

/// The log filter: `FACEGRAPH_LOG` in tracing's `EnvFilter` syntax, `warn` without it. Unless the
/// filter names tract, tract's crates stay at warn, and `tract_onnx` at error, or quieter when the
/// filter asks for less: tract's optimiser logs thousands of debug lines for every model it plans,
/// which would drown `FACEGRAPH_LOG=debug`, and `tract_onnx` warns on every model load that the
/// files use ONNX opset 21 (it is tested up to 18; the local engine's own tests check the models).
fn log_filter(spec: Option<&str>) -> EnvFilter {
    let spec = spec
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("warn");
    let asked = match EnvFilter::try_new(spec) {
        Ok(filter) if spec.contains("tract") => return filter,
        Ok(filter) => filter.max_level_hint().unwrap_or(LevelFilter::TRACE),
        Err(e) => {
            eprintln!(
                "facegraph: FACEGRAPH_LOG={spec:?} is not a log filter ({e}); logging warnings"
            );
            return log_filter(None);
        }
    };
    let tract = asked.min(LevelFilter::WARN);
    let onnx = asked.min(LevelFilter::ERROR);
    EnvFilter::new(format!("{spec},tract={tract},tract_onnx={onnx}"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a subscriber with `log_filter(spec)` writes for one event of each kind.
    fn logged(spec: Option<&str>) -> String {
        #[derive(Clone)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Capture(Arc::new(Mutex::new(Vec::new())));
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(log_filter(spec))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "tract_core::optim", "tract-debug");
            tracing::warn!(target: "tract_core::model", "tract-warn");
            tracing::warn!(target: "tract_onnx::model", "onnx-warn");
            tracing::error!(target: "tract_onnx::model", "onnx-error");
            tracing::debug!(target: "facegraph::api", "facegraph-debug");
            tracing::warn!(target: "facegraph::api", "facegraph-warn");
            tracing::debug!(target: "hyper::proto", "other-debug");
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn check(spec: Option<&str>, shown: &[&str], hidden: &[&str]) {
        let out = logged(spec);
        for s in shown {
            assert!(out.contains(s), "{spec:?} hides {s}: {out}");
        }
        for s in hidden {
            assert!(!out.contains(s), "{spec:?} shows {s}: {out}");
        }
    }

    #[test]
    fn tract_stays_quiet_unless_named() {
        check(
            None,
            &["tract-warn", "onnx-error", "facegraph-warn"],
            &["tract-debug", "onnx-warn", "facegraph-debug", "other-debug"],
        );
        check(
            Some("debug"),
            &["facegraph-debug", "other-debug", "tract-warn", "onnx-error"],
            &["tract-debug", "onnx-warn"],
        );
        check(
            Some("error"),
            &["onnx-error"],
            &["tract-warn", "facegraph-warn", "tract-debug"],
        );
        check(
            Some("debug,tract_core=debug"),
            &["tract-debug", "facegraph-debug", "onnx-warn"],
            &[],
        );
        // Not a filter: the default, not silence.
        check(
            Some("facegraph=loud"),
            &["facegraph-warn"],
            &["facegraph-debug"],
        );
    }
}
