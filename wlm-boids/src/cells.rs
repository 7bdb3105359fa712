//! A uniform cell list: boids binned into grid cells so neighbour queries look only nearby.

use std::ops::Range;

/// Most cells along one axis. Keeps `(x − min) / cell_size` small enough that its rounding
/// error (≈ 4.4e-16 × cells per axis) stays far below the 1e-9 margin on the cell size, so a
/// pair closer than the radius always lands in cells at most `REACH` apart along each axis.
const MAX_CELLS_PER_AXIS: f64 = 1e5;

/// Relative margin by which a cell is wider than the search radius.
const CELL_MARGIN: f64 = 1e-9;

/// Cells per radius: cells are `radius / REACH` wide and a cell's candidates lie within
/// `REACH` cells along every axis. 2 scans `(5/2)^dim` radius-cubes instead of `3^dim` (about
/// 30% fewer candidates in 2-D) at the price of more, smaller cells.
const REACH: usize = 2;

/// Boids binned into a grid of cells at least `radius / REACH` wide, built once per step.
///
/// Cell coordinates are `floor((x_k − min_k) / cell_size)`; the grid covers the bounding box
/// of the positions. Within a cell, boids are kept in ascending index order (counting sort).
#[derive(Debug)]
pub(crate) struct CellGrid {
    dim: usize,
    /// Number of cells along each axis (the last axis has stride 1).
    cells_per_axis: Vec<usize>,
    /// Linear-index stride of each axis.
    strides: Vec<usize>,
    /// Boids of cell `c` are `order[cell_start[c]..cell_start[c + 1]]`.
    cell_start: Vec<usize>,
    /// Boid indices sorted by cell, ascending within a cell.
    order: Vec<usize>,
    /// Positions gathered in `order`, row-major, so a cell's boids are contiguous.
    sorted_positions: Vec<f64>,
    /// Velocities gathered in `order`, row-major.
    sorted_velocities: Vec<f64>,
}

impl CellGrid {
    /// Bins boids (row-major `positions` and `velocities`, `dim` columns, at most `u32::MAX`
    /// boids) into cells at least `radius / REACH` wide, and gathers their state in cell
    /// order. The grid never has more than about `2 · n_boids` cells: sparse clouds get wider
    /// cells, which stay correct (only slower). A bounding box too large to subdivide falls
    /// back to a single cell.
    pub(crate) fn build(positions: &[f64], velocities: &[f64], dim: usize, radius: f64) -> Self {
        let n_boids = positions.len() / dim;
        let mut min = vec![f64::INFINITY; dim];
        let mut max = vec![f64::NEG_INFINITY; dim];
        for row in positions.chunks_exact(dim) {
            for k in 0..dim {
                min[k] = min[k].min(row[k]);
                max[k] = max[k].max(row[k]);
            }
        }
        let max_cells = (2 * n_boids).max(64);
        let mut cell_size = radius * (1.0 + CELL_MARGIN) / REACH as f64;
        let cells_per_axis = loop {
            let counts: Option<Vec<usize>> = (0..dim)
                .map(|k| {
                    let span = (max[k] - min[k]) / cell_size;
                    (span.is_finite() && span < MAX_CELLS_PER_AXIS)
                        .then(|| span.floor() as usize + 1)
                })
                .collect();
            match counts {
                Some(c)
                    if c.iter()
                        .try_fold(1usize, |acc, &m| acc.checked_mul(m))
                        .is_some_and(|t| t <= max_cells) =>
                {
                    break c;
                }
                _ if cell_size.is_finite() => cell_size *= 2.0,
                _ => break vec![1; dim],
            }
        };
        let mut strides = vec![1usize; dim];
        for k in (0..dim.saturating_sub(1)).rev() {
            strides[k] = strides[k + 1] * cells_per_axis[k + 1];
        }
        let n_cells: usize = cells_per_axis.iter().product();

        let cell_of: Vec<usize> = positions
            .chunks_exact(dim)
            .map(|row| {
                (0..dim)
                    .map(|k| {
                        let c = if cells_per_axis[k] == 1 {
                            0
                        } else {
                            // Saturating cast; the `min` guards the top edge.
                            (((row[k] - min[k]) / cell_size).floor() as usize)
                                .min(cells_per_axis[k] - 1)
                        };
                        c * strides[k]
                    })
                    .sum()
            })
            .collect();

        // Counting sort by cell: stable, so indices stay ascending within a cell.
        let mut cell_start = vec![0usize; n_cells + 1];
        for &c in &cell_of {
            cell_start[c + 1] += 1;
        }
        for c in 0..n_cells {
            cell_start[c + 1] += cell_start[c];
        }
        let mut fill = cell_start.clone();
        let mut order = vec![0usize; n_boids];
        for (boid, &c) in cell_of.iter().enumerate() {
            order[fill[c]] = boid;
            fill[c] += 1;
        }
        let gather = |values: &[f64]| {
            let mut sorted = Vec::with_capacity(values.len());
            for &boid in &order {
                sorted.extend_from_slice(&values[boid * dim..(boid + 1) * dim]);
            }
            sorted
        };
        let sorted_positions = gather(positions);
        let sorted_velocities = gather(velocities);
        Self {
            dim,
            cells_per_axis,
            strides,
            cell_start,
            order,
            sorted_positions,
            sorted_velocities,
        }
    }

