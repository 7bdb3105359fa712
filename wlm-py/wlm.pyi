"""Wasserstein Lagrangian Mechanics: learn the mechanics of a population from unpaired snapshots.

The Python face of the Rust crates `wlm`, `wlm-data` and `wlm-ot`: the same learner, the same
run directories and the same numbers as the `wlm` command. Arrays go in as numpy float32 or
float64 (C or Fortran order) and come out as numpy arrays. Bad input raises ``ValueError``
naming the argument; unreadable files raise ``OSError``. Heavy work releases the GIL.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = npt.ArrayLike
PathLike = Union[str, "os.PathLike[str]"]
Config = Union[None, Mapping[str, Any], PathLike]

class Snapshots:
    """Observations of a population at strictly increasing times.

    One point cloud ``(N_k, d)`` per time (sizes may differ between times, points are unpaired
    across times) and, optionally, velocities of the same shape per time. Every value is
    checked finite on construction.
    """

    def __init__(
        self,
        positions: Sequence[ArrayLike],
        times: ArrayLike,
        velocities: Optional[Sequence[Optional[ArrayLike]]] = None,
    ) -> None:
        """Builds snapshots from one ``(N_k, d)`` float array per time.

        ``velocities``: ``None``, or one ``(N_k, d)`` array or ``None`` per time.

        Raises ``ValueError`` naming the argument (``positions[2]``, ``times``, ...) for a
        dtype other than float32/float64, another rank, dimensions that differ between times,
        NaN or infinite values, or times that do not strictly increase.
        """
    @staticmethod
    def from_anndata(
        adata: Any,
        time_key: str,
        embedding: str = "X_pca",
        velocity_key: Optional[str] = None,
        n_components: Optional[int] = None,
    ) -> Snapshots:
        """Snapshots of an AnnData object, grouped by ``adata.obs[time_key]``.

        Duck-typed: reads ``adata.obs[time_key]`` (numeric, or categorical with numeric or
        string categories) and ``adata.obsm[embedding]`` (or ``adata.X`` for ``"X"``, or a
        layer; sparse matrices are densified); anndata itself is not imported. Times are the
        column's values; for a categorical column the categories' values when all are numbers
        (``"3"``, ``"1.5"``), otherwise the category's position (``day0 < day1 < ...``).
        Snapshots come in increasing time order, cells in their order; only times with cells
        become snapshots, named by their category. ``velocity_key`` names an ``obsm`` entry of
        velocities (a time whose rows are all NaN has none). ``n_components`` keeps the first
        components. Equals ``Snapshots.read_h5ad`` on the file ``adata.write_h5ad`` writes.
        """
    @staticmethod
    def read_h5ad(
        path: PathLike,
        time_key: str,
        embedding: str = "X_pca",
        velocity_key: Optional[str] = None,
        n_components: Optional[int] = None,
    ) -> Snapshots:
        """Snapshots of an AnnData ``.h5ad`` file by the Rust loader (no anndata needed).

        As :meth:`from_anndata`; ``embedding`` and ``velocity_key`` name ``obsm`` entries (or
        ``"X"``); dense matrices only. Raises ``OSError`` for an unreadable file, ``ValueError``
        naming the HDF5 key otherwise.
        """
    @staticmethod
    def load(path: PathLike) -> Snapshots:
        """Snapshots of any file the ``wlm`` command reads (``.npz``, ``.npy``, ``.csv``,
        ``.h5ad``), its format detected."""
    @property
    def times(self) -> np.ndarray:
        """The observation times, float64 ``(T,)``."""
    @property
    def positions(self) -> List[np.ndarray]:
        """One float64 ``(N_k, d)`` array per time."""
    @property
    def velocities(self) -> List[Optional[np.ndarray]]:
        """One float64 ``(N_k, d)`` array, or ``None``, per time."""
    @property
    def names(self) -> Optional[List[str]]:
        """The snapshots' names (AnnData categories), if any."""
    @property
    def dim(self) -> int:
        """The dimension ``d``."""
    @property
    def n_particles(self) -> List[int]:
        """The number of points ``N_k`` of each snapshot."""
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...

