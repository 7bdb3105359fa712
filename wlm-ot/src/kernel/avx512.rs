//! Explicit AVX-512 softmin kernels (16 f32 or 8 f64 lanes), picked at run time on CPUs with
//! AVX-512F and AVX-512DQ; the same passes as [`super::softmin`], written for this instruction set.
//!
//! What differs from the portable kernel (all of it is about instructions per pair):
//! - logits are in base-2 units (`log2 e` is folded into the per-pass column data by
//!   [`Columns::prepare`](super::softmin::Columns::prepare)), so `exp` is `exp2`: the fraction
//!   `t − ⌊t⌋` in one instruction (`vreduce`), a degree-5 (f32) or degree-11 (f64) minimax
//!   polynomial of it, and `vscalef` for the power of two, with no range clamp;
//! - a vector whose lanes all lie more than `Columns::skip_bits` below the row's running maximum
//!   is not exponentiated at all (the terms dropped that way weigh less than `2^-9` ulp of the
//!   sum together), and single lanes below it are zeroed by the same mask (this also takes care
//!   of the `−∞` padding); since the compare costs about a tenth of a vector's work, rows use it
//!   only while it skips at least 1/8 of the vectors (probed every few rows), and otherwise
//!   exponentiate every finite lane (mask `Columns::finite`);
//! - `p = 2` without gradients exponentiates each tile in the same pass that computes its
//!   logits, against a guessed reference (the previous row's), and keeps the sum when the tile's
//!   maximum lies within `ops::FUSED_WINDOW` of it; otherwise (and for `p = 1`, where one pass
//!   measured slower) a tile is done in two passes: logits and their maximum, then `exp2`.
//!   References are integers, so moving one is an exact power of two (no `exp` call);
//! - `p = 1` in f32 and d ≤ 3 takes `sqrt` as `rsqrt14` plus one Newton step (relative error
//!   ~1e-7, like the rounding of the logits themselves); larger d, and f64, keep the IEEE `sqrt`.

/// Vector operations on 16 f32 lanes, with the same names as [`ops64`].
mod ops32 {
    use std::arch::x86_64::*;

