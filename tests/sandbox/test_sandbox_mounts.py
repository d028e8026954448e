"""Sandbox mounts the runner never allows, whatever HOST_RUNNER_SANDBOX_MOUNT_ROOTS says: the host's system
directories, kernel interfaces, engine state and sockets, and its own data directory; anything inside them, any
directory containing one, and any path (symlink, ``..``) resolving to one. Also the second check of a stored
spec (:func:`check_again`), which the launcher runs just before ``docker create``.

The real-engine side (a source swapped for a symlink while the task is queued, and after a restart) is in
tests/sandbox/test_docker.py."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from host_runner.domain.errors import ValidationError
from host_runner.domain.sandbox_spec import SandboxSpec, check_again, parse_sandbox, protected_paths
from host_runner.ops.config import DockerSettings
from support.runner import Runner

NEVER = "sandboxes may never mount"

#: What the issue lists, spelled as users would.
REQUIRED = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/root", "/proc",
            "/sys", "/dev", "/run", "/var/run", "/var/lib/docker")
#: Inside a protected directory (each exists on any Linux host the tests run on).
INSIDE = ("/etc/passwd", "/etc/ssl", "/usr/bin", "/usr/bin/env", "/proc/self", "/proc/1/root/etc", "/sys/kernel",
          "/dev/null", "/dev/shm", "/var/run/lock", "/run/lock")
#: Directories that contain a protected one.
CONTAINING = ("/var", "/var/lib")


def body(*sources: str, **extra: Any) -> dict[str, Any]:
    return {"image": "busybox", "command": ["true"],
            "mounts": [{"source": source, "target": f"/m{index}", **extra} for index, source in enumerate(sources)]}


def refused(source: str, roots: tuple[str, ...] = (), data_dir: Path | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        parse_sandbox(body(source), roots, data_dir)
    assert raised.value.field == "sandbox.mounts[0].source"
    return raised.value


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "data"
    path.mkdir(parents=True)
    (path / "host_runner.db").write_text("")
    return path


@pytest.fixture(autouse=True)
def no_engine_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test says which engine sockets exist beyond the usual places."""
    for name in ("DOCKER_HOST", "CONTAINERD_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    yield


# --- the list itself -------------------------------------------------------------------------------------------
def test_every_listed_path_is_protected_under_its_spelling_and_its_real_path(data_dir: Path):
    protected = dict(protected_paths(data_dir))
    for path in REQUIRED:
        assert path in protected, path
        assert os.path.realpath(path) in protected, path  # /var/run -> /run, /bin -> /usr/bin ...
    assert protected[str(data_dir)] == "the runner's data directory"
    for name in os.listdir("/"):
        if name.startswith("lib"):
            assert f"/{name}" in protected


# --- refused at submit -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["/", *[path for path in REQUIRED if os.path.exists(path)]])
@pytest.mark.parametrize("roots", [(), ("/",)], ids=["no-roots", "roots=/"])
def test_a_protected_directory_is_refused(source: str, roots: tuple[str, ...], data_dir: Path):
    error = refused(source, roots, data_dir)
    assert NEVER in error.message or error.message == "must not be the host's root directory"


@pytest.mark.parametrize("source", [path for path in INSIDE if os.path.exists(path)])
@pytest.mark.parametrize("roots", [(), ("/",)], ids=["no-roots", "roots=/"])
def test_anything_inside_a_protected_directory_is_refused(source: str, roots: tuple[str, ...], data_dir: Path):
    error = refused(source, roots, data_dir)
    assert NEVER in error.message, error.message
    assert "is inside" in error.message or " is the host directory" in error.message


@pytest.mark.parametrize("source", CONTAINING)
def test_a_directory_containing_a_protected_one_is_refused(source: str, data_dir: Path):
    error = refused(source, ("/",), data_dir)
    assert f"{source} contains the host directory /var/" in error.message


def test_mount_roots_never_open_a_protected_directory(data_dir: Path):
    refused("/etc", ("/",), data_dir)
    refused("/etc/passwd", ("/etc",), data_dir)  # even a root inside it does not
    refused("/usr/bin", ("/usr",), data_dir)


def test_both_spellings_of_var_run_are_refused(tmp_path: Path, data_dir: Path):
    assert "/run" in refused("/var/run", (), data_dir).message
    refused("/run", (), data_dir)
    link = tmp_path / "to-var-run"
    link.symlink_to("/var/run")
    assert "/run" in refused(str(link), (), data_dir).message


def test_symlinks_and_dot_dot_into_a_protected_directory_are_refused(tmp_path: Path, data_dir: Path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "to-etc").symlink_to("/etc")
    (work / "to-usr-bin").symlink_to("/usr/bin")
    (work / "to-var").symlink_to("/var")
    for source in (work / "to-etc", work / "to-usr-bin", work / "to-var"):
        error = refused(str(source), (str(work),), data_dir)
        assert f"{source} (which resolves to " in error.message and NEVER in error.message
    error = refused(f"{work}/{'../' * 30}etc", (), data_dir)
    assert "(which resolves to /etc) is the host directory /etc" in error.message


def test_the_data_directory_is_refused_inside_and_around(tmp_path: Path, data_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    link = tmp_path / "to-data"
    link.symlink_to(data_dir)
    for source in (data_dir, data_dir / "host_runner.db", link):
        assert "the runner's data directory" in refused(str(source), (), data_dir).message
    for source in (data_dir.parent, tmp_path):
        error = refused(str(source), (), data_dir)
        assert error.message == f"{source} contains the runner's data directory {data_dir}, which {NEVER}"
    # Given relative, as Config(data_dir=Path(".host-runner")) would be.
    monkeypatch.chdir(data_dir.parent)
    assert "the runner's data directory" in refused(str(data_dir), (), Path("data")).message


def test_engine_sockets_and_the_directories_holding_them_are_refused(tmp_path: Path, data_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    engine = tmp_path / "engine"
    engine.mkdir()
    sockets = []
    for name, variable, value in (("docker.sock", "DOCKER_HOST", "unix://{}"),
                                  ("containerd.sock", "CONTAINERD_ADDRESS", "{}")):
        path = engine / name
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        sockets.append(server)
        monkeypatch.setenv(variable, value.format(path))
        assert "the container engine socket" in refused(str(engine), (), data_dir).message
        monkeypatch.delenv(variable)
    home = tmp_path / "home"
    (home / ".docker" / "run").mkdir(parents=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(home / ".docker" / "run" / "docker.sock"))
    sockets.append(server)
    monkeypatch.setenv("HOME", str(home))
    error = refused(str(home), (), data_dir)
    assert error.message.endswith(f"contains the container engine socket {home}/.docker/run/docker.sock, which "
                                  f"{NEVER}")
    # Any socket, an engine's or not, and devices or FIFOs are no mount sources either.
    assert refused(str(engine / "docker.sock"), (), data_dir).message.startswith("is a socket")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "neither a directory nor a regular file" in refused(str(fifo), (), data_dir).message
    for server in sockets:
        server.close()


def test_ordinary_directories_stay_allowed(tmp_path: Path, data_dir: Path):
    home = tmp_path / "home" / "user"
    (home / "project").mkdir(parents=True)
    (home / "notes.txt").write_text("x")
    sources = [home, home / "project", home / "notes.txt", tmp_path / "home"]
    sources += [Path(path) for path in ("/var/tmp", "/var/log") if os.path.isdir(path)]
    spec = parse_sandbox(body(*map(str, sources)), ("/",), data_dir)
    assert [mount.source for mount in spec.mounts] == [os.path.realpath(source) for source in sources]


def test_the_field_names_the_offending_mount(tmp_path: Path, data_dir: Path):
    with pytest.raises(ValidationError) as raised:
        parse_sandbox(body(str(tmp_path / "state"), "/etc"), (), None)  # without a data dir, state/ is fine
    assert raised.value.field == "sandbox.mounts[1].source"


# --- checked again before the container is created -------------------------------------------------------------
def stored(spec: SandboxSpec) -> SandboxSpec:
    """The spec as a restarted runner reads it back from the store."""
    return SandboxSpec.from_json(json.loads(json.dumps(asdict(spec))))


def test_check_again_passes_an_unchanged_spec(tmp_path: Path, data_dir: Path):
    (tmp_path / "src").mkdir()
    spec = parse_sandbox({**body(str(tmp_path / "src")), "env": {"A": "1"}, "workdir": "/w"}, (), data_dir)
    check_again(stored(spec), (), data_dir)


@pytest.mark.parametrize("target", ["/etc", "/var/run", "data"])
def test_check_again_refuses_a_source_swapped_for_a_symlink_to_a_protected_path(tmp_path: Path, data_dir: Path,
                                                                               target: str):
    source = tmp_path / "src"
    source.mkdir()
    spec = stored(parse_sandbox(body(str(source)), (), data_dir))
    source.rmdir()
    source.symlink_to(data_dir if target == "data" else target)
    with pytest.raises(ValidationError) as raised:
        check_again(spec, (), data_dir)
    assert raised.value.field == "sandbox.mounts[0].source"
    assert f"{source} (which resolves to " in raised.value.message and NEVER in raised.value.message


def test_check_again_refuses_a_source_that_resolves_elsewhere_now(tmp_path: Path, data_dir: Path):
    """Swapped for a symlink to a place that would be allowed: refused all the same, never followed."""
    source = tmp_path / "a" / "src"
    source.mkdir(parents=True)
    other = tmp_path / "other" / "src"
    other.mkdir(parents=True)
    spec = stored(parse_sandbox(body(str(source)), (), data_dir))
    (tmp_path / "a" / "src").rmdir()
    (tmp_path / "a").rmdir()
    (tmp_path / "a").symlink_to(tmp_path / "other")  # a parent swapped, not the source itself
    with pytest.raises(ValidationError) as raised:
        check_again(spec, (), data_dir)
    assert raised.value.message == (f"{source} now resolves to {other}: it was replaced (by a symlink?) after the "
                                    "task was submitted")


def test_check_again_applies_todays_rules_to_a_spec_stored_before_them(tmp_path: Path, data_dir: Path):
    """A row written by a runner without these rules (or with wider mount roots) is refused when it would run."""
    old = SandboxSpec.from_json({"image": "busybox", "command": ["true"],
                                 "mounts": [{"source": "/etc", "target": "/host", "read_only": False}]})
    with pytest.raises(ValidationError) as raised:
        check_again(old, (), data_dir)
    assert (raised.value.field, raised.value.message) == (
        "sandbox.mounts[0].source", f"/etc is the host directory /etc, which {NEVER}")
    (tmp_path / "src").mkdir()
    spec = stored(parse_sandbox(body(str(tmp_path / "src")), (), data_dir))
    with pytest.raises(ValidationError) as raised:
        check_again(spec, (str(tmp_path / "elsewhere"),), data_dir)  # the mount roots narrowed since
    assert "HOST_RUNNER_SANDBOX_MOUNT_ROOTS" in raised.value.message
    (tmp_path / "src").rmdir()
    with pytest.raises(ValidationError) as raised:
        check_again(spec, (), data_dir)
    assert raised.value.message == f"{tmp_path / 'src'} does not exist on the host"


# --- through the API (no mount roots set: the reproduced defect) -----------------------------------------------
API_SOURCES: list[tuple[str, Callable[[Path, Path], str]]] = [
    ("/etc writable", lambda tmp, data: "/etc"),
    ("/etc/ssl", lambda tmp, data: "/etc/ssl"),
    ("/usr/bin", lambda tmp, data: "/usr/bin"),
    ("/var (holds /var/run)", lambda tmp, data: "/var"),
    ("/var/run", lambda tmp, data: "/var/run"),
    ("/proc", lambda tmp, data: "/proc"),
    ("/dev", lambda tmp, data: "/dev"),
    ("/root", lambda tmp, data: "/root"),
    ("the docker socket (or /run without one)",
     lambda tmp, data: "/var/run/docker.sock" if os.path.exists("/var/run/docker.sock") else "/run"),
    ("the data dir", lambda tmp, data: str(data)),
    ("its database", lambda tmp, data: str(data / "host_runner.db")),
    ("the data dir's parent", lambda tmp, data: str(data.parent)),
    ("a symlink to /etc", lambda tmp, data: str(tmp / "to-etc")),
    ("/etc by ..", lambda tmp, data: f"{tmp}/{'../' * 30}etc"),
]


@pytest.mark.parametrize("roots", [(), ("/",)], ids=["no-roots", "roots=/"])
@pytest.mark.parametrize("name,source", API_SOURCES, ids=[name for name, _ in API_SOURCES])
def test_the_api_answers_422_naming_the_mount(make_runner: Callable[..., Runner], tmp_path: Path, name: str,
                                              source: Callable[[Path, Path], str], roots: tuple[str, ...]):
    (tmp_path / "to-etc").symlink_to("/etc")
    runner = make_runner(docker=DockerSettings(mount_roots=roots, pull="never"))
    data = runner.config.data_dir
    result = runner.submit(task_id="t-mount", execution_mode="docker-sandbox",
                           sandbox=body(source(tmp_path, data), read_only=False))
    assert result.status_code == 422, result.text
    assert result.json["field"] == "sandbox.mounts[0].source"
    assert NEVER in result.json["detail"] or "root directory" in result.json["detail"], result.json
    assert runner.client.simulate_get("/tasks").json["count"] == 0
