//! Devices as written on the command line (`--device cpu|cuda|cuda:N|cuda:0,1`), checked
//! before anything runs, and the backend each belongs to.
//!
//! Work that runs on a device is an [`OnDevice`]: generic over the backend, so that one call
//! site serves the CPU and CUDA builds alike. Several GPUs are a list: concurrent runs are
//! placed on them in turn (see
//! [`crate::plan::Plan::with_devices`]).

use std::fmt;
use std::str::FromStr;

use crate::backend::{Cpu, HarnessBackend};

/// The devices a command runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (burn-flex, all cores).
    Cpu,
    /// These CUDA GPUs, by index (at least one).
    Cuda(Vec<usize>),
}

impl FromStr for DeviceSpec {
    type Err = String;

    /// `cpu`; `cuda` (GPU 0); `cuda:N`; `cuda:0,1,…`; or a bare list of GPU indices `0,1,…`
    /// (what `--devices` takes).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "`{s}` is not a device: expected `cpu`, `cuda`, `cuda:N` or a list of GPU \
                 indices such as `cuda:0,1` or `0,1`"
            )
        };
        if s.eq_ignore_ascii_case("cpu") {
            return Ok(Self::Cpu);
        }
        if s.eq_ignore_ascii_case("cuda") {
            return Ok(Self::Cuda(vec![0]));
        }
        let list = match s.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("cuda:") => &s[5..],
            _ => s,
        };
        let mut ids = Vec::new();
        for part in list.split(',') {
            let id: usize = part.trim().parse().map_err(|_| bad())?;
            if ids.contains(&id) {
                return Err(format!("`{s}` names GPU {id} twice"));
            }
            ids.push(id);
        }
        Ok(Self::Cuda(ids))
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(ids) => {
                let ids: Vec<String> = ids.iter().map(usize::to_string).collect();
                write!(f, "cuda:{}", ids.join(","))
            }
        }
    }
}

/// Work that runs on the devices of one backend.
pub trait OnDevice {
    type Output;

    /// Runs on `devices` (at least one) of backend `B`.
    fn run<B: HarnessBackend>(self, devices: Vec<B::Device>) -> Self::Output;
}

impl DeviceSpec {
    /// Runs `work` on these devices, after checking that they exist.
    ///
    /// # Errors
    /// CUDA asked of a binary built without it, or of a machine without a driver or with
    /// fewer GPUs than named.
    pub fn run<W: OnDevice>(&self, work: W) -> Result<W::Output, String> {
        match self {
            Self::Cpu => Ok(work.run::<Cpu>(vec![Default::default()])),
            Self::Cuda(ids) => run_cuda(ids, work),
        }
    }

    /// The one device of a command that uses one (`bench sample`, `score`, `fid`).
    ///
    /// # Errors
    /// More than one device.
    pub fn single(self) -> Result<Self, String> {
        match &self {
            Self::Cuda(ids) if ids.len() > 1 => Err(format!(
                "`--device {self}` names {} GPUs; this command uses one",
                ids.len()
            )),
            _ => Ok(self),
        }
    }
}

#[cfg(feature = "cuda")]
fn run_cuda<W: OnDevice>(ids: &[usize], work: W) -> Result<W::Output, String> {
    let count = cuda_device_count()?;
    if let Some(id) = ids.iter().find(|&&id| id >= count) {
        return Err(format!(
            "GPU {id} was asked for, but this machine has {count} CUDA device(s) \
             (indices 0..{count}); see `nvidia-smi`"
        ));
    }
    let devices = ids
        .iter()
        .map(|&index| burn::backend::cuda::CudaDevice { index })
        .collect();
    Ok(work.run::<crate::backend::Cuda>(devices))
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<W: OnDevice>(_: &[usize], _: W) -> Result<W::Output, String> {
    Err(
        "this `bench` was built without CUDA: rebuild it with `cargo build --release \
         --features cuda` (the build needs no CUDA toolkit; running needs the NVIDIA driver)"
            .into(),
    )
}

/// The number of CUDA devices the driver sees.
///
/// # Errors
/// No driver library (`libcuda.so`), or the driver fails to initialise.
#[cfg(feature = "cuda")]
pub fn cuda_device_count() -> Result<usize, String> {
    // SAFETY: only tries to dlopen the driver library; no symbol of it is called.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(
            "CUDA was asked for, but no NVIDIA driver library (libcuda.so) is on this \
             machine: run on a GPU machine, or use `--device cpu`"
                .into(),
        );
    }
    let count = cudarc::driver::CudaContext::device_count()
        .map_err(|e| format!("the NVIDIA driver failed to initialise: {e:?}"))?;
    match usize::try_from(count) {
        Ok(0) | Err(_) => Err(
            "CUDA was asked for, but the NVIDIA driver sees no GPU on this machine \
             (`nvidia-smi` lists them); use `--device cpu`"
                .into(),
        ),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_prints_it_back() {
        for (text, spec) in [
            ("cpu", DeviceSpec::Cpu),
            ("CPU", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(vec![0])),
            ("cuda:3", DeviceSpec::Cuda(vec![3])),
            ("cuda:0,2", DeviceSpec::Cuda(vec![0, 2])),
            ("1, 0", DeviceSpec::Cuda(vec![1, 0])),
        ] {
            let parsed: DeviceSpec = text.parse().unwrap();
            assert_eq!(parsed, spec, "{text}");
            assert_eq!(parsed.to_string().parse::<DeviceSpec>().unwrap(), spec);
        }
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "", "0,0", "cuda:1,,2"] {
            let e = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn one_device_commands_refuse_a_list() {
        assert!(DeviceSpec::Cuda(vec![0, 1]).single().is_err());
        assert!(DeviceSpec::Cuda(vec![1]).single().is_ok());
        assert!(DeviceSpec::Cpu.single().is_ok());
    }

    struct Nothing;
    impl OnDevice for Nothing {
        type Output = ();
        fn run<B: HarnessBackend>(self, _: Vec<B::Device>) {}
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = DeviceSpec::Cuda(vec![0]).run(Nothing).unwrap_err();
        assert!(e.contains("--features cuda"), "{e}");
        assert!(DeviceSpec::Cpu.run(Nothing).is_ok());
    }

    /// On any machine: no driver, no GPU, or fewer GPUs than asked, each an error.
    #[cfg(feature = "cuda")]
    #[test]
    fn a_missing_gpu_is_an_error_naming_the_cause() {
        let e = DeviceSpec::Cuda(vec![4096]).run(Nothing).unwrap_err();
        assert!(
            e.contains("libcuda") || e.contains("no GPU") || e.contains("GPU 4096"),
            "{e}"
        );
    }
}
