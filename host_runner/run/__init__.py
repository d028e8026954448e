"""Starting, watching and stopping a task's processes: what every task process gets (commands: environment,
program lookup, the process spec; its argv is its executor's, see host_runner.executors), the wrapper that
starts it (wrapper.py, wrapper.c, built at start by wrapper_build), its process group and run files
(process_group), stopping it (stopping: the group and its escaped daemons, for cancel and timeout), launchers, and
the reactor that watches exits and timers.

May import: host_runner.domain, host_runner.ops. wrapper.py imports nothing of the project: it runs as a script
(``python -I -S wrapper.py``), outside this package.
"""

from __future__ import annotations

from host_runner.run.commands import LaunchError, build_process_spec, substitute
from host_runner.run.launchers import AdoptedLauncher, Launched, Launcher, MockLauncher, ProcessLauncher
from host_runner.run.process_group import (
    ExitStatus, ProcessSpec, RunFiles, Spawned, read_exit_status, read_tail, signal_name, spawn, start_ticks,
)
from host_runner.run.reactor import Reactor, Timer
from host_runner.run.stopping import group_alive, group_members, signal_group, signal_tree
from host_runner.run.wrapper_build import prepare_wrapper

__all__ = [
    "LaunchError", "build_process_spec", "substitute", "AdoptedLauncher", "Launched", "Launcher",
    "MockLauncher", "ProcessLauncher", "ExitStatus", "ProcessSpec", "RunFiles", "Spawned", "read_exit_status",
    "read_tail", "signal_name", "spawn", "start_ticks", "Reactor", "Timer", "group_alive", "group_members",
    "signal_group", "signal_tree", "prepare_wrapper",
]
