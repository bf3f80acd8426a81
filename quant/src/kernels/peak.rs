//! This machine's arithmetic peaks, measured: a dependency-free stream of the one
//! instruction each kernel's inner loop is built on, on every rayon thread at once —
//! `vfmadd231ps` (16 flop) for fp32, and for int8 `vpmaddwd` + `vpaddd` (32 int ops) on the
//! AVX2 path, 512-bit `vpdpbusd` (128 int ops, the im2col kernel's) on the VNNI path, or
//! `tdpbusd` (32 768 int ops on 16×64-byte tiles) on the AMX path. The
//! kernels' fraction of peak is reported against these numbers, not against a datasheet.

use std::time::Instant;

use super::cpu::Isa;

/// Measured peaks over all rayon threads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// fp32 fused multiply-add peak, GFLOP/s (1 FMA = 2 flop).
    pub fp32_gflops: f64,
    /// int8 peak of the path's im2col kernel, GOP/s (1 multiply-accumulate = 2 ops).
    pub int8_gops: f64,
    /// The instructions the int8 peak streams.
    pub int8_via: &'static str,
    /// Threads that ran.
    pub threads: usize,
}

/// Iterations of the 12-wide unrolled loop per thread.
const ITERS: usize = 20_000_000;

/// How many times fewer rounds of four `tdpbusd` the AMX stream runs (each takes about as
/// long as 64 `vpdpbusd`).
const AMX_SLOWER: usize = 64;

/// Measures both peaks on `isa` (`None` for the scalar path, which has no meaningful
/// SIMD peak).
pub fn measure(isa: Isa) -> Option<Peak> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => {
            let threads = rayon::current_num_threads();
            let per_iter_ops = 12.0 * 16.0;
            // SAFETY: the SIMD paths are only handed out when AVX2 and FMA were detected.
            let fp32 = timed(|| unsafe { avx2::fma_stream(ITERS) });
            let (int8, int8_ops, int8_via) = if isa == Isa::Amx {
                // SAFETY: `Isa::Amx` is only handed out when AMX-INT8 was detected and the
                // OS granted the tile state.
                let t = timed(|| unsafe { super::amx::tdpbusd_stream(ITERS / AMX_SLOWER) });
                let ops = super::amx::STREAM_OPS_PER_ROUND as f64 / AMX_SLOWER as f64;
                (t, ops, "tdpbusd tmm")
            } else if isa == Isa::Avx512Vnni {
                // SAFETY: `Isa::Avx512Vnni` is only handed out when AVX-512 F and VNNI were
                // detected.
                let t = timed(|| unsafe { vnni::dpbusd_stream(ITERS) });
                (t, 8.0 * per_iter_ops, "vpdpbusd zmm")
            } else {
                // SAFETY: as for fp32.
                let t = timed(|| unsafe { avx2::madd_stream(ITERS) });
                (t, 2.0 * per_iter_ops, "vpmaddwd+vpaddd")
            };
            let rate = |secs: f64, ops: f64| ops * ITERS as f64 * threads as f64 / secs / 1e9;
            Some(Peak {
                fp32_gflops: rate(fp32, per_iter_ops),
                int8_gops: rate(int8, int8_ops),
                int8_via,
                threads,
            })
        }
        _ => None,
    }
}

/// Wall time of `f` run once on every rayon thread concurrently.
fn timed<T: Send>(f: impl Fn() -> T + Sync) -> f64 {
    let start = Instant::now();
    std::hint::black_box(rayon::broadcast(|_| f()));
    start.elapsed().as_secs_f64()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// 12 independent FMA chains: latency is hidden, throughput is measured.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fma_stream(iters: usize) -> f32 {
        let a = _mm256_set1_ps(0.5);
        let b = _mm256_set1_ps(0.25);
        let mut x = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iters {
            for v in &mut x {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for v in x {
            sum = _mm256_add_ps(sum, v);
        }
        _mm256_cvtss_f32(sum)
    }

    /// 12 `vpmaddwd` on loop-invariant operands, each followed by a `vpaddd` into one of
    /// six accumulators: the throughput of the pair the int8 kernel issues, free of the
    /// `vpmaddwd` latency (written in assembly because the compiler would hoist the
    /// invariant multiplies out of the loop).
    #[target_feature(enable = "avx2")]
    pub(super) fn madd_stream(iters: usize) -> i32 {
        let a = _mm256_set1_epi16(3);
        let b = _mm256_set1_epi16(5);
        let mut x = [_mm256_setzero_si256(); 6];
        // SAFETY: register-only arithmetic and a counted loop; AVX2 is enabled here.
        unsafe {
            std::arch::asm!(
                "2:",
                "vpmaddwd {t0}, {a}, {b}", "vpaddd {x0}, {x0}, {t0}",
                "vpmaddwd {t1}, {a}, {b}", "vpaddd {x1}, {x1}, {t1}",
                "vpmaddwd {t2}, {a}, {b}", "vpaddd {x2}, {x2}, {t2}",
                "vpmaddwd {t3}, {a}, {b}", "vpaddd {x3}, {x3}, {t3}",
                "vpmaddwd {t0}, {a}, {b}", "vpaddd {x4}, {x4}, {t0}",
                "vpmaddwd {t1}, {a}, {b}", "vpaddd {x5}, {x5}, {t1}",
                "vpmaddwd {t2}, {a}, {b}", "vpaddd {x0}, {x0}, {t2}",
                "vpmaddwd {t3}, {a}, {b}", "vpaddd {x1}, {x1}, {t3}",
                "vpmaddwd {t0}, {a}, {b}", "vpaddd {x2}, {x2}, {t0}",
                "vpmaddwd {t1}, {a}, {b}", "vpaddd {x3}, {x3}, {t1}",
                "vpmaddwd {t2}, {a}, {b}", "vpaddd {x4}, {x4}, {t2}",
                "vpmaddwd {t3}, {a}, {b}", "vpaddd {x5}, {x5}, {t3}",
                "dec {n}",
                "jnz 2b",
                n = inout(reg) iters.max(1) => _,
                a = in(ymm_reg) a,
                b = in(ymm_reg) b,
                t0 = out(ymm_reg) _,
                t1 = out(ymm_reg) _,
                t2 = out(ymm_reg) _,
                t3 = out(ymm_reg) _,
                x0 = inout(ymm_reg) x[0],
                x1 = inout(ymm_reg) x[1],
                x2 = inout(ymm_reg) x[2],
                x3 = inout(ymm_reg) x[3],
                x4 = inout(ymm_reg) x[4],
                x5 = inout(ymm_reg) x[5],
                options(nomem, nostack),
            );
        }
        let mut sum = _mm256_setzero_si256();
        for v in x {
            sum = _mm256_add_epi32(sum, v);
        }
        _mm256_cvtsi256_si32(sum)
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    /// 12 independent `vpdpbusd` chains (16 lanes × 4 multiply-accumulates each); the
    /// accumulator dependency keeps the compiler from hoisting them.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) fn dpbusd_stream(iters: usize) -> i32 {
        let a = _mm512_set1_epi8(3);
        let b = _mm512_set1_epi8(5);
        let mut x = [_mm512_setzero_si512(); 12];
        for _ in 0..iters {
            for v in &mut x {
                *v = _mm512_dpbusd_epi32(*v, a, b);
            }
        }
        let mut sum = _mm512_setzero_si512();
        for v in x {
            sum = _mm512_add_epi32(sum, v);
        }
        _mm512_reduce_add_epi32(sum)
    }
}
