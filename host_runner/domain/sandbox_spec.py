"""The ``sandbox`` of a ``docker-sandbox`` submission: validated into a frozen :class:`SandboxSpec`.

Everything here ends up in a ``docker create`` command line, so validation is strict: the image must be a
well-formed image reference, the program must not look like an option, environment names must be real
variable names, and mount sources must be existing host paths (inside ``HOST_RUNNER_SANDBOX_MOUNT_ROOTS`` when
that is set). Unknown keys are refused rather than ignored: a mistyped ``readonly`` must not silently give a
writable mount.

Some host paths are never mounted, whatever the mount roots say (:data:`PROTECTED_DIRECTORIES`, the engine
sockets, the runner's data directory): neither they, nor anything inside them, nor a directory containing one of
them. A stored spec is checked again (:func:`check_again`) just before its container is created, so a spec stored
before a rule existed never reaches Docker, and a source swapped for a symlink after the submit is caught up to
that moment. Docker resolves a bind mount's source only when the container starts, a moment later: whoever can
replace directories on a source's path may still win that last window, so mount roots should be directories
only trusted users can write.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

from host_runner.domain.errors import ValidationError

DEFAULT_WORKDIR = "/workspace/project"
#: Linux refuses a single argv item or environment string longer than this (MAX_ARG_STRLEN, NUL included).
MAX_ARG_BYTES = 131_071
MAX_COMMAND_ITEMS = 4096
MAX_ENV_VARIABLES = 1024
MAX_MOUNTS = 64
#: Names the runner sets in every container itself.
RESERVED_ENV_PREFIX = "HOST_RUNNER_"

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# An image reference as Docker parses it (distribution/reference): [domain[:port]/]path[:tag][@digest].
_ALNUM = r"[a-z0-9]+"
_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?")
MAX_IMAGE_LENGTH = 255 + 1 + 128 + 1 + 200

SANDBOX_KEYS = frozenset({"image", "command", "workdir", "env", "mounts"})
MOUNT_KEYS = frozenset({"source", "target", "read_only"})


@dataclass(frozen=True)
class Mount:
    """A bind mount: host ``source`` (an existing path, symlinks resolved) at ``target`` in the container."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    """What to run in the container: ``image``, ``command`` (argv), ``workdir``, ``env`` pairs and ``mounts``."""

    image: str
    command: tuple[str, ...]
    workdir: str = DEFAULT_WORKDIR
    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxSpec:
        """Rebuild a spec from its stored form (``dataclasses.asdict`` through JSON). No validation here: the host
        may have changed since the spec was stored, so :func:`check_again` validates it just before its container
        is created (a spec reloaded after a restart included)."""
        env = data.get("env") or ()
        pairs = env.items() if isinstance(env, dict) else env
        return cls(
            image=data["image"],
            command=tuple(data["command"]),
            workdir=data.get("workdir") or DEFAULT_WORKDIR,
            env=tuple((str(name), str(value)) for name, value in pairs),
            mounts=tuple(Mount(m["source"], m["target"], bool(m.get("read_only"))) for m in data.get("mounts") or ()),
        )


def _no_nul(value: str, name: str) -> str:
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL bytes")
    return value


def _string(value: Any, name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if not allow_empty and not value:
        raise ValidationError(name, "must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # JSON can spell lone surrogates (a \ud800 escape); no command line holds them
        raise ValidationError(name, "must be valid Unicode text (no lone surrogates)") from None
    if size > MAX_ARG_BYTES:
        raise ValidationError(name, f"is longer than {MAX_ARG_BYTES} bytes")
    return _no_nul(value, name)


def _container_path(value: Any, name: str) -> str:
    path = _string(value, name)
    if not path.startswith("/"):
        raise ValidationError(name, "must be an absolute path")
    if "\n" in path or "\r" in path:
        raise ValidationError(name, "must not contain line breaks")
    return path


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


#: Host directories a sandbox never mounts, whatever HOST_RUNNER_SANDBOX_MOUNT_ROOTS says: nor anything inside
#: them, nor a directory containing one of them (so not ``/var``, which holds ``/var/run``). Both the spelling and
#: the real path count (``/var/run`` is usually a symlink to ``/run``, ``/bin`` one to ``/usr/bin``). Every
#: top-level ``/lib*`` directory of the host is added to these (lib, lib32, lib64, libx32, ...).
PROTECTED_DIRECTORIES = (
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/root", "/proc", "/sys",
    "/dev", "/run", "/var/run", "/var/lib/docker", "/var/lib/containerd",
)
#: Where container engines put their sockets (whoever reaches one is root on the host): Docker's, containerd's
#: (its own and the one dockerd embeds), rootless Docker's and Docker Desktop's. Those under /run are covered by
#: /run already; ``DOCKER_HOST``, ``CONTAINERD_ADDRESS`` and ``XDG_RUNTIME_DIR`` add the ones this host uses.
ENGINE_SOCKETS = (
    "/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock", "/run/docker/containerd/containerd.sock",
    "~/.docker/run/docker.sock", "~/.docker/desktop/docker.sock",
)
NEVER_MOUNT = "sandboxes may never mount"


def _engine_sockets() -> list[str]:
    """The engine sockets that exist on this host (those that do not cannot be reached through a mount)."""
    candidates = [os.path.expanduser(path) for path in ENGINE_SOCKETS]
    for variable in ("DOCKER_HOST", "CONTAINERD_ADDRESS"):
        value = os.environ.get(variable, "")
        if value.startswith("unix://"):
            candidates.append(value[len("unix://"):])
        elif value.startswith("/"):
            candidates.append(value)
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        candidates.append(os.path.join(runtime, "docker.sock"))
    return [path for path in candidates if os.path.exists(path)]


def _top_level_libs() -> list[str]:
    try:
        names = os.listdir("/")
    except OSError:
        return []
    return [f"/{name}" for name in names if fnmatch(name, "lib*")]


def protected_paths(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """Every path no sandbox may mount, as ``(path, what it is)``: each under its own spelling and its real path."""
    entries = [(path, "the host directory") for path in (*PROTECTED_DIRECTORIES, *_top_level_libs())]
    if data_dir is not None:
        entries.append((os.fspath(data_dir), "the runner's data directory"))
    entries += [(path, "the container engine socket") for path in _engine_sockets()]
    found: dict[str, str] = {}
    for path, what in entries:
        spelled = os.path.normpath(os.path.abspath(path))
        for candidate in (spelled, os.path.realpath(spelled)):
            found.setdefault(candidate, what)
    return list(found.items())


def _refuse_dangerous_source(source: str, real_source: str, field_name: str,
                             protected: list[tuple[str, str]]) -> None:
    """A sandbox must not get the host: neither its root directory, nor its system directories, kernel interfaces
    and engine state (:func:`protected_paths`), nor a socket (an engine's gives root on the host, others reach
    host daemons) or device, nor a directory holding any of these."""
    if real_source == "/":
        raise ValidationError(field_name, "must not be the host's root directory")
    shown = source if source == real_source else f"{source} (which resolves to {real_source})"
    for path, what in protected:
        if real_source == path:
            raise ValidationError(field_name, f"{shown} is {what} {path}, which {NEVER_MOUNT}")
        if _within(real_source, path):
            raise ValidationError(field_name, f"{shown} is inside {what} {path}, which {NEVER_MOUNT} "
                                              "(nor anything inside it)")
        if _within(path, real_source):
            raise ValidationError(field_name, f"{shown} contains {what} {path}, which {NEVER_MOUNT}")
    try:
        mode = os.stat(real_source).st_mode
    except OSError as exc:
        raise ValidationError(field_name, f"cannot be inspected: {exc.strerror}") from None
    if stat.S_ISSOCK(mode):
        raise ValidationError(field_name, "is a socket: a sandbox must not reach host daemons (the Docker socket "
                                          "would give it root on the host)")
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise ValidationError(field_name, f"{shown} is neither a directory nor a regular file (a device or FIFO)")


def _parse_image(raw: Any) -> str:
    image = _string(raw, "sandbox.image")
    if image.startswith("-"):
        raise ValidationError("sandbox.image", "must not start with '-'")
    if len(image) > MAX_IMAGE_LENGTH or not IMAGE_REFERENCE.fullmatch(image):
        raise ValidationError("sandbox.image", f"{image!r} is not a valid image reference (such as python:3.11)")
    return image


def _parse_command(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError("sandbox.command", "must be a non-empty list of strings")
    if len(raw) > MAX_COMMAND_ITEMS:
        raise ValidationError("sandbox.command", f"must have at most {MAX_COMMAND_ITEMS} items")
    command = tuple(_string(item, f"sandbox.command[{index}]", allow_empty=index > 0) for index, item in enumerate(raw))
    if command[0].startswith("-"):
        # After the image Docker stops reading options, but a program named '-x' is always a mistake or a trick.
        raise ValidationError("sandbox.command[0]", "must be a program, not something starting with '-'")
    return command


def _parse_env(raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ValidationError("sandbox.env", "must be an object of variable names to string values")
    if len(raw) > MAX_ENV_VARIABLES:
        raise ValidationError("sandbox.env", f"must have at most {MAX_ENV_VARIABLES} variables")
    pairs = []
    for name, value in raw.items():
        if not ENV_NAME.fullmatch(name):
            raise ValidationError("sandbox.env", f"{name!r} is not a valid variable name (letters, digits, _)")
        if name.startswith(RESERVED_ENV_PREFIX):
            raise ValidationError(f"sandbox.env.{name}", f"{RESERVED_ENV_PREFIX}* variables are set by the runner")
        field = f"sandbox.env.{name}"
        value = _string(value, field, allow_empty=True)
        if len(f"{name}={value}".encode("utf-8")) > MAX_ARG_BYTES:
            raise ValidationError(field, f"NAME=value is longer than {MAX_ARG_BYTES} bytes")
        pairs.append((name, value))
    return tuple(pairs)


def _parse_mounts(raw: Any, roots: tuple[str, ...], data_dir: str | os.PathLike[str] | None) -> tuple[Mount, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError("sandbox.mounts", "must be a list of {source, target, read_only} objects")
    if len(raw) > MAX_MOUNTS:
        raise ValidationError("sandbox.mounts", f"must have at most {MAX_MOUNTS} mounts")
    real_roots = tuple(os.path.realpath(root) for root in roots)
    protected = protected_paths(data_dir) if raw else []
    mounts: list[Mount] = []
    targets: dict[str, int] = {}
    for index, item in enumerate(raw):
        name = f"sandbox.mounts[{index}]"
        if not isinstance(item, dict):
            raise ValidationError(name, "must be an object with source, target and read_only")
        unknown = sorted(set(item) - MOUNT_KEYS)
        if unknown:
            raise ValidationError(f"{name}.{unknown[0]}", "is not a mount field (source, target, read_only)")
        source = _container_path(item.get("source"), f"{name}.source")
        if not os.path.exists(source):
            raise ValidationError(f"{name}.source", f"{source} does not exist on the host")
        # Mount what the path resolves to now, and check that against the rules: a symlink cannot lead out.
        real_source = os.path.realpath(source)
        _refuse_dangerous_source(source, real_source, f"{name}.source", protected)
        if real_roots and not any(_within(real_source, root) for root in real_roots):
            raise ValidationError(
                f"{name}.source", f"{source} is outside HOST_RUNNER_SANDBOX_MOUNT_ROOTS ({':'.join(roots)})"
            )
        target = posixpath.normpath(_container_path(item.get("target"), f"{name}.target"))
        if target == "/":
            raise ValidationError(f"{name}.target", "must not be the container's root directory")
        if target in targets:
            raise ValidationError(f"{name}.target", f"{target} is already mounted by sandbox.mounts[{targets[target]}]")
        targets[target] = index
        read_only = item.get("read_only", False)
        if not isinstance(read_only, bool):
            raise ValidationError(f"{name}.read_only", "must be true or false")
        mounts.append(Mount(real_source, target, read_only))
    return tuple(mounts)


def parse_sandbox(raw: Any, mount_roots: tuple[str, ...] = (),
                  data_dir: str | os.PathLike[str] | None = None) -> SandboxSpec:
    """Validate a submission's ``sandbox`` object; raise :class:`ValidationError` naming the first bad field.

    ``mount_roots``, when not empty, are the only host directories mounts may come from; ``data_dir`` (the
    runner's) is protected like the host's system directories."""
    if not isinstance(raw, dict):
        raise ValidationError("sandbox", "must be an object")
    unknown = sorted(set(raw) - SANDBOX_KEYS)
    if unknown:
        raise ValidationError(f"sandbox.{unknown[0]}", "is not a sandbox field (image, command, workdir, env, mounts)")
    if "image" not in raw:
        raise ValidationError("sandbox.image", "is required")
    if "command" not in raw:
        raise ValidationError("sandbox.command", "is required")
    image = _parse_image(raw["image"])
    command = _parse_command(raw["command"])
    workdir = raw.get("workdir")
    workdir = DEFAULT_WORKDIR if workdir is None else _container_path(workdir, "sandbox.workdir")
    return SandboxSpec(
        image=image,
        command=command,
        workdir=workdir,
        env=_parse_env(raw.get("env")),
        mounts=_parse_mounts(raw.get("mounts"), mount_roots, data_dir),
    )


def check_again(spec: SandboxSpec, mount_roots: tuple[str, ...] = (),
                data_dir: str | os.PathLike[str] | None = None) -> None:
    """Validate a stored spec again, by the rules of :func:`parse_sandbox` (today's, with today's settings), just
    before its container is created: the host may have changed since the submit, and a spec reloaded after a
    restart may predate a rule. Each mount's source, stored as the real path it resolved to at submit, must
    still be exactly that real path: one that resolves elsewhere now (a directory swapped for a symlink) is
    refused, never followed, even where the new target would be allowed. Raises :class:`ValidationError`."""
    raw = {
        "image": spec.image, "command": list(spec.command), "workdir": spec.workdir, "env": dict(spec.env),
        "mounts": [{"source": m.source, "target": m.target, "read_only": m.read_only} for m in spec.mounts],
    }
    checked = parse_sandbox(raw, mount_roots, data_dir)
    for index, (stored, now) in enumerate(zip(spec.mounts, checked.mounts)):
        if now.source != stored.source:
            raise ValidationError(f"sandbox.mounts[{index}].source",
                                  f"{stored.source} now resolves to {now.source}: it was replaced (by a symlink?) "
                                  "after the task was submitted")
