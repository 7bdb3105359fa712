"""`wlm.train` and `wlm.Run`: bit for bit the runs of `wlm train`, resume after Ctrl-C,
forecasts, evaluation, energy and force."""

import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import wlm
from conftest import cli_binary

# A tiny run: 4 snapshots of 24 points in 2-d, an attention energy of 1 block, 4 steps.
CONFIG = {
    "model": {
        "energy": {"Attention": {"dim": 2, "heads": 2, "hidden": 8, "blocks": 1, "ff": 16}},
        "friction": {"gamma": 0.1, "learnable": True},
        "precision": "F64",
        "init_seed": 3,
    },
    "train": {"steps": 4, "lr": 1e-3, "seed": 7, "checkpoint_every": 2, "eval_every": 2},
    "eval": {"steps_per_interval": 2},
    "split": {"Forecast": {"n_train": 3}},
}
RON = """(
    name: "tiny",
    data: (source: Particles("data.npz")),
    model: (
        energy: Attention((dim: 2, heads: 2, hidden: 8, blocks: 1, ff: 16)),
        friction: (gamma: 0.1, learnable: true),
        precision: F64,
        init_seed: 3,
    ),
    train: (steps: 4, lr: 1e-3, seed: 7, checkpoint_every: 2, eval_every: 2),
    eval: (steps_per_interval: 2),
    split: Forecast(n_train: 3),
)
"""
SAME_BYTES = ["weights.safetensors", "ema_weights.safetensors", "forecast.npz", "evaluation.ron", "config.ron"]


def data(seed=0):
    rng = np.random.default_rng(seed)
    times = np.array([0.0, 0.5, 1.0, 1.5])
    positions = np.stack([rng.normal(loc=t, size=(24, 2)) for t in times])
    velocities = np.ones_like(positions) + 0.1 * rng.normal(size=positions.shape)
    return times, positions, velocities


def snapshots(seed=0):
    times, positions, velocities = data(seed)
    return wlm.Snapshots(list(positions), times, list(velocities))


