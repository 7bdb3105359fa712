//! The GPU solve: NVRTC compilation at first use, device buffers, and the debiased Sinkhorn
//! loop of [`crate::sinkhorn::solve`] with every softmin pass, averaged update and envelope
//! gradient as a CUDA kernel. Data crosses host→device once per call; the potentials stay on
//! the device across the ε loop.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, LaunchConfig,
    PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

use crate::config::SinkhornConfig;
use crate::input::HostPair;
use crate::kernel::{Cloud, Cost, Real};
use crate::potentials::{Potentials, Solution};
use crate::schedule::{bounding_box, epsilon_schedule};

/// The softmin kernels (templated on dtype, cost, gradient and dimension).
pub(crate) const SOFTMIN_SRC: &str = include_str!("kernels/softmin.cu");
/// Column preparation, averaged update, envelope gradient.
pub(crate) const POTENTIALS_SRC: &str = include_str!("kernels/potentials.cu");
/// Every kernel source, by name (the NVRTC test compiles each).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const SOURCES: [(&str, &str); 2] = [
    ("softmin.cu", SOFTMIN_SRC),
    ("potentials.cu", POTENTIALS_SRC),
];

/// Threads per block of the softmin kernel (`BLOCK` in softmin.cu).
const BLOCK: u32 = 256;
/// Largest dimension with a compiled softmin kernel (`SOFTMIN_DIMS` in softmin.cu).
pub(crate) const MAX_DIM: usize = 8;

/// The float types with GPU kernels.
pub(crate) trait GpuReal: Real + DeviceRepr + ValidAsZeroBits {
    /// Kernel name suffix.
    const NAME: &'static str;
}
impl GpuReal for f32 {
    const NAME: &'static str = "f32";
}
impl GpuReal for f64 {
    const NAME: &'static str = "f64";
}

/// The device, its stream and the compiled modules (one per process).
pub(crate) struct Runtime {
    stream: Arc<CudaStream>,
    softmin: Arc<CudaModule>,
    potentials: Arc<CudaModule>,
}

/// NVRTC's version `(major, minor)`, when the library loads.
pub(crate) fn nvrtc_version() -> Option<(i32, i32)> {
    // SAFETY: only tries to dlopen the candidate library names; calls nothing.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return None;
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above); both pointers are valid for writes.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (status == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
}

/// Compiles one source with NVRTC, for `arch` (e.g. `compute_90`) or NVRTC's default.
pub(crate) fn compile(name: &str, src: &str, arch: Option<String>) -> Result<Ptx, String> {
    let opts = CompileOptions {
        fmad: Some(true),
        options: arch
            .map(|a| vec![format!("--gpu-architecture={a}")])
            .unwrap_or_default(),
        name: Some(name.to_string()),
        ..Default::default()
    };
    compile_ptx_with_opts(src, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => {
            format!("NVRTC failed on {name}: {}", log.to_string_lossy())
        }
        other => format!("NVRTC failed on {name}: {other:?}"),
    })
}

/// The process-wide runtime, created (libraries probed, kernels compiled) at first use.
pub(crate) fn runtime() -> Result<&'static Runtime, String> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(init).as_ref().map_err(Clone::clone)
}

fn init() -> Result<Runtime, String> {
    // SAFETY: only tries to dlopen the candidate library names; calls nothing.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda.so) found".into());
    }
    if nvrtc_version().is_none() {
        return Err("no NVRTC library (libnvrtc.so) found".into());
    }
    let count = CudaContext::device_count().map_err(|e| format!("CUDA driver: {e:?}"))?;
    if count < 1 {
        return Err("no CUDA device found".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("CUDA context: {e:?}"))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| format!("CUDA device query: {e:?}"))?;
    let arch = format!("compute_{major}{minor}");
    let load = |name: &str, src: &str| -> Result<Arc<CudaModule>, String> {
        // An NVRTC older than the device may not know its arch: fall back to the default
        // (PTX is JIT-compiled by the driver).
        let ptx = compile(name, src, Some(arch.clone())).or_else(|_| compile(name, src, None))?;
        ctx.load_module(ptx)
            .map_err(|e| format!("loading {name}: {e:?}"))
    };
    let softmin = load("softmin.cu", SOFTMIN_SRC)?;
    let potentials = load("potentials.cu", POTENTIALS_SRC)?;
    Ok(Runtime {
        stream: ctx.default_stream(),
        softmin,
        potentials,
    })
}

