#!/usr/bin/env bash
# How a GPU session checks the `cuda` feature of wlm-ot (see benches/notes/cuda.md).
#
# Build here (the machine with the workspace; no CUDA needed), carry the binaries, run there.
#   1. build:   benches/run_gpu.sh build      -> prints the test and bench binaries
#   2. on GPU:  benches/run_gpu.sh run        (in the repository root: fixtures are found via
#               ../shared/fixtures or WLM_FIXTURES)
# The GPU machine needs only the NVIDIA driver (libcuda.so) and NVRTC (libnvrtc.so.13: from the
# CUDA toolkit, or `pip install nvidia-cuda-nvrtc` and LD_LIBRARY_PATH=<site-packages>/nvidia/cu13/lib).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-gpu}"

case "${1:-}" in
build)
    cargo test -p wlm-ot --release --features cuda --no-run 2>&1 | tee /tmp/wlm-gpu-build.log
    cargo bench -p wlm-benches --bench ot_cuda --features wlm-ot/cuda --no-run 2>&1 | tee -a /tmp/wlm-gpu-build.log
    mkdir -p "$CARGO_TARGET_DIR/gpu-bin"
    # the integration test binary `it`, the lib unit tests `wlm_ot`, the bench `ot_cuda`
    for pattern in 'deps/it-*' 'deps/wlm_ot-*' 'deps/ot_cuda-*'; do
        f=$(ls -t "$CARGO_TARGET_DIR"/release/$pattern 2>/dev/null | grep -v '\.d$' | head -1)
        cp "$f" "$CARGO_TARGET_DIR/gpu-bin/$(basename "$f" | sed 's/-[0-9a-f]*$//')"
    done
    ls -l "$CARGO_TARGET_DIR/gpu-bin"
    ;;
run)
    B="$CARGO_TARGET_DIR/gpu-bin"
    if ! python3 -c 'import ctypes; ctypes.CDLL("libnvrtc.so.13")' 2>/dev/null; then
        d=$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null || true)
        [ -n "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
    fi
    nvidia-smi --query-gpu=name,clocks.max.sm --format=csv || true
    # 1. NVRTC compiles every kernel; 2. parity GPU vs CPU (fixtures + random clouds).
    (cd wlm-ot && "../$B/wlm_ot" cuda:: --nocapture)
    (cd wlm-ot && "../$B/it" cuda:: --nocapture --test-threads=1)
    # 3. timings (set WLM_BENCH_MAX_N=100000 to skip the 10^6 cases, ~minutes each).
    "$B/ot_cuda" | tee benches/notes/cuda_timings.md
    # 4. geomloss on the same GPU (needs torch + geomloss [+ pykeops for the online backend]).
    python3 benches/geomloss_gpu.py --backend online --max-n "${WLM_BENCH_MAX_N:-1000000}" \
        | tee benches/notes/geomloss_gpu_timings.md || true
    ;;
*)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
