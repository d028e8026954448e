"""``HOST_RUNNER_AGENT_PATHS=container``: an agent-runner written for a container runs on the host unchanged.

NanoClaw's agent-runner hard-codes its container's paths (``/workspace/group``, ``/workspace/ipc``,
``/workspace/global``, ``/workspace/extra/*``, scratch files in ``/tmp``) and reads no variable for them. With
this setting each agent task's command runs in a private mount namespace, made by the native wrapper
(``wrapper.c``, "container paths") just before it execs the command, in which those paths are the task's own
directories and ``/tmp`` is private; the rest of the file system is the host's, so the user's ``HOME`` and
``~/.claude`` are shared. The host's ``/workspace`` is never created, and the namespace ends with the task.

This module says what the namespace holds (a :class:`MountPlan`, passed to the wrapper as words of its argv) and
asks the wrapper at start whether this machine allows it at all (:func:`namespace_problem`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from host_runner.ops.setting_parsers import ExtraDir

__all__ = [
    "GLOBAL", "GROUP", "IPC", "EXTRA", "Mount", "MountPlan", "agent_plan", "namespace_problem",
]

GROUP = "/workspace/group"  # the agent's working directory
IPC = "/workspace/ipc"  # the run's IPC directory (its input/ gets messages and _close)
GLOBAL = "/workspace/global"  # HOST_RUNNER_AGENT_GLOBAL_DIR, read-only
EXTRA = "/workspace/extra"  # HOST_RUNNER_AGENT_EXTRA_DIRS, each read-only at EXTRA/<name>

CHECK_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Mount:
    """A host directory seen at ``target`` in the namespace."""

    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True)
class MountPlan:
    """What the wrapper mounts for one task, and where the command starts."""

    mounts: tuple[Mount, ...]
    cwd: str

    def wrapper_words(self) -> list[str]:
        """The ``--namespace ... --`` words of the wrapper's argv (see wrapper.c)."""
        words = ["--namespace"]
        for mount in self.mounts:
            words += ["ro" if mount.read_only else "rw", str(mount.source), mount.target]
        return [*words, "cwd", self.cwd, "--"]


def agent_plan(cwd: Path, ipc: Path, global_dir: Path | None, extras: Sequence[ExtraDir]) -> MountPlan:
    """The namespace of one agent task: its working directory and IPC directory writable, the shared context
    read-only."""
    mounts = [Mount(cwd, GROUP, read_only=False), Mount(ipc, IPC, read_only=False)]
    if global_dir is not None:
        mounts.append(Mount(global_dir, GLOBAL, read_only=True))
    mounts += [Mount(extra.path, f"{EXTRA}/{extra.name}", read_only=True) for extra in extras]
    return MountPlan(tuple(mounts), cwd=GROUP)


def namespace_problem(wrapper_argv: Sequence[str]) -> str | None:
    """Why tasks cannot get their namespace here, or None when they can (the wrapper tries an empty plan)."""
    try:
        answer = subprocess.run([*wrapper_argv, "--check-namespace"], capture_output=True, text=True,
                                timeout=CHECK_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the wrapper could not be asked: {exc}"
    if answer.returncode == 0:
        return None
    return (answer.stderr.strip() or answer.stdout.strip() or f"exit status {answer.returncode}")[-500:]
