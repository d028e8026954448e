"""The runner's files are its user's alone: database, write-ahead log, run directories, output, logs, IPC files.

They hold prompts, callback URLs and tokens, and task output. Other users of the machine must not read them, not
even for a moment: a file created readable and narrowed afterwards (``chmod``) can be opened in between, and the
SQLite write-ahead log is created by SQLite itself. So the runner process works under umask 077 from its start,
and every file and directory it creates is owner-only as it comes into being.

The programs a task runs are the user's, not the runner's: they get the umask the runner was started with, so
that files they create in the user's project (or a worktree git checks out) have the modes the user expects.
"""

from __future__ import annotations

import grp
import logging
import os
import stat
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
PRIVATE_DIRECTORY_MODE = 0o700

_lock = threading.Lock()
_original_umask: int | None = None


def keep_files_private() -> int:
    """Make this process create owner-only files from now on; return the umask it had before (see
    :func:`original_umask`). Idempotent: a second runner in the same process keeps the first one's original."""
    global _original_umask
    with _lock:
        previous = os.umask(PRIVATE_UMASK)
        if _original_umask is None:
            _original_umask = previous
        return _original_umask


def original_umask() -> int:
    """The umask this process was started with: what the programs of tasks get (see the module's text)."""
    with _lock:
        if _original_umask is not None:
            return _original_umask
    return current_umask()


def current_umask() -> int:
    """This process's umask, read without changing it (``os.umask`` can only read by setting: a file another
    thread created in between would get the wrong mode)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    raise OSError("no Umask line in /proc/self/status")


def private_directory(path: Path) -> None:
    """Create ``path`` (and its parents) owner-only; narrow an existing one made by an older version."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY_MODE)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("%s was readable by other users (mode %04o): narrowing it to 0700", path, mode)
        path.chmod(PRIVATE_DIRECTORY_MODE)


def share_socket_with_group(bind: str, group: str) -> None:
    """Let the members of ``group`` connect to the unix socket of ``bind`` (``unix:PATH``): group, then 0660."""
    path = bind[len("unix:"):]
    gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)


__all__ = ["current_umask", "keep_files_private", "original_umask", "private_directory", "share_socket_with_group"]
