//! Cross-crate tests live in this package's test targets (see `Cargo.toml`).
//! Helpers shared between them will go here as the drivers arrive.
