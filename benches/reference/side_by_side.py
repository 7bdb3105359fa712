#!/usr/bin/env python3
"""Side-by-side timing of the reference implementation (guanton/WLM, PyTorch on the CPU)
and our `wlm train` on the same configurations, in one run.

For each case both programs train at a fixed horizon k (so one step has a fixed cost) for
S2 steps; per-step time = (t(S2) - t(S1)) / (S2 - S1), read from per-step wall clocks
taken inside each process (the reference: timestamps after every optimiser step, recorded by
a small in-process wrapper around its own `train.py`; ours: the `wall_seconds` column of the
run's `metrics.csv`). Start-up, data generation, the first S1 (warm-up) steps and the final
evaluation are therefore excluded. Rounds interleave ref, ours, ref, ours, ...; the report
gives every round's ratio (reference / ours) and the median. The final evaluation is timed
separately: the reference's own end-of-training `do_eval` (in-process), ours as a
`wlm eval` process (the full evaluation `wlm train` writes) and the like-for-like
`wlm forecast` / `wlm interpolate` process.

The reference is not vendored: pass `--reference` (a checkout of guanton/WLM) and
`--python` (a Python with torch, geomloss, pot, scikit-learn, matplotlib, imageio, pyyaml and
wandb: the imports of its train.py/data_generator.py). Nothing in the checkout is modified:
the few run-time changes (fixed horizon, per-step timestamps, no GIF after data generation,
timing of the evaluation) are monkeypatches applied by this file, which the reference
Python runs as a driver (`side_by_side.py _ref-data|_ref-train|_ref-export`). See README.md.

Only the standard library is needed to run the orchestration.
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

SELF = str(Path(__file__).resolve())
HERE = Path(SELF).parent
REPO = HERE.parents[1]


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------
# ref_data: data config + --set overrides for the reference's data_generator.py
# ref_model: model config of the reference's train.py, plus explicit CLI flags
# ours: our config, and how our data are made
# k / quick_k: the fixed training horizon (number of training snapshots after 0 reached)
# (A table on purpose: the cases share their fields, so `duplicates` pairs the rows.)
CASES: dict[str, dict] = {
    "ocean_small": dict(
        title="ocean small vortex interpolation (hold out 1,3,5,7)",
        ref_data_cfg="configs/data/oceans.yaml",
        ref_data_set=["npz_path=datasets/oceans_with_v0.npz"],
        ref_model_cfg="configs/models/oceans_interpolate.yaml",
        ref_extra=["--holdout-marginals", "1", "3", "5", "7"],
        ours_cfg="configs/ocean_small.ron",
        ours_data=("file", "oceans/oceans_with_v0.npz"),
        k=4,
        quick_k=1,
    ),
    "ocean_big": dict(
        title="ocean big vortex forecast (train 0-9, test 10)",
        ref_data_cfg="configs/data/oceans_big_forecast.yaml",
        ref_data_set=["npz_path=datasets/big_oceans_forecast.npz"],
        ref_model_cfg="configs/models/oceans_forecast.yaml",
        ref_extra=[],
        ours_cfg="configs/ocean_big.ron",
        ours_data=("file", "oceans/big_oceans_forecast.npz"),
        k=9,
        quick_k=1,
    ),
    "boids": dict(
        title="Boids N 1000, 101 snapshots, forecast (train 0-49)",
        ref_data_cfg="configs/data/boids.yaml",
        ref_data_set=[],
        ref_model_cfg="configs/models/boids.yaml",
        ref_extra=[],
        ours_cfg="configs/boids.ron",
        ours_data=("boids", dict(n=1000, snapshots=101, dt=0.5)),
        notes=["Both simulators follow the reference's Boids rules (SPEC 5) but draw different "
               "random starts (torch vs ChaCha8), so the clouds differ; --same-data trains ours "
               "on the reference's bundle."],
        quick_data=dict(n=100, snapshots=21, dt=0.5),
        k=10,
        quick_k=2,
    ),
    "gf_sde": dict(
        title="GF-SDE Styblinski-Tang N 1000, paired, zero friction, v0 from data",
        ref_data_cfg="configs/data/gf_sde.yaml",
        ref_data_set=["pot=styblinski_tang", "kill_condition=false"],
        ref_model_cfg="configs/models/gf_sde_zero_friction.yaml",
        ref_extra=[],
        ours_cfg="configs/gf_sde.ron",
        ours_data=("gf_sde", dict(n=1000, snapshots=21, dt=0.01)),
        quick_data=dict(n=100, snapshots=21, dt=0.01),
        k=9,
        quick_k=2,
        notes=["v0 of the data: the reference's generator uses `-∇ψ + (σ²/2) score` (its sign), "
               "ours the probability-flow `-∇ψ - (σ²/2) score` (SPEC 5); no effect on the "
               "cost of a step."],
    ),
}


PEAK = {"gflops": None, "how": None}  # measured at start (measure_peak)

SGEMM = """
import time, numpy as np
a = np.random.rand(1024, 1024).astype(np.float32); b = np.random.rand(1024, 1024).astype(np.float32)
for _ in range(3): a @ b
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    for _ in range(20): a @ b
    best = min(best, (time.perf_counter() - t) / 20)
