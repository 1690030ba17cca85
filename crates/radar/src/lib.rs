//! Scene-aware radar object detection on CRUW / ROD2021 (Zheng, Yue, Keutzer and
//! Sangiovanni-Vincentelli, ICMR 2021, arXiv 2107.01469; spec: shared/papers/radar.md).
//!
//! The task: from a window of complex range-azimuth (RA) radar maps, find every pedestrian,
//! cyclist and car as a point (range, azimuth) with a confidence. The method, in the order it
//! runs:
//! * [`sensor`]: the ROD2021 sensor's range and arcsin-spaced azimuth grids, the classes and
//!   the authors' scene table (parking lot, campus road, city street, highway);
//! * [`cruw`]: the CRUW layout as the devkit stores it (`RADAR_RA_H/<frame>_<chirp>.npy`,
//!   annotation and submission txt), read strictly;
//! * [`labels`]: objects and detections, and their annotation and submission txt files;
//! * [`confmap`]: the per-class Gaussian confidence-map targets with the background channel;
//! * [`nets`]: the 3-D encoder-decoders of spec §5 (RODNet-CDC, CDC-deep, C21D, RODNet-HG,
//!   RODNet-HGwI, the ResNet-(2+1)D autoencoders) and the scene classifier;
//! * [`postprocess`]: sliding-window temporal averaging, peak detection, location-based NMS,
//!   the class merge and the authors' voting ensemble;
//! * [`eval`]: the ROD2021 metric exactly as cruw-devkit computes it (OLS matching at nine
//!   thresholds, COCO-style accumulation, GT-count-weighted AP and AR, per scene);
//! * [`sim`]: an FMCW radar simulator writing CRUW-layout sequences, for the frames that cannot
//!   be downloaded here (every number it produces is labelled SIMULATED).
//!
//! Deliberate choices where the authors' code is wrong or silent are listed in the module that
//! makes them; the spec's pitfalls 4-6 and 12 (global per-frame normalisation, the SceneMix gate
//! and L-NMS deletion bugs, pooled evaluation, OLS asymmetry) are each covered by a test.

pub mod confmap;
pub mod cruw;
pub mod error;
pub mod eval;
pub mod labels;
pub mod nets;
pub mod postprocess;
pub mod scene;
pub mod sensor;
pub mod sim;
pub mod train;

/// The `radar` experiment (feature `experiment`, on by default).
#[cfg(feature = "experiment")]
pub mod experiment;

/// The `radar` experiment, for the registry.
#[cfg(feature = "experiment")]
pub const RADAR: experiment::RadarExperiment = experiment::RadarExperiment;

pub use error::{RadarError, Result};
pub use sensor::{Grid, ObjectClass, RadarConfig, Scene, SceneGroup};
