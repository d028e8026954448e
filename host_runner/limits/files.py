"""What both cgroup backends share: finding the hierarchies (``/proc/self/mountinfo``, ``/proc/self/cgroup``),
reading and writing their files, and killing every process listed in a cgroup."""

from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
OWN_CGROUP = Path("/proc/self/cgroup")
#: v1 controllers a task cgroup is made in: membership and limits (pids, memory, cpu), CPU time (cpuacct) and a
#: kill that no fork can outrun (freezer).
V1_CONTROLLERS = ("pids", "memory", "cpu", "cpuacct", "freezer")


class CgroupError(OSError):
    """A cgroup cannot be made, joined or written; the message says which file and why."""


@dataclass(frozen=True)
class Mounts:
    """Where this machine mounts its cgroup hierarchies, and this process's cgroup in each."""

    unified: Path | None  # the cgroup2 mount
    v1: dict[str, Path]  # controller -> its v1 mount
    own_unified: str  # this process's cgroup in the v2 hierarchy ("/" when unknown)
    own_v1: dict[str, str]  # controller -> this process's cgroup in its v1 hierarchy


def read_mounts() -> Mounts:
    unified: Path | None = None
    v1: dict[str, Path] = {}
    for line in MOUNTINFO.read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, rest = before.split(), after.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        if fields[3] != "/":
            continue  # a bind of a sub-cgroup (inside a container): not a hierarchy's root
        point = Path(fields[4].replace("\\040", " "))
        if rest[0] == "cgroup2" and unified is None:
            unified = point
        elif rest[0] == "cgroup":
            for option in rest[2].split(","):
                if option in V1_CONTROLLERS:
                    v1.setdefault(option, point)
    own_unified, own_v1 = "/", {}
    for line in OWN_CGROUP.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            own_unified = path
        for controller in controllers.split(","):
            own_v1[controller] = path
    return Mounts(unified, v1, own_unified, own_v1)


def under(mount: Path, cgroup: str) -> Path:
    """The directory of ``cgroup`` (a path as /proc/self/cgroup shows it) in the hierarchy mounted at ``mount``."""
    return mount / cgroup.strip("/") if cgroup.strip("/") else mount


def write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as exc:
        raise CgroupError(exc.errno or errno.EIO, f"cannot write {value.strip()!r} to {path}: "
                                                  f"{exc.strerror or exc}") from None


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def read_int(path: Path) -> int | None:
    text = read_text(path)
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def read_keyed(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat keyed file (``memory.events``, ``cpu.stat``, ``memory.oom_control``)."""
    for line in (read_text(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def procs(directory: Path) -> list[int]:
    """The processes in one cgroup directory ([] once it is gone)."""
    text = read_text(directory / "cgroup.procs")
    return [int(pid) for pid in text.split()] if text else []


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass  # gone meanwhile


def make_directory(path: Path, parents: bool = False) -> None:
    try:
        path.mkdir(exist_ok=True, parents=parents)
    except OSError as exc:
        raise CgroupError(exc.errno or errno.EIO, f"cannot create cgroup {path}: {exc.strerror or exc}") from None


def remove_directory(path: Path) -> bool:
    """rmdir a cgroup; True when it is gone (also when it never existed), False while processes are in it."""
    try:
        path.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def kill_rounds(directories: list[Path], rounds: int = 5) -> list[int]:
    """SIGKILL what the cgroup lists, a few rounds without waiting (a fork between reading and killing is caught
    by the next round); returns what was still listed last."""
    left: list[int] = []
    for _ in range(rounds):
        left = sorted({pid for directory in directories for pid in procs(directory)})
        if not left:
            break
        signal_all(left, signal.SIGKILL)
    return left
