"""The Docker command-line client, always called with argv lists, and the ``docker create`` line of a sandbox.

Containers carry three labels (task id, run id, this runner's instance id) so that a runner finds its own
containers again after a crash, and never touches another runner's containers on the same engine.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from host_runner.domain.sandbox_spec import Mount, SandboxSpec
from host_runner.ops.config import SECRET_VARIABLES, DockerSettings
from host_runner.ops.setting_parsers import INSTANCE_ID
from host_runner.run.commands import LaunchError

logger = logging.getLogger(__name__)

LABEL_TASK = "host-runner.task-id"
LABEL_RUN = "host-runner.run-id"
LABEL_INSTANCE = "host-runner.instance"
#: Variables the runner gives every container; their values travel in the docker client's environment (``--env
#: NAME`` copies them), so a 128 KiB prompt never appears in a command line.
PASSED_VARIABLES = ("HOST_RUNNER_TASK_ID", "HOST_RUNNER_RUN_ID", "HOST_RUNNER_PROMPT")

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_DAEMON_DOWN = ("cannot connect to the docker daemon", "error during connect", "is the docker daemon running",
                "permission denied while trying to connect")
_IMAGE_MISSING = ("no such image", "unable to find image", "pull access denied", "manifest unknown",
                  "repository does not exist", "not found: manifest")


class DockerError(LaunchError):
    """A docker command failed or could not run; the message is fit for a task record."""


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (docker's error is usually there), '' if none."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def explain_failure(command: str, stderr: str, image: str | None = None) -> str:
    """A clear message for a failed docker command: daemon unreachable, image missing, or docker's own words."""
    lowered = stderr.lower()
    detail = last_line(stderr) or "no error message"
    if any(marker in lowered for marker in _DAEMON_DOWN):
        return f"docker daemon not reachable: {detail}"
    if image is not None and any(marker in lowered for marker in _IMAGE_MISSING):
        return f"docker image {image} is not available: {detail}"
    return f"docker {command} failed: {detail}"


