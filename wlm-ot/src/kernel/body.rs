//! The body of the explicit-SIMD softmin kernels, written once as a macro over a float type `T`
//! and a module `ops` of vector operations (AVX-512 in [`super::avx512`], AVX2 + FMA in
//! [`super::avx2`]); see [`super::avx512`] for what the kernels do differently from the portable
//! [`super::softmin`].
//!
//! What the body needs from `ops`: a vector type `V`, a lane-mask type `Mask` with `any`,
//! `LANES`, `splat`/`load`/`store`, `add`/`sub`/`mul`/`max`/`fmadd`, `gt` (a mask), `mask_at`
//! (the finite lanes of vector `v` of a bit set), `exp2_masked`, `pow2i`, `reduce_add`,
//! `reduce_max`, `FUSED_WINDOW`, and the three square-root helpers `add_scaled_sqrt`,
//! `add_scaled_sqrt_exact` and `inv_sqrt_above`.

/// The kernel body, written once over `T` and `ops` (a type alias and a module in scope where
/// it is expanded); `$features` is the `target_feature` list every function is compiled for.
macro_rules! softmin_kernel {
    ($features:literal) => {
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

        /// [`softmin_rows`](crate::kernel::softmin::softmin_rows) in base-2 units, explicit SIMD
        /// (`columns` prepared with `base2`).
        #[target_feature(enable = $features)]
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
        #[target_feature(enable = $features)]
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
        #[target_feature(enable = $features)]
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
        #[target_feature(enable = $features)]
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

        // Its parameter list repeats `softmin_rows`'s above on purpose: that function only turns
        // the run-time dimension into the const `D` that this one is monomorphised over.
        #[target_feature(enable = $features)]
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
                            if ops::any(keep) {
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
                // This epilogue deliberately mirrors the portable `softmin::softmin_rows` (the
                // reference it is tested against), here with a base-2 running reference.
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

pub(super) use softmin_kernel;
