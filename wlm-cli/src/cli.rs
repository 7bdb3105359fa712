//! The command line: clap definitions of every subcommand and its options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Wasserstein Lagrangian mechanics: learn how a population moves from unpaired snapshots.
#[derive(Debug, Parser)]
#[command(name = "wlm", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Print nothing but results and errors (no progress bar, no log lines).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
    /// The subcommand.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Simulate a population and write its snapshots as a particle .npz.
    #[command(subcommand)]
    Simulate(Simulate),
    /// Train a model from a RON config, or from a data file alone, writing a run directory.
    Train(TrainArgs),
    /// Forecast from a trained run: one rollout from a snapshot through all (or given) times.
    Forecast(ForecastArgs),
    /// Interpolate held-out snapshots of a trained run from the snapshot before each.
    Interpolate(EvalArgs),
    /// Evaluate a trained run (forecast or interpolation, as its config says) with baselines.
    Eval(EvalArgs),
    /// Distance between two point clouds (.npy (N, d), CSV, or a snapshot of any data file).
    Distance(DistanceArgs),
    /// Describe a data file: times, sizes, dimension, velocities.
    Inspect(InspectArgs),
    /// Draw the plots of a run directory as PNG files.
    Plot(PlotArgs),
    /// The learned energy landscape: energy and force of a probe added to a snapshot.
    Landscape(LandscapeArgs),
    /// Simulate Boids, train a small model, forecast and plot, with no input files.
    Demo(DemoArgs),
    /// Flow-matching baselines (OT-CFM, I-CFM, Lagrangian flow matching): train, interpolate, forecast.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Run a reference experiment (METHOD.md §5): train every run, evaluate, write a results table.
    Experiment(ExperimentArgs),
}

/// The reference experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExperimentName {
    /// Ocean small vortex: interpolate held-out times 1, 3, 5, 7 (time features).
    OceanSmall,
    /// Ocean big vortex: train on times 0-9, forecast time 10.
    OceanBig,
    /// Embryoid body, 300-cell subsample: leave out time 1, 2 or 3.
    Eb,
    /// Gradient-flow SDE: five potentials, paired and unpaired, with and without friction.
    GfSde,
    /// Boids: train on the first half, forecast the second.
    Boids,
}

/// Which configs an experiment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scale {
    /// The CPU-sized variants (`configs/*_cpu.ron`): smaller networks, fewer steps or points.
    Cpu,
    /// The reference's sizes and schedules (`configs/<name>.ron`).
    Reference,
}

/// `wlm experiment`.
#[derive(Debug, Args)]
pub(crate) struct ExperimentArgs {
    /// The experiment.
    #[arg(value_enum)]
    pub(crate) name: ExperimentName,
    /// Folder holding the data sets (`oceans/…`, `eb/…`), for the ocean and EB experiments.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Seeds (of initialisation and training; of the simulation too for Boids and GF-SDE), one
    /// run per seed. Default: 0.
    #[arg(long, value_delimiter = ',')]
    pub(crate) seeds: Vec<u64>,
    /// Config sizes.
    #[arg(long, value_enum, default_value_t = Scale::Cpu)]
    pub(crate) scale: Scale,
    /// GF-SDE only: the potentials to run (default: all five).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) potentials: Vec<PotentialName>,
    /// Override a config value in every run, e.g. `--set train.steps=500`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Folder of the experiments' run directories and results.
    #[arg(long, default_value = "runs/experiments")]
    pub(crate) out: PathBuf,
    /// Write the run set for a scheduler instead of training: `slurm` (a job-array script,
    /// one resumable `wlm train` per array index) or `commands` (one command per line).
    #[arg(long, value_enum, conflicts_with = "collect")]
    pub(crate) plan: Option<PlanKind>,
    /// Gather the finished run directories of a planned sweep into `results.md`.
    #[arg(long)]
    pub(crate) collect: bool,
    /// Flow-matching baselines to add as extra columns (`wlm flow` on each run's data, split
    /// and seed), e.g. `--flow otcfm,icfm,lfm`.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) flow: Vec<FlowMethod>,
    /// Override a value of every flow baseline's config, e.g. `--flow-set flow.train.steps=500`.
    #[arg(long = "flow-set", value_name = "KEY=VALUE")]
    pub(crate) flow_set: Vec<String>,
}

/// The schedulers `wlm experiment --plan` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanKind {
    /// A Slurm job-array script with its run list.
    Slurm,
    /// A plain list of commands, one per run (GNU parallel, any scheduler).
    Commands,
}

