"""Did a shared-workspace run stay inside its lock paths? The git part: what changed in the repository.

At the run's start (:func:`record_start`, in the start helper thread, before the command may begin) the runner
writes a snapshot of the repository that contains ``project_root`` to the run directory: its top directory,
its ``HEAD``, and every path ``git status`` lists as changed (tracked and untracked, ignored files excepted),
each with a fingerprint of the file as it is on disk (``lstat``: mode, size, mtime and ctime in ns, inode).
At the end (:func:`check`, in the ending helper thread) it takes the same picture again: a path counts as
changed when it is listed now and was not, was listed and is not, or is listed both times with another
fingerprint (so a file that was already dirty at the start and is written again is caught: ctime cannot be set
back), plus every path of the commits between the two ``HEAD``\\s and the paths the agent itself reported.
Changed paths inside one of the run's own lock paths, or inside a path another task held at any time while
this run was active (the caller names those), are fine; the rest are the violations.

Bounds: the snapshot keeps at most :data:`MAX_ENTRIES` paths and reads at most :data:`MAX_OUTPUT_BYTES` of git
output; beyond that the check is not made and says why (``lock_check_error``). Each git call may take
:data:`GIT_TIMEOUT` seconds. Nothing here reads file contents, so a large dirty file costs one ``lstat``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from host_runner.run.process_group import RunFiles
from host_runner.workspace import git

#: The most paths a snapshot keeps (git status at the start or the end, commits in between, reports).
MAX_ENTRIES = 100_000
#: The most bytes of output one git command may give the check.
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
#: The most seconds one git command of the check may take (git status of a large repository is slow).
GIT_TIMEOUT = 120.0
#: Violations listed on the record (``lock_violations_count`` is exact).
MAX_LISTED = 100
#: ``git status`` must not take the index lock to refresh it: a task running git meanwhile would fail on it.
_NO_LOCKS = {"GIT_OPTIONAL_LOCKS": "0"}


class CheckError(Exception):
    """The check cannot be made; the message is recorded as ``lock_check_error``."""


def snapshot_file(files: RunFiles) -> Path:
    """Where the snapshot of the run's start is kept (the run directory: private, removed with the run)."""
    return files.directory / "lock-check-start.json"


def record_start(project_root: str | Path, files: RunFiles) -> None:
    """Write the start snapshot of the repository containing ``project_root``; nothing when it is not in one.

    A snapshot that cannot be taken is written as its error, so that the end reports why there is no check;
    the run itself starts all the same.
    """
    top = _top(project_root)
    if top is None:
        return
    try:
        data: dict[str, Any] = {"top": top, "head": _head(top), "entries": _status(top, files)}
    except CheckError as exc:
        data = {"error": str(exc)}
    target = snapshot_file(files)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps(data), encoding="utf-8")
    scratch.replace(target)  # a runner stopped while writing leaves no half snapshot


