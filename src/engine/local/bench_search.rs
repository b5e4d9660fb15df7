//! `facegraph bench-search`: figures for the local engine's exact search on generated vectors.
