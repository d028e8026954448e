"""Helpers for tests that need a local Docker engine (stdlib only; plain functions, no pytest plugin).

    from support.docker import require_docker, ensure_busybox_image, remove_containers

    def test_something():
        require_docker()                   # skip locally, fail under CI=true, when no engine answers
        image = ensure_busybox_image()     # tiny local image; there is no registry to pull from here
        ...
        remove_containers("host-runner-test=1")

Start an engine with ``bash .ci/start-docker``. Every docker call here uses an argv list (never a shell).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DEFAULT_IMAGE", "container_exists", "containers_of", "docker", "docker_available", "ensure_busybox_image",
           "find_static_busybox", "own_instance_id", "remove_containers", "require_docker"]

DEFAULT_IMAGE = "host-runner-test/busybox:1"

# Applets the tests rely on; the image build fails loudly if the busybox binary lacks one of them.
REQUIRED_APPLETS = (
    "sh", "echo", "cat", "ls", "sleep", "id", "ip", "touch", "env", "pwd", "printf", "grep", "wc", "head",
    "true", "false", "kill", "ps",
)

# Where Debian's busybox-static puts its binary (checked before PATH, which may hold a dynamic busybox).
_BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox", "/sbin/busybox")

# The usual PATH; /usr/bin and /sbin are symlinks to /bin in this image.
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_known_images: set[str] = set()  # tags seen to exist in this process, so repeated calls cost nothing
_build_lock = threading.Lock()


def _docker(*args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def docker_available(timeout: float = 10.0) -> bool:
    """True if a Docker engine answers ``docker info`` within ``timeout`` seconds."""
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):  # no docker client, or an engine that hangs
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def require_docker() -> None:
    """Skip the calling test when no Docker engine answers; under CI=true, fail it instead, so a CI run
    without Docker can never pass by skipping every container test."""
    import pytest

    if docker_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("Docker engine not available but CI=true: .ci/run should have started it "
                    "(see /tmp/host-runner-dockerd.log, or run bash .ci/start-docker)")
    pytest.skip("Docker engine not available: run bash .ci/start-docker")


def _is_static_elf(path: Path) -> bool:
    """True if ``path`` is an ELF executable with no program interpreter (so it runs in an empty rootfs)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF":
        return False
    is64, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    for index in range(phnum):
        p_type, = struct.unpack_from(endian + "I", data, phoff + index * phentsize)
        if p_type == 3:  # PT_INTERP: needs a dynamic loader
            return False
    return True


def find_static_busybox() -> Path:
    """The path of a statically linked busybox binary (Debian's busybox-static package)."""
    candidates = [Path(path) for path in _BUSYBOX_CANDIDATES]
    try:  # ask dpkg where busybox-static put it, in case the layout differs
        listing = subprocess.run(["dpkg", "-L", "busybox-static"], capture_output=True, text=True, timeout=10,
                                 check=False).stdout
        candidates += [Path(line) for line in listing.splitlines() if line.endswith("/busybox")]
    except (OSError, subprocess.TimeoutExpired):
        pass
    on_path = shutil.which("busybox")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and _is_static_elf(candidate):
            return candidate
    raise RuntimeError("no statically linked busybox found: install busybox-static (bash .ci/start-docker does)")


def _build_rootfs(root: Path, busybox: Path) -> None:
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shutil.copy2(busybox, bin_dir / "busybox")
    (bin_dir / "busybox").chmod(0o755)
    listing = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, timeout=10, check=True)
    applets = {name.strip() for name in listing.stdout.split() if name.strip() and "/" not in name}
    missing = sorted(set(REQUIRED_APPLETS) - applets)
    if missing:
        raise RuntimeError(f"{busybox} lacks applets the tests need: {', '.join(missing)}")
    for name in sorted(applets - {"busybox"}):
        (bin_dir / name).symlink_to("busybox")
    # /usr/bin and /sbin lead to /bin, so `#!/usr/bin/env sh` and absolute paths like /sbin/ip work too.
    (root / "usr").mkdir()
    (root / "usr" / "bin").symlink_to("../bin")
    (root / "sbin").symlink_to("bin")
    for name in ("etc", "workspace", "workspace/project", "proc", "sys", "dev", "tmp"):
        (root / name).mkdir()
    # Just enough for `id` to print names and for `--user nobody` to resolve.
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    # Explicit modes, whatever the umask of whoever runs the tests.
    for path in (root, bin_dir, root / "usr", root / "etc", root / "workspace", root / "workspace" / "project",
                 root / "proc", root / "sys", root / "dev"):
        path.chmod(0o755)
    for path in (root / "etc" / "passwd", root / "etc" / "group"):
        path.chmod(0o644)
    (root / "tmp").chmod(0o1777)