    pub(super) type V = __m512;
    pub(super) type Mask = __mmask16;
    pub(super) const LANES: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn splat(a: f32) -> V {
        _mm512_set1_ps(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn load(s: &[f32; LANES]) -> V {
        // SAFETY: `s` holds exactly LANES readable f32; the load is unaligned.
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn store(s: &mut [f32; LANES], v: V) {
        // SAFETY: `s` holds exactly LANES writable f32; the store is unaligned.
        unsafe { _mm512_storeu_ps(s.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add(a: V, b: V) -> V {
        _mm512_add_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn sub(a: V, b: V) -> V {
        _mm512_sub_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn mul(a: V, b: V) -> V {
        _mm512_mul_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn max(a: V, b: V) -> V {
        _mm512_max_ps(a, b)
    }

    /// `a·b + c`, fused.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn fmadd(a: V, b: V, c: V) -> V {
        _mm512_fmadd_ps(a, b, c)
    }

    /// Lanes where `a > b` (false for NaN).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn gt(a: V, b: V) -> Mask {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b)
    }

    /// The lanes of vector `v` in a bit set of columns (8 per byte).
    #[inline(always)]
    pub(super) fn mask_at(bits: &[u8], v: usize) -> Mask {
        u16::from_le_bytes([bits[2 * v], bits[2 * v + 1]])
    }

    /// How far a tile's maximum may lie from the fused path's guessed reference
    /// (terms up to `2^FUSED_WINDOW` cannot overflow a sum, terms within 2^-FUSED_WINDOW of the
    /// maximum stay normal).
    pub(super) const FUSED_WINDOW: f32 = 60.0;

    /// `2^k` for an integer-valued `k <= 127` (0 below the normal range, also for `−∞`).
    #[inline(always)]
    pub(super) fn pow2i(k: f32) -> f32 {
        if k >= -126.0 {
            f32::from_bits(((k as i64 + 127) as u32) << 23)
        } else {
            0.0
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_add(a: V) -> f32 {
        _mm512_reduce_add_ps(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_max(a: V) -> f32 {
        _mm512_reduce_max_ps(a)
    }

    /// `2^t` in the lanes of `keep` (where `t` must be finite and at most ~100 in magnitude),
    /// 0 elsewhere: `p(t − ⌊t⌋)·2^⌊t⌋` with the fraction from `vreduceps` and the power of two
    /// applied by `vscalefps` (which floors `t` itself). Relative error below 1 ulp plus the
    /// polynomial's 7.5e-8.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn exp2_masked(t: V, keep: Mask) -> V {
        // Minimax (relative) on [0, 1], coefficients rounded to f32.
        const C: [f32; 6] = [
            0.999_999_94,
            0.693_153_1,
            0.240_153_61,
            0.055_826_318,
            0.008_989_34,
            0.001_877_576_7,
        ];
        // t − ⌊t⌋ (round down, no exceptions).
        let f = _mm512_reduce_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(t);
        let mut p = _mm512_set1_ps(C[5]);
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[4]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[3]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[2]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[1]));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(C[0]));
        _mm512_maskz_scalef_ps(keep, p, t)
    }

    /// `h + k·sqrt(d2)` for `d2 > 0` (already floored): `rsqrt14` and one Newton step,
    /// `sqrt(d2) ≈ ½ s (3 − s r)` with `r ≈ 1/sqrt(d2)`, `s = d2 r`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt(d2: V, k: V, h: V) -> V {
        let r = _mm512_rsqrt14_ps(d2);
        let s = _mm512_mul_ps(d2, r);
        let e = _mm512_fnmadd_ps(s, r, _mm512_set1_ps(3.0));
        let half_k = _mm512_mul_ps(k, _mm512_set1_ps(0.5));
        _mm512_fmadd_ps(_mm512_mul_ps(s, e), half_k, h)
    }

    /// `h + k·sqrt(d2)` with the IEEE square root (`vsqrtps`): fewer instructions but a long
    /// occupancy of the divider, which pays once the squared distance itself costs more (d ≥ 4
    /// measured here).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt_exact(d2: V, k: V, h: V) -> V {
        _mm512_fmadd_ps(_mm512_sqrt_ps(d2), k, h)
    }

    /// `1/sqrt(d2)` where `d2 >= floor`, 0 elsewhere (IEEE division and square root).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn inv_sqrt_above(d2: V, floor: V) -> V {
        let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(d2, floor);
        _mm512_maskz_div_ps(keep, _mm512_set1_ps(1.0), _mm512_sqrt_ps(d2))
    }
}

/// Vector operations on 8 f64 lanes, with the same names as [`ops32`].
mod ops64 {
    use std::arch::x86_64::*;

    pub(super) type V = __m512d;
    pub(super) type Mask = __mmask8;
    pub(super) const LANES: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn splat(a: f64) -> V {
        _mm512_set1_pd(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn load(s: &[f64; LANES]) -> V {
        // SAFETY: `s` holds exactly LANES readable f64; the load is unaligned.
        unsafe { _mm512_loadu_pd(s.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn store(s: &mut [f64; LANES], v: V) {
        // SAFETY: `s` holds exactly LANES writable f64; the store is unaligned.
        unsafe { _mm512_storeu_pd(s.as_mut_ptr(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add(a: V, b: V) -> V {
        _mm512_add_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn sub(a: V, b: V) -> V {
        _mm512_sub_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn mul(a: V, b: V) -> V {
        _mm512_mul_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn max(a: V, b: V) -> V {
        _mm512_max_pd(a, b)
    }

    /// `a·b + c`, fused.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn fmadd(a: V, b: V, c: V) -> V {
        _mm512_fmadd_pd(a, b, c)
    }

    /// Lanes where `a > b` (false for NaN).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn gt(a: V, b: V) -> Mask {
        _mm512_cmp_pd_mask::<_CMP_GT_OQ>(a, b)
    }

    /// The lanes of vector `v` in a bit set of columns (8 per byte).
    #[inline(always)]
    pub(super) fn mask_at(bits: &[u8], v: usize) -> Mask {
        bits[v]
    }

    /// How far a tile's maximum may lie from the fused path's guessed reference
    /// (terms up to `2^FUSED_WINDOW` cannot overflow a sum, terms within 2^-FUSED_WINDOW of the
    /// maximum stay normal).
    pub(super) const FUSED_WINDOW: f64 = 500.0;

    /// `2^k` for an integer-valued `k <= 1023` (0 below the normal range, also for `−∞`).
    #[inline(always)]
    pub(super) fn pow2i(k: f64) -> f64 {
        if k >= -1022.0 {
            f64::from_bits(((k as i64 + 1023) as u64) << 52)
        } else {
            0.0
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_add(a: V) -> f64 {
        _mm512_reduce_add_pd(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn reduce_max(a: V) -> f64 {
        _mm512_reduce_max_pd(a)
    }

    /// `2^t` in the lanes of `keep` (where `t` must be finite and at most ~1000 in magnitude),
    /// 0 elsewhere; as [`super::ops32::exp2_masked`]. Relative error a few ulp (polynomial
    /// 1.1e-17).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn exp2_masked(t: V, keep: Mask) -> V {
        // Minimax (relative) on [0, 1].
        const C: [f64; 12] = [
            1.0,
            0.693_147_180_559_946_2,
            0.240_226_506_959_055_2,
            0.055_504_108_665_705_27,
            0.009_618_129_098_827_552,
            0.001_333_355_866_045_025_9,
            0.000_154_035_114_659_831_58,
            1.525_319_010_902_800_5e-5,
            1.320_819_272_358_017e-6,
            1.025_447_980_508_366_6e-7,
            6.554_298_389_547_021e-9,
            6.272_830_739_582_347e-10,
        ];
        let f = _mm512_reduce_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(t);
        let mut p = _mm512_set1_pd(C[11]);
        for &c in C[..11].iter().rev() {
            p = _mm512_fmadd_pd(p, f, _mm512_set1_pd(c));
        }
        _mm512_maskz_scalef_pd(keep, p, t)
    }

    /// `h + k·sqrt(d2)` (IEEE square root).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt(d2: V, k: V, h: V) -> V {
        _mm512_fmadd_pd(_mm512_sqrt_pd(d2), k, h)
    }

    /// `h + k·sqrt(d2)` (IEEE square root), as [`add_scaled_sqrt`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn add_scaled_sqrt_exact(d2: V, k: V, h: V) -> V {
        add_scaled_sqrt(d2, k, h)
    }

    /// `1/sqrt(d2)` where `d2 >= floor`, 0 elsewhere.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) fn inv_sqrt_above(d2: V, floor: V) -> V {
        let keep = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(d2, floor);
        _mm512_maskz_div_pd(keep, _mm512_set1_pd(1.0), _mm512_sqrt_pd(d2))
    }
}

/// The kernel body, written once over `T` and `ops` (a type alias and a module in scope where
/// it is expanded).
macro_rules! softmin_kernel {
    () => {
        use crate::kernel::softmin::{Cloud, Columns, Scratch, SQ_DIST_FLOOR, TILE};

        /// One vector of `T`.
        type Lanes = [T; ops::LANES];

        /// `s[start..start + len]` as vectors (`len` a multiple of the lane count).
        #[inline(always)]
        fn vectors(s: &[T], start: usize, len: usize) -> &[Lanes] {
            s[start..start + len].as_chunks::<{ ops::LANES }>().0
        }

        /// `s[..len]` as mutable vectors (`len` a multiple of the lane count).
        #[inline(always)]
        fn vectors_mut(s: &mut [T], len: usize) -> &mut [Lanes] {
            s[..len].as_chunks_mut::<{ ops::LANES }>().0
        }

        /// AVX-512 [`softmin_rows`](crate::kernel::softmin::softmin_rows) in base-2 units
        /// (`columns` prepared with `base2`).
        #[target_feature(enable = "avx512f,avx512dq")]
        pub(in crate::kernel) fn softmin_rows<const P2: bool, const GRAD: bool>(
            columns: &Columns<'_, T>,
            rows: &Cloud<T>,
            row_start: usize,
            out: &mut [T],
            grad: &mut [T],
            scratch: &mut Scratch<T>,
        ) {
            match rows.dim {
                1 => rows_of_dim::<P2, GRAD, 1>(columns, rows, row_start, out, grad, scratch),
                2 => rows_of_dim::<P2, GRAD, 2>(columns, rows, row_start, out, grad, scratch),
                3 => rows_of_dim::<P2, GRAD, 3>(columns, rows, row_start, out, grad, scratch),
                4 => rows_of_dim::<P2, GRAD, 4>(columns, rows, row_start, out, grad, scratch),
                5 => rows_of_dim::<P2, GRAD, 5>(columns, rows, row_start, out, grad, scratch),
                _ => rows_of_dim::<P2, GRAD, 0>(columns, rows, row_start, out, grad, scratch),
            }
        }

        /// Logits `u_j + x_i · ỹ_j` (`p = 2`, `off` = `u`) or squared distances (`p = 1`,
        /// unfloored) of vector `v` of the tile whose coordinate vectors are `ys`, for a row
        /// broadcast in `xv`.
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        fn lanes_at<const P2: bool, const D: usize>(
            xv: &[ops::V; D],
            ys: &[&[Lanes]; D],
            v: usize,
            off: &Lanes,
        ) -> ops::V {
            if P2 {
                let mut z = ops::load(off);
                for k in 0..D {
                    z = ops::fmadd(xv[k], ops::load(&ys[k][v]), z);
                }
                z
            } else {
                let mut d2 = ops::splat(0.0);
                for k in 0..D {
                    let diff = ops::sub(xv[k], ops::load(&ys[k][v]));
                    d2 = ops::fmadd(diff, diff, d2);
                }
                d2
            }
        }

        /// [`lanes_at`] for any dimension (coordinates of the row in `x_i`, columns `jc..` of
        /// `coords`, `dim × n_pad`).
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        fn lanes_at_any_dim<const P2: bool>(
            x_i: &[T],
            coords: &[T],
            n_pad: usize,
            jc: usize,
            off: &Lanes,
        ) -> ops::V {
            let mut acc = if P2 { ops::load(off) } else { ops::splat(0.0) };
            for (k, &xk) in x_i.iter().enumerate() {
                let y = ops::load(&vectors(coords, k * n_pad + jc, ops::LANES)[0]);
                acc = if P2 {
                    ops::fmadd(ops::splat(xk), y, acc)
                } else {
                    let diff = ops::sub(ops::splat(xk), y);
                    ops::fmadd(diff, diff, acc)
                };
            }
            acc
        }

        /// Exponentiates the logits `z` of a whole tile (`p = 2`, no gradients) relative to a
        /// guessed reference `m` in the same pass that computes them, and returns their sum and
        /// maximum. The caller accepts the sum when the maximum lies within
        /// `ops::FUSED_WINDOW` of `m` (no overflow, no loss of the largest terms), and otherwise
        /// runs the two-pass path on the tile.
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        fn fused_tile<const D: usize>(
            xv: &[ops::V; D],
            ys: &[&[Lanes]; D],
            off: &[Lanes],
            finite: &[u8],
            first_vector: usize,
            m: T,
        ) -> (T, T) {
            let m = ops::splat(m);
            let mut vmax = ops::splat(T::NEG_INFINITY);
            let mut acc = ops::splat(0.0);
            for (v, o) in off.iter().enumerate() {
                let z = lanes_at::<true, D>(xv, ys, v, o);
                vmax = ops::max(vmax, z);
                let keep = ops::mask_at(finite, first_vector + v);
                acc = ops::add(acc, ops::exp2_masked(ops::sub(z, m), keep));
            }
            (ops::reduce_add(acc), ops::reduce_max(vmax))
        }

        #[target_feature(enable = "avx512f,avx512dq")]
        fn rows_of_dim<const P2: bool, const GRAD: bool, const D: usize>(
            columns: &Columns<'_, T>,
            rows: &Cloud<T>,
            row_start: usize,
            out: &mut [T],
            grad: &mut [T],
            scratch: &mut Scratch<T>,
        ) {
            const LN2: T = std::f64::consts::LN_2 as T;
            let lanes = ops::LANES;
            let dim = rows.dim;
            let cols = columns.cols;
            let n_pad = cols.n_pad;
            let coords: &[T] = if P2 { &columns.scaled } else { &cols.columns };
            let raw = &cols.columns;
            let offset = &columns.offset[..];
            let floor = ops::splat(SQ_DIST_FLOOR as T);
            let cost_scale = ops::splat(columns.cost_scale);
            let zero = ops::splat(0.0);
            let Scratch { buf, psi, grad_acc } = scratch;
            let n_vectors = n_pad / lanes;
            // Skipping pays when at least 1/8 of the vectors are skipped: rows run with it
            // while the last row that tried did so, and try again every `PROBE` rows.
            const PROBE: usize = 8;
            let mut skip_pays = true;
            let mut rows_since_probe = 0;
            // The previous row's reference: the fused path's guess for a row's first tile.
            let mut guess = T::NEG_INFINITY;
            for (r, out_r) in out.iter_mut().enumerate() {
                let skip = skip_pays || rows_since_probe >= PROBE;
                let mut skipped = 0;
                let i = row_start + r;
                let x_i = rows.point(i);
                let mut xv = [zero; D];
                for (v, &xk) in xv.iter_mut().zip(x_i) {
                    *v = ops::splat(xk);
                }
                // `run_sum` is relative to `2^run_ref`; `run_ref` is an integer no larger than
                // the running maximum of the logits (−∞ before the first tile).
                let mut run_ref = T::NEG_INFINITY;
                let mut run_sum: T = 0.0;
                if GRAD {
                    grad_acc.fill(0.0);
                }
                let mut j0 = 0;
                while j0 < n_pad {
                    let len = TILE.min(n_pad - j0);
                    let nv = len / lanes;
                    let first_vector = j0 / lanes;
                    let off = &vectors(offset, j0, len)[..nv];
                    let mut ys: [&[Lanes]; D] = [&[]; D];
                    for (k, y) in ys.iter_mut().enumerate() {
                        *y = &vectors(coords, k * n_pad + j0, len)[..nv];
                    }
                    // 0. p = 2 without gradients or skipping: one pass against a guess.
                    let m = if run_ref > T::NEG_INFINITY {
                        run_ref
                    } else {
                        guess
                    };
                    if P2 && !GRAD && !skip && D > 0 && m > T::NEG_INFINITY {
                        let (sum, tile_max) =
                            fused_tile::<D>(&xv, &ys, off, &columns.finite, first_vector, m);
                        if (tile_max - m).abs() <= ops::FUSED_WINDOW {
                            let new_ref = tile_max.floor().max(run_ref);
                            run_sum = run_sum * ops::pow2i(run_ref - new_ref)
                                + sum * ops::pow2i(m - new_ref);
                            run_ref = new_ref;
                            j0 += len;
                            continue;
                        }
                    }
                    let tile = &mut vectors_mut(buf, len)[..nv];
                    let psi_v = &mut vectors_mut(psi, len)[..nv];
                    // 1. logits of the tile (base 2) and their maximum.
                    let mut vmax = ops::splat(T::NEG_INFINITY);
                    for v in 0..nv {
                        let lane = if D > 0 {
                            lanes_at::<P2, D>(&xv, &ys, v, &off[v])
                        } else {
                            lanes_at_any_dim::<P2>(x_i, coords, n_pad, j0 + v * lanes, &off[v])
                        };
                        let z = if P2 {
                            lane
                        } else {
                            if GRAD {
                                ops::store(&mut psi_v[v], ops::inv_sqrt_above(lane, floor));
                            }
                            let d2 = ops::max(lane, floor);
                            if D == 0 || D >= 4 {
                                ops::add_scaled_sqrt_exact(d2, cost_scale, ops::load(&off[v]))
                            } else {
                                ops::add_scaled_sqrt(d2, cost_scale, ops::load(&off[v]))
                            }
                        };
                        ops::store(&mut tile[v], z);
                        vmax = ops::max(vmax, z);
                    }
                    let tile_max = ops::reduce_max(vmax);
                    if tile_max == T::NEG_INFINITY {
                        j0 += len;
                        continue;
                    }
                    let new_ref = tile_max.floor().max(run_ref);
                    if new_ref > run_ref {
                        let rescale = ops::pow2i(run_ref - new_ref);
                        run_sum *= rescale;
                        if GRAD {
                            for g in grad_acc.iter_mut() {
                                *g *= rescale;
                            }
                        }
                        run_ref = new_ref;
                    }
                    // 2. exp2 and sum (terms at most 2 relative to `run_ref`). With `skip`,
                    // vectors whose lanes all lie more than `skip_bits` below the reference are
                    // not exponentiated; otherwise every finite lane is (the compare costs as
                    // much as it saves unless a good share of the vectors is skipped).
                    let m = ops::splat(run_ref);
                    let mut acc = zero;
                    if skip {
                        let cut = ops::splat(run_ref - columns.skip_bits);
                        for zv in tile.iter_mut() {
                            let z = ops::load(zv);
                            let keep = ops::gt(z, cut);
                            if keep != 0 {
                                let w = ops::exp2_masked(ops::sub(z, m), keep);
                                acc = ops::add(acc, w);
                                if GRAD {
                                    ops::store(zv, w);
                                }
                            } else {
                                skipped += 1;
                                if GRAD {
                                    ops::store(zv, zero);
                                }
                            }
                        }
                    } else {
                        for (v, zv) in tile.iter_mut().enumerate() {
                            let keep = ops::mask_at(&columns.finite, first_vector + v);
                            let w = ops::exp2_masked(ops::sub(ops::load(zv), m), keep);
                            acc = ops::add(acc, w);
                            if GRAD {
                                ops::store(zv, w);
                            }
                        }
                    }
                    run_sum += ops::reduce_add(acc);
                    // 3. gradient sums.
                    if GRAD {
                        for (k, g) in grad_acc.iter_mut().enumerate() {
                            let xk = ops::splat(x_i[k]);
                            let yk = &vectors(raw, k * n_pad + j0, len)[..nv];
                            let mut acc = zero;
                            for v in 0..nv {
                                let w = ops::load(&tile[v]);
                                let y = ops::load(&yk[v]);
                                acc = if P2 {
                                    ops::fmadd(w, y, acc)
                                } else {
                                    let p = ops::load(&psi_v[v]);
                                    ops::fmadd(ops::mul(w, p), ops::sub(xk, y), acc)
                                };
                            }
                            *g += ops::reduce_add(acc);
                        }
                    }
                    j0 += len;
                }
                guess = run_ref;
                if skip {
                    skip_pays = 8 * skipped >= n_vectors;
                    rows_since_probe = 0;
                } else {
                    rows_since_probe += 1;
                }
                let row_shift = if P2 {
                    rows.sq_norms[i] * columns.half_inv_eps
                } else {
                    0.0
                };
                let lse = run_ref * LN2 + run_sum.ln() - row_shift;
                *out_r = -(columns.eps * lse);
                if GRAD {
                    let g_r = &mut grad[r * dim..(r + 1) * dim];
                    for k in 0..dim {
                        g_r[k] = if P2 {
                            x_i[k] - grad_acc[k] / run_sum
                        } else {
                            grad_acc[k] / run_sum
                        };
                    }
                }
            }
        }
    };
}

/// The f32 kernel (16 lanes).
pub(crate) mod f32x16 {
    use super::ops32 as ops;
    type T = f32;
    softmin_kernel!();
}

/// The f64 kernel (8 lanes).
pub(crate) mod f64x8 {
    use super::ops64 as ops;
    type T = f64;
    softmin_kernel!();
}

/// Whether this CPU runs the AVX-512 kernels.
pub(crate) fn supported() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_is_within_a_few_ulp_of_libm_and_masks_lanes() {
        if !supported() {
            return;
        }
        // SAFETY: AVX-512F and AVX-512DQ were detected above.
        unsafe { check_exp2() }
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    fn check_exp2() {
        let (mut worst32, mut worst64) = (0.0_f64, 0.0_f64);
        for k in 0..=200_000 {
            let t = -100.0 * k as f64 / 200_000.0;
            let t32 = t as f32;
            let mut out32 = [0.0f32; 16];
            ops32::store(&mut out32, ops32::exp2_masked(ops32::splat(t32), 0xFFFF));
            let want32 = (t32 as f64).exp2();
            worst32 = worst32.max(((out32[3] as f64 - want32) / want32).abs());
            let mut out64 = [0.0f64; 8];
            ops64::store(&mut out64, ops64::exp2_masked(ops64::splat(t), 0xFF));
            worst64 = worst64.max(((out64[5] - t.exp2()) / t.exp2()).abs());
        }
        assert!(worst32 < 2.0 * f32::EPSILON as f64, "f32 worst {worst32:e}");
        assert!(worst64 < 4.0 * f64::EPSILON, "f64 worst {worst64:e}");
        // Masked lanes are exactly zero, even for −∞ (which would give NaN unmasked).
        let mut out = [1.0f32; 16];
        ops32::store(
            &mut out,
            ops32::exp2_masked(ops32::splat(f32::NEG_INFINITY), 0),
        );
        assert!(out.iter().all(|&v| v == 0.0));
        let mut out = [0.0f64; 8];
        ops64::store(&mut out, ops64::exp2_masked(ops64::splat(0.0), 0b1));
        assert_eq!(out[0], 1.0);
        assert_eq!(out[1], 0.0);
    }

    #[test]
    fn rsqrt_newton_square_root_is_accurate_to_single_precision() {
        if !supported() {
            return;
        }
        // SAFETY: AVX-512F and AVX-512DQ were detected above.
        unsafe { check_sqrt() }
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    fn check_sqrt() {
        let mut worst = 0.0_f64;
        for k in 0..100_000 {
            let d2 = (1e-8_f64 * 1.0002_f64.powi(k)) as f32;
            let mut out = [0.0f32; 16];
            let got =
                ops32::add_scaled_sqrt(ops32::splat(d2), ops32::splat(1.0), ops32::splat(0.0));
            ops32::store(&mut out, got);
            let want = (d2 as f64).sqrt();
            worst = worst.max(((out[7] as f64 - want) / want).abs());
        }
        assert!(worst < 3.0 * f32::EPSILON as f64, "worst {worst:e}");
    }
}
