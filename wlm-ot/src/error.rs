//! The crate's error type: every bad input is reported as an `Err`, never a panic.

use candle_core::DType;

/// Errors of `wlm-ot`. Messages start lower-case and name the offending value.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A point cloud is not a 2-d tensor `(n_points, dim)`.
    #[error("{name} must be a 2-d tensor (n_points, dim), got shape {shape:?}")]
    NotAPointCloud {
        /// Which argument (`"x"`, `"y"`).
        name: &'static str,
        /// The shape that was passed.
        shape: Vec<usize>,
    },
    /// A point cloud has no points, or points of dimension 0.
    #[error("{name} is empty (shape {shape:?}): a point cloud needs at least one point of dimension >= 1")]
    EmptyCloud {
        /// Which argument.
        name: &'static str,
        /// The shape that was passed.
        shape: Vec<usize>,
    },
    /// The two clouds live in spaces of different dimension.
    #[error("dimension mismatch: x has points of dimension {x_dim}, y of dimension {y_dim}")]
    DimensionMismatch {
        /// Dimension of the points of `x`.
        x_dim: usize,
        /// Dimension of the points of `y`.
        y_dim: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error(
        "{name} has a non-finite coordinate {value} at point {point_idx}, coordinate {coord_idx}"
    )]
    NonFiniteCoordinate {
        /// Which argument.
        name: &'static str,
        /// Row of the offending point.
        point_idx: usize,
        /// Column of the offending coordinate.
        coord_idx: usize,
        /// The value found.
        value: f64,
    },
    /// The tensors are not f32 or f64, or their dtypes differ.
    #[error(
        "unsupported dtypes {x_dtype:?} and {y_dtype:?}: both clouds must be f32, or both f64"
    )]
    UnsupportedDType {
        /// dtype of `x`.
        x_dtype: DType,
        /// dtype of `y`.
        y_dtype: DType,
    },
    /// `blur` is not a finite positive number.
    #[error("blur must be finite and > 0, got {0}")]
    InvalidBlur(f64),
    /// `scaling` is not inside the open interval (0, 1).
    #[error("scaling must be in the open interval (0, 1), got {0}")]
    InvalidScaling(f64),
    /// The ε-annealing schedule would be longer than
    /// [`MAX_SCHEDULE_STEPS`](crate::MAX_SCHEDULE_STEPS) (a `scaling` too close to 1, or a
    /// blur far below the diameter of the clouds).
    #[error("the epsilon schedule from diameter {diameter} down to blur {blur} with scaling {scaling} would take {steps} steps, more than the limit of {limit}: lower scaling or raise blur", limit = crate::MAX_SCHEDULE_STEPS)]
    ScheduleTooLong {
        /// Entries the schedule would have.
        steps: f64,
        /// Diagonal of the bounding box of the two clouds.
        diameter: f64,
        /// The blur asked for.
        blur: f64,
        /// The scaling asked for.
        scaling: f64,
    },
    /// The cost exponent is not 1 or 2.
    #[error("cost exponent p must be 1 or 2, got {0}")]
    InvalidExponent(u32),
    /// The final-convergence settings are unusable.
    #[error("final convergence needs a finite tolerance > 0 and max_iterations >= 1, got tolerance {tolerance} and max_iterations {max_iterations}")]
    InvalidConvergence {
        /// The tolerance passed.
        tolerance: f64,
        /// The iteration cap passed.
        max_iterations: usize,
    },
    /// Weights of the wrong shape, negative, non-finite, or not summing to 1.
    #[error("weights {name}: {reason}")]
    InvalidWeights {
        /// Which argument (`"a"`, `"b"`).
        name: &'static str,
        /// What is wrong with them.
        reason: String,
    },
    /// The clouds are so spread out that the diagonal of their bounding box overflows.
    #[error("the bounding box of x and y has a non-finite diagonal ({0}) in this precision; rescale the coordinates")]
    NonFiniteDiameter(f64),
    /// A kernel bandwidth that is not finite and positive.
    #[error("bandwidth must be finite and > 0, got {0}")]
    InvalidBandwidth(f64),
    /// The problem is too large for the exact solver's integer masses.
    #[error(
        "exact transport between {n_x} and {n_y} points is too large (n_x * n_y must be < 2^40)"
    )]
    ProblemTooLarge {
        /// Points in `x`.
        n_x: usize,
        /// Points in `y`.
        n_y: usize,
    },
    /// The exact solver's arrays (24 bytes per pair of points) would not fit in the memory
    /// the system reports as available.
    #[error("exact transport between {n_x} and {n_y} points needs {needed} bytes, more than the {available} bytes of memory available: subsample the clouds")]
    OutOfMemory {
        /// Points in `x`.
        n_x: usize,
        /// Points in `y`.
        n_y: usize,
        /// Bytes the solver would allocate.
        needed: u64,
        /// Bytes available (`MemAvailable + SwapFree`).
        available: u64,
    },
    /// An interpolation fraction outside `[0, 1]`.
    #[error("interpolation fraction must be in [0, 1], got {0}")]
    InvalidFraction(f64),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
