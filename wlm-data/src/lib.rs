//! Snapshots of a population at a few times: the validated [`Snapshots`] type, loaders and
//! writers, the blur estimate, and synthetic SDE data.
//!
//! `wlm-data` sits at the bottom of the workspace next to the other leaf crates: the learner
//! (`wlm`) trains on [`Snapshots`], `wlm-boids` produces them, `wlm-cli` loads them from the
//! paths in its configs. It knows nothing about tensors beyond converting to and from candle.
//!
//! # Quick start
//!
//! ```
//! use wlm_data::{estimate_blur, load_particles_npz, write_particles_npz, BlurConfig, GfSdeConfig};
//!
//! // The GF-SDE data of METHOD.md §5 (a small variant: N = 200 instead of 1000).
//! let data = GfSdeConfig { n_particles: 200, ..GfSdeConfig::default() }.generate()?;
//! assert_eq!((data.len(), data.dim(), data.n_particles(0)), (21, 2, 200));
//! assert!(data.has_all_velocities());
//!
//! // Write it as the particle .npz layout and read it back, bit for bit.
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("gf_sde.npz");
//! write_particles_npz(&path, &data)?;
//! assert_eq!(load_particles_npz(&path, None)?, data);
//!
//! let blur = estimate_blur(&data, &BlurConfig::default());
//! assert!(blur > 0.1 && blur < 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Entry points
//!
//! | item | what | cost |
//! |---|---|---|
//! | [`Snapshots`] | validated clouds at increasing times, optional velocities and names; candle conversions | `O(values)` to build |
//! | [`load_particles_npz`], [`write_particles_npz`] | `.npz` with `positions`, `velocities` `(T, N, d)` (ocean files, predictions) | `O(file)` |
//! | [`write_npz`] | named `float64` arrays as an `.npz` (the landscape's grids) | `O(values)` |
//! | [`load_snapmmd_npz`] | `.npz` with `Xs` `(T, N, d)` at times `dts` (snapMMD files) | `O(file)` |
//! | [`load_npy`], [`write_npy`] | `.npy` `(T, N, d)` positions (SBIRR files) | `O(file)` |
//! | [`load_trajectorynet_npz`] | `pcs`, `sample_labels`, `pcs_delta`, z-scored ([`TrajectoryNetConfig`]) | `O(file)` |
//! | [`load_csv`], [`write_csv`] | long-format CSV `time,x0,…[,v0,…]` | `O(file)` |
//! | [`load_h5ad`], [`write_h5ad`] | AnnData: `obs` time column, `obsm`/`X`/`layers` matrices ([`H5adConfig`]) | `O(file)` |
//! | `parse_*` | every loader on bytes instead of a path (for fuzzing and embedding) | `O(bytes)` |
//! | [`parse_npy`], [`encode_npy`] | the NPY format itself | `O(bytes)` |
//! | [`estimate_blur`] | METHOD.md §4's Sinkhorn blur from the data ([`BlurConfig`]) | `O(8 · 4096 · d)` |
//! | [`GfSdeConfig::generate`] | METHOD.md §5's gradient-flow SDE data, paired or unpaired, with velocities | `O(N·d·10·T)` + `O(N²·d)` per snapshot with velocities |
//! | [`Potential`], [`kde_score`], [`probability_flow_velocity`] | the five potentials and the velocity estimate | `O(N²·d)` for the score |
//!
//! Every writer is atomic: it writes a temporary file in the target's directory and renames
//! it, so a crash never leaves a half-written file. Every loader round-trips through the
//! writers exactly (`f64` values are stored in binary or as shortest round-trip text).
//!
//! # Formats in detail
//!
//! - **NPY** (own parser): versions 1.0/2.0/3.0, little- and big-endian `f4`/`f8` in C or
//!   Fortran order; integer arrays are accepted only where labels are expected. Anything else
//!   (object arrays, which is how NumPy stores ragged arrays, strings, complex, float16,
//!   structured dtypes, a rank other than the loader's) is an error.
//! - **NPZ**: zip archives (stored or deflated) read with the `zip` crate; an entry is read no
//!   further than its declared size.
//! - **Missing velocities**: a snapshot without velocities is stored as NaN (npz, h5ad) or
//!   empty fields (CSV); the loaders read an all-NaN (all-empty) snapshot back as "no
//!   velocities", and reject a partly NaN one.
//! - **HDF5** via [`hdf5-pure`](https://crates.io/crates/hdf5-pure), a maintained pure-Rust
//!   reader and writer (chunked and deflate datasets, groups, attributes, variable-length
//!   strings); no libhdf5 is needed.
//!
//! # What can go wrong
//!
//! - Every failure is an [`Error`] that names the file and, where there is one, the key (npz
//!   key, HDF5 path, CSV column) and the snapshot, cell or line: missing keys, wrong dtype or
//!   rank, truncated or corrupt archives, ragged rows, NaN or infinite values, times that are
//!   not strictly increasing, empty files. Loaders never panic on any input (a proptest and
//!   the cargo-fuzz targets in `fuzz/` feed them random and mutated bytes).
//! - Loaders read the whole file into memory: a file larger than RAM cannot be loaded. An
//!   `.npz` entry is never decompressed past the size its header declares, nor past the
//!   memory available (a small deflate bomb is an error naming the key); a declared size
//!   that its compressed bytes cannot reach is an error too, before anything is reserved.
//! - [`Snapshots::check_fits`] refuses sizes whose values would not fit in the memory
//!   available; the simulators call it before allocating (a huge `n_snapshots` is an error,
//!   not an abort).
//! - The particle `.npz` and `.npy` writers need clouds of equal size ([`Error::Invalid`]
//!   otherwise); names are stored by none of the writers.
//! - [`GfSdeConfig::generate`] fails on invalid fields and on a diverging simulation (huge
//!   `dt` with a steep potential); its kernel score costs `O(N²)` per snapshot, so velocities
//!   for `N = 10⁵` take minutes.
//!
//! # References
//!
//! NumPy's NPY format (NEP 1); the AnnData on-disk format (anndata ≥ 0.8); TrajectoryNet
//! (Tong et al., ICML 2020) for the EB layout and its standardization; JKOnet* (Terpin et al.,
//! 2024) for the potentials.
//! `docs/METHOD.md` §4–6 in the repository: the blur, the GF-SDE data and the data sets.

