"""Bad input raises a Python exception whose message names the argument; nothing crashes."""

import numpy as np
import pytest

import wlm


def cloud(n=5, d=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def tiny_snapshots():
    return wlm.Snapshots([cloud(6, 2, k) for k in range(3)], [0.0, 1.0, 2.0])


def test_wrong_dtype_is_named():
    with pytest.raises(ValueError, match=r"positions\[0\]: expected a float32 or float64 array, got dtype int64"):
        wlm.Snapshots([np.zeros((3, 2), dtype=np.int64)], [0.0])
    with pytest.raises(ValueError, match=r"^x: expected a float32 or float64 array, got dtype <U1"):
        wlm.w1(np.array([["a", "b"]]), cloud())
    with pytest.raises(ValueError, match=r"^y: .*complex128"):
        wlm.sinkhorn(cloud(), cloud().astype(np.complex128))


def test_ragged_dimensions_are_named():
    with pytest.raises(ValueError, match=r"positions\[1\]: has 3 dimensions but positions\[0\] has 2"):
        wlm.Snapshots([cloud(4, 2), cloud(4, 3)], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"^x, y: dimensions differ"):
        wlm.w1(cloud(4, 2), cloud(4, 3))
    with pytest.raises(ValueError, match=r"^x: cannot be read as an array"):
        wlm.w2([[1.0, 2.0], [3.0]], cloud())
    with pytest.raises(ValueError, match=r"velocities\[0\]: 2 points but positions\[0\] has 4"):
        wlm.Snapshots([cloud(4, 2)], [0.0], [cloud(2, 2)])
    with pytest.raises(ValueError, match=r"^x: expected a 2-d array"):
        wlm.w1(np.zeros(3), cloud())


def test_nan_and_infinity_are_named_with_their_place():
    bad = cloud()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"^x: value at row 3, column 1 is not finite \(NaN\)"):
        wlm.w1(bad, cloud())
    with pytest.raises(ValueError, match=r"positions\[1\]: value at row 3, column 1 is not finite"):
        wlm.Snapshots([cloud(), bad], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"times: time 1 is not finite"):
        wlm.Snapshots([cloud(), cloud()], [0.0, np.inf])
    with pytest.raises(ValueError, match=r"strictly increasing"):
        wlm.Snapshots([cloud(), cloud()], [1.0, 0.0])


def test_unknown_config_key_and_wrong_type_are_named_by_their_dotted_path(tmp_path):
    s = tiny_snapshots()
    with pytest.raises(ValueError, match=r"^config: unknown field `train.stepz`"):
        wlm.train(s, {"train": {"stepz": 3}}, run_dir=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match=r"^config: field `model.energy.Attention.hiden`: unknown field `hiden`, expected one of"):
        wlm.train(s, {"model": {"energy": {"Attention": {"dim": 2, "hiden": 3}}}}, run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match=r"^config: field `train.steps`: invalid type: string"):
        wlm.train(s, {"train": {"steps": "many"}}, run_dir=tmp_path / "c")
    with pytest.raises(ValueError, match=r"^config: invalid config field `train.lr`"):
        wlm.train(s, {"train": {"lr": -1.0}}, run_dir=tmp_path / "d")
    with pytest.raises(ValueError, match=r"model.energy.dim`: the model is 3-dimensional but the snapshots are 2"):
        wlm.train(s, {"model": {"energy": {"Attention": {"dim": 3}}}}, run_dir=tmp_path / "e")
    with pytest.raises(ValueError, match=r"config field `train.lr`: NaN is not a finite number"):
        wlm.train(s, {"train": {"lr": float("nan")}}, run_dir=tmp_path / "f")
    ron = tmp_path / "bad.ron"
    ron.write_text("(train: (steps: 2, nonsense: 1))")
    with pytest.raises(ValueError, match=r"bad.ron: unknown field `train.nonsense`"):
        wlm.train(s, str(ron), run_dir=tmp_path / "g")
    with pytest.raises(ValueError, match=r"^progress: expected True, False or a callable"):
        wlm.train(s, {"train": {"steps": 1}}, run_dir=tmp_path / "h", progress="yes")
    # Nothing was trained in any of these directories.
    assert not any((tmp_path / d / "checkpoint.safetensors").exists() for d in "abcdefgh")


def test_missing_files_are_oserrors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ron"):
        wlm.train(tiny_snapshots(), tmp_path / "missing.ron")
    with pytest.raises(OSError, match="missing.npz"):
        wlm.Snapshots.load(tmp_path / "missing.npz")
    with pytest.raises(OSError, match="not a run directory"):
        wlm.Run.load(tmp_path, snapshots=tiny_snapshots())
    with pytest.raises(ValueError, match=r"^snapshots: .*snapshots.h5ad is absent"):
        wlm.Run.load(tmp_path)


def test_sinkhorn_parameters_are_checked():
    for kwargs, pattern in [({"p": 3}, r"^p: must be 1 or 2, got 3"), ({"blur": 0.0}, r"^blur:"), ({"scaling": 1.0}, r"^scaling:")]:
        with pytest.raises(ValueError, match=pattern):
            wlm.sinkhorn(cloud(), cloud(), **kwargs)


def test_anndata_errors_name_the_column_and_matrix():
    anndata = pytest.importorskip("anndata")
    import pandas as pd

    adata = anndata.AnnData(
        X=np.zeros((4, 2), dtype=np.float32),
        obs=pd.DataFrame({"day": ["a", "b", "a", "b"], "t": [0.0, 1.0, np.nan, 1.0]}, index=list("wxyz")),
    )
    adata.obsm["X_pca"] = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"time_key: obs has no column `time`"):
        wlm.Snapshots.from_anndata(adata, "time")
    with pytest.raises(ValueError, match=r"adata.obs\['day'\]: holds object values.*astype\('category'\)"):
        wlm.Snapshots.from_anndata(adata, "day")
    with pytest.raises(ValueError, match=r"adata.obs\['t'\]: time of cell 2 is not finite"):
        wlm.Snapshots.from_anndata(adata, "t")
    adata.obs["day"] = adata.obs["day"].astype("category")
    with pytest.raises(ValueError, match=r"embedding: `X_umap` is not in adata.obsm"):
        wlm.Snapshots.from_anndata(adata, "day", embedding="X_umap")
    with pytest.raises(ValueError, match=r"n_components: 4 components requested but adata.obsm\['X_pca'\] has 3"):
        wlm.Snapshots.from_anndata(adata, "day", n_components=4)
