"""Running git for the runner itself: argv lists only, bounded by timeouts, in a predictable environment.

Every call has a timeout; git runs in its own session so that a timeout also stops what it started (hooks).
Its stderr goes to a temporary file of which only the tail is kept, so a chatty hook cannot grow our memory.
Commands that change a repository's worktrees or branches are serialised per repository with
:func:`repository_lock` (git's own lock files make concurrent ``worktree add`` fail); repositories are told
apart by their common git directory, so two clones get two locks and the linked worktrees of one repository
share one.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from host_runner.ops.permissions import original_umask

logger = logging.getLogger(__name__)

GIT = "git"
#: For queries (rev-parse, worktree list, check-ref-format): they take milliseconds.
QUICK_TIMEOUT = 10.0
#: For commands whose cost grows with the repository (worktree add checks out every file, diff reads them).
SLOW_TIMEOUT = 600.0
STDERR_TAIL_BYTES = 8 * 1024

#: Variables that would point git at another repository, index or work tree than the one we name.
_LOCATION_VARIABLES = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
})


class GitError(Exception):
    """A git command failed or did not finish in time. The message is git's own when it said something."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.returncode = returncode


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        return git_message(self.stderr) or f"git exited with code {self.returncode}"


def git_message(stderr: str) -> str:
    """The useful part of git's stderr: from the first ``fatal:``/``error:`` line on, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith(("fatal:", "error:")):
            return " ".join(lines[index:])[:2000]
    return lines[-1][:2000] if lines else ""


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runner's environment without variables that redirect git, never prompting for credentials."""
    env = {name: value for name, value in os.environ.items() if name not in _LOCATION_VARIABLES}
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: str | Path,
    timeout: float = QUICK_TIMEOUT,
    env: Mapping[str, str] | None = None,
    stdout_path: Path | None = None,
    check: bool = True,
) -> GitResult:
    """Run ``git ARGS`` in ``cwd``. With ``stdout_path`` the output goes to that file instead of memory.

    Raises :class:`GitError` when git cannot be started, times out, or (with ``check``) exits non-zero.
    """
    argv = [GIT, *args]
    with tempfile.TemporaryFile() as stderr_file:
        stdout_target = open(stdout_path, "wb") if stdout_path is not None else subprocess.PIPE
        try:
            process = subprocess.Popen(
                argv, cwd=str(cwd), env=git_environment(env), stdin=subprocess.DEVNULL, stdout=stdout_target,
                stderr=stderr_file, start_new_session=True, close_fds=True,
                umask=original_umask(),  # the worktree's files are the user's: modes as the user's own git makes
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None
        finally:
            if stdout_path is not None:
                stdout_target.close()  # type: ignore[union-attr]
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.communicate()
            raise GitError(f"git {args[0]} did not finish within {timeout:g} s and was stopped") from None
        stderr_file.seek(0, os.SEEK_END)
        size = stderr_file.tell()
        stderr_file.seek(max(0, size - STDERR_TAIL_BYTES))
        stderr = stderr_file.read().decode("utf-8", "replace")
    result = GitResult(process.returncode, (out or b"").decode("utf-8", "surrogateescape"), stderr)
    if check and result.returncode != 0:
        raise GitError(result.message, result.returncode)
    return result


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- queries -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RepositoryInfo:
    """Where a repository keeps its data. ``head`` is None in a repository without commits."""

    git_dir: str
    common_dir: str
    head: str | None


def repository_info(root: str | Path) -> RepositoryInfo:
    """The (real) git and common directories of the repository containing ``root``, and its HEAD commit."""
    dirs = run_git(["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"], cwd=root)
    lines = dirs.stdout.splitlines()
    if len(lines) != 2:
        raise GitError(f"unexpected answer from git rev-parse: {dirs.stdout[:200]!r}")
    head = run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=root, check=False)
    return RepositoryInfo(
        git_dir=os.path.realpath(lines[0]),
        common_dir=os.path.realpath(lines[1]),
        head=head.stdout.strip() if head.returncode == 0 and head.stdout.strip() else None,
    )


def common_dir(root: str | Path) -> str:
    """The repository's identity: its common git directory, symlinks and ``..`` resolved."""
    result = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=root)
    return os.path.realpath(result.stdout.strip())


def is_valid_branch_name(root: str | Path, name: str) -> bool:
    """True when ``git check-ref-format --branch`` accepts ``name`` as it is.

    ``--branch`` would expand ``@{-1}`` to the previously checked out branch, so the name is valid only
    when git prints it back unchanged.
    """
    if not name or name.startswith("-"):
        return False
    result = run_git(["check-ref-format", "--branch", name], cwd=root, check=False)
    return result.returncode == 0 and result.stdout.rstrip("\n") == name


def branch_tip(root: str | Path, branch: str) -> str | None:
    """The commit ``refs/heads/<branch>`` points at, or None if there is no such branch."""
    result = run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"], cwd=root, check=False)
    tip = result.stdout.strip()
    return tip if result.returncode == 0 and tip else None


@dataclass(frozen=True)
class WorktreeEntry:
    """One entry of ``git worktree list --porcelain``; ``path`` is as git reports it."""

    path: str
    head: str | None = None
    branch: str | None = None  # the short name (without refs/heads/), None when detached or bare
    bare: bool = False
    prunable: bool = False
    locked: bool = False

    @property
    def real_path(self) -> str:
        return os.path.realpath(self.path)


def list_worktrees(root: str | Path) -> list[WorktreeEntry]:
    """Every worktree of the repository containing ``root``, the main one first."""
    output = run_git(["worktree", "list", "--porcelain", "-z"], cwd=root).stdout
    entries: list[WorktreeEntry] = []
    current: dict[str, object] | None = None
    for item in output.split("\0"):
        if not item:  # an empty item ends an entry
            if current is not None:
                entries.append(WorktreeEntry(**current))  # type: ignore[arg-type]
                current = None
            continue
        key, _, value = item.partition(" ")
        if key == "worktree":
            current = {"path": value}
        elif current is None:
            continue
        elif key == "HEAD":
            current["head"] = value
        elif key == "branch":
            current["branch"] = value.removeprefix("refs/heads/")
        elif key in ("bare", "prunable", "locked"):
            current[key] = True
    if current is not None:
        entries.append(WorktreeEntry(**current))  # type: ignore[arg-type]
    return entries


# --- per-repository serialisation ----------------------------------------------------------------------------
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def repository_lock(common: str) -> threading.Lock:
    """The lock serialising worktree and branch changes of the repository whose common git dir is ``common``.

    One lock per repository for the life of the process: a few bytes each, and never more than the number of
    repositories the runner ever worked on.
    """
    with _locks_guard:
        lock = _locks.get(common)
        if lock is None:
            lock = _locks[common] = threading.Lock()
        return lock
