//! The embedded graph store on SQLite.