print(2 * 1024**3 / best / 1e9)
"""


def measure_peak(python: str, threads: int) -> None:
    """The machine's f32 product peak: `threads` single-threaded 1024³ numpy sgemm processes
    side by side, their GFLOP/s summed (the yardstick of benches/notes/energy.md), or torch's
    matmul on `threads` threads if that is faster (MKL can beat OpenBLAS)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        procs = [subprocess.Popen([python, "-c", SGEMM], env=env, stdout=subprocess.PIPE,
                                  text=True) for _ in range(threads)]
        rates = [float(p.communicate(timeout=120)[0].strip()) for p in procs]
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        log(f"peak measurement failed: {e}")
        return
    torch_rate = None
    try:
        snippet = SGEMM.replace("import time, numpy as np", "import time, torch as np\n"
                                f"np.set_num_threads({threads})").replace(
            ".astype(np.float32)", "").replace("np.random.rand", "np.rand")
        out = subprocess.run([python, "-c", snippet], capture_output=True, text=True,
                             timeout=120)
        torch_rate = float(out.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        log(f"torch peak measurement failed: {e}")
    PEAK["gflops"] = max(sum(rates), torch_rate or 0.0)
    PEAK["how"] = (f"the larger of {threads} single-threaded 1024³ numpy sgemm processes side "
                   "by side, " + " + ".join(f"{r:.0f}" for r in rates) + " GFLOP/s, and torch's "
                   f"1024³ matmul on {threads} threads, "
                   + (f"{torch_rate:.0f}" if torch_rate else "-") + " GFLOP/s")


def force_gflop(n: int, hidden: int, heads: int, blocks: int, ff: int) -> float:
    """Matrix-product work of one attention force -∇E at N points, in GFLOP (the count of
    benches/notes/energy.md: per block the energy's Q/K/V, QKᵀ, PV, output projection and
    feed-forward, 8NH² + 4N²H + 4NHF, and their input VJPs, 8NH² + 8N²H + 4NHF; the heads
    split H without changing the total; embedding, head and time features are negligible)."""
    del heads
    per_block = 16 * n * hidden**2 + 12 * n * n * hidden + 8 * n * hidden * ff
    return blocks * per_block / 1e9


def step_gflop(force: float, forces: int, adjoints: int) -> float:
    """A training step's product work: the forward rollout's forces, plus the second-order
    backward of each force whose output reaches the loss, about twice a force (every product
    of the force's graph has two VJP products)."""
    return force * (forces + 2 * adjoints)


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, flush=True)


def fmt_s(x) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def fmt_r(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:10]


def npz_shapes(path: Path) -> dict[str, tuple]:
    """Shapes of the arrays of an .npz (NPY v1/v2 headers), with the standard library only."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as f:
                magic = f.read(6)
                if magic != b"\x93NUMPY":
                    continue
                major = f.read(2)[0]
                if major == 1:
                    hlen = struct.unpack("<H", f.read(2))[0]
                else:
                    hlen = struct.unpack("<I", f.read(4))[0]
                header = ast.literal_eval(f.read(hlen).decode("latin1"))
                out[name[:-4] if name.endswith(".npy") else name] = tuple(header["shape"])
    return out


def py_round(x: float) -> int:
    """Python's round (banker's), which the reference uses for its forecast split."""
    return int(round(x))


def _proc_stat() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return sum(v), v[3] + (v[4] if len(v) > 4 else 0)


OTHERS = {"last": None, "rss_mb": None}  # others' CPU share during the last run_timed


def run_timed(cmd, *, env, cwd=None, log_path: Path, timeout=None) -> float:
    """Runs cmd with stdout+stderr to log_path; returns its wall time; raises on failure.

    Also sets OTHERS["last"]: the share of all CPUs used by *other* processes while it ran
    (all CPU time from /proc/stat minus the child's own user+system time), and
    OTHERS["rss_mb"]: the child's peak resident set size in MiB."""
    import resource

    st0 = _proc_stat()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log_path, "w") as f:
        f.write("$ " + " ".join(str(c) for c in cmd) + "\n")
        f.flush()
        p = subprocess.Popen(
            [str(c) for c in cmd], env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
        )
        timer = threading.Timer(timeout, p.kill) if timeout else None
        if timer:
            timer.start()
        # wait4: this child's own resource usage (its peak RSS), not all children's maximum
        _, status, own = os.wait4(p.pid, 0)
        if timer:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t0
    OTHERS["rss_mb"] = own.ru_maxrss / 1024  # Linux: KiB
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    st1 = _proc_stat()
    OTHERS["last"] = None
    if st0 and st1 and st1[0] > st0[0]:
        tick = os.sysconf("SC_CLK_TCK")
        ncpu = os.cpu_count() or 1
        busy = ((st1[0] - st0[0]) - (st1[1] - st0[1])) / tick
        child = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        OTHERS["last"] = max(0.0, min(1.0, (busy - child) / (ncpu * dt)))
    if p.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n"
                           f"--- last lines of {log_path} ---\n{tail}")
    return dt


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over `seconds` (from /proc/stat), before a timed run: the
    reference's OpenMP threads slow down badly when another process holds a core."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
        return max(0.0, 1.0 - (i1 - i0) / max(1, t1 - t0))
    except OSError:
        return None


WAIT_QUIET = 0.0  # set from --wait-quiet
BUSY_LIMIT = 0.10  # others' CPU share above which a round is flagged / retried


def quiet_busy() -> float | None:
    """cpu_busy(), after waiting up to WAIT_QUIET seconds for it to drop below 20 %."""
    deadline = time.perf_counter() + WAIT_QUIET
    announced = False
    while True:
        b = cpu_busy()
        if b is None or b <= 0.2 or time.perf_counter() >= deadline:
            return b
        if not announced:
            log(f"  waiting for a quiet machine (CPU busy {100 * b:.0f} %) ...")
            announced = True
        time.sleep(4.0)


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "RAYON_NUM_THREADS"):
        env[k] = str(threads)
    env["WANDB_MODE"] = "disabled"
    env["WANDB_SILENT"] = "true"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---------------------------------------------------------------------------------------
# Reference-side drivers (run by the reference's Python; torch is imported only here)
# ---------------------------------------------------------------------------------------
def _ref_setup(reference: str, threads: int | None):
    sys.path.insert(0, reference)
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def ref_data_main(argv: list[str]) -> None:
    """`_ref-data --reference R -- <data_generator.py args>`: the reference's own data
    generator, without the GIF it renders after saving the bundle."""
    p = argparse.ArgumentParser()
    p.add_argument("--reference", required=True)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    os.chdir(a.reference)  # the data configs name datasets/... relative to the checkout
    _ref_setup(a.reference, None)
    import data_generator

    data_generator.make_compare_gif = lambda *x, **kw: None  # the GIF is not needed
    sys.argv = ["data_generator.py"] + rest
    data_generator.main()


def ref_export_main(argv: list[str]) -> None:
    """`_ref-export BUNDLE OUT.npz`: the reference bundle as a particle .npz for `wlm`."""
    import numpy as np
    import torch

    bundle = torch.load(argv[0], map_location="cpu", weights_only=False)
    X = bundle["X_em_torch"][0].numpy().astype("float64")  # (N, T, d)
    out = {"positions": np.ascontiguousarray(X.transpose(1, 0, 2)),
           "times": bundle["time_grid"].numpy().astype("float64")}
    if bundle.get("V_em_torch") is not None:
        V = bundle["V_em_torch"][0].numpy().astype("float64")
        out["velocities"] = np.ascontiguousarray(V.transpose(1, 0, 2))
    np.savez(argv[1], **out)
    print(json.dumps({"blur": float(bundle["blur"]), "shape": list(out["positions"].shape)}))