def _image_exists(tag: str) -> bool:
    return _docker("image", "inspect", "--format", "{{.Id}}", tag, check=False, timeout=30).returncode == 0


def ensure_busybox_image(tag: str = DEFAULT_IMAGE) -> str:
    """Make sure the local image ``tag`` exists, building it from the static busybox binary if it does not.

    The image holds /bin/busybox with a symlink per applet, /tmp, /etc (passwd and group with root and
    nobody), /workspace/project, and empty /proc, /sys and /dev; its default command is ``sh``. Cheap after
    the first call; safe from many tests, threads and processes at once (a file lock serialises builds).
    Returns ``tag``.
    """
    if tag in _known_images:
        return tag
    with _build_lock:
        if tag in _known_images or _image_exists(tag):
            _known_images.add(tag)
            return tag
        lock_path = Path(tempfile.gettempdir()) / "host-runner-busybox-image.lock"
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # another pytest process may be building the same image
            try:
                if not _image_exists(tag):
                    _import_image(tag)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        _known_images.add(tag)
        return tag


def _import_image(tag: str) -> None:
    busybox = find_static_busybox()
    with tempfile.TemporaryDirectory(prefix="host-runner-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        root.mkdir()
        _build_rootfs(root, busybox)
        # tar | docker import, as two processes joined by a pipe (no shell). Owner 0 so the image does not
        # depend on who ran the tests.
        # tar's stderr goes to a file, not a pipe, so it can never block while docker import reads stdout.
        with tempfile.TemporaryFile() as tar_stderr:
            tar = subprocess.Popen(["tar", "-C", str(root), "--owner=0", "--group=0", "--numeric-owner",
                                    "-c", "."], stdout=subprocess.PIPE, stderr=tar_stderr)
            assert tar.stdout is not None
            try:
                imported = subprocess.run(["docker", "import", "--change", 'CMD ["sh"]',
                                           "--change", f"ENV PATH={_PATH}", "-", tag],
                                          stdin=tar.stdout, capture_output=True, text=True, timeout=120, check=False)
            finally:
                tar.stdout.close()  # tar gets SIGPIPE rather than blocking if docker import gave up early
                tar_rc = tar.wait(timeout=60)
            tar_stderr.seek(0)
            tar_err = tar_stderr.read().decode(errors="replace")
        if tar_rc != 0:
            raise RuntimeError(f"tar of the busybox rootfs failed ({tar_rc}): {tar_err.strip()}")
        if imported.returncode != 0:
            raise RuntimeError(f"docker import {tag} failed ({imported.returncode}): {imported.stderr.strip()}")


def remove_containers(label: str) -> list[str]:
    """Force-remove every container (running or not) carrying ``label`` ("key" or "key=value").
    Returns the ids removed; a container that vanished meanwhile is not an error."""
    listed = _docker("ps", "-aq", "--no-trunc", "--filter", f"label={label}", timeout=30)
    ids = listed.stdout.split()
    if ids:
        _docker("rm", "-f", *ids, timeout=60, check=False)
    return ids


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    """``docker ARGS`` whatever its exit code: tests assert on the result themselves."""
    return _docker(*args, check=False)


def container_exists(container_id: str) -> bool:
    """Whether the engine still has the container (running or not): what cancel and shutdown must remove."""
    listed = docker("ps", "--all", "--quiet", "--no-trunc", "--filter", f"id={container_id}")
    assert listed.returncode == 0, listed.stderr
    return container_id in listed.stdout.split()


def containers_of(instance_id: str) -> list[str]:
    """The ids of every container the runner instance ``instance_id`` labelled as its own."""
    # Imported here, not at the top, so that bench/ can use this module without the service on sys.path.
    from host_runner.sandbox.docker_cli import LABEL_INSTANCE

    listed = docker("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={LABEL_INSTANCE}={instance_id}")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def own_instance_id() -> Iterator[str]:
    """For a fixture (``yield from``): a runner instance id of the test's own; every container carrying it is
    removed afterwards."""
    from host_runner.sandbox.docker_cli import LABEL_INSTANCE  # here: bench/ uses this module without the service

    instance = f"test-{uuid.uuid4().hex[:12]}"
    yield instance
    if docker_available():
        remove_containers(f"{LABEL_INSTANCE}={instance}")
