"""docker-sandbox runs on the Docker engine: the docker client and the ``docker create`` argv (docker_cli), the
container launchers (containers), and the sweep of orphaned containers at start (sweep).

May import: host_runner.domain, host_runner.ops, host_runner.run, host_runner.store (the sweep asks which runs
still own their containers).
"""

from __future__ import annotations

from host_runner.sandbox.containers import adopted_container_launcher, container_launcher
from host_runner.sandbox.docker_cli import DockerCli, DockerError
from host_runner.sandbox.sweep import prepare_sandboxes

__all__ = [
    "adopted_container_launcher", "container_launcher", "DockerCli", "DockerError", "prepare_sandboxes",
]
