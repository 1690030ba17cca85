//! Turning a user's `--device` string into a burn [`Device`].
//!
//! burn picks `Device::default()` from whatever backends are compiled in (wgpu wins over flex),
//! which on a CPU-only machine means Mesa's software Vulkan, ~70x slower. kiln therefore never
//! relies on the default: every entry point resolves an explicit choice here.

use burn::tensor::Device;

use crate::CoreError;

/// A parsed `--device` value, kept so results can record what the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    Flex,
    NdArray,
    Wgpu,
    Vulkan,
    Cuda(usize),
}

impl DeviceChoice {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let s = s.trim().to_ascii_lowercase();
        Ok(match s.as_str() {
            "flex" | "cpu" => Self::Flex,
            "ndarray" => Self::NdArray,
            "wgpu" => Self::Wgpu,
            "vulkan" => Self::Vulkan,
            "cuda" => Self::Cuda(0),
            other => match other.strip_prefix("cuda:") {
                Some(idx) => Self::Cuda(
                    idx.parse()
                        .map_err(|_| CoreError::UnknownDevice(other.to_string()))?,
                ),
                None => return Err(CoreError::UnknownDevice(other.to_string())),
            },
        })
    }

    /// The cargo feature that compiles this backend in.
    pub fn feature(&self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Vulkan => "vulkan",
            Self::Cuda(_) => "cuda",
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Cuda(i) => format!("cuda:{i}"),
            other => other.feature().to_string(),
        }
    }

    /// Builds the burn device, or says which feature is missing.
    pub fn device(&self) -> Result<Device, CoreError> {
        let missing = || CoreError::BackendNotCompiled {
            requested: self.label(),
            feature: self.feature().to_string(),
        };
        match self {
            Self::Flex => Ok(Device::flex()),
            Self::NdArray => {
                // burn 0.22 deprecates ndarray in favour of flex; kept as a comparison backend.
                #[cfg(feature = "ndarray")]
                #[allow(deprecated)]
                return Ok(Device::ndarray());
                #[allow(unreachable_code)]
                Err(missing())
            }
            Self::Wgpu => {
                #[cfg(feature = "wgpu")]
                return Ok(Device::wgpu(burn::tensor::DeviceKind::default()));
                #[allow(unreachable_code)]
                Err(missing())
            }
            Self::Vulkan => {
                #[cfg(feature = "vulkan")]
                return Ok(Device::vulkan(burn::tensor::DeviceKind::default()));
                #[allow(unreachable_code)]
                Err(missing())
            }
            Self::Cuda(_idx) => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(*_idx));
                #[allow(unreachable_code)]
                Err(missing())
            }
        }
    }
}

/// Parses and builds a device in one step.
pub fn parse_device(s: &str) -> Result<Device, CoreError> {
    DeviceChoice::parse(s)?.device()
}

/// The backend a device runs on, for run metadata ("flex", "wgpu", ...).
pub fn backend_name(device: &Device) -> String {
    let dbg = format!("{:?}", device.clone().inner());
    let lower = dbg.to_ascii_lowercase();
    for name in [
        "flex", "ndarray", "cuda", "vulkan", "wgpu", "metal", "libtorch",
    ] {
        if lower.contains(name) {
            return name.to_string();
        }
    }
    dbg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_devices() {
        assert_eq!(DeviceChoice::parse("flex").unwrap(), DeviceChoice::Flex);
        assert_eq!(
            DeviceChoice::parse("CUDA:1").unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert_eq!(DeviceChoice::parse("cuda").unwrap(), DeviceChoice::Cuda(0));
        assert!(DeviceChoice::parse("tpu").is_err());
        assert!(DeviceChoice::parse("cuda:x").is_err());
    }

    #[test]
    fn flex_always_builds_and_is_named() {
        let d = parse_device("flex").unwrap();
        assert_eq!(backend_name(&d), "flex");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn missing_backend_names_the_feature() {
        let err = parse_device("cuda:0").unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
