"""The agent CLIs ``.ci/run`` installs with npm into a cache folder (``HOST_RUNNER_NPM_CACHE``, default
``~/.cache/host-runner-npm``): where each one's binary is, and a skip (a failure under CI=true) without it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

__all__ = ["npm_binary", "require_npm_binary"]


def npm_binary(name: str) -> Path | None:
    """The binary ``name`` from the npm cache folder, or None when it is not installed (or node is missing)."""
    cache = Path(os.environ.get("HOST_RUNNER_NPM_CACHE") or Path.home() / ".cache" / "host-runner-npm")
    binary = cache / "node_modules" / ".bin" / name
    return binary if binary.exists() and shutil.which("node") else None


def require_npm_binary(name: str, package: str) -> Path:
    """The binary ``name`` of the npm ``package`` (``name@version``); skips without it, fails under CI=true
    (where .ci/run installs it)."""
    binary = npm_binary(name)
    if binary is None:
        message = f"{package} is not installed (npm install --prefix ~/.cache/host-runner-npm {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary
