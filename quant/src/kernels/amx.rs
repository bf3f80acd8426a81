//! AMX-INT8: detection, Linux's tile-state permission, and the `tdpbusd` tile kernel of the
//! u8 × i8 im2col GEMM.
//!
//! A tile register holds 16 rows of 64 bytes. `tdpbusd C, A, B` adds to each i32 of the
//! 16×16 tile `C` the dot product of a 64-byte u8 row of `A` with a column of `B`, whose
//! 16 rows each hold one 32-bit word of four consecutive depth values for each of the 16
//! columns: the `[k/4][NR][4]` quad layout the VNNI path already packs its weights in, so a
//! depth step of 64 is one 1 KiB block of a panel. Sums wrap like every other int8 path, so
//! the tile kernel gives the same integers as the scalar reference.
//!
//! Tile registers have no Rust or LLVM register class: the assembly below names `tmm0`–`tmm7`
//! itself. The compiler never emits AMX instructions, so nothing else touches them between
//! the blocks of one kernel call.

/// Depth consumed by one `tdpbusd`: a 64-byte tile row.
pub(crate) const TILE_DEPTH: usize = 64;
/// Rows (GEMM rows, output pixels) of one tile.
pub(crate) const TILE_ROWS: usize = 16;

/// Whether CPUID reports AMX tiles and their int8 dot products.
#[cfg(target_arch = "x86_64")]
pub(crate) fn cpu_has_amx_int8() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // Leaf 7 subleaf 0, EDX: bit 24 AMX-TILE, bit 25 AMX-INT8.
    __cpuid(0).eax >= 7 && {
        let edx = __cpuid_count(7, 0).edx;
        edx & (1 << 24) != 0 && edx & (1 << 25) != 0
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn cpu_has_amx_int8() -> bool {
    false
}

/// Asks Linux for the tile-data state (`ARCH_REQ_XCOMP_PERM`, feature 18): until a process
/// has it, the first tile instruction faults. Granted for the whole process.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn request_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes which extended states the
    // process may use; it reads and writes no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(crate) fn request_permission() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
pub(crate) use tiles::{STREAM_OPS_PER_ROUND, gemm_tiles, tdpbusd_stream};

#[cfg(target_arch = "x86_64")]
mod tiles {
    use std::arch::asm;
    use std::cell::Cell;

    use super::{TILE_DEPTH, TILE_ROWS};
    use crate::kernels::gemm::NR;

    /// Palette 1, all eight tiles 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const CONFIG: TileConfig = {
        let mut c = [0u8; 64];
        c[0] = 1;
        let mut t = 0;
        while t < 8 {
            c[16 + 2 * t] = TILE_DEPTH as u8;
            c[48 + t] = TILE_ROWS as u8;
            t += 1;
        }
        TileConfig(c)
    };

    thread_local! {
        /// Whether this thread loaded [`CONFIG`]. The configuration is thread state that the
        /// OS saves and restores; nothing in the process releases or changes it.
        static CONFIGURED: Cell<bool> = const { Cell::new(false) };
    }

    /// # Safety
    /// AMX-INT8 present and permitted.
    unsafe fn configure() {
        if !CONFIGURED.get() {
            // SAFETY: the caller guarantees AMX; `CONFIG` is a valid 64-byte palette-1
            // configuration.
            unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
            CONFIGURED.set(true);
        }
    }

    /// `tileloadd` / `tilestored` of one named tile register at a byte stride.
    macro_rules! tile {
        (load $t:literal, $p:expr, $stride:expr) => {
            asm!(concat!("tileloadd ", $t, ", [{p} + {s}*1]"), p = in(reg) $p, s = in(reg) $stride,
                 options(nostack, readonly))
        };
        (store $t:literal, $p:expr, $stride:expr) => {
            asm!(concat!("tilestored [{p} + {s}*1], ", $t), p = in(reg) $p, s = in(reg) $stride,
                 options(nostack))
        };
        (dot $c:literal, $a:literal, $b:literal) => {
            asm!(concat!("tdpbusd ", $c, ", ", $a, ", ", $b), options(nostack, nomem))
        };
        (zero $t:literal) => {
            asm!(concat!("tilezero ", $t), options(nostack, nomem))
        };
    }

    /// Zeroes the four sum tiles.
    ///
    /// # Safety
    /// AMX-INT8 present, permitted and configured.
    unsafe fn zero_sums() {
        // SAFETY: the caller guarantees configured AMX; `tilezero` touches no memory.
        unsafe {
            tile!(zero "tmm0");
            tile!(zero "tmm1");
            tile!(zero "tmm2");
            tile!(zero "tmm3");
        }
    }

    /// `c[r·ldc + j] (+)= Σ_k a[r·lda + k] · B_p[k][j]` for `r < 16·row_tiles`, and for the
    /// panels `b` given (`b[1]` into columns `NR..2·NR`): `row_tiles` ∈ {1, 2}, `steps`
    /// depth steps of 64 (`a` u8 bytes, each `b` a quad-packed panel of `steps·64·NR`
    /// i8); `first` starts from zero instead of `c`. Tiles: `tmm0`–`tmm3` the sums (row
    /// tile × panel), `tmm4`–`tmm5` the rows, `tmm6`–`tmm7` the panels.
    ///
    /// # Safety
    /// AMX-INT8 present and permitted; `a` readable for `16·row_tiles` rows of
    /// `64·steps` bytes at stride `lda` bytes; each panel readable for `64·steps·NR` bytes;
    /// `c` read/writable for `16·row_tiles` rows of `NR·b.len()` i32 at stride `ldc`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn gemm_tiles(
        steps: usize,
        a: *const u8,
        lda: usize,
        row_tiles: usize,
        b: &[*const i8],
        c: *mut i32,
        ldc: usize,
        first: bool,
    ) {
        debug_assert!((1..=2).contains(&row_tiles) && (1..=2).contains(&b.len()));
        let (two_rows, two_panels) = (row_tiles == 2, b.len() == 2);
        let c_stride = ldc * 4;
        let b_step = TILE_DEPTH * NR;
        // SAFETY: the caller's contract bounds every tile read and written below.
        unsafe {
            configure();
            let c_at = |r: usize, p: usize| c.add(r * TILE_ROWS * ldc + p * NR);
            // Loads or stores the sum tiles in use.
            macro_rules! sum_tiles {
                ($op:ident) => {
                    tile!($op "tmm0", c_at(0, 0), c_stride);
                    if two_panels {
                        tile!($op "tmm1", c_at(0, 1), c_stride);
                    }
                    if two_rows {
                        tile!($op "tmm2", c_at(1, 0), c_stride);
                        if two_panels {
                            tile!($op "tmm3", c_at(1, 1), c_stride);
                        }
                    }
                };
            }
            if first {
                zero_sums();
            } else {
                sum_tiles!(load);
            }
            for s in 0..steps {
                let a0 = a.add(s * TILE_DEPTH);
                tile!(load "tmm4", a0, lda);
                tile!(load "tmm6", b[0].add(s * b_step), TILE_DEPTH);
                tile!(dot "tmm0", "tmm4", "tmm6");
                if two_panels {
                    tile!(load "tmm7", b[1].add(s * b_step), TILE_DEPTH);
                    tile!(dot "tmm1", "tmm4", "tmm7");
                }
                if two_rows {
                    tile!(load "tmm5", a0.add(TILE_ROWS * lda), lda);
                    tile!(dot "tmm2", "tmm5", "tmm6");
                    if two_panels {
                        tile!(dot "tmm3", "tmm5", "tmm7");
                    }
                }
            }
            sum_tiles!(store);
        }
    }

    /// Integer operations (2 per multiply-accumulate) in one round of [`tdpbusd_stream`]:
    /// its four `tdpbusd`, each a `TILE_ROWS`×`NR` tile of `TILE_DEPTH`-deep dot products.
    pub(crate) const STREAM_OPS_PER_ROUND: usize = 4 * TILE_ROWS * NR * TILE_DEPTH * 2;

    /// `iters` rounds of four independent `tdpbusd` on loaded tiles
    /// ([`STREAM_OPS_PER_ROUND`] operations each): the tile unit's throughput.
    ///
    /// # Safety
    /// AMX-INT8 present and permitted.
    pub(crate) unsafe fn tdpbusd_stream(iters: usize) -> i32 {
        let a = [1u8; TILE_ROWS * TILE_DEPTH];
        let mut c = [0i32; TILE_ROWS * NR];
        // SAFETY: the caller guarantees AMX; the tiles load from and store to the local
        // 1 KiB arrays at a 64-byte stride.
        unsafe {
            configure();
            zero_sums();
            tile!(load "tmm4", a.as_ptr(), TILE_DEPTH);
            tile!(load "tmm5", a.as_ptr(), TILE_DEPTH);
            tile!(load "tmm6", a.as_ptr(), TILE_DEPTH);
            tile!(load "tmm7", a.as_ptr(), TILE_DEPTH);
            for _ in 0..iters {
                tile!(dot "tmm0", "tmm4", "tmm6");
                tile!(dot "tmm1", "tmm4", "tmm7");
                tile!(dot "tmm2", "tmm5", "tmm6");
                tile!(dot "tmm3", "tmm5", "tmm7");
            }
            tile!(store "tmm0", c.as_mut_ptr(), NR * 4);
        }
        c[0]
    }
}