def safetensors(path):
    """name -> (dtype, shape, bytes) of a .safetensors file (its format is 8 + JSON + data)."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    return {
        k: (v["dtype"], v["shape"], body[v["data_offsets"][0] : v["data_offsets"][1]])
        for k, v in header.items()
        if k != "__metadata__"
    }


def metrics(path):
    """metrics.csv without its wall_seconds column."""
    rows = [line.split(",") for line in pathlib.Path(path).read_text().splitlines()]
    col = rows[0].index("wall_seconds")
    return [r[:col] + r[col + 1 :] for r in rows]


def assert_same_run(a, b):
    for name in SAME_BYTES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ca, cb = safetensors(a / "checkpoint.safetensors"), safetensors(b / "checkpoint.safetensors")
    ca.pop("meta/wall_seconds")
    cb.pop("meta/wall_seconds")
    assert ca == cb
    assert metrics(a / "metrics.csv") == metrics(b / "metrics.csv")


def test_a_run_trained_from_python_equals_wlm_train_bit_for_bit(tmp_path):
    wlm_cli = cli_binary()
    times, positions, velocities = data()
    np.savez(tmp_path / "data.npz", positions=positions, velocities=velocities, times=times)
    (tmp_path / "tiny.ron").write_text(RON)
    cli_dir = tmp_path / "cli"
    subprocess.run(
        [str(wlm_cli), "--quiet", "train", "--config", str(tmp_path / "tiny.ron"), "--run-dir", str(cli_dir)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    run = wlm.train(snapshots(), CONFIG, run_dir=tmp_path / "py", progress=False)
    assert run.step == 4
    assert_same_run(cli_dir, tmp_path / "py")
    # The same config as a RON file of the run configuration gives the same run too.
    ron = tmp_path / "run.ron"
    ron.write_text((cli_dir / "config.ron").read_text())
    wlm.train(snapshots(), ron, run_dir=tmp_path / "py_ron", progress=False)
    assert_same_run(cli_dir, tmp_path / "py_ron")
    # The run's config round-trips through a dict.
    wlm.train(snapshots(), run.config, run_dir=tmp_path / "py_dict", progress=False)
    assert_same_run(cli_dir, tmp_path / "py_dict")


def test_interrupted_training_keeps_a_checkpoint_and_resumes_to_the_same_run(tmp_path):
    whole = wlm.train(snapshots(), CONFIG, run_dir=tmp_path / "whole", progress=False)
    seen = []

    def interrupt_at_3(report):
        seen.append(report["step"])
        if report["step"] == 3:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C

    # Python's own Ctrl-C handler (a shell starts background jobs with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            wlm.train(snapshots(), CONFIG, run_dir=tmp_path / "cut", progress=interrupt_at_3)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [1, 2, 3]
    resumed = wlm.Run.load(tmp_path / "cut")
    assert resumed.step == 3
    assert resumed.snapshots == snapshots()
    resumed.train(progress=False)
    assert resumed.step == 4
    assert_same_run(pathlib.Path(whole.dir), tmp_path / "cut")


def test_ctrl_c_during_a_step_stops_after_it(tmp_path):
    """A SIGINT that arrives while a step runs (GIL released) stops the loop after that step."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys, threading
        sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r})
        import wlm
        from test_train import snapshots, CONFIG
        # Python's own Ctrl-C handler (a shell starts background jobs with SIGINT ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        config = dict(CONFIG, train=dict(CONFIG["train"], steps=100000, checkpoint_every=0, eval_every=0))
        started = threading.Event()
        def kill():
            started.wait()
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=kill, daemon=True).start()
        def report(r):
            if r["step"] == 1:
                started.set()
        try:
            wlm.train(snapshots(), config, run_dir={str(tmp_path / "run")!r}, progress=report)
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted"
    run = wlm.Run.load(tmp_path / "run")
    assert 1 <= run.step < 100000
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == run.step + 1


def test_forecast_evaluate_energy_and_force_of_a_loaded_run(tmp_path):
    run = wlm.train(snapshots(), CONFIG, run_dir=tmp_path / "r", progress=False)
    loaded = wlm.Run.load(run.dir)
    evaluation = loaded.evaluate()
    assert evaluation == run.evaluate()
    assert evaluation["test_w1"]["mean"] > 0
    s = loaded.snapshots
    forecast = loaded.forecast()
    np.testing.assert_array_equal(forecast.times, s.times[1:])
    # The forecast scored in evaluation.ron is this one: same W1 at the held-out time.
    scores = {sc["index"]: sc["w1"] for sc in evaluation["scores"]}
    assert wlm.w1(forecast.positions[2], s.positions[3]) == pytest.approx(scores[3], rel=1e-12)
    later = loaded.forecast([0.75, 2.0], start=1)
    assert list(later.times) == [0.75, 2.0] and later.velocities[0] is not None
    interpolated = loaded.interpolate([2])
    assert list(interpolated.times) == [1.0]
    # Force = -grad E, against central differences of the energy (float64 model).
    x = s.positions[0][:5]
    force = loaded.force(x, t=0.5)
    assert force.shape == (5, 2) and force.dtype == np.float64
    h = 1e-5
    grad = np.zeros_like(x)
    for i in range(5):
        for j in range(2):
            xp, xm = x.copy(), x.copy()
            xp[i, j] += h
            xm[i, j] -= h
            grad[i, j] = (loaded.energy(xp, t=0.5) - loaded.energy(xm, t=0.5)) / (2 * h)
    np.testing.assert_allclose(force, -grad, rtol=1e-6, atol=1e-8 * np.abs(grad).max())
    with pytest.raises(ValueError, match=r"^x: has 3 columns but the model is 2-dimensional"):
        loaded.force(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"^times: must be finite, increasing and after the start time 0"):
        loaded.forecast([0.5, 0.25])
