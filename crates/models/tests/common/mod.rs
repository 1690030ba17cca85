//! Helpers shared by this crate's tests: HF-format checkpoints written by hand, peer
//! comparisons, golden files and fixtures.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Seeded uniform values in [-0.1, 0.1).
pub fn rnd(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (((*seed >> 33) as f64) / (1u64 << 31) as f64 - 0.5) as f32 * 0.2
}

/// A safetensors file by hand: 8-byte header length, JSON header, little-endian f32 data.
pub fn write_safetensors(path: &Path, t: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, (shape, v)) in t {
        let start = data.len();
        for x in v {
            data.extend_from_slice(&x.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}

/// Runs `script` with `KILN_PEER_PYTHON` (torch + transformers) and parses the JSON list of
/// floats on its last stdout line; `None` (with a message) when no peer Python is configured.
pub fn peer_floats(script: &str) -> Option<Vec<f32>> {
    let Ok(py) = std::env::var("KILN_PEER_PYTHON") else {
        kiln_core::paths::skip_optional(
            "transformers comparison (set KILN_PEER_PYTHON to a Python with torch + transformers)",
        );
        return None;
    };
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    Some(serde_json::from_str(text.lines().last().unwrap()).unwrap())
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A file under this crate's `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    // The package folder at run time: a shared target directory may hold a test binary built
    // from another checkout, whose compile-time path is gone.
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures")
    .join(name)
}

/// A JSON array of numbers from a reference implementation's golden file, as f32.
pub fn json_floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON array of `D` sizes (a tensor shape) from a golden file.
pub fn json_shape<const D: usize>(v: &serde_json::Value) -> [usize; D] {
    let s: Vec<usize> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    s.try_into().unwrap()
}
