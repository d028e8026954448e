"""Which program wraps each task process (see :mod:`host_runner.run.wrapper` for the protocol).

The Python wrapper costs about 10 ms of CPU per task start, which dominates the runner's own cost for short
tasks; ``wrapper.c`` is the same protocol compiled once per data directory with the system's C compiler.
``HOST_RUNNER_WRAPPER=auto`` (the default) uses the native build when it can be made and falls back to Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from host_runner.ops.config import Config, ConfigError
from host_runner.run.container_paths import namespace_problem
from host_runner.run.process_group import PYTHON_WRAPPER

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("wrapper.c")
USAGE_EXIT = 2  # what the native wrapper answers when started without arguments
BUILD_TIMEOUT_SECONDS = 120


class WrapperBuildError(RuntimeError):
    """The native wrapper cannot be built or cannot run here."""


def build_native_wrapper(bin_dir: Path) -> Path:
    """Compile ``wrapper.c`` into ``bin_dir/wrapper-<source hash>`` (once; later starts reuse it) and check
    that it runs (a ``noexec`` data directory would make every task fail)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    target = bin_dir / f"wrapper-{digest}"
    if not target.exists():
        compiler = shutil.which("cc")
        if compiler is None:
            raise WrapperBuildError("no C compiler (cc) on PATH")
        bin_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = bin_dir / f".wrapper-{digest}-{os.getpid()}.tmp"
        try:
            built = subprocess.run([compiler, "-O2", "-o", str(temporary), str(SOURCE)], capture_output=True,
                                   text=True, timeout=BUILD_TIMEOUT_SECONDS, check=False)
            if built.returncode != 0:
                raise WrapperBuildError(f"cc failed: {built.stderr.strip()[-400:]}")
            os.replace(temporary, target)  # atomic: two runners starting on one data dir both end up with it
        finally:
            temporary.unlink(missing_ok=True)
        for older in bin_dir.glob("wrapper-*"):
            if older != target:
                older.unlink(missing_ok=True)  # a wrapper still running from it keeps its inode
    try:
        answer = subprocess.run([str(target)], capture_output=True, timeout=10, check=False)
    except OSError as exc:
        raise WrapperBuildError(f"{target} cannot run: {exc.strerror or exc}") from None
    if answer.returncode != USAGE_EXIT:
        raise WrapperBuildError(f"{target} answered {answer.returncode}, expected {USAGE_EXIT}")
    return target


def prepare_wrapper(config: Config) -> Config:
    """At start: settle ``config.wrapper_argv`` from ``config.wrapper`` (building the native wrapper if asked), and
    refuse container paths where tasks cannot get their mount namespace."""
    if config.wrapper_argv is None:
        config = dataclasses.replace(config, wrapper_argv=_settle_wrapper(config))
    if config.agent_paths == "container":
        assert config.wrapper_argv is not None
        _check_container_paths(config.wrapper_argv)
    return config


def _check_container_paths(wrapper_argv: tuple[str, ...]) -> None:
    if wrapper_argv == PYTHON_WRAPPER:
        raise ConfigError("HOST_RUNNER_AGENT_PATHS=container needs the native task wrapper (built with cc at start; "
                          "HOST_RUNNER_WRAPPER must not be python)")
    problem = namespace_problem(wrapper_argv)
    if problem is None:
        logger.info("agent paths: container (each agent task in a private mount namespace)")
        return
    hint = "" if os.geteuid() == 0 else (
        " (a runner that is not root needs unprivileged user namespaces: see sysctl user.max_user_namespaces, "
        "kernel.unprivileged_userns_clone and AppArmor's kernel.apparmor_restrict_unprivileged_userns)"
    )
    raise ConfigError(f"HOST_RUNNER_AGENT_PATHS=container, but tasks cannot get a private mount namespace here: "
                      f"{problem}{hint}")


def _settle_wrapper(config: Config) -> tuple[str, ...]:
    argv: tuple[str, ...] = PYTHON_WRAPPER
    if config.wrapper != "python":
        try:
            argv = (str(build_native_wrapper(config.data_dir / "bin")),)
        except (WrapperBuildError, OSError, subprocess.SubprocessError) as exc:
            if config.wrapper == "native":
                raise ConfigError(f"HOST_RUNNER_WRAPPER=native, but the native wrapper is not usable: {exc}") from None
            logger.warning("starting tasks with the Python wrapper (about 10 ms more per start): %s", exc)
    logger.info("task wrapper: %s", argv[-1])
    return argv
