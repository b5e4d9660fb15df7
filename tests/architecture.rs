//! Architecture checks that fail the build when the code drifts from docs/ARCHITECTURE.md: the
//! adjudication core stays free of runtime, database and engine crates, and every source file says
//! what it is for in a `//!` doc.

// Test helpers unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

const FORBIDDEN_IN_CORE: &[&str] = &[
    "tokio",
    "axum",
    "neo4rs",
    "rusqlite",
    "aws_sdk_rekognition",
    "aws_config",
    "aws_smithy",
    "aws_types",
    "tract_onnx",
    "tract_core",
    "tract",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Whether code (comments aside) names the crate as a path root: `use krate::…`, `krate::f()`, or
/// `::krate::…`, but not `other_krate::` or `crate::krate::`.
fn mentions(text: &str, krate: &str) -> bool {
    let needle = format!("{krate}::");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .any(|l| {
            l.match_indices(&needle).any(|(i, _)| {
                let before = &l[..i];
                let prev = before.chars().next_back();
                let ident = prev.is_some_and(|c| c.is_alphanumeric() || c == '_');
                let inner_path = prev == Some(':')
                    && !before.trim_end_matches(':').is_empty()
                    && !before
                        .trim_end_matches("::")
                        .ends_with(|c: char| c.is_whitespace() || c == '(');
                !ident && !inner_path
            }) || l == format!("use {krate};")
                || l.contains(&format!("extern crate {krate}"))
        })
}

#[test]
fn adjudication_core_imports_no_io_crates() {
    let mut files = Vec::new();
    rust_files(&src().join("model"), &mut files);
    rust_files(&src().join("adjudication"), &mut files);
    files.push(src().join("cluster.rs"));
    assert!(
        files.len() > 5,
        "the core modules moved: update this test and docs/ARCHITECTURE.md"
    );
    let mut violations = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read source");
        for krate in FORBIDDEN_IN_CORE {
            if mentions(&text, krate) {
                violations.push(format!("{} uses {krate}", f.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the adjudication core must stay pure:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_catches_an_import() {
    assert!(mentions("use tokio::sync::Mutex;", "tokio"));
    assert!(mentions(
        "    let c = rusqlite::Connection::open(p);",
        "rusqlite"
    ));
    assert!(!mentions("// tokio:: is not used here", "tokio"));
    assert!(mentions("let x = ::neo4rs::query(q);", "neo4rs"));
    assert!(!mentions("use crate::model::Face;", "tract"));
    assert!(!mentions("use my_tokio::Thing;", "tokio"));
    assert!(!mentions("use crate::tokio::Thing;", "tokio"));
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        &mut files,
    );
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .expect("read source")
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! doc saying what they are for:\n{}",
        missing.join("\n")
    );
}

/// Every source file of `src/` outside the shell (`src/cli/` and `src/main.rs`).
fn below_the_shell() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.retain(|f| !f.starts_with(src().join("cli")) && *f != src().join("main.rs"));
    assert!(files.len() > 20, "the layout moved: update this test");
    files
}

/// Code lines only: comment lines and doc comments left out.
fn code(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nothing_below_the_shell_imports_clap_anyhow_or_the_cli() {
    let mut violations = Vec::new();
    for f in below_the_shell() {
        let text = std::fs::read_to_string(&f).expect("read source");
        for krate in ["clap", "anyhow"] {
            if mentions(&text, krate) {
                violations.push(format!("{} uses {krate}", f.display()));
            }
        }
        if code(&text).contains("crate::cli") {
            violations.push(format!("{} reaches into the CLI", f.display()));
        }
    }
    assert!(
        violations.is_empty(),
        "clap, anyhow and the CLI belong to the shell (src/cli/, src/main.rs):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_core_imports_nothing_from_the_outer_layers() {
    let mut files = Vec::new();
    rust_files(&src().join("model"), &mut files);
    rust_files(&src().join("adjudication"), &mut files);
    files.push(src().join("cluster.rs"));
    let outer = [
        "store",
        "service",
        "api",
        "engine",
        "settings",
        "startup",
        "cli",
        "rekognition",
        "files",
    ];
    let mut violations = Vec::new();
    for f in &files {
        let text = code(&std::fs::read_to_string(f).expect("read source"));
        for m in outer {
            if text.contains(&format!("crate::{m}::")) || text.contains(&format!("crate::{m};")) {
                violations.push(format!("{} uses crate::{m}", f.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the core (model, adjudication, cluster) depends on nothing outside it:\n{}",
        violations.join("\n")
    );
}

#[test]
fn model_types_are_not_serialize() {
    let mut files = Vec::new();
    rust_files(&src().join("model"), &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = code(&std::fs::read_to_string(f).expect("read source"));
            text.contains("Serialize") || mentions(&text, "serde")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "model types cross no boundary as they are; wire types in api::wire, rekognition::wire and \
         the stores carry them:\n{}",
        offenders.join("\n")
    );
}
