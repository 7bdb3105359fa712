"""Writes tests/data/anndata_small.h5ad with the anndata package itself.

The Rust tests write their own .h5ad files at test time (hdf5-pure can write); this one file
checks compatibility with what anndata really writes (gzip-chunked datasets, categorical
columns with string and integer categories, variable-length strings, layers).

Run:  python -m venv venv && venv/bin/pip install anndata h5py numpy pandas
      venv/bin/python make_anndata_fixture.py
Made with anndata 0.12.19, h5py 3.16.0, numpy 2.4.6. Values follow formulas so the tests can
check them without NumPy: cell i has day i % 3, X_pca[i, j] = i + j / 10,
velocity_pca[i, j] = -(i + 1) * (j + 1) / 100, layers/velocity = X * 2, X[i, j] = i - j.
"""

import anndata as ad
import numpy as np
import pandas as pd

n_cells, n_pcs, n_genes = 9, 3, 2
i = np.arange(n_cells)[:, None]
days = np.arange(n_cells) % 3
obs = pd.DataFrame(
    {
        "day": pd.Categorical([f"day{d}" for d in days], categories=["day0", "day1", "day2"]),
        "day_number": pd.Categorical(days * 2),  # integer categories 0, 2, 4
        "time": days * 0.5,  # float64 column
        "batch": pd.Categorical(["a"] * n_cells),  # not a time: string categories
    },
    index=[f"cell{c}" for c in range(n_cells)],
)
x = (i - np.arange(n_genes)[None, :]).astype(np.float32)
adata = ad.AnnData(X=x, obs=obs)
adata.obsm["X_pca"] = i + np.arange(n_pcs)[None, :] / 10
adata.obsm["velocity_pca"] = -(i + 1) * (np.arange(n_pcs)[None, :] + 1) / 100
adata.layers["velocity"] = x * 2
adata.write_h5ad("anndata_small.h5ad", compression="gzip")
