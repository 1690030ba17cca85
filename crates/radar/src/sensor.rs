//! The ROD2021 sensor (devkit `sensor_config_rod2021.json`, spec §2.3): the range-azimuth grid
//! every map, label and detection lives on, the three object classes, and the four scenes.

use std::path::Path;

use crate::error::{RadarError, Result};

/// Speed of light as the devkit writes it (m/s).
pub const LIGHT_SPEED: f64 = 299_792_458.0;

/// The radar constants the grids are derived from.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct RadarConfig {
    /// Range bins of an RA map (rows).
    pub ramap_rsize: usize,
    /// Azimuth bins of an RA map (columns).
    pub ramap_asize: usize,
    pub frame_rate: f64,
    /// FFT bins cropped at each end of the range FFT.
    pub crop_num: usize,
    pub n_chirps: usize,
    pub chirp_ids: Vec<usize>,
    /// ADC sample rate (Hz).
    pub sample_freq: f64,
    /// Chirp slope (Hz/s).
    pub sweep_slope: f64,
    /// The evaluated region: range [rr_min, rr_max] m, azimuth [ra_min_label, ra_max_label]°.
    pub rr_min: f64,
    pub rr_max: f64,
    pub ra_min_label: f64,
    pub ra_max_label: f64,
    pub chirp_folder: String,
}

impl Default for RadarConfig {
    /// The ROD2021 values (the devkit's `sensor_config_rod2021.json`).
    fn default() -> Self {
        Self {
            ramap_rsize: 128,
            ramap_asize: 128,
            frame_rate: 30.0,
            crop_num: 3,
            n_chirps: 255,
            chirp_ids: vec![0, 64, 128, 192],
            sample_freq: 4e6,
            sweep_slope: 21.0017e12,
            rr_min: 1.0,
            rr_max: 25.0,
            ra_min_label: -60.0,
            ra_max_label: 60.0,
            chirp_folder: "RADAR_RA_H".into(),
        }
    }
}

impl RadarConfig {
    /// The `radar_cfg` of a devkit sensor config file.
    pub fn from_devkit_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| RadarError::io(path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RadarError::format(path, e.line(), e.to_string()))?;
        let cfg = v.get("radar_cfg").ok_or_else(|| {
            RadarError::format(path, 0, "no `radar_cfg`: not a cruw-devkit sensor config")
        })?;
        serde_json::from_value(cfg.clone())
            .map_err(|e| RadarError::format(path, 0, format!("radar_cfg: {e}")))
    }
}

/// The metric coordinates of the RA map's bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Range of each row (m), increasing.
    pub range: Vec<f64>,
    /// Azimuth of each column (rad), increasing, arcsin-spaced.
    pub angle: Vec<f64>,
    /// The evaluated region (m, rad).
    pub range_limits: (f64, f64),
    pub angle_limit: f64,
}

impl Grid {
    /// The devkit's grids: r_i = (i + crop)·(Fs / n_fft)·c / (2·slope) with n_fft = rows + 2·crop,
    /// and a_j = arcsin(−1 + 2j/(cols − 1)).
    pub fn new(cfg: &RadarConfig) -> Self {
        let n_fft = (cfg.ramap_rsize + 2 * cfg.crop_num) as f64;
        let bin = cfg.sample_freq / n_fft * LIGHT_SPEED / (2.0 * cfg.sweep_slope);
        let range = (0..cfg.ramap_rsize)
            .map(|i| (i + cfg.crop_num) as f64 * bin)
            .collect();
        let last = (cfg.ramap_asize - 1) as f64;
        let angle = (0..cfg.ramap_asize)
            .map(|j| (-1.0 + 2.0 * j as f64 / last).asin())
            .collect();
        Self {
            range,
            angle,
            range_limits: (cfg.rr_min, cfg.rr_max),
            angle_limit: cfg.ra_max_label.max(-cfg.ra_min_label).to_radians(),
        }
    }

    /// The ROD2021 grid.
    pub fn rod2021() -> Self {
        Self::new(&RadarConfig::default())
    }

    pub fn rows(&self) -> usize {
        self.range.len()
    }

    pub fn cols(&self) -> usize {
        self.angle.len()
    }

    /// Range bin size (m).
    pub fn range_bin(&self) -> f64 {
        self.range[1] - self.range[0]
    }

