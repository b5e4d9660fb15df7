//! Match clusters.
