//! The `facegraph` command: parses the command line, runs it, and turns errors into a message on
//! standard error and a non-zero exit status.

use clap::Parser;

fn main() {
    // tract warns on every model load that the files use ONNX opset 21 (it is tested up to 18);
    // the local engine's own tests check those models instead.
    let default_filter = "warn,tract_onnx=error";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FACEGRAPH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = facegraph::cli::Cli::parse();
    match facegraph::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
