"""`wlm.Snapshots`: from numpy arrays, and from AnnData against the Rust `.h5ad` loader."""

import pickle

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

import wlm


def make_adata(categories, labels, seed=0, n_cells=60, n_pcs=5, nan_velocity_label=None):
    """An AnnData with a categorical time column, a sparse X, X_pca and velocity_pca."""
    rng = np.random.default_rng(seed)
    day = pd.Categorical(rng.choice(labels, size=n_cells), categories=categories)
    x = scipy.sparse.random(n_cells, 30, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    adata = anndata.AnnData(X=x, obs=pd.DataFrame({"day": day}, index=[f"c{i}" for i in range(n_cells)]))
    adata.obsm["X_pca"] = rng.normal(size=(n_cells, n_pcs)).astype(np.float32)
    velocity = rng.normal(size=(n_cells, n_pcs)).astype(np.float32)
    if nan_velocity_label is not None:
        velocity[np.asarray(day) == nan_velocity_label] = np.nan
    adata.obsm["velocity_pca"] = velocity
    return adata


def test_from_anndata_equals_the_rust_h5ad_loader_on_the_written_file(tmp_path):
    # String categories, one without cells, cells in random order, one time without velocities.
    adata = make_adata(["d0", "d1", "d2", "d3"], ["d2", "d0", "d1"], nan_velocity_label="d1")
    assert scipy.sparse.issparse(adata.X)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    kwargs = dict(time_key="day", embedding="X_pca", velocity_key="velocity_pca", n_components=3)
    got = wlm.Snapshots.from_anndata(adata, **kwargs)
    want = wlm.Snapshots.read_h5ad(path, **kwargs)
    assert got == want
    # And against a direct numpy grouping: category positions as times, cells in file order.
    assert list(got.times) == [0.0, 1.0, 2.0]
    assert got.names == ["d0", "d1", "d2"]
    day = np.asarray(adata.obs["day"])
    for k, label in enumerate(["d0", "d1", "d2"]):
        rows = adata.obsm["X_pca"][day == label, :3].astype(np.float64)
        np.testing.assert_array_equal(got.positions[k], rows)
    assert got.velocities[1] is None
    np.testing.assert_array_equal(
        got.velocities[2], adata.obsm["velocity_pca"][day == "d2", :3].astype(np.float64)
    )


def test_numeric_string_categories_and_numeric_columns_give_their_values(tmp_path):
    adata = make_adata(["0", "1.5", "3"], ["3", "0", "1.5"], seed=1)
    adata.obs["hours"] = np.asarray(adata.obs["day"]).astype(float) * 24.0
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    for key, times in [("day", [0.0, 1.5, 3.0]), ("hours", [0.0, 36.0, 72.0])]:
        got = wlm.Snapshots.from_anndata(adata, key)
        assert got == wlm.Snapshots.read_h5ad(path, key)
        assert list(got.times) == times
        assert got.dim == 5
        assert sum(got.n_particles) == adata.n_obs


def test_constructor_reads_float32_fortran_and_strided_arrays_as_float64():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(6, 3))
    b = rng.normal(size=(4, 3))
    reference = wlm.Snapshots([a, b], [0.0, 1.0], velocities=[None, b * 2])
    again = wlm.Snapshots([np.asfortranarray(a), b], np.array([0.0, 1.0], dtype=np.float32), [None, 2 * b])
    assert again == reference
    wide = np.zeros((6, 6))
    wide[:, ::2] = a
    assert wlm.Snapshots([wide[:, ::2], b], [0, 1], [None, b * 2]) == reference
    s32 = wlm.Snapshots([a.astype(np.float32), b.astype(np.float32)], [0.0, 1.0])
    np.testing.assert_array_equal(s32.positions[0], a.astype(np.float32).astype(np.float64))
    assert s32.positions[0].dtype == np.float64
    assert pickle.loads(pickle.dumps(reference)) == reference
    assert reference.n_particles == [6, 4] and len(reference) == 2
    assert reference.velocities[0] is None
    np.testing.assert_array_equal(reference.velocities[1], 2 * b)


def test_load_reads_an_npz_written_by_numpy(tmp_path):
    rng = np.random.default_rng(3)
    positions = rng.normal(size=(3, 8, 2))
    path = tmp_path / "p.npz"
    np.savez(path, positions=positions, times=np.array([0.0, 0.5, 2.0]))
    s = wlm.Snapshots.load(path)
    assert s == wlm.Snapshots(list(positions), [0.0, 0.5, 2.0])
