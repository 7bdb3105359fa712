// Softmin passes of the debiased Sinkhorn loop, log domain, online log-sum-exp.
//
// For each row i (one thread per row):
//   out_i = -eps * log sum_j exp(z_ij),
//   z_ij  = offset_j + x_i . ys_j - shift_i       (p = 2: C = |x - y|^2 / 2, expanded form)
//   z_ij  = offset_j - sqrt(max(|x_i - y_j|^2, 1e-8)) / eps                         (p = 1)
// with offset_j and ys_j prepared by `prepare_*` (potentials.cu) exactly like the CPU path
// (wlm-ot/src/kernel/softmin.rs): p = 2: offset_j = log w_j + g_j/eps - |y_j|^2/(2 eps),
// ys_j = y_j / eps, shift_i = |x_i|^2 / (2 eps); p = 1: offset_j = log w_j + g_j/eps, ys = y.
// GRAD also accumulates sum_j P_ij grad_1 C(x_i, y_j) (P the row's softmax):
//   p = 2: x_i - sum_j P_ij y_j;  p = 1: sum_j P_ij (x_i - y_j) / |x_i - y_j| (0 below the clamp).
// The columns are visited in tiles of BLOCK points staged in shared memory (dimension-major);
// nothing of size N x M is ever stored. Coordinates are already shifted by the bounding-box
// centre on the host. Compiled at run time with NVRTC: no headers, only built-ins.

#define BLOCK 256
#define SQ_DIST_FLOOR 1e-8

