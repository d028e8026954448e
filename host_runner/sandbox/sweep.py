"""At start: settle this runner's instance id, and remove the containers of its sandbox runs that no running
task owns any more (left behind by a crash)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from host_runner.ops.config import Config
from host_runner.sandbox.containers import docker_cli
from host_runner.sandbox.docker_cli import LABEL_INSTANCE, DockerCli, DockerError, load_instance_id
from host_runner.store.sqlite import Store

logger = logging.getLogger(__name__)

#: The most a sweep at start may wait for the engine: a hung daemon must not keep the runner from starting.
SWEEP_TIMEOUT_SECONDS = 30.0


def sweep_orphans(cli: DockerCli, instance_id: str, store: Store) -> list[str]:
    """Remove this runner's containers that no running task owns; return their ids.

    A container is kept only when the store says its run is ``running`` with exactly this container: the
    supervisor re-adopts those. Anything else (the run ended, was never recorded as started, or is unknown) was
    left behind by a crash."""
    try:
        containers = cli.labelled(f"{LABEL_INSTANCE}={instance_id}")
    except DockerError as exc:
        logger.warning("could not look for orphaned containers: %s", exc)
        return []
    orphans = []
    for container in containers:
        record = store.get(container["task_id"], container["run_id"]) if container["task_id"] else None
        if record is not None and record.status == "running" and record.container_id == container["id"]:
            continue
        orphans.append(container["id"])
    if orphans and cli.remove_quietly(*orphans):
        logger.info("removed %d orphaned container(s): %s", len(orphans), " ".join(c[:12] for c in orphans))
    return orphans


def prepare_sandboxes(config: Config, store: Store, environment: Mapping[str, str], *, mode: str) -> Config:
    """At start, before any task is re-adopted or started: settle this runner's instance id (the returned config
    carries it) and remove orphaned containers. Skipped when this runner never ran a task of execution mode
    ``mode`` (the one that runs containers: host_runner.modes.docker_sandbox calls this) and its instance id is
    its own, so runners that do not use Docker never call it."""
    explicit = config.instance_id is not None
    config = dataclasses.replace(config, instance_id=config.instance_id or load_instance_id(config.data_dir))
    assert config.instance_id is not None
    if explicit or store.has_runs(mode):
        cli = docker_cli(config, environment)
        cli.timeout = min(cli.timeout, SWEEP_TIMEOUT_SECONDS)
        try:
            cli.resolve()
        except DockerError as exc:
            logger.warning("not looking for orphaned containers: %s", exc)
            return config
        sweep_orphans(cli, config.instance_id, store)
    return config