def ref_train_main(argv: list[str]) -> None:
    """`_ref-train --reference R --timing-out F [--threads T] [--no-eval] -- <train.py args>`.

    Runs the reference's own train.main() with these run-time changes only:
      * fixed horizon: `train_rollout_anchor_p0_randk(..., fixed_k=True)` (the switch exists
        in its rollout.py but train.py never sets it), k = --max-train-steps;
      * a timestamp after every step (wrapping its epoch_callback, after EMA update);
      * counting of the training integrator's steps and force evaluations;
      * timing of the final evaluation (`evaluate_model_w1`, and all of `do_eval`);
      * with --no-eval, the final evaluation is skipped.
    """
    p = argparse.ArgumentParser()
    p.add_argument("--reference", required=True)
    p.add_argument("--timing-out", required=True)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    _ref_setup(a.reference, a.threads)
    import torch
    import geomloss
    import losses
    import rollout
    import train

    rec = {"stamps": [], "horizons": [], "integrator_steps": [], "force_evals": [],
           "eval_core_s": None, "eval_total_s": None, "entry": None,
           "torch": torch.__version__, "geomloss": geomloss.__version__,
           "torch_threads": torch.get_num_threads()}
    cur = {"forces": 0}

    orig_leapfrog = rollout.leapfrog_auto

    def counting_leapfrog(*args, **kw):
        accel = kw["accel"]

        def counted(x, t):
            cur["forces"] += 1
            return accel(x, t)

        kw["accel"] = counted
        rec["integrator_steps"].append(int(kw["steps"]))
        return orig_leapfrog(*args, **kw)

    rollout.leapfrog_auto = counting_leapfrog

    orig_train = train.train_rollout_anchor_p0_randk

    def fixed_k_train(*args, **kw):
        kw["fixed_k"] = True
        cb = kw.get("epoch_callback")

        def cb_timed(epoch, k, loss, fric):
            if cb is not None:
                cb(epoch, k, loss, fric)
            rec["stamps"].append(time.perf_counter())
            rec["horizons"].append(int(k))
            rec["force_evals"].append(cur["forces"])
            cur["forces"] = 0

        kw["epoch_callback"] = cb_timed
        if rec["entry"] is None:
            rec["entry"] = time.perf_counter()
        return orig_train(*args, **kw)

    train.train_rollout_anchor_p0_randk = fixed_k_train

    orig_w1 = losses.evaluate_model_w1

    def timed_w1(*args, **kw):
        t0 = time.perf_counter()
        try:
            return orig_w1(*args, **kw)
        finally:
            rec["eval_core_s"] = time.perf_counter() - t0

    losses.evaluate_model_w1 = timed_w1

    orig_eval = train.do_eval_impl

    def timed_eval(*args, **kw):
        if a.no_eval:
            return {"step": int(kw.get("step_idx", 0)), "friction_value": 0.0}
        t0 = time.perf_counter()
        try:
            return orig_eval(*args, **kw)
        finally:
            rec["eval_total_s"] = time.perf_counter() - t0

    train.do_eval_impl = timed_eval

    sys.argv = ["train.py"] + rest
    try:
        train.main()
    finally:
        Path(a.timing_out).write_text(json.dumps(rec))


# ---------------------------------------------------------------------------------------
# Our side: settings from config.ron, timing from metrics.csv
# ---------------------------------------------------------------------------------------
def ron_get(text: str, key: str):
    m = re.search(r"\b" + re.escape(key) + r":\s*([^,\n]+)", text)
    if not m:
        return None
    v = m.group(1).strip().rstrip(",")
    if v.startswith("Some("):
        v = v[5:].rstrip(")")
    return v


def read_metrics(path: Path) -> list[dict]:
    lines = path.read_text().strip().splitlines()
    head = lines[0].split(",")
    return [dict(zip(head, ln.split(","))) for ln in lines[1:]]


def per_step(stamps: list[float], s1: int, s2: int) -> float:
    """stamps[i] = wall clock after step i+1."""
    return (stamps[s2 - 1] - stamps[s1 - 1]) / (s2 - s1)