    /// Number of cells of the grid.
    pub(crate) fn n_cells(&self) -> usize {
        self.cell_start.len() - 1
    }

    /// The slots of the boids in cell `cell` (contiguous, ascending boid index).
    pub(crate) fn cell_slots(&self, cell: usize) -> Range<usize> {
        self.cell_start[cell]..self.cell_start[cell + 1]
    }

    /// Boid indices in slot order: slot `s` holds boid `order()[s]`.
    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }

    /// Position and velocity of the boid in slot `slot`.
    pub(crate) fn state(&self, slot: usize) -> (&[f64], &[f64]) {
        let range = slot * self.dim..(slot + 1) * self.dim;
        (
            &self.sorted_positions[range.clone()],
            &self.sorted_velocities[range],
        )
    }

    /// Candidates for every boid of cell `cell`: all boids of the `(2 REACH + 1)^dim` cells around it
    /// (itself included), so every boid closer than the build radius to any boid of the cell.
    /// Written into `out` as `(boid << 32) | slot`, sorted, hence in ascending boid index.
    pub(crate) fn candidates_of_cell(&self, cell: usize, out: &mut Vec<u64>) {
        out.clear();
        let dim = self.dim;
        let coords: Vec<usize> = (0..dim)
            .map(|k| cell / self.strides[k] % self.cells_per_axis[k])
            .collect();
        // Odometer over the first dim − 1 axes (offsets −REACH..=REACH); along the last axis
        // the cells are adjacent in linear index, so one contiguous range covers them.
        let last = dim - 1;
        let lo_last = coords[last].saturating_sub(REACH);
        let hi_last = (coords[last] + REACH).min(self.cells_per_axis[last] - 1);
        let reach = REACH as i64;
        let mut offset = vec![-reach; last];
        loop {
            let mut base = Some(0usize);
            for k in 0..last {
                let c = coords[k] as i64 + offset[k];
                if c < 0 || c >= self.cells_per_axis[k] as i64 {
                    base = None;
                    break;
                }
                base = base.map(|b| b + c as usize * self.strides[k]);
            }
            if let Some(base) = base {
                let slots = self.cell_start[base + lo_last]..self.cell_start[base + hi_last + 1];
                out.extend(slots.map(|slot| ((self.order[slot] as u64) << 32) | slot as u64));
            }
            // Advance the odometer; done when every axis has wrapped.
            let mut k = 0;
            while k < last {
                offset[k] += 1;
                if offset[k] <= reach {
                    break;
                }
                offset[k] = -reach;
                k += 1;
            }
            if k == last {
                break;
            }
        }
        out.sort_unstable();
    }
}

/// The slot of a packed `(boid << 32) | slot` candidate.
pub(crate) fn unpack_slot(packed: u64) -> usize {
    (packed & u64::from(u32::MAX)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(p, q)| (q - p) * (q - p)).sum()
    }

    /// Every boid closer than `radius` to a boid of a cell is among that cell's candidates,
    /// and candidates come in ascending boid index.
    fn assert_candidates_cover_neighbours(positions: &[f64], dim: usize, radius: f64) {
        let n_boids = positions.len() / dim;
        let grid = CellGrid::build(positions, positions, dim, radius);
        let mut found = Vec::new();
        for cell in 0..grid.n_cells() {
            grid.candidates_of_cell(cell, &mut found);
            let boids: Vec<usize> = found.iter().map(|p| (p >> 32) as usize).collect();
            assert!(
                boids.windows(2).all(|w| w[0] < w[1]),
                "not ascending: {boids:?}"
            );
            for slot in grid.cell_slots(cell) {
                let i = grid.order()[slot];
                let (x_slot, _) = grid.state(slot);
                let x_i = &positions[i * dim..(i + 1) * dim];
                assert_eq!(x_slot, x_i);
                for j in 0..n_boids {
                    let x_j = &positions[j * dim..(j + 1) * dim];
                    if squared_distance(x_i, x_j) < radius * radius {
                        assert!(boids.binary_search(&j).is_ok(), "boid {i} misses {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn cell_candidates_cover_every_pair_closer_than_the_radius_in_one_to_four_dimensions() {
        let mut state = 12345u64;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for dim in 1..=4 {
            let positions: Vec<f64> = (0..300 * dim).map(|_| 6.0 * uniform() - 3.0).collect();
            assert_candidates_cover_neighbours(&positions, dim, 0.7);
            // On a lattice whose spacing divides the radius: pairs at exactly the radius.
            let lattice: Vec<f64> = positions
                .iter()
                .map(|x| (x * 10.0).round() / 10.0)
                .collect();
            assert_candidates_cover_neighbours(&lattice, dim, 0.3);
        }
    }

    #[test]
    fn far_outliers_and_huge_spans_stay_within_the_cell_budget() {
        let positions = vec![0.0, 0.0, 1e300, -1e300, 0.1, 0.0, -1e300, 1e300];
        let grid = CellGrid::build(&positions, &positions, 2, 1.0);
        assert!(grid.n_cells() <= 64);
        assert_candidates_cover_neighbours(&positions, 2, 1.0);
        let overflowing = vec![f64::MAX, 0.0, -f64::MAX, 0.0];
        let grid = CellGrid::build(&overflowing, &overflowing, 2, 1.0);
        assert_eq!(grid.n_cells(), 1);
    }
}
