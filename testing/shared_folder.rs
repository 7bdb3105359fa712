//! The shared fixtures and data sets beside the repository (`../shared`), for the test suites
//! of every crate (included by path as `mod shared_folder`). On a developer's checkout without
//! the folder a test that needs it skips with a message; under `CI=true` (set by `.ci/run`) a
//! missing folder or file fails the test, so an oracle cannot pass by not running.

use std::path::PathBuf;

/// `<repository>/../shared/<sub>` (or `$WLM_SHARED/<sub>`) when it exists (`fixtures/...` may
/// be redirected with `$WLM_FIXTURES`, which stands for the `fixtures` folder). Absent: `None` after a message,
/// or a panic naming the path under `CI=true`.
#[allow(dead_code)]
pub(crate) fn shared(sub: &str) -> Option<PathBuf> {
    let path = match (
        sub.strip_prefix("fixtures/"),
        std::env::var_os("WLM_FIXTURES"),
    ) {
        (Some(rest), Some(base)) => PathBuf::from(base).join(rest),
        _ => std::env::var_os("WLM_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
            .join(sub),
    };
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is absent and CI=true: the shared fixtures and data must be there",
            path.display()
        );
    }
    eprintln!("skipping: {} is absent", path.display());
    None
}
