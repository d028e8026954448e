"""Free space on the data directory's filesystem: below ``HOST_RUNNER_MIN_FREE_BYTES`` the runner takes no new
task (the submit is answered 507 before anything is written) and ``/health`` says ``"disk": "low"``."""

from __future__ import annotations

import os

from host_runner.domain.errors import DiskLow
from host_runner.ops.config import Config


def free_bytes(config: Config) -> int | None:
    """Bytes an unprivileged writer may still use on the data directory's filesystem (None if it cannot be
    asked: a data directory not made yet is looked at through its nearest existing parent)."""
    path = config.data_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def disk_is_low(config: Config) -> bool:
    free = free_bytes(config)
    return free is not None and free < config.min_free_bytes


def require_free_disk(config: Config) -> None:
    """Raise :class:`DiskLow` when the data directory's filesystem is below ``min_free_bytes``."""
    free = free_bytes(config)
    if free is not None and free < config.min_free_bytes:
        raise DiskLow(f"the runner's data disk has {free} bytes free, below HOST_RUNNER_MIN_FREE_BYTES "
                      f"({config.min_free_bytes})")


__all__ = ["disk_is_low", "free_bytes", "require_free_disk"]
