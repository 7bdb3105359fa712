//! The energy landscape of a population: the energy a probe particle feels when added to a
//! population, and the force on it, on a grid in a plane of the data.
//!
//! For a population `X` (`n` particles in `d` dimensions) and a probe position `y`, the
//! landscape is `L(y) = E(X ∪ {y}) − E(X)` and the probe's force is
//! `F(y) = −∇_y E(X ∪ {y})`, the force on particle `n` of the population `X ∪ {y}`. For a
//! separable energy `E(X) = Σ_i ψ(x_i)` this is `ψ(y)` and `−∇ψ(y)`; for an interacting energy
//! (the attention energy) it is what one more particle would feel there.
//!
//! Probes lie on a grid in a [`Plane`]: the data plane for 2-D data, the plane of the first
//! two principal components through the data mean otherwise ([`Plane::principal`]). A probe
//! at plane coordinates `(u, v)` sits at `origin + u·a + v·b` in `d` dimensions; its force is
//! projected onto the plane, `(F·a, F·b)`.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::{Error, Result};

/// A population energy as the landscape sees it: energy and per-particle force of a
/// population in `f64`.
///
/// Implemented by every `Fn(&[f64], usize) -> Result<(f64, Vec<f64>)> + Sync` closure and by
/// [`EnergyAt`] (any `wlm_energy::Energy` at a fixed time).
pub trait PopulationEnergy: Sync {
    /// The energy `E(X)` and the forces `−∇_{x_i} E(X)` of `positions`.
    ///
    /// # Shapes
    /// `positions`: `(n_particles, dim)` row-major → `(energy, forces (n_particles, dim)
    /// row-major)`.
    ///
    /// # Errors
    /// Whatever the energy reports (wrong dimension, tensor failures).
    fn energy_and_force(&self, positions: &[f64], dim: usize) -> Result<(f64, Vec<f64>)>;
}

impl<F> PopulationEnergy for F
where
    F: Fn(&[f64], usize) -> Result<(f64, Vec<f64>)> + Sync,
{
    fn energy_and_force(&self, positions: &[f64], dim: usize) -> Result<(f64, Vec<f64>)> {
        self(positions, dim)
    }
}

/// A `wlm_energy::Energy` at a fixed time, evaluated by its graph-free paths
/// (`energy_detached`, `force_detached`) in the given dtype on the given device.
pub struct EnergyAt<'a> {
    /// The energy.
    pub energy: &'a (dyn wlm_energy::Energy + Sync),
    /// The time `t` at which it is evaluated.
    pub time: f64,
    /// The dtype of the energy's parameters.
    pub dtype: DType,
    /// The device of the energy's parameters.
    pub device: Device,
}

impl PopulationEnergy for EnergyAt<'_> {
    fn energy_and_force(&self, positions: &[f64], dim: usize) -> Result<(f64, Vec<f64>)> {
        let n = positions.len() / dim.max(1);
        let x = Tensor::from_slice(positions, (n, dim), &Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?;
        let energy = self
            .energy
            .energy_detached(&x, self.time)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        let force = self
            .energy
            .force_detached(&x, self.time)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok((energy, force))
    }
}

/// A plane in `d` dimensions: `origin + u·axes[0] + v·axes[1]`, with orthonormal axes.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    /// A point of the plane (the data mean for [`Plane::principal`]), length `d`.
    pub origin: Vec<f64>,
    /// Two orthonormal directions, each of length `d`.
    pub axes: [Vec<f64>; 2],
}

impl Plane {
    /// The plane of the first two coordinates through the origin: plane coordinates are the
    /// data's own for 2-D data.
    ///
    /// # Errors
    /// [`Error::Data`] for `dim < 2`.
    pub fn coordinate(dim: usize) -> Result<Self> {
        check_dim(dim)?;
        let unit = |k: usize| (0..dim).map(|i| f64::from(u8::from(i == k))).collect();
        Ok(Self {
            origin: vec![0.0; dim],
            axes: [unit(0), unit(1)],
        })
    }