def client_environment(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The docker client's environment: the runner's (DOCKER_HOST and friends included) minus its secrets."""
    env = {name: value for name, value in base.items() if name not in SECRET_VARIABLES}
    env.update(extra or {})
    return env


class DockerCli:
    """Runs ``docker`` subcommands with a timeout; never through a shell."""

    def __init__(self, binary: str, env: Mapping[str, str], timeout: float) -> None:
        self.binary = binary
        self.env = dict(env)
        self.timeout = timeout

    def resolve(self) -> str:
        """The docker binary's path; :class:`DockerError` if there is none."""
        if os.sep in self.binary:
            if os.path.isfile(self.binary) and os.access(self.binary, os.X_OK):
                return self.binary
        else:
            found = shutil.which(self.binary, path=self.env.get("PATH", os.defpath))
            if found:
                return found
        raise DockerError(f"docker binary not found ({self.binary!r}; set HOST_RUNNER_DOCKER_BIN)")

    def run(self, args: Sequence[str], *, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS``; the result whatever its exit code, :class:`DockerError` if it did not finish."""
        limit = self.timeout if timeout is None else timeout
        try:
            return subprocess.run(
                [self.resolve(), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                env=self.env, timeout=limit, check=False,
            )
        except subprocess.TimeoutExpired:
            raise DockerError(f"docker {args[0]} did not finish within {limit:g} s") from None
        except OSError as exc:
            raise DockerError(f"cannot run docker: {exc.strerror or exc}") from None

    def create(self, args: Sequence[str], name: str, image: str) -> str:
        """``docker create`` (``args`` start with ``create``); returns the full container id."""
        for attempt in (1, 2):
            try:
                result = self.run(args)
            except DockerError:
                self.remove_quietly(name)  # it may have been created just before the timeout
                raise
            if result.returncode == 0:
                container_id = last_line(result.stdout)
                if re.fullmatch(r"[0-9a-f]{64}", container_id):
                    return container_id
                self.remove_quietly(name)
                raise DockerError(f"docker create printed no container id: {container_id!r}")
            # A container of this very run (the name includes the runner instance) left by a crash: replace it.
            if attempt == 1 and "is already in use" in result.stderr:
                logger.info("removing the stale container %s before creating it again", name)
                self.remove_quietly(name)
                continue
            raise DockerError(explain_failure("create", result.stderr, image))
        raise AssertionError("unreachable")

    def inspect_state(self, container: str) -> dict[str, Any] | None:
        """The container's ``State`` (Status, ExitCode, OOMKilled, Error, StartedAt…), None if it does not exist."""
        result = self.run(["inspect", "--type", "container", "--format", "{{json .State}}", "--", container])
        if result.returncode != 0:
            if "no such" in result.stderr.lower():
                return None
            raise DockerError(explain_failure("inspect", result.stderr))
        state: dict[str, Any] = json.loads(result.stdout)
        return state

    def remove(self, *containers: str) -> None:
        """``docker rm -f``: stops and removes; a container that is already gone is not an error."""
        if not containers:
            return
        result = self.run(["rm", "--force", "--", *containers])
        if result.returncode == 0:
            return
        lines = [line.lower() for line in result.stderr.splitlines() if line.strip()]
        if all("no such container" in line or "already in progress" in line for line in lines):
            if any("already in progress" in line for line in lines):
                # Another rm (a cancel racing the client's exit) is removing it: done only once it is gone,
                # so that a terminal record never describes a container that still exists.
                self._wait_until_gone(containers)
            return
        raise DockerError(explain_failure("rm", result.stderr))

    def _wait_until_gone(self, containers: tuple[str, ...]) -> None:
        deadline = time.monotonic() + self.timeout
        for container in containers:
            while self.inspect_state(container) is not None:
                if time.monotonic() > deadline:
                    raise DockerError(f"container {container} is still being removed after {self.timeout:g} s")
                time.sleep(0.1)

    def remove_quietly(self, *containers: str) -> bool:
        """:meth:`remove`, logging instead of raising; True if it worked."""
        try:
            self.remove(*containers)
            return True
        except DockerError as exc:
            logger.warning("could not remove container %s: %s", " ".join(containers), exc)
            return False

    def kill(self, container: str, signal_name: str) -> bool:
        """Signal the container's main process; False if it is not running (not started yet, or over)."""
        result = self.run(["kill", "--signal", signal_name, "--", container])
        if result.returncode == 0:
            return True
        if "is not running" in result.stderr or "no such container" in result.stderr.lower():
            return False
        raise DockerError(explain_failure("kill", result.stderr))

    def labelled(self, label: str) -> list[dict[str, str]]:
        """Every container (running or not) carrying ``label``: their ids and our three labels."""
        template = "\t".join(("{{.ID}}", *(f'{{{{.Label "{name}"}}}}' for name in (LABEL_TASK, LABEL_RUN))))
        result = self.run(["ps", "--all", "--no-trunc", "--filter", f"label={label}", "--format", template])
        if result.returncode != 0:
            raise DockerError(explain_failure("ps", result.stderr))
        found = []
        for line in result.stdout.splitlines():
            if line.strip():
                container_id, task_id, run_id = (line.split("\t") + ["", ""])[:3]
                found.append({"id": container_id, "task_id": task_id, "run_id": run_id})
        return found


def container_name(instance_id: str, task_id: str, run_id: str) -> str:
    """``host-runner-<task_id>-<run_id, 12 chars>-<8 hex digits>``: readable, valid for Docker, and unique per
    runner instance and run (the digits hash all three, so sanitising or cutting ids never makes names collide)."""
    digest = hashlib.sha256("\0".join((instance_id, task_id, run_id)).encode()).hexdigest()[:8]
    task = _UNSAFE_NAME_CHARS.sub("_", task_id)[:64]
    run = _UNSAFE_NAME_CHARS.sub("_", run_id)[:12]
    return f"host-runner-{task}-{run}-{digest}"


def mount_option(mount: Mount) -> str:
    """A ``--mount`` value. Docker reads it as CSV, so every field is quoted: a comma in a path stays a comma."""
    fields = ["type=bind", f"source={mount.source}", f"target={mount.target}"]
    if mount.read_only:
        fields.append("readonly")
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="").writerow(fields)
    return buffer.getvalue()


def _unlimited(size: str) -> bool:
    return float(size.rstrip("bkmg") or 0) == 0


def create_args(settings: DockerSettings, sandbox: SandboxSpec, name: str, labels: Mapping[str, str]) -> list[str]:
    """The arguments of ``docker create`` for a sandbox: options (hardening first), ``--``, image, command."""
    args = ["create", "--name", name]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    args += ["--pull", settings.pull]
    if settings.read_only:
        args.append("--read-only")
    for tmpfs in settings.tmpfs:
        args += ["--tmpfs", tmpfs]
    if settings.cap_drop_all:
        args += ["--cap-drop", "ALL"]
    if settings.no_new_privileges:
        args += ["--security-opt", "no-new-privileges"]
    args += ["--network", settings.network]
    if settings.pids_limit:
        args += ["--pids-limit", str(settings.pids_limit)]
    if not _unlimited(settings.memory):
        args += ["--memory", settings.memory]
    if settings.cpus:
        args += ["--cpus", f"{settings.cpus:g}"]
    if settings.init:
        args.append("--init")
    args += ["--workdir", sandbox.workdir]
    for variable in PASSED_VARIABLES:
        args += ["--env", variable]
    for variable, value in sandbox.env:
        args += ["--env", f"{variable}={value}"]
    for mount in sandbox.mounts:
        args += ["--mount", mount_option(mount)]
    return [*args, "--", sandbox.image, *sandbox.command]


def load_instance_id(data_dir: Path) -> str:
    """This runner's instance id, kept in ``<data dir>/instance_id`` so that it survives restarts."""
    path = data_dir / "instance_id"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = None
    if existing and INSTANCE_ID.fullmatch(existing):
        return existing
    if existing is not None:
        logger.warning("%s holds no valid instance id; making a new one", path)
        path.unlink(missing_ok=True)
    new = uuid.uuid4().hex[:16]
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f".instance_id.{new}"
    temporary.write_text(new + "\n")
    try:
        # link() fails if the file exists: two processes starting on one data directory agree on the first id,
        # and nobody ever reads a half-written file.
        os.link(temporary, path)
    except FileExistsError:
        new = path.read_text().strip()
    finally:
        temporary.unlink()
    return new
