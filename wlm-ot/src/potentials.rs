//! The debiased Sinkhorn problem's four dual potentials and a solve's result: the data that the
//! CPU loop (`sinkhorn.rs`) and the GPU loop (`cuda/`) both produce.

use crate::kernel::Real;

/// The four potentials of the debiased problem.
#[derive(Clone)]
pub(crate) struct Potentials<T> {
    pub(crate) f_ba: Vec<T>,
    pub(crate) g_ab: Vec<T>,
    pub(crate) f_aa: Vec<T>,
    pub(crate) g_bb: Vec<T>,
}

impl<T: Real> Potentials<T> {
    pub(crate) fn zeros(n_x: usize, n_y: usize) -> Self {
        Self {
            f_ba: vec![T::ZERO; n_x],
            g_ab: vec![T::ZERO; n_y],
            f_aa: vec![T::ZERO; n_x],
            g_bb: vec![T::ZERO; n_y],
        }
    }

    /// The largest magnitude of any potential.
    pub(crate) fn max_abs(&self) -> f64 {
        [&self.f_ba, &self.g_ab, &self.f_aa, &self.g_bb]
            .into_iter()
            .flatten()
            .fold(0.0_f64, |m, v| m.max(v.to_f64().abs()))
    }

    /// geomloss's averaged update `f ← ½(f + f̃)`; returns the largest change.
    pub(crate) fn average_with(&mut self, new: &Self) -> f64 {
        let half = T::from_f64(0.5);
        let mut change = 0.0_f64;
        for (old, upd) in [
            (&mut self.f_ba, &new.f_ba),
            (&mut self.g_ab, &new.g_ab),
            (&mut self.f_aa, &new.f_aa),
            (&mut self.g_bb, &new.g_bb),
        ] {
            for (o, &u) in old.iter_mut().zip(upd) {
                let next = half * (*o + u);
                change = change.max((next - *o).to_f64().abs());
                *o = next;
            }
        }
        change
    }
}

/// The result of `sinkhorn::solve` (CPU) or `cuda::try_solve` (GPU), in the clouds' precision.
pub(crate) struct Solution<T> {
    pub(crate) value: f64,
    pub(crate) potentials: Potentials<T>,
    pub(crate) grad_x: Vec<T>,
    pub(crate) grad_y: Vec<T>,
    pub(crate) eps_list: Vec<f64>,
    pub(crate) diameter: f64,
    pub(crate) extra_iterations: usize,
    pub(crate) final_change: f64,
}
