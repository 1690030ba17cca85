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
    /// LibTorch on the CPU (burn-tch): PyTorch's own kernels, the fastest CPU path here.
    Tch,
    /// LibTorch on CUDA device N: the CUDA path that builds offline (burn's `cuda` downloads
    /// LLVM at build time).
    TchCuda(usize),
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
            "tch" | "libtorch" | "tch-cpu" => Self::Tch,
            "tch-cuda" => Self::TchCuda(0),
            other => {
                let index = |idx: &str| {
                    idx.parse()
                        .map_err(|_| CoreError::UnknownDevice(other.to_string()))
                };
                if let Some(idx) = other.strip_prefix("cuda:") {
                    Self::Cuda(index(idx)?)
                } else if let Some(idx) = other.strip_prefix("tch-cuda:") {
                    Self::TchCuda(index(idx)?)
                } else {
                    return Err(CoreError::UnknownDevice(other.to_string()));
                }
            }
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
            Self::Tch | Self::TchCuda(_) => "tch",
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Cuda(i) => format!("cuda:{i}"),
            Self::TchCuda(i) => format!("tch-cuda:{i}"),
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
            // burn 0.22 marks burn-tch deprecated in favour of CubeCL backends, but on machines
            // without network access at build time it is the only CUDA path, and on CPU it runs
            // PyTorch's kernels (issue 12 measured 1.05x PyTorch vs flex's 0.47x).
            Self::Tch => {
                #[cfg(feature = "tch")]
                #[allow(deprecated)]
                return Ok(Device::libtorch());
                #[allow(unreachable_code)]
                Err(missing())
            }
            Self::TchCuda(_idx) => {
                #[cfg(feature = "tch")]
                {
                    let found = tch_cuda_device_count();
                    if *_idx >= found {
                        return Err(CoreError::NoCudaDevice {
                            requested: self.label(),
                            found,
                        });
                    }
                    #[allow(deprecated)]
                    return Ok(Device::libtorch_cuda(*_idx));
                }
                #[allow(unreachable_code)]
                Err(missing())
            }
        }
    }

    /// Whether this backend's cargo feature is compiled into this build.
    pub fn is_compiled(&self) -> bool {
        !matches!(self.device(), Err(CoreError::BackendNotCompiled { .. }))
    }
}

/// The LibTorch device for backend-parity tests (`KILN_TCH_PARITY_DEVICE`, default `tch`; a
/// GPU machine sets `tch-cuda`), or `None` after a logged skip when this build has no `tch`
/// feature. `just test` builds with it and sets `KILN_REQUIRE_TCH`, which turns a missing
/// feature into a failure, so CI cannot pass without running the parity tests.
pub fn tch_parity_device() -> Option<Device> {
    let choice = std::env::var("KILN_TCH_PARITY_DEVICE").unwrap_or_else(|_| "tch".into());
    let built = DeviceChoice::parse(&choice).and_then(|c| match c {
        DeviceChoice::Tch | DeviceChoice::TchCuda(_) => c.device(),
        other => Err(CoreError::UnknownDevice(format!(
            "{} (KILN_TCH_PARITY_DEVICE must name a LibTorch device: tch, tch-cuda, tch-cuda:N)",
            other.label()
        ))),
    });
    match built {
        Ok(d) => Some(d),
        Err(e @ CoreError::BackendNotCompiled { .. }) => {
            if std::env::var_os("KILN_REQUIRE_TCH").is_some() {
                panic!("KILN_REQUIRE_TCH is set but the tch backend is unavailable: {e}");
            }
            crate::paths::skip_optional(
                "tch parity (built without the `tch` feature; `just test` or `just test-tch` builds it)",
            );
            None
        }
        Err(e) => panic!("tch parity device `{choice}`: {e}"),
    }
}

/// CUDA devices LibTorch can see (0 with a CPU-only torch or no driver).
#[cfg(feature = "tch")]
fn tch_cuda_device_count() -> usize {
    #[allow(deprecated)]
    let n = tch::Cuda::device_count();
    n.max(0) as usize
}

/// Parses and builds a device in one step.
pub fn parse_device(s: &str) -> Result<Device, CoreError> {
    DeviceChoice::parse(s)?.device()
}

/// The backend a device runs on, for run metadata ("flex", "wgpu", ...).
pub fn backend_name(device: &Device) -> String {
    let dbg = format!("{:?}", device.clone().inner());
    let lower = dbg.to_ascii_lowercase();
    // LibTorch first: its CUDA device prints as `LibTorch(Cuda(0))`.
    if lower.contains("libtorch") {
        return if lower.contains("cuda") {
            "tch-cuda"
        } else {
            "tch"
        }
        .to_string();
    }
    for name in ["flex", "ndarray", "cuda", "vulkan", "wgpu", "metal"] {
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
        assert_eq!(DeviceChoice::parse("tch").unwrap(), DeviceChoice::Tch);
        assert_eq!(DeviceChoice::parse("libtorch").unwrap(), DeviceChoice::Tch);
        assert_eq!(
            DeviceChoice::parse("tch-cuda").unwrap(),
            DeviceChoice::TchCuda(0)
        );
        assert_eq!(
            DeviceChoice::parse("tch-cuda:2").unwrap(),
            DeviceChoice::TchCuda(2)
        );
        assert_eq!(DeviceChoice::TchCuda(2).label(), "tch-cuda:2");
        assert!(DeviceChoice::parse("tch-cuda:").is_err());
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

    #[cfg(not(feature = "tch"))]
    #[test]
    fn missing_tch_names_the_feature() {
        let err = parse_device("tch-cuda:0").unwrap_err().to_string();
        assert!(err.contains("--features tch"), "{err}");
        assert!(!DeviceChoice::Tch.is_compiled());
    }

    #[cfg(feature = "tch")]
    #[test]
    fn tch_cpu_builds_and_is_named() {
        let d = parse_device("tch").unwrap();
        assert_eq!(backend_name(&d), "tch");
    }
}