/// How to read a data file: the flags of every command that reads data.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct DataFlags {
    /// Column of `obs` holding each cell's time (.h5ad; default `time`); the label key of a
    /// TrajectoryNet .npz.
    #[arg(long, value_name = "KEY")]
    pub(crate) time_key: Option<String>,
    /// Positions: an `obsm` key (default `X_pca`), `X`, or `layers/NAME` (.h5ad); the
    /// embedding key of a TrajectoryNet .npz.
    #[arg(long, value_name = "KEY")]
    pub(crate) embedding: Option<String>,
    /// Velocities, with the same columns as the positions: an `obsm` key, `X` or
    /// `layers/NAME` (.h5ad; default none); the velocity key of a TrajectoryNet .npz.
    #[arg(long, value_name = "KEY")]
    pub(crate) velocity_key: Option<String>,
    /// Keep only the first N components of positions and velocities (default: all).
    #[arg(long, value_name = "N")]
    pub(crate) n_components: Option<usize>,
    /// The file's format, where its extension does not say it (default: from the extension
    /// and, for .npz, the keys inside).
    /// particles, snap-mmd, trajectory-net, npy, csv or h5ad.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<wlm_data::Format>,
}

/// `wlm simulate ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum Simulate {
    /// The Boids flocking model (METHOD.md §5).
    Boids(BoidsArgs),
    /// A gradient-flow SDE `dX = −∇ψ(X) dt + σ dW` in 2-D (METHOD.md §5).
    GfSde(GfSdeArgs),
}

/// Options shared by the simulators.
#[derive(Debug, Args)]
pub(crate) struct SimulateCommon {
    /// Output file (.npz with `positions`, `velocities` (T, N, d) and `times`).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Start from this snapshot instead of a random one: an .npz with `positions` (and
    /// `velocities`) of one snapshot ((N, d) or (1, N, d)), or an .npy of shape (N, d).
    #[arg(long)]
    pub(crate) init: Option<PathBuf>,
    /// Number of particles (ignored with --init).
    #[arg(long, short = 'n')]
    pub(crate) n_particles: Option<usize>,
    /// Number of snapshots written, the start included.
    #[arg(long)]
    pub(crate) n_snapshots: Option<usize>,
    /// Time between snapshots.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) dt: Option<f64>,
    /// Seed of the random number generator.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
}

/// `wlm simulate boids`.
#[derive(Debug, Args)]
pub(crate) struct BoidsArgs {
    /// Options shared by the simulators.
    #[command(flatten)]
    pub(crate) common: SimulateCommon,
}

/// The potentials of the GF-SDE benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PotentialName {
    /// `½ Σ v_k²`.
    Quadratic,
    /// `½ Σ (v_k⁴ − 16 v_k² + 5 v_k)`.
    StyblinskiTang,
    /// `v₀² + 2 v₁² − 0.3 cos(3π v₀) − 0.4 cos(4π v₁) + 0.7`.
    Bohachevsky,
    /// `Σ v_k + Σ v_k² + Σ v_k v_{k+1}`.
    OakleyOhagan,
    /// `Σ sin v_k`.
    WavyPlateau,
}

/// `wlm simulate gf-sde`.
#[derive(Debug, Args)]
pub(crate) struct GfSdeArgs {
    /// Options shared by the simulators.
    #[command(flatten)]
    pub(crate) common: SimulateCommon,
    /// The potential ψ.
    #[arg(long, value_enum, default_value_t = PotentialName::Quadratic)]
    pub(crate) potential: PotentialName,
    /// Noise level σ.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) sigma: Option<f64>,
    /// Re-simulate every snapshot from fresh initial samples (unpaired particles).
    #[arg(long)]
    pub(crate) unpaired: bool,
}

