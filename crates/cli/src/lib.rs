//! The `kiln` command's library half: the registry of experiments. `main.rs` parses arguments
//! and dispatches; each experiment lives in its paper's crate (`experiment.rs`).

pub mod registry;
pub mod verify;