    /// The nearest grid bin to (range, azimuth), each axis on its own (devkit `ra2idx`).
    pub fn ra2idx(&self, range: f64, angle: f64) -> (usize, usize) {
        (nearest(&self.range, range), nearest(&self.angle, angle))
    }

    /// The metric position of a bin (devkit `idx2ra`).
    pub fn idx2ra(&self, row: usize, col: usize) -> (f64, f64) {
        (self.range[row], self.angle[col])
    }

    /// The evaluated region, for [`kiln_data::rod::evaluate`].
    pub fn region(&self) -> kiln_data::rod::Region {
        kiln_data::rod::Region {
            range: self.range_limits,
            angle_limit: self.angle_limit,
        }
    }

    /// Inside the labelled and evaluated region (range in [1, 25] m, |azimuth| ≤ 60°).
    pub fn in_region(&self, range: f64, angle: f64) -> bool {
        range >= self.range_limits.0
            && range <= self.range_limits.1
            && angle.abs() <= self.angle_limit + 1e-12
    }
}

/// The index of the value of the increasing `grid` nearest to `x` (the lower one on a tie, as
/// NumPy's `argmin` of the absolute difference).
fn nearest(grid: &[f64], x: f64) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, g) in grid.iter().enumerate() {
        let d = (g - x).abs();
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// The three ROD2021 classes: they live with the metric in kiln-data, so that `kiln verify`
/// evaluates radar submissions without this crate.
pub use kiln_data::rod::ObjectClass;

/// The four ROD2021 scenes (spec §2.4), in the authors' classifier order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Scene {
    ParkingLot,
    CampusRoad,
    CityStreet,
    Highway,
}

/// Static captures (parking lot, campus road) against on-road captures from a moving car.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum SceneGroup {
    Static,
    Dynamic,
}

impl Scene {
    pub const ALL: [Scene; 4] = [
        Self::ParkingLot,
        Self::CampusRoad,
        Self::CityStreet,
        Self::Highway,
    ];

    pub fn id(self) -> usize {
        self as usize
    }

