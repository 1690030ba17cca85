//! The `kiln` command's library half: experiment settings, data/checkpoint resolution,
//! downloads, experiments and benchmarks. `main.rs` only parses arguments.

pub mod bench;
pub mod experiments;
pub mod hub;
pub mod resolve;
pub mod settings;
