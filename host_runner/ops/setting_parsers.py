"""How a setting is read: :func:`read_setting` takes a variable from the environment and parses it, raising
:class:`ConfigError` with a message that names the variable; the parsers below check one kind of value each.
:mod:`host_runner.ops.config` says which variable is which setting.
"""

from __future__ import annotations

import grp
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from host_runner.domain.names import EXECUTORS

#: This runner's name on its containers' labels (HOST_RUNNER_INSTANCE_ID, or one made up and kept at start).
INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable."""


T = TypeVar("T")


def read_setting(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except (ValueError, TypeError) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise ConfigError(f"{name}={raw!r} is not valid: expected {expected}{detail}") from None


def number_in(kind: Callable[[str], T], low: float, high: float) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError(f"out of range {low}..{high}")
        return value

    return parse


def boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("")


def one_of(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError("")
        return raw

    return parse


def argv(raw: str) -> tuple[str, ...]:
    return tuple(shlex.split(raw))


def memory_size(raw: str) -> str:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?[bkmgBKMG]?", raw):
        raise ValueError("")
    return raw.lower()


def tmpfs_mounts(raw: str) -> tuple[str, ...]:
    if raw.lower() == "none":
        return ()
    mounts = tuple(shlex.split(raw))
    for mount in mounts:
        if not mount.startswith("/"):
            raise ValueError(f"{mount!r} is not an absolute path")
    return mounts


def matching(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not pattern.fullmatch(raw):
            raise ValueError("")
        return raw

    return parse


network_name = matching(re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"))
instance_id = matching(INSTANCE_ID)
byte_count = number_in(int, 0, 2**62)


def cgroup_path(raw: str) -> str:
    """A cgroup as /proc/self/cgroup names it: absolute, no '..', no empty or hidden component."""
    if raw == "/":
        return raw
    parts = raw.strip("/").split("/")
    if not raw.startswith("/") or any(part in ("", ".", "..") or "\n" in part for part in parts):
        raise ValueError("")
    return "/" + "/".join(parts)


def absolute_paths(raw: str) -> tuple[str, ...]:
    paths = tuple(item for item in raw.split(":") if item)
    for path in paths:
        if not os.path.isabs(path):
            raise ValueError(f"{path!r} is not an absolute path")
    return paths


def comma_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")


def names_where(ok: Callable[[str], object], what: str) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list of names, each of which ``ok`` accepts."""
    def parse(raw: str) -> tuple[str, ...]:
        names = comma_list(raw)
        for name in names:
            if not ok(name):
                raise ValueError(f"{name!r} is not {what}")
        return names

    return parse


host_names = names_where(HOST_NAME.fullmatch, "a host name or address")
executor_names = names_where(EXECUTORS.__contains__, "an executor")
variable_names = names_where(re.compile(r"[A-Za-z_][A-Za-z0-9_]*").fullmatch, "a variable name")


def existing_group(raw: str) -> str:
    try:
        grp.getgrgid(int(raw)) if raw.isdigit() else grp.getgrnam(raw)
    except (KeyError, OverflowError):
        raise ValueError("no such group") from None
    return raw


#: A name under /workspace/extra (HOST_RUNNER_AGENT_EXTRA_DIRS): one path component the agent-runner lists.
EXTRA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class ExtraDir:
    """One entry of ``HOST_RUNNER_AGENT_EXTRA_DIRS``: a host directory an agent with container paths sees at
    ``/workspace/extra/<name>`` (see :mod:`host_runner.run.container_paths`)."""

    name: str
    path: Path


def existing_directory(raw: str) -> Path:
    """An absolute path to a directory that exists (resolved: the namespace binds what it names now)."""
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ValueError(f"{raw!r} is not an absolute path")
    if not path.is_dir():
        raise ValueError(f"{raw!r} is not a directory")
    return path.resolve()


def extra_dirs(raw: str) -> tuple[ExtraDir, ...]:
    """``HOST_RUNNER_AGENT_EXTRA_DIRS``: existing directories separated by ``:`` (like PATH), each ``PATH`` (shown
    under its own base name) or ``NAME=PATH``."""
    found: dict[str, ExtraDir] = {}
    for item in (part.strip() for part in raw.split(":")):
        if not item:
            continue
        name, _, path = item.partition("=") if "=" in item else ("", "", item)
        directory = existing_directory(path)
        name = name or directory.name
        if not EXTRA_NAME.fullmatch(name):
            raise ValueError(f"{name!r} cannot be a name under /workspace/extra (letters, digits, '.', '_', '-')")
        if name in found:
            raise ValueError(f"two directories would be /workspace/extra/{name}")
        found[name] = ExtraDir(name, directory)
    return tuple(found.values())
