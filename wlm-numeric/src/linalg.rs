//! Small dense linear algebra: a cloud's mean and covariance, and the eigenvectors of a
//! symmetric matrix by cyclic Jacobi rotations (small dimensions only; exact to rounding). The
//! principal directions of `wlm-flow`'s anisotropic paths and of `wlm`'s landscape plane.

/// Eigen-decomposition of the symmetric `dim × dim` row-major matrix `a` by cyclic Jacobi
/// rotations. Returns `(eigenvalues, eigenvectors)`, sorted by decreasing eigenvalue;
/// eigenvector `k` is row `k` of the returned row-major matrix (orthonormal rows).
pub fn symmetric_eigen(a: &[f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    // `v` accumulates the rotations: columns are eigenvectors.
    let mut v = vec![0.0; dim * dim];
    for i in 0..dim {
        v[i * dim + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..dim)
            .flat_map(|i| (0..dim).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * dim + j] * m[i * dim + j])
            .sum();
        let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..dim {
            for q in p + 1..dim {
                let apq = m[p * dim + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (m[p * dim + p], m[q * dim + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // m ← Jᵀ m J with J the rotation in the (p, q) plane.
                for k in 0..dim {
                    let (mkp, mkq) = (m[k * dim + p], m[k * dim + q]);
                    m[k * dim + p] = c * mkp - s * mkq;
                    m[k * dim + q] = s * mkp + c * mkq;
                }
                for k in 0..dim {
                    let (mpk, mqk) = (m[p * dim + k], m[q * dim + k]);
                    m[p * dim + k] = c * mpk - s * mqk;
                    m[q * dim + k] = s * mpk + c * mqk;
                }
                for k in 0..dim {
                    let (vkp, vkq) = (v[k * dim + p], v[k * dim + q]);
                    v[k * dim + p] = c * vkp - s * vkq;
                    v[k * dim + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&i, &j| m[j * dim + j].total_cmp(&m[i * dim + i]));
    let values = order.iter().map(|&i| m[i * dim + i]).collect();
    let mut rows = Vec::with_capacity(dim * dim);
    for &i in &order {
        rows.extend((0..dim).map(|k| v[k * dim + i]));
    }
    (values, rows)
}

/// Mean and covariance (divided by `n`) of the row-major `(n, dim)` cloud `x`.
pub fn mean_and_covariance(x: &[f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / dim).max(1) as f64;
    let mut mean = vec![0.0; dim];
    for row in x.chunks_exact(dim) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n;
        }
    }
    let mut cov = vec![0.0; dim * dim];
    for row in x.chunks_exact(dim) {
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] += (row[i] - mean[i]) * (row[j] - mean[j]) / n;
            }
        }
    }
    (mean, cov)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeedRng;

    #[test]
    fn eigenpairs_satisfy_the_definition_and_are_orthonormal() {
        let mut rng = SeedRng::seed_from(3);
        for dim in 1..=6 {
            let b: Vec<f64> = (0..dim * dim).map(|_| rng.normal()).collect();
            // a = b bᵀ: symmetric positive semi-definite.
            let mut a = vec![0.0; dim * dim];
            for i in 0..dim {
                for j in 0..dim {
                    a[i * dim + j] = (0..dim).map(|k| b[i * dim + k] * b[j * dim + k]).sum();
                }
            }
            let (values, rows) = symmetric_eigen(&a, dim);
            assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
            for k in 0..dim {
                let vk = &rows[k * dim..(k + 1) * dim];
                for i in 0..dim {
                    let av: f64 = (0..dim).map(|j| a[i * dim + j] * vk[j]).sum();
                    assert!((av - values[k] * vk[i]).abs() < 1e-10, "dim {dim} k {k}");
                }
                for l in 0..dim {
                    let dot: f64 = vk
                        .iter()
                        .zip(&rows[l * dim..(l + 1) * dim])
                        .map(|(x, y)| x * y)
                        .sum();
                    let want = if k == l { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-12);
                }
            }
        }
    }
}
