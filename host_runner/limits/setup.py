"""At start: choose the cgroup backend (HOST_RUNNER_CGROUPS), refuse to start when a limit is set that it
cannot enforce, and sweep the task cgroups that no running task owns (left by a crash).

``auto`` prefers cgroup v2 when its hierarchy offers controllers (a real v2 host), else v1 where its hierarchies
are writable (this kind of CI machine), else v2 without controllers (membership and cgroup.kill, no limits), else
none: tasks run as before, and /health and the start log say why ("cgroups: unavailable (reason)").
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time

from host_runner.domain.limits import CgroupTree, cgroup_name
from host_runner.limits.files import CgroupError, read_mounts
from host_runner.limits.v1 import V1Tree
from host_runner.limits.v2 import V2Tree
from host_runner.ops.config import Config, ConfigError
from host_runner.store.sqlite import Store

logger = logging.getLogger(__name__)

#: How long the sweep at start waits for the processes of one orphaned task cgroup to die.
SWEEP_WAIT_SECONDS = 5.0
#: Which setting needs which controller (v1 and v2 name them alike).
NEEDS = (("HOST_RUNNER_TASK_MEMORY_MAX", "memory"), ("HOST_RUNNER_TASK_PIDS_MAX", "pids"),
         ("HOST_RUNNER_TASK_CPUS", "cpu"))


def parent_name(config: Config) -> str:
    """This runner's parent cgroup: one per instance (data directory), so that runners sharing a host (or a
    test run's many runners) never sweep each other's task cgroups."""
    instance = config.instance_id or hashlib.sha256(str(config.data_dir).encode()).hexdigest()[:16]
    return f"host-runner-{instance}"


def _open(config: Config) -> tuple[V1Tree | V2Tree | None, str]:
    """The backend HOST_RUNNER_CGROUPS asks for, or None and why not."""
    try:
        mounts = read_mounts()
    except OSError as exc:
        return None, f"cannot read the cgroup mounts: {exc}"
    name = parent_name(config)
    problems: list[str] = []
    order = {"v2": ("v2",), "v1": ("v1",), "auto": ("v2-full", "v1", "v2")}[config.cgroups]
    for choice in order:
        try:
            tree = V1Tree.open(mounts, config.cgroup_root, name) if choice == "v1" else \
                V2Tree.open(mounts, config.cgroup_root, name)
        except (CgroupError, OSError) as exc:
            problems.append(f"{choice[:2]}: {exc.strerror or exc}")
            continue
        if choice == "v2-full" and not tree.controllers():
            tree.close()  # the unified hierarchy has no controllers here (a hybrid host): v1 limits first
            continue
        return tree, ""
    return None, "; ".join(dict.fromkeys(problems)) or "no cgroup hierarchy found"


def prepare_cgroups(config: Config, store: Store) -> Config:
    """Settle ``config.cgroup_tree`` and ``config.cgroup_note``; ConfigError when a set limit cannot be enforced."""
    if config.cgroups == "off":
        return dataclasses.replace(config, cgroup_tree=None, cgroup_note="cgroups: off (HOST_RUNNER_CGROUPS=off)")
    tree, reason = _open(config)
    if tree is None:
        for setting, _ in NEEDS:
            if getattr(config, _field(setting)):
                raise ConfigError(f"{setting} is set, but task cgroups are unavailable here: {reason}")
        note = f"cgroups: unavailable ({reason})"
        logger.warning("%s; tasks run without limits, and a cancel stops what the wrapper can see", note)
        return dataclasses.replace(config, cgroup_tree=None, cgroup_note=note)
    for setting, controller in NEEDS:
        if getattr(config, _field(setting)) and controller not in tree.controllers():
            tree.close()
            raise ConfigError(f"{setting} is set, but the {controller} controller is not available to task cgroups "
                              f"({tree.description} at {tree.location}; under systemd use Delegate=yes, see "
                              f"deploy/host-runner.service, or set HOST_RUNNER_CGROUP_ROOT)")
    sweep_orphans(tree, store)
    note = f"cgroups: {tree.description}"
    logger.info("%s under %s", note, tree.location)
    return dataclasses.replace(config, cgroup_tree=tree, cgroup_note=note)


def _field(setting: str) -> str:
    return setting.removeprefix("HOST_RUNNER_").lower()


def sweep_orphans(tree: CgroupTree, store: Store) -> list[str]:
    """Kill and remove the task cgroups of this runner that no running task owns; return their names.

    Runs before the supervisor re-adopts anything: a running record's cgroup is kept for its adoption."""
    owned = {cgroup_name(record.task_id, record.run_id) for record in store.active() if record.status == "running"}
    removed = []
    for name in tree.names():
        if name in owned:
            continue
        cgroup = tree.find(name)
        if cgroup is None:
            continue
        deadline = time.monotonic() + SWEEP_WAIT_SECONDS
        while cgroup.pids() and time.monotonic() < deadline:  # at start, before any actor: waiting is fine here
            cgroup.kill()
            time.sleep(0.01)
        if not cgroup.remove():  # killed processes take a moment to leave; the next start tries again
            logger.warning("orphaned task cgroup %s still has processes; left for the next start", name)
            continue
        removed.append(name)
    if removed:
        logger.info("removed %d orphaned task cgroup(s)", len(removed))
    return removed