    /// The authors' abbreviation: PL, CR, CS, HW.
    pub fn code(self) -> &'static str {
        match self {
            Self::ParkingLot => "PL",
            Self::CampusRoad => "CR",
            Self::CityStreet => "CS",
            Self::Highway => "HW",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn group(self) -> SceneGroup {
        match self {
            Self::ParkingLot | Self::CampusRoad => SceneGroup::Static,
            Self::CityStreet | Self::Highway => SceneGroup::Dynamic,
        }
    }

    /// The scene of a ROD2021 sequence as the authors' code hard-codes it (spec §2.4; the test
    /// sequences' labels are probably their classifier's output). `None` for any other name.
    pub fn of_rod2021_sequence(name: &str) -> Option<Self> {
        ROD2021_SCENES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }
}

use Scene::{CampusRoad as CR, CityStreet as CS, Highway as HW, ParkingLot as PL};

/// The authors' scene table: 40 training and 10 test sequences.
pub const ROD2021_SCENES: &[(&str, Scene)] = &[
    ("2019_04_09_BMS1000", PL),
    ("2019_04_09_BMS1001", PL),
    ("2019_04_09_BMS1002", PL),
    ("2019_04_09_PMS1000", PL),
    ("2019_04_09_PMS1001", PL),
    ("2019_04_09_PMS2000", PL),
    ("2019_04_09_PMS3000", PL),
    ("2019_04_09_CMS1002", PL),
    ("2019_04_30_PBMS002", PL),
    ("2019_04_30_PBMS003", PL),
    ("2019_04_30_PM2S003", PL),
    ("2019_04_30_PM2S004", PL),
    ("2019_05_23_PM2S011", PL),
    ("2019_05_23_PM1S012", PL),
    ("2019_05_23_PM1S013", PL),
    ("2019_05_23_PM1S014", PL),
    ("2019_05_23_PM1S015", PL),
    ("2019_05_29_BM1S016", PL),
    ("2019_05_29_BM1S017", PL),
    ("2019_05_29_PBMS007", PL),
    ("2019_05_29_PM2S015", PL),
    ("2019_05_29_PM3S000", PL),
    ("2019_04_30_MLMS000", CR),
    ("2019_04_30_MLMS001", CR),
    ("2019_04_30_MLMS002", CR),
    ("2019_04_30_PCMS001", CR),
    ("2019_05_09_BM1S008", CR),
    ("2019_05_09_PCMS002", CR),
    ("2019_05_09_CM1S004", CR),
    ("2019_05_09_MLMS003", CR),
    ("2019_05_09_PBMS004", CR),
    ("2019_05_29_MLMS006", CR),
    ("2019_05_29_BCMS000", CR),
    ("2019_05_29_PCMS005", CR),
    ("2019_09_29_ONRD001", CS),
    ("2019_09_29_ONRD002", CS),
    ("2019_09_29_ONRD013", CS),
    ("2019_09_29_ONRD005", HW),
    ("2019_09_29_ONRD006", HW),
    ("2019_09_29_ONRD011", HW),
    // Test sequences, as labelled in the authors' table.
    ("2019_05_28_CM1S013", CR),
    ("2019_05_28_MLMS005", PL),
    ("2019_05_28_PBMS006", PL),
    ("2019_05_28_PCMS004", PL),
    ("2019_05_28_PM2S012", PL),
    ("2019_05_28_PM2S014", PL),
    ("2019_09_18_ONRD004", HW),
    ("2019_09_18_ONRD009", HW),
    ("2019_09_29_ONRD012", HW),
    ("2019_10_13_ONRD048", HW),
];

/// The authors' local validation split ("valid", 8 held-out training sequences).
pub const AUTHORS_VALID: [&str; 8] = [
    "2019_04_09_PMS1000",
    "2019_04_30_MLMS001",
    "2019_04_30_PM2S003",
    "2019_05_09_PBMS004",
    "2019_05_23_PM1S015",
    "2019_05_29_MLMS006",
    "2019_09_29_ONRD001",
    "2019_09_29_ONRD013",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_match_the_devkit() {
        let g = Grid::rod2021();
        assert!((g.range_bin() - 0.213055).abs() < 1e-6, "{}", g.range_bin());
        assert!((g.range[0] - 0.63916).abs() < 1e-5, "{}", g.range[0]);
        assert!((g.range[127] - 27.6971).abs() < 1e-4, "{}", g.range[127]);
        for j in 0..128 {
            assert!(
                (g.angle[j] + g.angle[127 - j]).abs() < 1e-12,
                "symmetric at {j}"
            );
            if j > 0 {
                assert!(g.angle[j] > g.angle[j - 1]);
            }
        }
        assert!((g.angle[0].to_degrees() + 90.0).abs() < 1e-9);
        assert!((g.angle[64].to_degrees() - 0.451).abs() < 1e-3);
        assert!((g.angle[118].to_degrees() - 59.12).abs() < 1e-2);
    }

    #[test]
    fn the_grid_region_is_the_devkits_hard_coded_one() {
        assert_eq!(Grid::rod2021().region(), kiln_data::rod::Region::rod2021());
    }

    #[test]
    fn idx2ra_of_ra2idx_is_the_nearest_grid_point() {
        let g = Grid::rod2021();
        for (r, a) in [
            (3.3, 0.2),
            (10.0, -0.9),
            (0.1, -2.0),
            (30.0, 1.6),
            (12.34, 0.0),
        ] {
            let (i, j) = g.ra2idx(r, a);
            let (gr, ga) = g.idx2ra(i, j);
            assert!(g.range.iter().all(|x| (x - r).abs() >= (gr - r).abs()));
            assert!(g.angle.iter().all(|x| (x - a).abs() >= (ga - a).abs()));
        }
        let (i, j) = g.ra2idx(g.range[40], g.angle[77]);
        assert_eq!((i, j), (40, 77));
    }

    #[test]
    fn the_devkit_config_file_gives_the_same_grid() {
        let Some(data) = kiln_core::paths::shared_data() else {
            return kiln_core::paths::skip("shared data (cruw/dataset_configs)");
        };
        let cfg = RadarConfig::from_devkit_json(
            &data.join("cruw/dataset_configs/sensor_config_rod2021.json"),
        )
        .unwrap();
        assert_eq!(cfg, RadarConfig::default());
        assert_eq!(Grid::new(&cfg), Grid::rod2021());
    }

    #[test]
    fn scene_table_has_the_authors_counts() {
        let count = |s: Scene| ROD2021_SCENES.iter().filter(|(_, x)| *x == s).count();
        assert_eq!(ROD2021_SCENES.len(), 50);
        assert_eq!((count(PL), count(CR), count(CS), count(HW)), (27, 13, 3, 7));
        assert!(AUTHORS_VALID
            .iter()
            .all(|n| Scene::of_rod2021_sequence(n).is_some()));
    }
}
