//! Crash points for the fault-injection tests: named places on the write path where a debug build
//! aborts the process, as `kill -9` or a power cut would, when `FACEGRAPH_CRASH_AT=NAME:N` names the
//! place and it is reached for the N-th time. Release builds compile them to nothing, so no setting
//! of a production binary can crash it.

/// Every crash point, in the order one image's ingest reaches them: the upload's record, the
/// engine's log append, the two store commits, then the adjudication's two commits.
pub const CRASH_POINTS: &[&str] = &[
    "upload.before_record",
    "upload.before_log_append",
    "upload.after_log_append",
    "upload.after_faces_commit",
    "upload.after_hits_commit",
    "adjudicate.after_verdicts_commit",
    "adjudicate.after_clusters_commit",
];

/// The crash points of the stream, beside those of the ingest it runs: after a stage's outputs
/// were sent and before its message counts as finished (so before its offset is committed), and
/// after match events were sent and before the outbox marks them sent.
pub const STREAM_CRASH_POINTS: &[&str] = &["stream.after_outputs", "events.after_send"];

/// A place where a crash test may stop the process.
#[inline]
pub fn crash_point(name: &'static str) {
    #[cfg(debug_assertions)]
    armed::reach(name);
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(debug_assertions)]
mod armed {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    /// The armed point and the count at which it fires, read once from the environment.
    fn armed() -> Option<&'static (String, u32)> {
        static ARMED: OnceLock<Option<(String, u32)>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var("FACEGRAPH_CRASH_AT").ok()?;
                let (name, n) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
                Some((name.to_owned(), n.parse().ok()?))
            })
            .as_ref()
    }

    pub(super) fn reach(name: &str) {
        static REACHED: AtomicU32 = AtomicU32::new(0);
        if let Some((armed, at)) = armed() {
            if armed == name && REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *at {
                eprintln!("facegraph: crash test: stopping at {name} ({at})");
                std::process::abort();
            }
        }
    }
}
