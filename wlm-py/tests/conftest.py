"""Shared helpers of the `wlm` Python tests: the shared fixtures folder and the `wlm` binary.

As in the Rust suites (`testing/shared_folder.rs`): a test that needs `../shared` or the CLI
binary skips with a message when it is absent, except under `CI=true`, where it fails.
"""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _missing(what: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is absent and CI=true: it must be there")
    pytest.skip(f"skipping: {what} is absent")


def shared(sub: str) -> pathlib.Path:
    """`<repo>/../shared/<sub>` (or `$WLM_SHARED/<sub>`; `fixtures/...` under `$WLM_FIXTURES`)."""
    rest = sub[len("fixtures/"):] if sub.startswith("fixtures/") else None
    if rest is not None and os.environ.get("WLM_FIXTURES"):
        path = pathlib.Path(os.environ["WLM_FIXTURES"]) / rest
    else:
        base = os.environ.get("WLM_SHARED") or (REPO.parent / "shared")
        path = pathlib.Path(base) / sub
    if not path.exists():
        _missing(str(path))
    return path


def cli_binary() -> pathlib.Path:
    """The `wlm` binary of the dev build: `$WLM_CLI`, or `$CARGO_TARGET_DIR/debug/wlm`."""
    if os.environ.get("WLM_CLI"):
        path = pathlib.Path(os.environ["WLM_CLI"])
    else:
        target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or (REPO / "target"))
        path = target / "debug" / "wlm"
    if not path.exists():
        _missing(f"the wlm binary {path} (cargo build -p wlm-cli)")
    return path
