//! Run-time choice of the instruction set, made in this one place.
//!
//! Detection runs once per process. `LIDARQ_ISA=scalar|avx2|avx512vnni|amx` can only lower the
//! choice: asking for more than the CPU has keeps the best available path, and the reason
//! says so. Every kernel in [`crate::kernels`] dispatches on an [`Isa`] value taken from
//! here (or from an explicit, checked request), never on its own detection.

use std::fmt;
use std::sync::OnceLock;

/// Environment variable that can force a slower kernel path.
pub const ISA_ENV: &str = "LIDARQ_ISA";

/// A kernel path, ordered from slowest to fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust; the binding reference every SIMD path equals bit for bit.
    Scalar,
    /// AVX2 + FMA (256-bit): fp32 via FMA, int8 widened to i16 pairs through `vpmaddwd`.
    Avx2,
    /// AVX2 + FMA plus AVX-512 F/BW and VNNI: int8 im2col GEMMs run raw u8 × i8 quads
    /// through 512-bit `vpdpbusd`, Winograd's i16 pairs `vpdpwssd` (multiply, sum and
    /// accumulate in one instruction over 16 lanes), and the requantizing epilogue takes 16
    /// lanes; every other kernel runs its AVX2 code.
    Avx512Vnni,
    /// The VNNI path plus AMX-INT8: int8 im2col GEMMs run the same u8 × i8 quads through
    /// `tdpbusd` on 16×64-byte tiles (a 16×16 block of i32 sums per instruction); every
    /// other kernel runs its VNNI-path code.
    Amx,
}

impl Isa {
    /// Every path this build has kernels for, slowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni, Isa::Amx];

    /// The name accepted by `LIDARQ_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Amx => "amx",
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => features().avx2 && features().fma,
            Isa::Avx512Vnni => Isa::Avx2.is_available() && features().has_avx512vnni(),
            Isa::Amx => Isa::Avx512Vnni.is_available() && features().amx_int8,
        }
    }

    /// The paths this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The CPU features that matter to the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuFeatures {
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512vnni: bool,
    /// AMX tiles with the int8 dot products, and Linux's permission to use their state.
    pub amx_int8: bool,
}

impl CpuFeatures {
    /// AVX-512 with the byte/word instructions and VNNI: what the VNNI path needs beyond
    /// AVX2 + FMA.
    pub fn has_avx512vnni(&self) -> bool {
        self.avx512f && self.avx512bw && self.avx512vnni
    }
}

/// The features of the running CPU (detected once).
pub fn features() -> CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    *FEATURES.get_or_init(detect_features)
}

#[cfg(target_arch = "x86_64")]
fn detect_features() -> CpuFeatures {
    CpuFeatures {
        avx2: std::arch::is_x86_feature_detected!("avx2"),
        fma: std::arch::is_x86_feature_detected!("fma"),
        f16c: std::arch::is_x86_feature_detected!("f16c"),
        avx512f: std::arch::is_x86_feature_detected!("avx512f"),
        avx512bw: std::arch::is_x86_feature_detected!("avx512bw"),
        avx512vnni: std::arch::is_x86_feature_detected!("avx512vnni"),
        amx_int8: super::amx::cpu_has_amx_int8() && super::amx::request_permission(),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_features() -> CpuFeatures {
    CpuFeatures::default()
}

/// L2 size assumed where the system does not say (the smallest of the CPUs lidarq was
/// measured on).
const DEFAULT_L2_BYTES: usize = 512 * 1024;

/// Bytes of the first core's L2 cache, read once from Linux's sysfs (512 KiB where it
/// cannot be read). Kernels size their cache blocks by it; it never changes a result.
pub fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| read_l2().unwrap_or(DEFAULT_L2_BYTES))
}

fn read_l2() -> Option<usize> {
    (0..8).find_map(|i| {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let level = std::fs::read_to_string(format!("{dir}/level")).ok()?;
        (level.trim() == "2").then_some(())?;
        parse_cache_size(&std::fs::read_to_string(format!("{dir}/size")).ok()?)
    })
}