    /// The data plane for 2-D data ([`Plane::coordinate`]); otherwise the plane of the first
    /// two principal components of `points` through their mean (axes: the two leading
    /// eigenvectors of the covariance, each signed so that its largest entry is positive).
    ///
    /// # Shapes
    /// `points`: `(n_points, dim)` row-major.
    ///
    /// # Errors
    /// [`Error::Data`] for `dim < 2`, no points, a length not a multiple of `dim`, or
    /// non-finite values.
    pub fn principal(points: &[f64], dim: usize) -> Result<Self> {
        check_dim(dim)?;
        if dim == 2 {
            return Self::coordinate(2);
        }
        if points.is_empty() || !points.len().is_multiple_of(dim) {
            return Err(Error::Data(format!(
                "principal plane: {} values are not a positive number of points of dimension \
                 {dim}",
                points.len()
            )));
        }
        if let Some(i) = points.iter().position(|p| !p.is_finite()) {
            return Err(Error::Data(format!(
                "principal plane: value {} at point {}, coordinate {} is not finite",
                points[i],
                i / dim,
                i % dim
            )));
        }
        let (mean, covariance) = wlm_numeric::mean_and_covariance(points, dim);
        // Rows of `directions`: eigenvectors by decreasing eigenvalue.
        let (_, directions) = wlm_numeric::symmetric_eigen(&covariance, dim);
        let axis = |k: usize| {
            let mut a = directions[k * dim..(k + 1) * dim].to_vec();
            let largest = a
                .iter()
                .copied()
                .fold(0.0, |m: f64, x| if x.abs() > m.abs() { x } else { m });
            if largest < 0.0 {
                a.iter_mut().for_each(|x| *x = -*x);
            }
            a
        };
        Ok(Self {
            origin: mean,
            axes: [axis(0), axis(1)],
        })
    }

    /// Dimension `d` of the space the plane lies in.
    pub fn dim(&self) -> usize {
        self.origin.len()
    }

    /// The point `origin + u·axes[0] + v·axes[1]`.
    pub fn lift(&self, u: f64, v: f64) -> Vec<f64> {
        (0..self.dim())
            .map(|i| self.origin[i] + u * self.axes[0][i] + v * self.axes[1][i])
            .collect()
    }

    /// Plane coordinates of the orthogonal projection of `x` (length `d`).
    pub fn project(&self, x: &[f64]) -> (f64, f64) {
        let dot = |a: &[f64]| {
            x.iter()
                .zip(&self.origin)
                .zip(a)
                .map(|((x, o), a)| (x - o) * a)
                .sum::<f64>()
        };
        (dot(&self.axes[0]), dot(&self.axes[1]))
    }

    /// The components `(w·axes[0], w·axes[1])` of a vector `w` (length `d`) in the plane.
    pub fn components(&self, w: &[f64]) -> (f64, f64) {
        let dot = |a: &[f64]| w.iter().zip(a).map(|(w, a)| w * a).sum::<f64>();
        (dot(&self.axes[0]), dot(&self.axes[1]))
    }
}

fn check_dim(dim: usize) -> Result<()> {
    if dim < 2 {
        return Err(Error::Data(format!(
            "a landscape needs at least 2 dimensions, the data have {dim}"
        )));
    }
    Ok(())
}

/// The landscape on a grid: energies and in-plane forces of a probe at every grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct Landscape {
    /// Plane coordinates `u` of the grid columns, increasing.
    pub u: Vec<f64>,
    /// Plane coordinates `v` of the grid rows, increasing.
    pub v: Vec<f64>,
    /// `E(X ∪ {y}) − E(X)` at `y = plane.lift(u[i], v[j])`, at index `j·u.len() + i`.
    pub energy: Vec<f64>,
    /// The probe's force projected onto the plane, `(F·a, F·b)`, at index
    /// `2·(j·u.len() + i)`: shape `(v.len(), u.len(), 2)`.
    pub force: Vec<f64>,
    /// `E(X)`, the population's own energy.
    pub population_energy: f64,
}

