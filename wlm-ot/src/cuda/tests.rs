//! NVRTC compiles every kernel source (no GPU needed: only the NVRTC library).
//!
//! cudarc loads `libnvrtc.so*` by name, so the library must be on the loader's path. When it is
//! not, the test looks for the PyPI wheel (`pip install nvidia-cuda-nvrtc`; or `WLM_NVRTC_LIB_DIR`,
//! which `.ci/run` sets to its venv's copy, and which makes a missing library a failure rather
//! than a skip) and re-runs itself in a child process with `LD_LIBRARY_PATH` pointing there (the loader reads
//! that variable only at process start).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::gpu::{compile, nvrtc_version, SOURCES};

const CHILD_ENV: &str = "WLM_OT_NVRTC_CHILD";
const TEST_NAME: &str = "cuda::tests::nvrtc_compiles_every_kernel_source";

/// A directory holding `libnvrtc.so*`: `$WLM_NVRTC_LIB_DIR`, else the `nvidia` Python packages.
fn wheel_lib_dir() -> Option<PathBuf> {
    let has_nvrtc = |dir: &Path| {
        std::fs::read_dir(dir).ok().is_some_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libnvrtc.so"))
        })
    };
    if let Some(dir) = std::env::var_os("WLM_NVRTC_LIB_DIR").map(PathBuf::from) {
        // Asked for explicitly (CI sets it): a missing library fails the test, never skips it.
        assert!(
            has_nvrtc(&dir),
            "WLM_NVRTC_LIB_DIR={} holds no libnvrtc.so*",
            dir.display()
        );
        return Some(dir);
    }
    let out = Command::new("python3")
        .args(["-c", "import nvidia; print('\\n'.join(nvidia.__path__))"])
        .output()
        .ok()?;
    let roots = String::from_utf8_lossy(&out.stdout).into_owned();
    for root in roots.lines().map(PathBuf::from) {
        // cu13 wheels: nvidia/cu13/lib; cu12 wheels: nvidia/cuda_nvrtc/lib.
        for entry in std::fs::read_dir(&root).ok()?.flatten() {
            let lib = entry.path().join("lib");
            if has_nvrtc(&lib) {
                return Some(lib);
            }
        }
    }
    None
}

#[test]
fn nvrtc_compiles_every_kernel_source() {
    if let Some((major, minor)) = nvrtc_version() {
        eprintln!("NVRTC {major}.{minor}");
        for (name, src) in SOURCES {
            let start = std::time::Instant::now();
            // compute_75: the oldest arch CUDA 13 supports; also NVRTC's default.
            let ptx =
                compile(name, src, Some("compute_75".into())).unwrap_or_else(|e| panic!("{e}"));
            let text = ptx.to_src();
            assert!(
                text.contains(".entry"),
                "{name}: no kernel entry in the PTX"
            );
            eprintln!(
                "{name}: {} kernels, {} bytes of PTX in {:.2} s",
                text.matches(".entry").count(),
                text.len(),
                start.elapsed().as_secs_f64()
            );
        }
        return;
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        panic!("libnvrtc found on disk but not loadable with LD_LIBRARY_PATH set");
    }
    let Some(dir) = wheel_lib_dir() else {
        eprintln!("no NVRTC library found (pip install nvidia-cuda-nvrtc): skipping");
        return;
    };
    let mut path = dir.clone().into_os_string();
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        path.push(":");
        path.push(old);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env("LD_LIBRARY_PATH", path)
        .env(CHILD_ENV, "1")
        .output()
        .expect("re-run the test binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("(child with LD_LIBRARY_PATH={})\n{stderr}", dir.display());
    assert!(
        out.status.success(),
        "NVRTC compile failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("NVRTC "), "child did not load NVRTC");
}