/// A sysfs cache size (`2048K`, `4M`, `65536`) in bytes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, unit) = match s.strip_suffix('K') {
        Some(d) => (d, 1 << 10),
        None => s.strip_suffix('M').map_or((s, 1), |d| (d, 1 << 20)),
    };
    digits
        .parse::<usize>()
        .ok()
        .map(|n| n * unit)
        .filter(|&n| n > 0)
}

/// The path the kernels use by default, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The chosen path.
    pub isa: Isa,
    /// The fastest path this CPU could run.
    pub best_available: Isa,
    /// The CPU features seen.
    pub features: CpuFeatures,
    /// The value of `LIDARQ_ISA`, if set.
    pub requested: Option<String>,
    /// One sentence per decision taken.
    pub reasons: Vec<String>,
}

/// The process-wide selection (environment read once).
pub fn selection() -> &'static Selection {
    static SELECTION: OnceLock<Selection> = OnceLock::new();
    SELECTION.get_or_init(|| select(features(), std::env::var(ISA_ENV).ok()))
}

/// The default kernel path.
pub fn selected() -> Isa {
    selection().isa
}

/// A human-readable account of the selection.
pub fn describe() -> String {
    let s = selection();
    format!("kernel path: {} — {}", s.isa, s.reasons.join("; "))
}

/// The pure selection rule, separate from the process state so it can be tested.
pub fn select(features: CpuFeatures, requested: Option<String>) -> Selection {
    let mut reasons = Vec::new();
    let best_available = if features.avx2 && features.fma {
        reasons.push("CPU has AVX2 and FMA".to_string());
        Isa::Avx2
    } else {
        reasons.push(format!(
            "CPU lacks {} (AVX2 and FMA are both needed)",
            if features.avx2 { "FMA" } else { "AVX2" }
        ));
        Isa::Scalar
    };
    let best_available = match (best_available, features.has_avx512vnni()) {
        (Isa::Avx2, true) => {
            reasons.push("CPU has AVX-512 F/BW and VNNI".to_string());
            Isa::Avx512Vnni
        }
        (_, true) => {
            reasons.push("CPU has AVX-512 VNNI, but the VNNI path also needs AVX2 and FMA".into());
            best_available
        }
        (_, false) => {
            reasons.push("no AVX-512 VNNI".to_string());
            best_available
        }
    };
    let best_available = match (best_available, features.amx_int8) {
        (Isa::Avx512Vnni, true) => {
            reasons.push("CPU has AMX-INT8 and the OS grants its tile state".to_string());
            Isa::Amx
        }
        (_, true) => {
            reasons.push("CPU has AMX-INT8, but the AMX path also needs the VNNI path".into());
            best_available
        }
        (Isa::Avx512Vnni, false) => {
            reasons.push("no AMX-INT8 (or the OS does not grant its tile state)".to_string());
            best_available
        }
        (_, false) => best_available,
    };
    let mut isa = best_available;
    match requested.as_deref().map(str::trim) {
        None | Some("") => {}
        Some(name) => match parse_request(name) {
            Some(want) if want <= best_available => {
                if want < best_available {
                    reasons.push(format!("{ISA_ENV}={name} lowers the choice to {want}"));
                }
                isa = want;
            }
            Some(_) => reasons.push(format!(
                "{ISA_ENV}={name} asks for more than this CPU has; it can only lower the \
                 choice, so {best_available} stays"
            )),
            None => reasons.push(format!(
                "{ISA_ENV}={name} is not one of scalar, avx2, avx512vnni, amx; ignored"
            )),
        },
    }
    Selection {
        isa,
        best_available,
        features,
        requested,
        reasons,
    }
}

/// A `LIDARQ_ISA` value.
fn parse_request(name: &str) -> Option<Isa> {
    match name.to_ascii_lowercase().as_str() {
        "scalar" => Some(Isa::Scalar),
        "avx2" => Some(Isa::Avx2),
        "avx512vnni" | "avx512" => Some(Isa::Avx512Vnni),
        "amx" => Some(Isa::Amx),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_cache_size("2048K\n"), Some(2 << 20));
        assert_eq!(parse_cache_size("4M"), Some(4 << 20));
        assert_eq!(parse_cache_size("65536"), Some(65536));
        assert_eq!(parse_cache_size("0K"), None);
        assert_eq!(parse_cache_size("big"), None);
        assert!(l2_bytes() >= 64 * 1024);
    }
}