def check(project_root: str | Path, files: RunFiles, locks: Iterable[str],
          reported: Sequence[str]) -> dict[str, Any]:
    """The record fields of the check: ``lock_violations`` (sorted, at most :data:`MAX_LISTED`) and
    ``lock_violations_count``; or ``lock_check_error``; or nothing when no snapshot was taken at the start (not a
    git repository, or the run never got that far). ``locks`` are real absolute paths; ``reported`` are the
    paths the agent said it changed (absolute, or relative to ``project_root``)."""
    try:
        start = json.loads(snapshot_file(files).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        return {"lock_check_error": f"cannot read the snapshot taken at the start: {exc}"}
    if "error" in start:
        return {"lock_check_error": f"no snapshot at the start: {start['error']}"}
    try:
        changed = _changed(start, files)
    except CheckError as exc:
        return {"lock_check_error": str(exc)}
    top = start["top"]
    root = os.path.realpath(project_root)
    changed.update(os.path.normpath(os.path.join(root, path)) for path in reported)
    inside = tuple(lock.rstrip(os.sep) for lock in locks)
    violations = sorted({_shown(path, top) for path in changed if not _under(path, inside)})
    return {"lock_violations": violations[:MAX_LISTED], "lock_violations_count": len(violations)}


def _changed(start: Mapping[str, Any], files: RunFiles) -> set[str]:
    """Absolute paths changed since ``start`` (see the module's docstring)."""
    top = start["top"]
    before: dict[str, Any] = start["entries"]
    after = _status(top, files)
    missing = object()
    names = {name for name in before.keys() | after.keys() if before.get(name, missing) != after.get(name, missing)}
    head = _head(top)
    if head != start["head"] and head is not None:
        # Committed meanwhile (or another branch checked out): every path of the difference counts.
        names.update(_git_z(["diff-tree", "-r", "--name-only", "-z", "--no-renames", start["head"], head], top, files)
                     if start["head"] else _git_z(["ls-tree", "-r", "--name-only", "-z", head], top, files))
    return {os.path.join(top, name) for name in names}


def _under(path: str, locks: Sequence[str]) -> bool:
    return any(path == lock or path.startswith(lock + os.sep) for lock in locks)


def _shown(path: str, top: str) -> str:
    """A path as the record shows it: relative to the repository's top (absolute when outside it), with bytes
    that are not UTF-8 replaced (a record is JSON text)."""
    shown = path[len(top) + 1:] if path.startswith(top + os.sep) else path
    return shown.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _top(project_root: str | Path) -> str | None:
    """The real top directory of the work tree containing ``project_root``, or None when there is none."""
    try:
        result = git.run_git(["rev-parse", "--show-toplevel"], cwd=project_root, check=False)
    except git.GitError:
        return None
    top = result.stdout.strip("\n")
    return os.path.realpath(top) if result.returncode == 0 and top else None


def _head(top: str) -> str | None:
    try:
        result = git.run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=top, check=False)
    except git.GitError as exc:
        raise CheckError(exc.message) from None
    head = result.stdout.strip()
    return head if result.returncode == 0 and head else None


def _status(top: str, files: RunFiles) -> dict[str, list[int] | None]:
    """Every path ``git status`` lists (renames as their two paths), with its fingerprint."""
    items = _git_z(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"], top, files)
    entries: dict[str, list[int] | None] = {}
    rename_source = False
    for item in items:
        if rename_source:  # a rename or copy is "XY NEW" then "OLD" (only if a config turned renames back on)
            rename_source = False
            name = item
        else:
            rename_source = item[:1] in ("R", "C") or item[1:2] in ("R", "C")
            name = item[3:]
        if name:
            entries[name] = _fingerprint(os.path.join(top, name))
    return entries


def _fingerprint(path: str) -> list[int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None  # deleted (or unreadable): compared as such
    return [info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _git_z(args: list[str], top: str, files: RunFiles) -> list[str]:
    """The NUL-separated items git prints for ``args``, through a file in the run directory (bounded)."""
    output = files.directory / "lock-check.out"
    try:
        git.run_git(args, cwd=top, timeout=GIT_TIMEOUT, env=_NO_LOCKS, stdout_path=output)
        if output.stat().st_size > MAX_OUTPUT_BYTES:
            raise CheckError(f"git {args[0]} printed more than {MAX_OUTPUT_BYTES} bytes: too many changes to check")
        items = [item for item in os.fsdecode(output.read_bytes()).split("\0") if item]
    except git.GitError as exc:
        raise CheckError(f"git {args[0]} failed: {exc.message}") from None
    except OSError as exc:
        raise CheckError(f"cannot read git's answer: {exc.strerror or exc}") from None
    finally:
        output.unlink(missing_ok=True)
    if len(items) > MAX_ENTRIES:
        raise CheckError(f"git {args[0]} listed more than {MAX_ENTRIES} paths: too many changes to check")
    return items