__device__ __forceinline__ float neg_inf(float) { return __int_as_float(0xff800000); }
__device__ __forceinline__ double neg_inf(double) { return __longlong_as_double(0xfff0000000000000ULL); }
// exp of a non-positive argument: the SFU path in f32 (relative error ~2^-21 near 0, where the
// terms that matter live), the accurate libdevice exp in f64.
__device__ __forceinline__ float exp_np(float z) { return __expf(z); }
__device__ __forceinline__ double exp_np(double z) { return exp(z); }
__device__ __forceinline__ float log_(float s) { return logf(s); }
__device__ __forceinline__ double log_(double s) { return log(s); }
__device__ __forceinline__ float sqrt_(float s) { return sqrtf(s); }
__device__ __forceinline__ double sqrt_(double s) { return sqrt(s); }
__device__ __forceinline__ float max_(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double max_(double a, double b) { return fmax(a, b); }

// rows: n_rows x D row-major (shifted). cols_logit: D x n_cols (p = 2: y/eps; p = 1: y).
// cols_raw: D x n_cols (y, only read when P2 && GRAD). offset: n_cols. row_sq: n_rows.
// out[out_off + i]; grad: n_rows x D row-major (only when GRAD).
template <typename T, bool P2, bool GRAD, int D>
__device__ __forceinline__ void softmin_impl(
    const T* __restrict__ rows, const T* __restrict__ row_sq, int n_rows,
    const T* __restrict__ cols_logit, const T* __restrict__ cols_raw,
    const T* __restrict__ offset, int n_cols,
    T eps, T inv_eps, T half_inv_eps,
    T* __restrict__ out, int out_off, T* __restrict__ grad)
{
    __shared__ T s_off[BLOCK];
    __shared__ T s_y[D * BLOCK];
    __shared__ T s_raw[(P2 && GRAD) ? D * BLOCK : 1];

    const int i = blockIdx.x * BLOCK + threadIdx.x;
    const bool active = i < n_rows;
    T x[D];
#pragma unroll
    for (int k = 0; k < D; ++k) x[k] = active ? rows[(size_t)i * D + k] : T(0);

    const T ninf = neg_inf(T(0));
    const T floor_ = T(SQ_DIST_FLOOR);
    T m = ninf;
    T s = T(0);
    T acc[GRAD ? D : 1];
#pragma unroll
    for (int k = 0; k < (GRAD ? D : 1); ++k) acc[k] = T(0);

    for (int j0 = 0; j0 < n_cols; j0 += BLOCK) {
        const int len = min(BLOCK, n_cols - j0);
        __syncthreads();
        if (threadIdx.x < len) {
            const int j = j0 + threadIdx.x;
            s_off[threadIdx.x] = offset[j];
#pragma unroll
            for (int k = 0; k < D; ++k) {
                s_y[k * BLOCK + threadIdx.x] = cols_logit[(size_t)k * n_cols + j];
                if (P2 && GRAD) s_raw[k * BLOCK + threadIdx.x] = cols_raw[(size_t)k * n_cols + j];
            }
        }
        __syncthreads();
        if (!active) continue;
        for (int c = 0; c < len; ++c) {
            T z = s_off[c];
            T c_k[GRAD ? D : 1];
            if (P2) {
#pragma unroll
                for (int k = 0; k < D; ++k) z = fma(x[k], s_y[k * BLOCK + c], z);
                if (GRAD) {
#pragma unroll
                    for (int k = 0; k < D; ++k) c_k[k] = s_raw[k * BLOCK + c];
                }
            } else {
                T sq = T(0);
                T diff[D];
#pragma unroll
                for (int k = 0; k < D; ++k) {
                    diff[k] = x[k] - s_y[k * BLOCK + c];
                    sq = fma(diff[k], diff[k], sq);
                }
                const T dist = sqrt_(max_(sq, floor_));
                z = fma(-dist, inv_eps, z);
                if (GRAD) {
                    const T psi = sq >= floor_ ? T(1) / dist : T(0);
#pragma unroll
                    for (int k = 0; k < D; ++k) c_k[k] = psi * diff[k];
                }
            }
            if (z > m) {
                // New running maximum: rescale what was summed so far.
                const T r = exp_np(m - z);
                s = fma(s, r, T(1));
                if (GRAD) {
#pragma unroll
                    for (int k = 0; k < D; ++k) acc[k] = fma(acc[k], r, c_k[k]);
                }
                m = z;
            } else if (z > ninf) {
                const T w = exp_np(z - m);
                s += w;
                if (GRAD) {
#pragma unroll
                    for (int k = 0; k < D; ++k) acc[k] = fma(w, c_k[k], acc[k]);
                }
            }
        }
    }
    if (!active) return;
    const T shift = P2 ? row_sq[i] * half_inv_eps : T(0);
    const T lse = m + log_(s) - shift;
    out[out_off + i] = -(eps * lse);
    if (GRAD) {
#pragma unroll
        for (int k = 0; k < D; ++k)
            grad[(size_t)i * D + k] = P2 ? x[k] - acc[k] / s : acc[k] / s;
    }
}

#define SOFTMIN_ARGS(T)                                                                        \
    const T* __restrict__ rows, const T* __restrict__ row_sq, int n_rows,                      \
    const T* __restrict__ cols_logit, const T* __restrict__ cols_raw,                          \
    const T* __restrict__ offset, int n_cols, T eps, T inv_eps, T half_inv_eps,                \
    T* __restrict__ out, int out_off, T* __restrict__ grad
#define SOFTMIN_PASS rows, row_sq, n_rows, cols_logit, cols_raw, offset, n_cols, eps, inv_eps, \
    half_inv_eps, out, out_off, grad

#define SOFTMIN_ONE(T, TN, P, P2, D)                                                            \
    extern "C" __global__ void __launch_bounds__(BLOCK)                                         \
    softmin_##TN##_p##P##_d##D(SOFTMIN_ARGS(T)) {                                              \
        softmin_impl<T, P2, false, D>(SOFTMIN_PASS);                                           \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(BLOCK)                                         \
    softmin_##TN##_p##P##_d##D##_grad(SOFTMIN_ARGS(T)) {                                       \
        softmin_impl<T, P2, true, D>(SOFTMIN_PASS);                                            \
    }

#define SOFTMIN_DIMS(T, TN, P, P2)                                                             \
    SOFTMIN_ONE(T, TN, P, P2, 1) SOFTMIN_ONE(T, TN, P, P2, 2) SOFTMIN_ONE(T, TN, P, P2, 3)     \
    SOFTMIN_ONE(T, TN, P, P2, 4) SOFTMIN_ONE(T, TN, P, P2, 5) SOFTMIN_ONE(T, TN, P, P2, 6)     \
    SOFTMIN_ONE(T, TN, P, P2, 7) SOFTMIN_ONE(T, TN, P, P2, 8)

SOFTMIN_DIMS(float, f32, 1, false)
SOFTMIN_DIMS(float, f32, 2, true)
SOFTMIN_DIMS(double, f64, 1, false)
SOFTMIN_DIMS(double, f64, 2, true)