/// `n` evenly spaced values from `lo` to `hi` (both included; `lo` alone for `n = 1`).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|k| lo + (hi - lo) * k as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// The landscape of `energy` around `population` on the grid `u × v` of `plane`.
///
/// One evaluation of `E(X)`, then one of `E(X ∪ {y})` and its forces per probe, the probes in
/// parallel (rayon); each probe's evaluation is on `n + 1` particles, so the cost is the grid
/// size times one energy-and-force pass.
///
/// # Shapes
/// `population`: `(n_particles, plane.dim())` row-major; the result as [`Landscape`].
///
/// In `f32` the energy is a difference of two totals, so it carries a rounding error of order
/// `1e-7 · |E(X)|`; compute in `f64` (an `f64` model) where that matters.
///
/// # Errors
/// [`Error::Data`] for an empty population, one whose length is not a multiple of the plane's
/// dimension, non-finite positions or grid values, an empty grid; energies or forces of the
/// wrong length or not finite (naming the probe); the energy's own errors.
pub fn landscape(
    energy: &dyn PopulationEnergy,
    population: &[f64],
    plane: &Plane,
    u: &[f64],
    v: &[f64],
) -> Result<Landscape> {
    let dim = plane.dim();
    check_dim(dim)?;
    if population.is_empty() || !population.len().is_multiple_of(dim) {
        return Err(Error::Data(format!(
            "landscape: {} population values are not a positive number of particles of \
             dimension {dim}",
            population.len()
        )));
    }
    if let Some(i) = population.iter().position(|p| !p.is_finite()) {
        return Err(Error::Data(format!(
            "landscape: particle {} has the non-finite coordinate {}",
            i / dim,
            population[i]
        )));
    }
    if u.is_empty() || v.is_empty() || u.iter().chain(v).any(|x| !x.is_finite()) {
        return Err(Error::Data(format!(
            "landscape: the grid needs at least one finite value per axis, got {} × {}",
            u.len(),
            v.len()
        )));
    }
    let n = population.len() / dim;
    let (population_energy, _) = energy.energy_and_force(population, dim)?;
    if !population_energy.is_finite() {
        return Err(Error::Data(format!(
            "landscape: the population's energy is {population_energy}"
        )));
    }
    let probes: Vec<(f64, f64)> = v
        .iter()
        .flat_map(|&b| u.iter().map(move |&a| (a, b)))
        .collect();
    let values: Vec<(f64, (f64, f64))> = probes
        .par_iter()
        .map(|&(a, b)| {
            let mut positions = Vec::with_capacity((n + 1) * dim);
            positions.extend_from_slice(population);
            positions.extend(plane.lift(a, b));
            let (e, force) = energy.energy_and_force(&positions, dim)?;
            if force.len() != (n + 1) * dim {
                return Err(Error::Data(format!(
                    "landscape: the energy returned {} force values for {} particles of \
                     dimension {dim}",
                    force.len(),
                    n + 1
                )));
            }
            let probe_force = plane.components(&force[n * dim..]);
            let diff = e - population_energy;
            if !(diff.is_finite() && probe_force.0.is_finite() && probe_force.1.is_finite()) {
                return Err(Error::Data(format!(
                    "landscape: the probe at ({a}, {b}) has energy {diff} and force {probe_force:?}"
                )));
            }
            Ok((diff, probe_force))
        })
        .collect::<Result<_>>()?;
    Ok(Landscape {
        u: u.to_vec(),
        v: v.to_vec(),
        energy: values.iter().map(|p| p.0).collect(),
        force: values.iter().flat_map(|p| [p.1 .0, p.1 .1]).collect(),
        population_energy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_plane_of_an_elongated_cloud_follows_its_long_axes() {
        let mut rng = wlm_numeric::SeedRng::seed_from(3);
        // Spread 5 along (1,1,0)/√2, 2 along z, 0.1 along (1,−1,0)/√2, mean (1, 2, 3).
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let points: Vec<f64> = (0..4000)
            .flat_map(|_| {
                let (a, b, c) = (5.0 * rng.normal(), 2.0 * rng.normal(), 0.1 * rng.normal());
                [1.0 + s * (a + c), 2.0 + s * (a - c), 3.0 + b]
            })
            .collect();
        let plane = Plane::principal(&points, 3).unwrap();
        for (m, want) in plane.origin.iter().zip([1.0, 2.0, 3.0]) {
            assert!((m - want).abs() < 0.3, "{:?}", plane.origin);
        }
        let first = &plane.axes[0];
        assert!(
            (first[0] - s).abs() < 1e-2 && (first[1] - s).abs() < 1e-2,
            "{first:?}"
        );
        assert!((plane.axes[1][2] - 1.0).abs() < 1e-2, "{:?}", plane.axes[1]);
        let (u, v) = plane.project(&plane.lift(0.7, -1.3));
        assert!((u - 0.7).abs() < 1e-12 && (v + 1.3).abs() < 1e-12);
        assert!(Plane::principal(&[1.0, f64::NAN, 0.0], 3).is_err());
        assert!(Plane::principal(&[1.0], 1).is_err());
    }
}