fn err<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("CUDA error in {what}: {e:?}")
}

/// [`solve`] for any [`Real`]: routes f32/f64 to the typed GPU solve.
pub(crate) fn solve_any<T: Real>(
    pair: &HostPair<T>,
    a: &[T],
    b: &[T],
    config: &SinkhornConfig,
) -> Result<Solution<T>, String> {
    if pair.dim > MAX_DIM {
        return Err(format!(
            "dimension {} > {MAX_DIM} has no GPU kernel",
            pair.dim
        ));
    }
    let any_pair: &dyn Any = pair;
    let boxed: Box<dyn Any> = if let Some(p) = any_pair.downcast_ref::<HostPair<f32>>() {
        let (a, b) = (to_vec_of::<T, f32>(a), to_vec_of::<T, f32>(b));
        Box::new(solve::<f32>(p, &a, &b, config)?)
    } else if let Some(p) = any_pair.downcast_ref::<HostPair<f64>>() {
        let (a, b) = (to_vec_of::<T, f64>(a), to_vec_of::<T, f64>(b));
        Box::new(solve::<f64>(p, &a, &b, config)?)
    } else {
        return Err("unsupported dtype".into());
    };
    boxed
        .downcast::<Solution<T>>()
        .map(|s| *s)
        .map_err(|_| "dtype mismatch".into())
}

/// The same values re-typed (`T` and `U` are the same type at every call site).
fn to_vec_of<T: Real, U: Real>(v: &[T]) -> Vec<U> {
    v.iter().map(|&x| U::from_f64(x.to_f64())).collect()
}

/// One cloud on the device.
struct DevCloud<T> {
    n: usize,
    /// `n × dim`, row-major, shifted by the centre.
    rows: CudaSlice<T>,
    /// `dim × n`, dimension-major.
    cols: CudaSlice<T>,
    /// `|x_i|²` of the shifted points.
    sq: CudaSlice<T>,
}

impl<T: GpuReal> DevCloud<T> {
    fn upload(stream: &Arc<CudaStream>, cloud: &Cloud<T>) -> Result<Self, String> {
        let (n, dim) = (cloud.n_points, cloud.dim);
        let mut cols = vec![T::ZERO; n * dim];
        for k in 0..dim {
            cols[k * n..(k + 1) * n]
                .copy_from_slice(&cloud.columns[k * cloud.n_pad..k * cloud.n_pad + n]);
        }
        Ok(Self {
            n,
            rows: stream.clone_htod(&cloud.rows).map_err(err("upload"))?,
            cols: stream.clone_htod(&cols).map_err(err("upload"))?,
            sq: stream.clone_htod(&cloud.sq_norms).map_err(err("upload"))?,
        })
    }
}

fn i32_of(n: usize) -> Result<i32, String> {
    i32::try_from(n).map_err(|_| format!("size {n} exceeds the GPU kernels' i32 indexing"))
}

