"""Starting and stopping the whole actor system in a fixed order (and the reverse order on the way down)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import wait as wait_for_futures
import pykka

from actors.callback_sender import CallbackActor
from actors.journal import Journal
from actors.messages import PrepareShutdown
from actors.retention import RetentionActor
from actors.worktree_registry import WorktreeRegistryActor
from actors.service import RunnerService
from actors.supervisor import TASK_STOP_SECONDS, SupervisorActor
from actors.task import TaskServices
from host_runner.limits import prepare_cgroups
from host_runner.modes import prepare_at_start
from host_runner.ops.config import Config
from host_runner.ops.permissions import keep_files_private, private_directory
from host_runner.run.reactor import Reactor
from host_runner.run.wrapper_build import prepare_wrapper
from host_runner.store.sqlite import Store

logger = logging.getLogger(__name__)

#: The whole stop, inside gunicorn's graceful timeout (30 s, gunicorn.conf.py).
STOP_SECONDS = 25.0


class ActorSystem:
    """The store, the reactor thread and the long-lived actors of one runner process; :attr:`service` is what
    the API (or any other front) talks to while they run."""

    def __init__(self, config: Config, environment: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.environment = dict(os.environ if environment is None else environment)
        self.store: Store | None = None
        self.reactor: Reactor | None = None
        self.registry: pykka.ActorRef[WorktreeRegistryActor] | None = None
        self.callbacks: pykka.ActorRef[CallbackActor] | None = None
        self.retention: pykka.ActorRef[RetentionActor] | None = None
        self.supervisor: pykka.ActorRef[SupervisorActor] | None = None
        self.service: RunnerService | None = None

    @classmethod
    def start(cls, config: Config, environment: Mapping[str, str] | None = None) -> ActorSystem:
        system = cls(config, environment)
        system._start()
        return system

    def _start(self) -> None:
        keep_files_private()  # before the first file: the database, its log and every run's files are the user's
        private_directory(self.config.data_dir)
        self.config.runs_dir.mkdir(exist_ok=True)
        self.store = Store(self.config.db_path)
        # Before the supervisor re-adopts anything: the sweep keeps exactly the containers it will adopt.
        self.config = prepare_at_start(self.config, self.store, self.environment)
        self.config = prepare_wrapper(self.config)
        # Also before re-adoption: the orphan sweep keeps exactly the cgroups of the runs it will adopt.
        self.config = prepare_cgroups(self.config, self.store)
        self.reactor = Reactor()
        self.reactor.start()
        self.registry = WorktreeRegistryActor.start()
        self.callbacks = CallbackActor.start(self.config, self.reactor, self.store)
        # Every transition with callback events is committed here; its listeners hear of each event.
        journal = Journal(self.store, [self.callbacks])
        services = TaskServices(
            config=self.config, store=self.store, reactor=self.reactor, supervisor=None,  # type: ignore[arg-type]
            journal=journal, environment=self.environment,
        )
        self.supervisor = SupervisorActor.start(services, self.registry)
        self.retention = RetentionActor.start(self.config, self.store, self.reactor)
        self.service = RunnerService(self.supervisor, self.config, registry=self.registry, callbacks=self.callbacks,
                                     retention=self.retention, events=self.store.events)
        logger.info("host-runner started: executor=%s data_dir=%s max_concurrency=%d %s", self.config.executor,
                    self.config.data_dir, self.config.max_concurrency, self.config.cgroup_note)

    def stop(self) -> None:
        """Stop in reverse start order.

        By default (``HOST_RUNNER_SHUTDOWN=leave``) running task processes are left running for the next start to
        adopt; with ``cancel`` every active task is canceled first (groups killed, workspaces cleaned).
        """
        deadline = time.monotonic() + STOP_SECONDS
        if self.store is not None:
            self.store.events.close()  # event streams end now; their clients resume after the restart
        if self.supervisor is not None and self.supervisor.is_alive():
            try:
                ending = self.supervisor.ask(PrepareShutdown(cancel=self.config.shutdown == "cancel"), timeout=10)
            except (pykka.Timeout, pykka.ActorDeadError):
                logger.error("the supervisor did not prepare for shutdown in time")
                ending = []
            # Canceled runs end; what is left of the deadline is for the actors.
            wait_for_futures(ending, timeout=max(0.0, deadline - TASK_STOP_SECONDS - 5 - time.monotonic()))
        stopped = True
        for ref in (self.retention, self.supervisor, self.callbacks, self.registry):
            if ref is not None and ref.is_alive():
                try:
                    ref.stop(block=True, timeout=max(1.0, deadline - time.monotonic()))
                except pykka.Timeout:
                    logger.error("an actor did not stop in time; the store is left open")
                    stopped = False
        if self.reactor is not None:
            self.reactor.stop()
        if self.config.cgroup_tree is not None:
            self.config.cgroup_tree.close()  # the runner's parent cgroup, once no task (left for adoption) is in it
        if self.store is not None and stopped:  # never closed under an actor that may still write
            self.store.close()
        self.supervisor = self.callbacks = self.registry = self.retention = None
        self.service = None
        self.reactor = self.store = None
        logger.info("host-runner stopped")
