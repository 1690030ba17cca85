//! kiln-core: what every kiln crate shares and nothing paper-specific.
//!
//! Backends are chosen once, at the CLI edge, by turning a `--device` string into a burn
//! [`Device`](burn::tensor::Device) ([`device::parse_device`]); everything below takes `&Device`.

pub mod device;
pub mod error;
pub mod fsutil;
pub mod paths;
pub mod progress;
pub mod run;
pub mod timing;

pub use device::{backend_name, parse_device, tch_parity_device, DeviceChoice};
pub use error::CoreError;
pub use fsutil::{atomic_write, exchange_paths, sha256_file};
pub use run::RunMeta;