/// `wlm train`.
#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The experiment's RON config (with --resume, optional: the run's own is used).
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Override a config value, e.g. `--set train.steps=200` (dotted path = RON value; outside
    /// strings the value is ASCII: `1e-4`, not a pasted `1e−4`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Run directory (default: `runs/<config name>`).
    #[arg(long)]
    pub(crate) run_dir: Option<PathBuf>,
    /// Continue from the run directory's last checkpoint.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Continue the run directory's checkpoint if it has one (its config must be the one
    /// given), start it otherwise, and do nothing if it is finished: what a scheduler that
    /// may run a job twice needs (`wlm experiment --plan`).
    #[arg(long, conflicts_with = "resume")]
    pub(crate) resume_or_start: bool,
    /// Train on this data file with a config derived from the data (no --config): the
    /// dimension, the Sinkhorn blur, a model sized from the numbers of points, dimensions
    /// and snapshots, learned friction; `--set` still applies.
    #[arg(long, conflicts_with_all = ["config", "resume"])]
    pub(crate) data: Option<PathBuf>,
    /// How to read --data.
    #[command(flatten)]
    pub(crate) data_flags: DataFlags,
    /// With --data: hold these snapshots out (interpolation), e.g. `--holdout 1,3`.
    #[arg(long, value_delimiter = ',', conflicts_with = "forecast_from")]
    pub(crate) holdout: Vec<usize>,
    /// With --data: train on the snapshots before this index, forecast the rest.
    #[arg(long, value_name = "INDEX")]
    pub(crate) forecast_from: Option<usize>,
}

/// `wlm forecast`, `wlm interpolate`, `wlm eval`.
#[derive(Debug, Args, Default)]
pub(crate) struct EvalArgs {
    /// Run directory written by `wlm train`.
    #[arg(long)]
    pub(crate) run_dir: PathBuf,
    /// Checkpoint or weights file to use instead of the run's final (EMA) weights; `best`:
    /// the run directory's `best.safetensors` (the lowest-scoring weights of
    /// `train.model_selection`).
    #[arg(long)]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Data file to use instead of the one named in the run's config.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// How to read --data.
    #[command(flatten)]
    pub(crate) data_flags: DataFlags,
    /// Output file, its format by extension: the predictions (.npz, .h5ad, .csv) for
    /// forecast and interpolate; the evaluation (.ron, .json, .csv, .md) for eval. Default
    /// inside the run directory.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Integrator steps per observed interval (default: the run's `eval.steps_per_interval`).
    #[arg(long)]
    pub(crate) substeps: Option<usize>,
    /// Velocities that start every rollout of the evaluation (the forecast, the restarts and
    /// the interpolations), instead of the run's `eval.initial_velocities`: Data, Zero,
    /// OtForward, OtBackward, OtCentral or Model.
    #[arg(long, value_name = "SOURCE", value_parser = parse_velocity_source)]
    pub(crate) initial_velocities: Option<wlm::VelocitySource>,
}

/// The names `--initial-velocities` takes: those of `eval.initial_velocities` in a config.
const VELOCITY_SOURCES: &str = "Data, Zero, OtForward, OtBackward, OtCentral, Model";

/// Parses a [`wlm::VelocitySource`] by its config name.
fn parse_velocity_source(text: &str) -> std::result::Result<wlm::VelocitySource, String> {
    ron::from_str(text.trim()).map_err(|_| {
        format!("unknown velocity source `{text}`: expected one of {VELOCITY_SOURCES}")
    })
}

/// `wlm forecast`.
#[derive(Debug, Args)]
pub(crate) struct ForecastArgs {
    /// The run, the data and the output.
    #[command(flatten)]
    pub(crate) eval: EvalArgs,
    /// Predict at these times (increasing, after the start's time; between snapshots or past
    /// the last), e.g. `--times 12,14`. Default: every observed time after the start.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub(crate) times: Vec<f64>,
    /// Index of the snapshot the rollout starts from.
    #[arg(long = "from", value_name = "INDEX", default_value_t = 0)]
    pub(crate) from: usize,
    /// Write the state after every integrator step, not only at the prediction times.
    #[arg(long)]
    pub(crate) trajectories: bool,
    /// Start from this many points drawn with replacement from the start cloud (with their
    /// velocities), instead of the cloud itself.
    #[arg(long, value_name = "N")]
    pub(crate) n_samples: Option<usize>,
    /// Seed of the --n-samples draw (SeedRng).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
}

/// The metrics of `wlm distance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Metric {
    /// Exact Wasserstein-1 (Euclidean cost).
    W1,
    /// Exact Wasserstein-2.
    W2,
    /// Debiased Sinkhorn divergence.
    Sinkhorn,
    /// Energy distance.
    Energy,
}