mod blur;
mod cells;
mod csv;
mod error;
mod format;
mod fs;
mod gf_sde;
mod h5ad;
mod npy;
mod npy_file;
mod npz;
mod particles;
mod potential;
mod score;
mod snapshots;
mod trajectorynet;

pub use blur::{estimate_blur, BlurConfig};
pub use cells::{
    group_cells, numeric_category_times, string_category_times, CellTable, GroupError,
};
pub use csv::{load_csv, parse_csv, write_csv};
pub use error::{Error, Result};
pub use format::{detect_format, load_any, Format};
pub use fs::write_atomic;
pub use gf_sde::{GfSdeConfig, Pairing, VelocitySnapshots};
pub use h5ad::{
    h5ad_contents, load_h5ad, parse_h5ad, write_h5ad, H5adConfig, H5adMatrix, H5adMatrixInfo,
};
pub use npy::{encode_npy, parse_npy, NpyArray, NpyDtype, NpyError};
pub use npy_file::{load_npy, parse_npy_snapshots, write_npy};
pub use npz::{
    load_npz_array, load_particles_npz, load_snapmmd_npz, npz_keys, parse_particles_npz,
    parse_snapmmd_npz, write_npz, write_particles_npz,
};
pub use potential::Potential;
pub use score::{kde_score, probability_flow_velocity, ScoreSign};
pub use snapshots::Snapshots;
pub use trajectorynet::{load_trajectorynet_npz, parse_trajectorynet_npz, TrajectoryNetConfig};