fn blocks(n: usize, per: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((n as u32).div_ceil(per).max(1), 1, 1),
        block_dim: (per, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The GPU state of one solve.
struct Solver<'r, T> {
    stream: &'r Arc<CudaStream>,
    x: DevCloud<T>,
    y: DevCloud<T>,
    log_a: CudaSlice<T>,
    log_b: CudaSlice<T>,
    /// Per-pass column scratch: offsets (`max(N, M)`) and scaled coordinates (`dim · max(N, M)`).
    offset: CudaSlice<T>,
    scaled: CudaSlice<T>,
    dim: usize,
    cost: Cost,
    softmin: CudaFunction,
    softmin_grad: CudaFunction,
    prepare: CudaFunction,
}

/// Which buffer a pass reads its column potential from.
#[derive(Clone, Copy)]
enum Source {
    /// No potential (initialisation).
    None,
    /// At this offset of the current-potential buffer.
    At(usize),
}

impl<T: GpuReal> Solver<'_, T> {
    /// The four softmin passes at `eps`: columns' potentials from `cur` (or none), outputs into
    /// `out` (layout `[f_ba | g_ab | f_aa | g_bb]`), gradient sums into `grads` when given.
    fn softmin_all(
        &mut self,
        cur: &CudaSlice<T>,
        with_pot: bool,
        out: &mut CudaSlice<T>,
        eps: f64,
        mut grads: Option<&mut [CudaSlice<T>; 4]>,
    ) -> Result<(), String> {
        let (n, m) = (self.x.n, self.y.n);
        // (rows, cols, log-weights, column potential offset, output offset)
        let plan: [(bool, bool, usize, usize); 4] = [
            (true, false, n, 0),
            (false, true, 0, n),
            (true, true, n + m, n + m),
            (false, false, 2 * n + m, 2 * n + m),
        ];
        for (pass, &(rows_x, cols_x, pot_off, out_off)) in plan.iter().enumerate() {
            let src = if with_pot {
                Source::At(pot_off)
            } else {
                Source::None
            };
            let grad = grads.as_deref_mut().map(|g| &mut g[pass]);
            self.pass(rows_x, cols_x, cur, src, out, out_off, eps, grad)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn pass(
        &mut self,
        rows_x: bool,
        cols_x: bool,
        cur: &CudaSlice<T>,
        src: Source,
        out: &mut CudaSlice<T>,
        out_off: usize,
        eps: f64,
        grad: Option<&mut CudaSlice<T>>,
    ) -> Result<(), String> {
        let Self {
            stream,
            x,
            y,
            log_a,
            log_b,
            offset,
            scaled,
            dim,
            cost,
            softmin,
            softmin_grad,
            prepare,
        } = self;
        let rows = if rows_x { &*x } else { &*y };
        let cols = if cols_x { &*x } else { &*y };
        let log_w = if cols_x { &*log_a } else { &*log_b };
        let p2 = *cost == Cost::HalfSquaredEuclidean;
        let (eps_t, inv_eps, half_inv_eps) = (
            T::from_f64(eps),
            T::from_f64(1.0 / eps),
            T::from_f64(0.5 / eps),
        );
        let (pot_off, has_pot) = match src {
            Source::None => (0, 0i32),
            Source::At(off) => (i32_of(off)?, 1i32),
        };
        let n_cols = i32_of(cols.n)?;
        let n_rows = i32_of(rows.n)?;
        let dim = i32_of(*dim)?;
        let p2_flag = i32::from(p2);
        let out_off = i32_of(out_off)?;
        // 1. column offsets (and scaled coordinates for p = 2) at this ε.
        {
            let mut b = stream.launch_builder(prepare);
            b.arg(log_w)
                .arg(cur)
                .arg(&pot_off)
                .arg(&has_pot)
                .arg(&cols.sq)
                .arg(&cols.cols)
                .arg(&n_cols)
                .arg(&dim)
                .arg(&p2_flag)
                .arg(&eps_t)
                .arg(&inv_eps)
                .arg(&half_inv_eps)
                .arg(&mut *offset)
                .arg(&mut *scaled);
            // SAFETY: the argument list matches `prepare_<dtype>` in potentials.cu; every buffer
            // is at least as long as the indices the kernel touches (`n_cols`, `dim · n_cols`,
            // `pot_off + n_cols ≤ 2(N + M)`), and the grid covers exactly `n_cols` threads.
            unsafe { b.launch(blocks(cols.n, 256)) }.map_err(err("prepare"))?;
        }
        // 2. the softmin pass.
        let logit_cols = if p2 { &*scaled } else { &cols.cols };
        let func = if grad.is_some() {
            &*softmin_grad
        } else {
            &*softmin
        };
        let mut b = stream.launch_builder(func);
        b.arg(&rows.rows)
            .arg(&rows.sq)
            .arg(&n_rows)
            .arg(logit_cols)
            .arg(&cols.cols)
            .arg(&*offset)
            .arg(&n_cols)
            .arg(&eps_t)
            .arg(&inv_eps)
            .arg(&half_inv_eps)
            .arg(out)
            .arg(&out_off);
        let mut dummy;
        match grad {
            Some(g) => b.arg(g),
            None => {
                dummy = stream.alloc_zeros::<T>(1).map_err(err("alloc"))?;
                b.arg(&mut dummy)
            }
        };
        // SAFETY: the argument list matches `softmin_<dtype>_p<p>_d<dim>[_grad]` in softmin.cu,
        // instantiated for this `dim`; rows are `n_rows × dim`, columns `dim × n_cols`, the
        // offsets `n_cols`, `out_off + n_rows ≤ 2(N + M)`, the gradient `n_rows × dim` (read only
        // by the `_grad` variant), and the kernel bounds-checks rows against `n_rows`.
        unsafe { b.launch(blocks(rows.n, BLOCK)) }.map_err(err("softmin"))?;
        Ok(())
    }
}

/// [`crate::sinkhorn::solve`] on the GPU: identical schedule, initialisation, averaged updates,
/// optional convergence at the final ε, last pass with gradient sums, value and envelope.
pub(crate) fn solve<T: GpuReal>(
    pair: &HostPair<T>,
    a: &[T],
    b: &[T],
    config: &SinkhornConfig,
) -> Result<Solution<T>, String> {
    let rt = runtime()?;
    let stream = &rt.stream;
    let dim = pair.dim;
    let (diameter, center) = bounding_box(&pair.x, &pair.y, dim);
    let eps_list = epsilon_schedule(config.p, diameter, config.blur, config.scaling)
        .map_err(|e| e.to_string())?;
    let cost = Cost::from_exponent(config.p);
    let (n, m) = (pair.n_x, pair.n_y);
    let total = i32_of(2 * (n + m))?;
    let log_a: Vec<T> = a.iter().map(|&w| w.ln()).collect();
    let log_b: Vec<T> = b.iter().map(|&w| w.ln()).collect();
    let p = if cost == Cost::HalfSquaredEuclidean {
        2
    } else {
        1
    };
    let name = format!("softmin_{}_p{p}_d{dim}", T::NAME);
    let load = |module: &Arc<CudaModule>, name: &str| {
        module.load_function(name).map_err(err("load_function"))
    };
    let mut s = Solver {
        stream,
        x: DevCloud::upload(stream, &Cloud::new(&pair.x, dim, &center))?,
        y: DevCloud::upload(stream, &Cloud::new(&pair.y, dim, &center))?,
        log_a: stream.clone_htod(&log_a).map_err(err("upload"))?,
        log_b: stream.clone_htod(&log_b).map_err(err("upload"))?,
        offset: stream.alloc_zeros::<T>(n.max(m)).map_err(err("alloc"))?,
        scaled: stream
            .alloc_zeros::<T>(dim * n.max(m))
            .map_err(err("alloc"))?,
        dim,
        cost,
        softmin: load(&rt.softmin, &name)?,
        softmin_grad: load(&rt.softmin, &format!("{name}_grad"))?,
        prepare: load(&rt.potentials, &format!("prepare_{}", T::NAME))?,
    };
    let average = load(&rt.potentials, &format!("average_{}", T::NAME))?;
    let envelope = load(&rt.potentials, &format!("envelope_{}", T::NAME))?;

    let mut cur = stream.alloc_zeros::<T>(2 * (n + m)).map_err(err("alloc"))?;
    let mut upd = stream.alloc_zeros::<T>(2 * (n + m)).map_err(err("alloc"))?;
    let mut change = stream.alloc_zeros::<u64>(1).map_err(err("alloc"))?;
    let avg_cfg = blocks(2 * (n + m), 256);
    let average_step = |s: &mut Solver<'_, T>,
                        cur: &mut CudaSlice<T>,
                        upd: &CudaSlice<T>,
                        change: &mut CudaSlice<u64>|
     -> Result<(), String> {
        s.stream.memset_zeros(change).map_err(err("memset"))?;
        let mut b = s.stream.launch_builder(&average);
        b.arg(cur).arg(upd).arg(&total).arg(change);
        // SAFETY: matches `average_<dtype>(T*, const T*, int, unsigned long long*)`; both
        // potential buffers hold `total` values, `change` one u64; the block size is a multiple
        // of 32 as the warp reduction needs, and out-of-range threads only reduce.
        unsafe { b.launch(avg_cfg) }.map_err(err("average"))?;
        Ok(())
    };
    let read_change = |change: &CudaSlice<u64>| -> Result<f64, String> {
        let bits = stream.clone_dtoh(change).map_err(err("download"))?;
        Ok(f64::from_bits(bits[0]))
    };

    // Initialisation at the first ε straight into `cur`.
    {
        let scratch = stream.alloc_zeros::<T>(1).map_err(err("alloc"))?;
        s.softmin_all(&scratch, false, &mut cur, eps_list[0], None)?;
    }
    for &eps in &eps_list {
        s.softmin_all(&cur, true, &mut upd, eps, None)?;
        average_step(&mut s, &mut cur, &upd, &mut change)?;
    }
    let mut final_change = read_change(&change)?;
    let final_eps = *eps_list.last().expect("schedule has >= 2 entries");
    let mut extra_iterations = 0;
    if let Some(conv) = config.converge_final {
        while extra_iterations < conv.max_iterations && final_change > conv.tolerance {
            s.softmin_all(&cur, true, &mut upd, final_eps, None)?;
            average_step(&mut s, &mut cur, &upd, &mut change)?;
            final_change = read_change(&change)?;
            extra_iterations += 1;
        }
    }

    let mut sums = [
        stream.alloc_zeros::<T>(n * dim).map_err(err("alloc"))?,
        stream.alloc_zeros::<T>(m * dim).map_err(err("alloc"))?,
        stream.alloc_zeros::<T>(n * dim).map_err(err("alloc"))?,
        stream.alloc_zeros::<T>(m * dim).map_err(err("alloc"))?,
    ];
    s.softmin_all(&cur, true, &mut upd, final_eps, Some(&mut sums))?;

    let w_a = stream.clone_htod(a).map_err(err("upload"))?;
    let w_b = stream.clone_htod(b).map_err(err("upload"))?;
    let mut grad_x = stream.alloc_zeros::<T>(n * dim).map_err(err("alloc"))?;
    let mut grad_y = stream.alloc_zeros::<T>(m * dim).map_err(err("alloc"))?;
    let dim_i = i32_of(dim)?;
    for (w, cross, own, cnt, g) in [
        (&w_a, &sums[0], &sums[2], n, &mut grad_x),
        (&w_b, &sums[1], &sums[3], m, &mut grad_y),
    ] {
        let cnt_i = i32_of(cnt)?;
        let mut bld = stream.launch_builder(&envelope);
        bld.arg(w)
            .arg(cross)
            .arg(own)
            .arg(&cnt_i)
            .arg(&dim_i)
            .arg(g);
        // SAFETY: matches `envelope_<dtype>`; `w` holds `cnt` weights, the three other buffers
        // `cnt · dim` values, and the kernel bounds-checks the flat index.
        unsafe { bld.launch(blocks(cnt * dim, 256)) }.map_err(err("envelope"))?;
    }

    let last = stream.clone_dtoh(&upd).map_err(err("download"))?;
    let grad_x = stream.clone_dtoh(&grad_x).map_err(err("download"))?;
    let grad_y = stream.clone_dtoh(&grad_y).map_err(err("download"))?;
    let potentials = Potentials {
        f_ba: last[..n].to_vec(),
        g_ab: last[n..n + m].to_vec(),
        f_aa: last[n + m..2 * n + m].to_vec(),
        g_bb: last[2 * n + m..].to_vec(),
    };
    let mut value = 0.0_f64;
    for (i, &w) in a.iter().enumerate() {
        value += w.to_f64() * (potentials.f_ba[i] - potentials.f_aa[i]).to_f64();
    }
    for (j, &w) in b.iter().enumerate() {
        value += w.to_f64() * (potentials.g_ab[j] - potentials.g_bb[j]).to_f64();
    }
    Ok(Solution {
        value,
        potentials,
        grad_x,
        grad_y,
        eps_list,
        diameter,
        extra_iterations,
        final_change,
    })
}
