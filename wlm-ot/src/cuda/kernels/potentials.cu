// Per-ε column preparation, geomloss's averaged update, and the envelope gradient, mirroring
// wlm-ot/src/kernel/softmin.rs (`Columns::prepare`) and wlm-ot/src/sinkhorn.rs
// (`Potentials::average_with`, the envelope formula of `solve`). Compiled with NVRTC.

// Column data of one pass at one ε:
//   h_j = log w_j (+ g_j / eps when has_pot);
//   p = 2: offset_j = h_j - |y_j|^2 * half_inv_eps, scaled = y * inv_eps (D x n, dim-major);
//   p = 1: offset_j = h_j (scaled unused).
template <typename T>
__device__ __forceinline__ void prepare_impl(
    const T* __restrict__ log_w, const T* __restrict__ pot, int pot_off, int has_pot,
    const T* __restrict__ sq, const T* __restrict__ cols, int n, int dim, int p2,
    T eps, T inv_eps, T half_inv_eps, T* __restrict__ offset, T* __restrict__ scaled)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    T h = log_w[j];
    if (has_pot) h += pot[pot_off + j] / eps;
    if (p2) {
        offset[j] = h - sq[j] * half_inv_eps;
        for (int k = 0; k < dim; ++k) scaled[(size_t)k * n + j] = cols[(size_t)k * n + j] * inv_eps;
    } else {
        offset[j] = h;
    }
}

// cur <- (cur + upd) / 2 over all four potentials (one buffer); the largest |change|, as the
// bits of a non-negative double, is max-reduced into *change_bits.
template <typename T>
__device__ __forceinline__ void average_impl(
    T* __restrict__ cur, const T* __restrict__ upd, int n,
    unsigned long long* __restrict__ change_bits)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    double change = 0.0;
    if (i < n) {
        const T old = cur[i];
        const T next = T(0.5) * (old + upd[i]);
        change = fabs((double)(next - old));
        cur[i] = next;
    }
    // Warp max, then one atomic per warp.
    for (int o = 16; o > 0; o >>= 1) change = fmax(change, __shfl_down_sync(0xffffffffu, change, o));
    if ((threadIdx.x & 31) == 0) atomicMax(change_bits, (unsigned long long)__double_as_longlong(change));
}

// grad_ik = w_i (cross_ik - own_ik): geomloss's envelope gradient from the gradient sums.
template <typename T>
__device__ __forceinline__ void envelope_impl(
    const T* __restrict__ w, const T* __restrict__ cross, const T* __restrict__ own,
    int n, int dim, T* __restrict__ grad)
{
    const int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * dim) return;
    grad[idx] = w[idx / dim] * (cross[idx] - own[idx]);
}

#define POTENTIAL_KERNELS(T, TN)                                                               \
    extern "C" __global__ void prepare_##TN(                                                   \
        const T* __restrict__ log_w, const T* __restrict__ pot, int pot_off, int has_pot,      \
        const T* __restrict__ sq, const T* __restrict__ cols, int n, int dim, int p2,          \
        T eps, T inv_eps, T half_inv_eps, T* __restrict__ offset, T* __restrict__ scaled) {    \
        prepare_impl<T>(log_w, pot, pot_off, has_pot, sq, cols, n, dim, p2, eps, inv_eps,      \
                        half_inv_eps, offset, scaled);                                         \
    }                                                                                          \
    extern "C" __global__ void average_##TN(T* __restrict__ cur, const T* __restrict__ upd,    \
                                            int n, unsigned long long* __restrict__ change) {  \
        average_impl<T>(cur, upd, n, change);                                                  \
    }                                                                                          \
    extern "C" __global__ void envelope_##TN(const T* __restrict__ w,                          \
                                             const T* __restrict__ cross,                      \
                                             const T* __restrict__ own, int n, int dim,        \
                                             T* __restrict__ grad) {                           \
        envelope_impl<T>(w, cross, own, n, dim, grad);                                         \
    }

POTENTIAL_KERNELS(float, f32)
POTENTIAL_KERNELS(double, f64)