# ---------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------
class Case:
    def __init__(self, name: str, spec: dict, args, work: Path):
        self.name, self.spec, self.args = name, spec, args
        self.work = work / name
        self.work.mkdir(parents=True, exist_ok=True)
        self.k = spec["quick_k"] if args.quick else spec["k"]
        self.env = thread_env(args.threads)
        self.ref_bundle = self.work / "ref_bundle.pt"
        self.ours_data: Path | None = None
        self.ref_blur: float | None = None
        self.n_snapshots: int | None = None
        self.rounds: list[dict] = []
        self.settings: list[tuple] = []
        self.notes: list[str] = list(spec.get("notes", []))
        self.discarded: list[str] = []

    # -- data ----------------------------------------------------------------------------
    def sizes(self) -> dict | None:
        if self.args.quick and "quick_data" in self.spec:
            return self.spec["quick_data"]
        kind, val = self.spec["ours_data"]
        return val if kind != "file" else None

    def make_data(self) -> None:
        a = self.args
        sets = list(self.spec["ref_data_set"])
        sz = self.sizes()
        if sz:
            sets += [f"N={sz['n']}", f"steps={sz['snapshots'] - 1}", f"dt={sz['dt']}"]
        cmd = [a.python, SELF, "_ref-data", "--reference", a.reference, "--",
               "--config", self.spec["ref_data_cfg"], "--set", f"seed={a.seed}",
               "--set", "device=cpu", "--set", f"out={self.ref_bundle}"]
        for s in sets:
            cmd += ["--set", s]
        t = run_timed(cmd, env=self.env, log_path=self.work / "ref_data.log")
        info = json.loads(subprocess.run(
            [a.python, SELF, "_ref-export", str(self.ref_bundle),
             str(self.work / "ref_data.npz")],
            env=self.env, check=True, capture_output=True, text=True).stdout.strip()
            .splitlines()[-1])
        self.ref_blur = info["blur"]
        self.ref_shape = tuple(info["shape"])
        log(f"  reference data: {self.ref_shape} (T, N, d), blur {self.ref_blur:.6g} "
            f"({t:.1f} s)")

        kind, val = self.spec["ours_data"]
        if a.same_data:
            self.ours_data = self.work / "ref_data.npz"
            self.ours_data_desc = "the reference's bundle (--same-data)"
        elif kind == "file":
            self.ours_data = Path(a.data_dir) / val
            self.ours_data_desc = str(self.ours_data)
        else:
            out = self.work / "ours_data.npz"
            if kind == "boids":
                cmd = [a.wlm, "-q", "simulate", "boids"]
            else:
                cmd = [a.wlm, "-q", "simulate", "gf-sde", "--potential", "styblinski-tang",
                       "--sigma", "1.0"]
            cmd += ["--out", out, "-n", sz["n"], "--n-snapshots", sz["snapshots"],
                    "--dt", sz["dt"], "--seed", a.seed]
            run_timed(cmd, env=self.env, log_path=self.work / "ours_data.log")
            self.ours_data = out
            self.ours_data_desc = "wlm " + " ".join(
                str(c) for c in cmd[2:] if c not in ("--out", out))
        shapes = npz_shapes(self.ours_data)
        self.ours_shape = shapes["positions"]
        self.ours_has_vel = "velocities" in shapes
        self.n_snapshots = self.ours_shape[0]
        log(f"  our data: {self.ours_shape} (T, N, d) from {self.ours_data_desc}")

    # -- commands ------------------------------------------------------------------------
    def ref_cmd(self, outdir: Path, timing: Path) -> list:
        a = self.args
        cmd = [a.python, SELF, "_ref-train", "--reference", a.reference,
               "--timing-out", timing, "--threads", a.threads]
        if a.no_eval:
            cmd.append("--no-eval")
        cmd += ["--", "--config", str(Path(a.reference) / self.spec["ref_model_cfg"]),
                "--data", self.ref_bundle, "--outdir", outdir, "--seed", a.seed,
                "--device", "cpu", "--no-wandb", "--num-epochs", a.s2,
                "--eval-every", a.s2, "--max-train-steps", self.k,
                "--ckpt-every", 0, "--gif-every", 0]
        return cmd + self.spec["ref_extra"]

    def ours_sets(self) -> list[str]:
        a = self.args
        sets = [f"data.source=Particles({json.dumps(str(self.ours_data.resolve()))})",
                f"train.steps={a.s2}", "train.fixed_horizon=true",
                f"train.max_horizon=Some({self.k})", "train.checkpoint_every=0",
                "train.eval_every=0", "eval.w2=false", f"train.seed={a.seed}",
                f"model.init_seed={a.seed}"]
        if a.match_blur and self.ref_blur is not None:
            sets.append(f"train.loss.blur=Some({self.ref_blur!r})")
        ref_cfg = self.ref_yaml()
        if ref_cfg.get("learnable_friction") and "friction_lr" in ref_cfg:
            sets.append(f"train.friction_lr={float(ref_cfg['friction_lr'])!r}")
        if self.name in ("boids", "gf_sde"):
            # the reference's forecast split: round(T * train_fraction), at least 2
            frac = float(ref_cfg.get("train_fraction", 0.5))
            n_train = max(2, py_round(self.n_snapshots * frac))
            sets.append(f"split=Forecast(n_train: {n_train})")
        return sets

    def ours_cmd(self, run_dir: Path, extra: list[str] = ()) -> list:
        a = self.args
        cmd = [a.wlm, "-q", "train", "--config", REPO / self.spec["ours_cfg"],
               "--run-dir", run_dir]
        for s in list(self.ours_sets()) + list(extra):
            cmd += ["--set", s]
        return cmd

    def ref_yaml(self) -> dict:
        """The reference model config's top-level scalars (a tiny YAML subset reader)."""
        if hasattr(self, "_ref_yaml"):
            return self._ref_yaml
        out = {}
        path = Path(self.args.reference) / self.spec["ref_model_cfg"]
        for line in path.read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9_-]+):\s*([^#]*?)\s*(#.*)?$", line)
            if not m or not m.group(2):
                continue
            v = m.group(2)
            lv = v.lower()
            if lv in ("true", "false"):
                val = lv == "true"
            elif lv in ("null", "none", "~"):
                val = None
            else:
                try:
                    val = float(v) if re.search(r"[.eE]", v) else int(v)
                except ValueError:
                    val = v.strip("'\"")
            out[m.group(1).replace("-", "_")] = val
        self._ref_yaml = out
        return out

    # -- one round -----------------------------------------------------------------------
    def run_ref(self, r: int) -> dict:
        busy = quiet_busy()
        outdir = self.work / f"ref_run{r}"
        shutil.rmtree(outdir, ignore_errors=True)
        timing = self.work / f"ref_timing{r}.json"
        wall = run_timed(self.ref_cmd(outdir, timing), env=self.env,
                         log_path=self.work / f"ref_train{r}.log")
        others, rss = OTHERS["last"], OTHERS["rss_mb"]
        rec = json.loads(timing.read_text())
        s = rec["stamps"]
        if len(s) < self.args.s2:
            raise RuntimeError(f"reference recorded {len(s)} steps, expected {self.args.s2}")
        if set(rec["horizons"]) != {self.k}:
            raise RuntimeError(f"reference horizons {set(rec['horizons'])}, expected {self.k}")
        if r == 0:
            self.ref_config = json.loads((outdir / "config.json").read_text())
            self.ref_rec = rec
        return dict(per_step=per_step(s, self.args.s1, self.args.s2), wall=wall,
                    first_step=s[0] - rec["entry"], eval_core=rec["eval_core_s"],
                    eval_total=rec["eval_total_s"], busy=busy, others=others, rss=rss,
                    steps=[b - a for a, b in zip([rec["entry"]] + s[:-1], s)])

    def run_ours(self, r: int, extra: list[str] = (), tag: str = "ours",
                 with_eval: bool = True) -> dict:
        busy = quiet_busy()
        run_dir = self.work / f"{tag}_run{r}"
        shutil.rmtree(run_dir, ignore_errors=True)
        wall = run_timed(self.ours_cmd(run_dir, extra), env=self.env,
                         log_path=self.work / f"{tag}_train{r}.log")
        others, rss = OTHERS["last"], OTHERS["rss_mb"]
        rows = read_metrics(run_dir / "metrics.csv")
        if len(rows) < self.args.s2:
            raise RuntimeError(f"our metrics.csv has {len(rows)} steps, expected {self.args.s2}")
        hz = {int(row["horizon"]) for row in rows}
        if hz != {self.k}:
            raise RuntimeError(f"our horizons {hz}, expected {self.k}")
        s = [float(row["wall_seconds"]) for row in rows]
        out = dict(per_step=per_step(s, self.args.s1, self.args.s2), wall=wall,
                   first_step=s[0], eval_full=None, eval_like=None, busy=busy,
                   others=others, rss=rss,
                   steps=[b - a for a, b in zip([0.0] + s[:-1], s)])
        if with_eval and not self.args.no_eval:
            out["eval_full"] = run_timed(
                [self.args.wlm, "-q", "eval", "--run-dir", run_dir,
                 "--out", run_dir / "bench_evaluation.ron"],
                env=self.env, log_path=self.work / f"ours_eval{r}.log")
            like = "interpolate" if self.name == "ocean_small" else "forecast"
            out["eval_like"] = run_timed(
                [self.args.wlm, "-q", like, "--run-dir", run_dir,
                 "--out", run_dir / f"bench_{like}.npz"],
                env=self.env, log_path=self.work / f"ours_{like}{r}.log")
        if r == 0 and tag == "ours":
            self.ours_config = (run_dir / "config.ron").read_text()
        return out

    # -- settings table ------------------------------------------------------------------
    def build_settings(self) -> None:
        rc, rr, oc = self.ref_config, self.ref_rec, self.ours_config
        res = rc["resolved"]
        mi = rc.get("mode_info", {})
        T = mi.get("T_total")
        n_train = mi.get("n_train_marginals")
        ref_split = (f"holdout {mi.get('holdout_indices')}" if rc["eval_mode"] == "interpolate"
                     else f"forecast, train 0-{n_train - 1}")
        m = re.search(r"split:\s*(\w+)\(\s*(\w+):\s*(\[[^\]]*\]|\d+)", oc, re.S)
        if m and m.group(1) == "Holdout":
            held = [int(x) for x in re.findall(r"\d+", m.group(3))]
            ours_split = f"holdout {held}"
        elif m:
            ours_split = f"forecast, train 0-{int(m.group(3)) - 1}"
        else:
            ours_split = "?"
        ref_steps = sorted(set(rr["integrator_steps"]))
        ref_forces = sorted(set(rr["force_evals"]))
        fr_learn = ron_get(oc, "learnable") == "true"
        ref_ppb = rc.get("particles_per_batch")
        ours_bs = ron_get(oc, "batch_size")
        n = self.ours_shape[1]
        ref_time = bool(rc.get("use_time"))
        ref_backend = rc.get("geom_backend") or "auto (tensorized: d<=20, N<=6000)"
        rows = [
            ("data", f"data_generator.py {self.spec['ref_data_cfg']}", self.ours_data_desc),
            ("snapshots T x points N x dim d",
             f"{T} x {res['N']} x {res['d']}", " x ".join(map(str, self.ours_shape))),
            ("split", ref_split, ours_split),
            ("fixed horizon k (training snapshots reached)", f"{rr['horizons'][0]}",
             f"{self.k}"),
            ("integrator steps per training step", ", ".join(map(str, ref_steps)),
             f"{self.k} (one per training interval)"),
            ("force evaluations per step, forward", ", ".join(map(str, ref_forces)),
             f"{self.k + 1} (graph-free forward; adjoint reverse sweep)"),
            ("Sinkhorn losses per step", f"{rr['horizons'][0]}", f"{self.k}"),
            ("energy heads / hidden / blocks / ff",
             f"{rc['attn_heads']} / {rc['attn_hidden_dim']} / {rc['attn_layers']} / {rc['ff_dim']}",
             f"{ron_get(oc, 'heads')} / {ron_get(oc, 'hidden')} / {ron_get(oc, 'blocks')} / "
             f"{ron_get(oc, 'ff')}"),
            ("time features", f"true (d_time {rc['d_time']})" if ref_time else "false",
             ron_get(oc, "time_features")
             + (" (16)" if ron_get(oc, "time_features") == "true" else "")),
            ("dropout", f"{rc['dropout']}", f"{ron_get(oc, 'dropout')}"),
            ("friction (init, learned)",
             f"{rc['friction']}, {str(bool(rc['learnable_friction'])).lower()}",
             f"{ron_get(oc, 'gamma')}, {str(fr_learn).lower()}"),
            ("lr / weight decay / friction lr",
             f"{rc['lr']} / {rc['weight_decay']} / "
             + (f"{rc['friction_lr']}" if rc["learnable_friction"] else "-"),
             f"{ron_get(oc, 'lr')} / {ron_get(oc, 'weight_decay')} / "
             + (f"{ron_get(oc, 'friction_lr')}" if fr_learn else "-")),
            ("EMA decay", f"{rc.get('ema_decay') if rc.get('use_ema') else 'off'}",
             f"{ron_get(oc, 'ema_decay')}"),
            ("loss p / blur / scaling",
             f"{rc['geom_p']} / {res['kernel_blur']:.6g} / {rc['geom_scaling']}",
             f"{ron_get(oc, 'p')} / {float(ron_get(oc, 'blur')):.6g} / "
             f"{ron_get(oc, 'scaling')}"),
            ("Sinkhorn debias", f"{str(rc['geom_debias']).lower()}", "true"),
            ("Sinkhorn implementation", f"geomloss SamplesLoss, backend {ref_backend}",
             "wlm-ot (CPU)"),
            ("minibatch", "all" if ref_ppb is None else str(ref_ppb),
             "all" if ours_bs in (None, "None") else ours_bs),
            ("initial velocities (train)",
             {"bundle": "data", "zero": "zero"}.get(rc["vel"], rc["vel"]) + f" (vel: {rc['vel']})",
             f"{str(ron_get(oc, 'initial_velocities')).lower()}"),
            ("evaluation steps per interval",
             f"{round(res['dt_base'] / rc['dt_eval']) if rc.get('dt_eval') else 1}"
             f" (dt_eval {rc.get('dt_eval')})", f"{ron_get(oc, 'steps_per_interval')}"),
            ("precision", "f32 (float32)", f"{str(ron_get(oc, 'precision')).lower()}"),
            ("threads", f"{rr['torch_threads']} (torch.get_num_threads)",
             f"{self.args.threads} (RAYON_NUM_THREADS)"),
        ]
        if n != res["N"]:
            self.notes.append(f"point counts differ: reference {res['N']}, ours {n}")
        self.settings = rows


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------
def versions(args) -> list[str]:
    out = []
    try:
        v = subprocess.run([args.python, "-c",
                            "import sys,torch,geomloss,numpy,ot;"
                            "print(sys.version.split()[0],torch.__version__,geomloss.__version__,"
                            "numpy.__version__,ot.__version__)"],
                           capture_output=True, text=True, check=True).stdout.split()
        out.append(f"reference Python {v[0]}, torch {v[1]}, geomloss {v[2]}, numpy {v[3]}, "
                   f"POT {v[4]}")
    except Exception as e:  # noqa: BLE001
        out.append(f"reference Python: versions unavailable ({e})")
    rev = subprocess.run(["git", "-C", args.reference, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    out.append(f"reference checkout {args.reference}"
               + (f" @ {rev.stdout.strip()}" if rev.returncode == 0 else
                  " (not a git checkout), train.py md5 "
                  + md5(Path(args.reference) / "train.py")))
    wv = subprocess.run([args.wlm, "--version"], capture_output=True, text=True)
    ours_rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        ours_rev += " (with uncommitted changes)"
    src = getattr(args, "wlm_source", args.wlm)
    out.append(f"ours: {wv.stdout.strip()} ({src}, md5 {md5(Path(args.wlm))}), "
               f"repository @ {ours_rev}")
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out.append(f"machine: {platform.node()}, {os.cpu_count()} CPUs ({cpu}); threads {args.threads}"
               f" (torch.set_num_threads, OMP/MKL_NUM_THREADS, RAYON_NUM_THREADS)")
    return out


def report(cases: list[Case], args, started: float) -> str:
    L = []
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    L.append(f"# Side-by-side: reference (PyTorch, CPU) vs `wlm train` — {when}")
    L.append("")
    L.append("Per-step time = (t(S2) − t(S1)) / (S2 − S1) with S1 = "
             f"{args.s1}, S2 = {args.s2}, from in-process per-step wall clocks; fixed horizon; "
             f"{args.rounds} interleaved round(s); ratio = reference / ours (> 1: ours faster)."
             + (" **--quick smoke configuration: the numbers mean nothing.**"
                if args.quick else ""))
    L.append("")
    for v in versions(args):
        L.append(f"- {v}")
    L.append("")
    L.append("## Per-step time")
    L.append("")
    L.append("| case | k | reference s/step (rounds) | ours s/step (rounds) | ratio per round | median ratio |")
    L.append("|---|---|---|---|---|---|")
    for c in cases:
        if not c.rounds:
            L.append(f"| {c.name} | {c.k} | failed | | | |")
            continue
        ref = [r["ref"]["per_step"] for r in c.rounds]
        ours = [r["ours"]["per_step"] for r in c.rounds]
        ratios = [a / b for a, b in zip(ref, ours)]
        busy = [any((r[s].get("others") or 0) > BUSY_LIMIT for s in ("ref", "ours"))
                for r in c.rounds]
        L.append(f"| {c.name} | {c.k} | {statistics.median(ref):.3f} ("
                 + ", ".join(f"{x:.3f}" for x in ref) + f") | {statistics.median(ours):.3f} ("
                 + ", ".join(f"{x:.3f}" for x in ours) + ") | "
                 + ", ".join(fmt_r(x) + (" (busy)" if b else "") for x, b in zip(ratios, busy))
                 + f" | **{fmt_r(statistics.median(ratios))}** |")
    if any(any((r[s].get("others") or 0) > BUSY_LIMIT for s in ("ref", "ours"))
           for c in cases for r in c.rounds):
        L.append("")
        L.append(f"(busy): other processes used more than {int(100 * BUSY_LIMIT)} % of the CPUs "
                 "during that round even after the retries: do not trust it (see the load "
                 "table below).")
    if args.before_set:
        L.append("")
        L.append("## Before and after (same binary, same round)")
        L.append("")
        L.append("\"Before\": `wlm train` with `" + " ".join(f"--set {x}" for x in args.before_set)
                 + "` (the code path before this change), run in each round after the two "
                 "programs above.")
        L.append("")
        L.append("| case | k | before s/step (rounds) | ratio reference / before (rounds) | median | after ÷ before speed-up (median) |")
        L.append("|---|---|---|---|---|---|")
        for c in cases:
            rounds = [r for r in c.rounds if r.get("before")]
            if not rounds:
                continue
            ref = [r["ref"]["per_step"] for r in rounds]
            bef = [r["before"]["per_step"] for r in rounds]
            ours = [r["ours"]["per_step"] for r in rounds]
            ratios = [a / b for a, b in zip(ref, bef)]
            gain = statistics.median([b / o for b, o in zip(bef, ours)])
            L.append(f"| {c.name} | {c.k} | {statistics.median(bef):.3f} ("
                     + ", ".join(f"{x:.3f}" for x in bef) + ") | "
                     + ", ".join(fmt_r(x) for x in ratios)
                     + f" | **{fmt_r(statistics.median(ratios))}** | {fmt_r(gain)} |")
    L.append("")
    L.append("## Peak memory (median over rounds, MiB)")
    L.append("")
    L.append("Peak resident set size of each training process (`wait4`'s `ru_maxrss`): the "
             "whole process, so start-up, data and (reference) the final evaluation are in it.")
    L.append("")
    L.append("| case | reference `train.py` | ours `wlm train` |"
             + (" before |" if args.before_set else ""))
    L.append("|---|---|---|" + ("---|" if args.before_set else ""))
    for c in cases:
        if not c.rounds:
            continue
        def rss(side):
            v = [r[side]["rss"] for r in c.rounds if r.get(side) and r[side].get("rss")]
            return f"{statistics.median(v):.0f}" if v else "-"
        L.append(f"| {c.name} | {rss('ref')} | {rss('ours')} |"
                 + (f" {rss('before')} |" if args.before_set else ""))
    L.append("")
    L.append("## Useful GFLOP/s of the training step")
    L.append("")
    L.append("Matrix-product work per step (see `force_gflop` / `step_gflop` in the script: "
             "each side's forward forces, plus about two forces' work for the second-order "
             "backward of each force that reaches the loss) divided by the median s/step; "
             + (f"peak = {PEAK['gflops']:.0f} GFLOP/s, measured at the start ({PEAK['how']})."
                if PEAK["gflops"] else "peak not measured."))
    L.append("")
    L.append("| case | GFLOP per force (N) | reference forces / adjoints, GFLOP/step, GFLOP/s (% peak) | ours forces / adjoints, GFLOP/step, GFLOP/s (% peak) |")
    L.append("|---|---|---|---|")
    for c in cases:
        if not c.rounds or not getattr(c, "ref_rec", None) or not getattr(c, "ours_config", None):
            continue
        oc = c.ours_config
        try:
            arch = [int(ron_get(oc, k)) for k in ("hidden", "heads", "blocks", "ff")]
        except (TypeError, ValueError):
            continue
        n = c.ours_shape[1]
        f = force_gflop(n, arch[0], arch[1], arch[2], arch[3])
        ref_forces = int(statistics.median(c.ref_rec["force_evals"]))
        sides = []
        for side, forces, adj in (("ref", ref_forces, ref_forces - 1),
                                  ("ours", c.k + 1, c.k)):
            g = step_gflop(f, forces, adj)
            t = statistics.median([r[side]["per_step"] for r in c.rounds])
            share = f" ({100 * g / t / PEAK['gflops']:.0f} %)" if PEAK["gflops"] else ""
            sides.append(f"{forces} / {adj}, {g:.0f}, {g / t:.0f}{share}")
        L.append(f"| {c.name} | {f:.2f} ({n}) | {sides[0]} | {sides[1]} |")
    if not args.no_eval:
        L.append("")
        L.append("## Final evaluation (median over rounds, seconds)")
        L.append("")
        L.append("| case | reference `evaluate_model_w1` | reference `do_eval` (+EMA swap, plots) | ours `wlm eval` (process) | ours like-for-like (process) | ratio ref core / ours like-for-like |")
        L.append("|---|---|---|---|---|---|")
        for c in cases:
            if not c.rounds:
                continue
            med = lambda side, key: statistics.median(  # noqa: E731
                [r[side][key] for r in c.rounds if r[side][key] is not None]) \
                if any(r[side][key] is not None for r in c.rounds) else None
            rc, rt = med("ref", "eval_core"), med("ref", "eval_total")
            of, ol = med("ours", "eval_full"), med("ours", "eval_like")
            like = "interpolate" if c.name == "ocean_small" else "forecast"
            L.append(f"| {c.name} | {fmt_s(rc)} | {fmt_s(rt)} | {fmt_s(of)} | {fmt_s(ol)} "
                     f"(`wlm {like}`) | {fmt_r(rc / ol) if rc and ol else '-'} |")
        L.append("")
        L.append("Reference evaluation: one rollout (forecast: from t0 through all times; "
                 "interpolation: from each held-out time's previous training time) at dt_eval "
                 "and exact W1 (POT `emd2`) per snapshot. `wlm eval` does more: W1 at every "
                 "snapshot, a second forecast from the last training snapshot, the baselines, "
                 "and for interpolation splits also the forecast from 0 (W2 switched off here "
                 "by `eval.w2=false`). `wlm forecast` / `wlm interpolate` match the reference's "
                 "work. Our times are whole processes (start-up, loading data and weights).")
    L.append("")
    L.append("## Other timings (median, seconds)")
    L.append("")
    L.append("| case | reference first step | ours first step | reference train.py process | ours `wlm train` process |")
    L.append("|---|---|---|---|---|")
    for c in cases:
        if not c.rounds:
            continue
        g = lambda side, key: statistics.median([r[side][key] for r in c.rounds])  # noqa: E731
        L.append(f"| {c.name} | {fmt_s(g('ref', 'first_step'))} | {fmt_s(g('ours', 'first_step'))} "
                 f"| {fmt_s(g('ref', 'wall'))} | {fmt_s(g('ours', 'wall'))} |")
    L.append("")
    L.append("## Each step's wall time (seconds; steps 1..S1 are warm-up) and the machine's load")
    L.append("")
    L.append("CPU busy before = share of all CPUs in use in the second before the run; "
             "others during = share of all CPUs used by other processes while it ran. A round "
             f"with others above {int(100 * BUSY_LIMIT)} % is flagged (and retried "
             "up to --retry-busy times); its numbers are suspect.")
    L.append("")
    L.append("| case | round | side | CPU busy before | others during | steps |")
    L.append("|---|---|---|---|---|---|")
    pct = lambda v: "-" if v is None else f"{100 * v:.0f} %"  # noqa: E731
    for c in cases:
        for i, r in enumerate(c.rounds):
            for side in ("ref", "ours"):
                o = r[side].get("others")
                flag = " **(busy)**" if o is not None and o > BUSY_LIMIT else ""
                L.append(f"| {c.name} | {i + 1} | {side} | {pct(r[side].get('busy'))} | "
                         f"{pct(o)}{flag} | "
                         + ", ".join(f"{x:.3f}" for x in r[side]["steps"]) + " |")
        for n in c.discarded:
            L.append(f"| {c.name} | (discarded) | | | | {n} |")
    L.append("")
    L.append("## Settings each side used")
    for c in cases:
        if not c.settings:
            continue
        L.append("")
        L.append(f"### {c.name}: {c.spec['title']}")
        L.append("")
        L.append("| setting | reference | ours |")
        L.append("|---|---|---|")
        for name, a, b in c.settings:
            L.append(f"| {name} | {a} | {b} |")
        for n in c.notes:
            L.append(f"\n- {n}")
    L.append("")
    L.append(f"Total wall time of this benchmark: {time.perf_counter() - started:.0f} s.")
    L.append("")
    return "\n".join(L)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _norm(s: str) -> str:
    s = s.split(" (")[0].lower()
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", lambda m: f"{float(m.group(0)):g}", s)


def print_case_summary(c: Case) -> None:
    for name, a, b in c.settings:
        mark = " " if _norm(a) == _norm(b) else "≠"
        log(f"    {mark} {name:<46} ref: {a:<40} ours: {b}")


# ---------------------------------------------------------------------------------------
def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_ref-"):
        sub, rest = sys.argv[1], sys.argv[2:]
        {"_ref-data": ref_data_main, "_ref-train": ref_train_main,
         "_ref-export": ref_export_main}[sub](rest)
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", default=os.environ.get("WLM_REFERENCE"),
                   help="checkout of guanton/WLM (default $WLM_REFERENCE)")
    p.add_argument("--python", default=os.environ.get("WLM_REFERENCE_PYTHON", sys.executable),
                   help="Python with torch + geomloss + the reference's imports "
                        "(default $WLM_REFERENCE_PYTHON, else this Python)")
    p.add_argument("--wlm", default=str(REPO / "target/release/wlm"),
                   help="our release binary (default target/release/wlm)")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared/data"),
                   help="folder with oceans/*.npz for our side (default ../shared/data)")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    p.add_argument("--before-set", action="append", default=[], metavar="KEY=VALUE",
                   help="also time ours with this --set override in every round (repeatable), "
                        "reported as 'before' (e.g. train.gradient=GraphSweep)")
    p.add_argument("--s1", type=int, default=3, help="warm-up steps not timed (default 3)")
    p.add_argument("--s2", type=int, default=8, help="steps per run (default 8)")
    p.add_argument("--threads", type=int, default=2, help="threads of each side (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-eval", action="store_true",
                   help="skip timing the final evaluation (the reference's is skipped too)")
    p.add_argument("--same-data", action="store_true",
                   help="train ours on the reference's generated bundle (Boids/GF-SDE) "
                        "instead of our own simulator's data")
    p.add_argument("--no-match-blur", dest="match_blur", action="store_false",
                   help="let ours estimate its own blur (default: use the reference bundle's)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each timed run, wait up to this long for the other processes' "
                        "CPU use to drop below 20 %% (default 0: do not wait)")
    p.add_argument("--retry-busy", type=int, default=2, metavar="N",
                   help="run a round again, up to N times in all, when other processes used "
                        "more than 10 %% of the CPUs during it (default 2)")
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke configuration (1 round, S1 1, S2 2, small k and N)")
    p.add_argument("--out", default=str(HERE / "last_run.md"),
                   help="Markdown report (default benches/reference/last_run.md)")
    p.add_argument("--workdir", default=None,
                   help="where runs and logs go (default: a new temporary folder, kept)")
    args = p.parse_args()
    if not args.reference:
        p.error("--reference PATH (a checkout of guanton/WLM) is required")
    args.reference = str(Path(args.reference).resolve())
    for f in ("train.py", "data_generator.py", "rollout.py"):
        if not (Path(args.reference) / f).exists():
            p.error(f"{args.reference} has no {f}: not a guanton/WLM checkout")
    if not Path(args.wlm).exists():
        p.error(f"{args.wlm} does not exist (build it with cargo build --release -p wlm-cli)")
    args.wlm = str(Path(args.wlm).resolve())
    global WAIT_QUIET
    WAIT_QUIET = max(0.0, args.wait_quiet)
    if args.quick:
        args.rounds, args.s1, args.s2 = 1, 1, 2
    if not (1 <= args.s1 < args.s2):
        p.error("need 1 <= --s1 < --s2")
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [n for n in names if n not in CASES]
    if bad:
        p.error(f"unknown case(s) {bad}; choose from {list(CASES)}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="wlm-side-by-side-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log(f"work folder: {work}")
    # a private copy of our binary, so that a rebuild during the benchmark changes nothing
    binary = work / "wlm"
    shutil.copy2(args.wlm, binary)
    args.wlm_source, args.wlm = args.wlm, str(binary)
    started = time.perf_counter()
    measure_peak(args.python, args.threads)
    if PEAK["gflops"]:
        log(f"f32 product peak: {PEAK['gflops']:.0f} GFLOP/s ({PEAK['how']})")
    cases = [Case(n, CASES[n], args, work) for n in names]
    failed = False
    for c in cases:
        log(f"== {c.name}: {c.spec['title']} (k {c.k})")
        try:
            c.make_data()
            results = []
            r = 0
            retries = args.retry_busy
            while len(results) < args.rounds:
                ref = c.run_ref(r)
                log(f"  round {r + 1}: reference {ref['per_step']:.3f} s/step"
                    + (f" (CPU busy before: {100 * ref['busy']:.0f} %)"
                       if ref["busy"] is not None else "")
                    + (f", eval {ref['eval_core']:.2f} s" if ref["eval_core"] else ""))
                ours = c.run_ours(r)
                log(f"  round {r + 1}: ours      {ours['per_step']:.3f} s/step"
                    + (f", eval {ours['eval_full']:.2f} s (like-for-like "
                       f"{ours['eval_like']:.2f} s)" if ours["eval_full"] else "")
                    + f"  ratio {ref['per_step'] / ours['per_step']:.2f}x"
                    + "  (others' CPU during the runs: "
                    + ", ".join("-" if x is None else f"{100 * x:.0f} %"
                                for x in (ref["others"], ours["others"])) + ")")
                before = None
                if args.before_set:
                    before = c.run_ours(r, extra=args.before_set, tag="before",
                                        with_eval=False)
                    log(f"  round {r + 1}: before    {before['per_step']:.3f} s/step"
                        f"  ratio {ref['per_step'] / before['per_step']:.2f}x")
                busy = [x for x in (ref["others"], ours["others"],
                                    before["others"] if before else None)
                        if x is not None and x > BUSY_LIMIT]
                r += 1
                if busy and retries > 0:
                    retries -= 1
                    c.discarded.append(
                        f"round discarded (other processes used {100 * max(busy):.0f} % of the "
                        f"CPUs): reference {ref['per_step']:.3f}, ours {ours['per_step']:.3f} s/step")
                    log("  busy machine: this round is discarded and run again")
                    continue
                results.append(dict(ref=ref, ours=ours, before=before))
            c.rounds = results
            c.build_settings()
            print_case_summary(c)
        except Exception as e:  # noqa: BLE001
            failed = True
            c.notes.append(f"failed: {e}")
            log(f"  FAILED: {e}")
    text = report(cases, args, started)
    write_atomic(Path(args.out), text)
    log("")
    log(text)
    log(f"report: {args.out}\nlogs and runs: {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
