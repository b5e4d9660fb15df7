//! The `facegraph` command: parses the command line, runs it, and turns errors into a message on
//! standard error and a non-zero exit status.

use clap::Parser;

fn main() {
    init_logging();
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

/// Logs to standard error at `FACEGRAPH_LOG`'s level (warn by default). The ONNX library logs its
/// model loading and graph optimisation at every level, thousands of lines per model, so its
/// crates stay at `error` unless `FACEGRAPH_LOG` names them.
fn init_logging() {
    let spec = std::env::var("FACEGRAPH_LOG").unwrap_or_else(|_| "warn".to_owned());
    let mut filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("facegraph: FACEGRAPH_LOG={spec:?} is not a log filter ({e}); using warn");
        tracing_subscriber::EnvFilter::new("warn")
    });
    for krate in [
        "tract",
        "tract_core",
        "tract_onnx",
        "tract_hir",
        "tract_linalg",
        "tract_data",
        "tract_nnef",
        "tract_onnx_opl",
        "tract_extra",
    ] {
        if !spec.contains(krate) {
            if let Ok(directive) = format!("{krate}=error").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