def train(
    snapshots: Snapshots,
    config: Config = None,
    run_dir: Optional[PathLike] = None,
    progress: Union[bool, Callable[[Dict[str, Any]], Any]] = True,
) -> Run:
    """Trains a model on ``snapshots``, as ``wlm train`` does, and returns the finished run.

    ``config`` follows the RON schema of the run configuration (``wlm::RunConfig``: the
    ``model``, ``train``, ``eval`` and ``split`` sections of the files in ``configs/``) as
    nested dicts: a struct is a dict, an enum variant with fields is ``{"Variant": {...}}``,
    a unit variant is its name, e.g.::

        {"model": {"energy": {"Attention": {"dim": 2, "heads": 2, "hidden": 16, "blocks": 1, "ff": 32}}},
         "train": {"steps": 500, "initial_velocities": "OtCentral"},
         "split": {"Forecast": {"n_train": 3}}}

    or a path to a RON file of that form, or ``None`` for the defaults. Omitted fields take
    their defaults; an unknown key or a wrong type raises ``ValueError`` naming its dotted path
    (``config: unknown field `train.stepz```). ``model.energy.dim`` must equal the data's.

    The run directory (default: a new ``wlm-run-*`` folder in the temporary directory, kept)
    receives what ``wlm train`` writes there (``config.ron``, ``metrics.csv``,
    ``checkpoint.safetensors``, ``weights.safetensors``, ``ema_weights.safetensors``,
    ``forecast.npz``, ``evaluation.ron``) and ``snapshots.h5ad``, the data, for
    :meth:`Run.load`. With the same config and data the files are those of ``wlm train``, bit
    for bit.

    ``progress``: ``True`` draws a bar on ``sys.stderr``; ``False`` nothing; a callable gets a
    dict per step (``step``, ``total``, ``loss``, ``friction``, ``horizon``, and ``train_w1``,
    ``test_w1`` after an evaluation). Each step runs with the GIL released. Ctrl-C (or an
    exception raised by the callback) stops after the current step: a checkpoint of that step
    is written and ``KeyboardInterrupt`` (or the exception) propagates; continue with
    ``Run.load(run_dir).train()``.

    Raises ``ValueError`` for a bad config or data that do not suit it, ``RuntimeError`` if
    training diverges (the last checkpoint is kept), ``OSError`` if the directory cannot be
    written.
    """

class Run:
    """A training run in its directory: configuration, checkpoint, metrics and outputs."""

    @staticmethod
    def load(run_dir: PathLike, snapshots: Optional[Snapshots] = None) -> Run:
        """Reopens the run in ``run_dir`` at its checkpoint (finished or not).

        ``snapshots``: the data it was trained on; default, the ``snapshots.h5ad`` that
        :func:`train` wrote there (a run of the ``wlm`` command needs them given).
        """
    def train(self, progress: Union[bool, Callable[[Dict[str, Any]], Any]] = True) -> None:
        """Continues training to the configured number of steps (as :func:`train`), then
        writes the final outputs."""
    @property
    def dir(self) -> pathlib.Path:
        """The run directory."""
    @property
    def config(self) -> Dict[str, Any]:
        """The resolved configuration (with the estimated Sinkhorn blur), as a dict that
        :func:`train` accepts."""
    @property
    def snapshots(self) -> Snapshots:
        """All snapshots of the run (train and test)."""
    @property
    def step(self) -> int:
        """Training steps done."""
    @property
    def split(self) -> Dict[str, List[int]]:
        """``{"train": [...], "test": [...]}``: the snapshot indices of each role."""
    def forecast(self, times: Optional[ArrayLike] = None, start: int = 0) -> Snapshots:
        """Rolls snapshot ``start`` forward to ``times`` (increasing, after its time; default:
        every observed time after it), from the start velocities of ``eval.initial_velocities``,
        with ``eval.steps_per_interval`` integrator steps per interval. Returns the predicted
        positions and velocities. Uses the EMA weights when ``eval.use_ema``."""
    def interpolate(self, indices: Optional[Sequence[int]] = None) -> Snapshots:
        """Predicts each snapshot of ``indices`` (default: the held-out ones) from the observed
        snapshot before it, as ``wlm interpolate``."""
    def evaluate(self) -> Dict[str, Any]:
        """Exact W1 (and W2) of the model and the baselines per snapshot, mean ± SE over train
        and test: the ``evaluation.ron`` of ``wlm train`` as a dict."""
    def energy(self, x: ArrayLike, t: float = 0.0) -> float:
        """The model's total energy ``E(x, t)`` of a population ``x`` ``(N, d)``."""
    def force(self, x: ArrayLike, t: float = 0.0) -> np.ndarray:
        """The force ``-grad_x E(x, t)``, ``(N, d)``, in the model's precision."""

def w1(x: ArrayLike, y: ArrayLike) -> float:
    """Exact 1-Wasserstein distance between the uniform measures on ``x`` ``(N, d)`` and ``y``
    ``(M, d)`` with Euclidean ground cost: POT's ``ot.emd2(a, b, ot.dist(x, y, "euclidean"))``.
    Needs ``24·N·M`` bytes."""

def w2(x: ArrayLike, y: ArrayLike) -> float:
    """Exact 2-Wasserstein distance ``sqrt(emd2)`` with squared Euclidean ground cost."""

def sinkhorn(
    x: ArrayLike,
    y: ArrayLike,
    p: int = 2,
    blur: float = 0.05,
    scaling: float = 0.9,
) -> Tuple[float, np.ndarray]:
    """The debiased Sinkhorn divergence between the uniform measures on ``x`` and ``y`` and
    its gradient with respect to ``x``, as ``geomloss.SamplesLoss("sinkhorn", p=p, blur=blur,
    scaling=scaling)`` computes them (cost ``|x-y|`` for ``p = 1``, ``|x-y|²/2`` for
    ``p = 2``). The gradient is float32 when both inputs are, float64 otherwise."""