/// `wlm distance`.
#[derive(Debug, Args)]
pub(crate) struct DistanceArgs {
    /// First point cloud: .npy (N, d), CSV (one point per row), or a data file of snapshots
    /// (any format `wlm inspect` reads; pick one with --snapshot-a).
    pub(crate) a: PathBuf,
    /// Second point cloud.
    pub(crate) b: PathBuf,
    /// The metric.
    #[arg(long, value_enum, default_value_t = Metric::W1)]
    pub(crate) metric: Metric,
    /// Sinkhorn cost exponent: 1 (|x−y|) or 2 (½|x−y|²).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub(crate) p: u8,
    /// Sinkhorn blur (ε = blur^p).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub(crate) blur: f64,
    /// Sinkhorn ε-annealing factor in (0, 1).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub(crate) scaling: f64,
    /// Snapshot index in the first file, when it holds several.
    #[arg(long, value_name = "INDEX")]
    pub(crate) snapshot_a: Option<usize>,
    /// Snapshot index in the second file, when it holds several.
    #[arg(long, value_name = "INDEX")]
    pub(crate) snapshot_b: Option<usize>,
    /// How to read the files (both).
    #[command(flatten)]
    pub(crate) data_flags: DataFlags,
}

/// `wlm inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The data file (.npz, .npy, .csv, .h5ad).
    pub(crate) file: PathBuf,
    /// How to read it.
    #[command(flatten)]
    pub(crate) data_flags: DataFlags,
}

/// `wlm plot`.
#[derive(Debug, Args)]
pub(crate) struct PlotArgs {
    /// Run directory written by `wlm train` (and `wlm eval`).
    #[arg(long)]
    pub(crate) run_dir: PathBuf,
    /// The two dimensions drawn in scatter plots, e.g. `0,1`.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 1])]
    pub(crate) dims: Vec<usize>,
    /// Output folder (default: `<run dir>/plots`).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// `wlm demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// A seconds-long variant (fewer particles, snapshots and steps), for tests.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Run directory (default: `runs/demo`, or `runs/demo-quick`).
    #[arg(long)]
    pub(crate) run_dir: Option<PathBuf>,
    /// Number of training steps (default: 1000, or 20 with --quick).
    #[arg(long)]
    pub(crate) steps: Option<usize>,
    /// Seed of the simulation and of training.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
}

/// `wlm landscape`.
#[derive(Debug, Args)]
pub(crate) struct LandscapeArgs {
    /// Run directory written by `wlm train`.
    #[arg(long)]
    pub(crate) run_dir: PathBuf,
    /// Index of the snapshot whose population the probe joins (at its time).
    #[arg(long, default_value_t = 0)]
    pub(crate) snapshot: usize,
    /// Grid points per axis.
    #[arg(long, default_value_t = 40)]
    pub(crate) grid: usize,
    /// Checkpoint or weights file to use instead of the run's final (EMA) weights; `best`:
    /// the run's `best.safetensors`.
    #[arg(long)]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Data file to use instead of the one named in the run's config.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Output folder (default: `<run dir>/plots`); writes `landscape-<snapshot>.npz` and `.png`.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// `wlm flow ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum FlowCommand {
    /// Train a flow-matching baseline from a RON config, write its predictions and W1 scores.
    Train(FlowTrainArgs),
    /// Interpolate the held-out snapshots of a trained flow run from the snapshot before each.
    Interpolate(FlowEvalArgs),
    /// Carry snapshot 0 of a trained flow run through every observed time.
    Forecast(FlowEvalArgs),
}

/// `wlm flow train`.
#[derive(Debug, Args)]
pub(crate) struct FlowTrainArgs {
    /// The flow experiment's RON config (e.g. configs/flow_ocean_small.ron).
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// Override a config value, e.g. `--set flow.train.steps=500`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Run directory (default: `runs/<config name>`).
    #[arg(long)]
    pub(crate) run_dir: Option<PathBuf>,
}

/// `wlm flow interpolate`, `wlm flow forecast`.
#[derive(Debug, Args)]
pub(crate) struct FlowEvalArgs {
    /// Run directory written by `wlm flow train`.
    #[arg(long)]
    pub(crate) run_dir: PathBuf,
    /// Output file (.npz); default inside the run directory.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Solver steps per unit of chain time (default: the run's `flow.predict.steps_per_interval`).
    #[arg(long)]
    pub(crate) substeps: Option<usize>,
}

/// The flow-matching baselines an experiment can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FlowMethod {
    /// Exact minibatch OT coupling, linear path.
    Otcfm,
    /// Independent coupling, linear path.
    Icfm,
    /// Lagrangian flow matching: harmonic path, ω = 1, exact OT coupling.
    Lfm,
    /// Anisotropic LFM: ω from 0.8 to 1.6 over the principal directions, its own OT coupling.
    LfmAniso,
}
