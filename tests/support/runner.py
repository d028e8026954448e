"""A runner under test: the real actor system (real processes) behind Falcon's TestClient, every answer checked
against the OpenAPI document. The ``make_runner`` fixture (conftest.py) builds these and stops them after the
test; the helpers here are what tests do with one."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from falcon import testing

from actors.system import ActorSystem
from api.app import create_api
from host_runner.domain.limits import cgroup_name
from host_runner.ops.config import Config
from host_runner.run.stopping import group_alive
from support.openapi_check import check_response
from support.waiting import wait_for

__all__ = ["Runner", "ValidatingClient", "callbacks_settled", "in_project", "shell_runner"]


class ValidatingClient(testing.TestClient):
    """A TestClient that checks every response against the OpenAPI document (support/openapi_check.py)."""

    def simulate_request(self, *args: Any, **kwargs: Any) -> testing.Result:
        kwargs.setdefault("host", "127.0.0.1")  # a name the runner answers to (Falcon's default is not one)
        result = super().simulate_request(*args, **kwargs)
        method = args[0] if args else kwargs.get("method", "GET")
        path = args[1] if len(args) > 1 else kwargs.get("path", "/")
        query = dict(kwargs.get("params") or {})
        if kwargs.get("query_string"):
            path = f"{path}?{kwargs['query_string']}"
        check_response(method, path, query, result.status_code, result.headers, result.content)
        return result


class Runner:
    """A started actor system and a TestClient on its API."""

    def __init__(self, config: Config, env: dict[str, str] | None, started: list[Runner]) -> None:
        self.config = config
        self.env = env
        self.started = started
        started.append(self)  # so the fixture stops every runner a test made, restarts included
        self.system = ActorSystem.start(config, env)
        assert self.system.service is not None
        self.client = ValidatingClient(create_api(self.system.service, config))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_token}"} if self.config.api_token else {}

    def submit(self, **body: Any) -> testing.Result:
        body.setdefault("run_id", "run-1")
        body.setdefault("prompt", "hello")
        return self.client.simulate_post("/tasks/submit", json=body, headers=self.headers())

    def get(self, task_id: str) -> dict[str, Any]:
        result = self.client.simulate_get(f"/tasks/{task_id}", headers=self.headers())
        assert result.status_code == 200, result.text
        return result.json

    def cancel(self, task_id: str) -> testing.Result:
        return self.client.simulate_post(f"/tasks/{task_id}/cancel", headers=self.headers())

    def wait_status(self, task_id: str, *statuses: str, timeout: float = 15.0) -> dict[str, Any]:
        wanted = statuses or ("success", "failed", "canceled")
        return wait_for(lambda: (record := self.get(task_id))["status"] in wanted and record, timeout,
                        what=f"{task_id} to be {'/'.join(wanted)}")

    def restart(self, **changes: Any) -> Runner:
        """Stop this runner (processes keep running) and start another on the same data directory."""
        self.system.stop()
        return Runner(dataclasses.replace(self.config, **changes), self.env, self.started)

    def stop(self, kill_tasks: bool = True) -> None:
        """Stop the actors; unless told otherwise, first kill whatever a test left running."""
        if self.system.store is not None and kill_tasks:
            tree = self.system.config.cgroup_tree
            for record in self.system.store.active():
                if record.pid and group_alive(record.pid):
                    os.killpg(record.pid, signal.SIGKILL)
                cgroup = tree.find(cgroup_name(record.task_id, record.run_id)) if tree is not None else None
                if cgroup is not None:  # and what left the group: the run's cgroup is removed as it ends
                    cgroup.kill()
        self.system.stop()


def shell_runner(make_runner: Callable[..., Runner], script: str, **settings: Any) -> Runner:
    """A runner whose shell executor runs ``sh -c SCRIPT`` (the prompt is in $HOST_RUNNER_PROMPT)."""
    # mock too: tests of faults check that the runner still serves with a task that does not run the script
    settings.setdefault("allowed_executors", ("shell", "mock"))
    return make_runner(executor="shell", cmd_template=("sh", "-c", script, "task"), **settings)


def callbacks_settled(runner: Runner, task_id: str, count: int) -> dict[str, Any] | None:
    """The record once its run has ``count`` callback events and none is pending any more."""
    record = runner.get(task_id)
    events = record.get("callbacks", [])
    if len(events) == count and all(event["state"] != "pending" for event in events):
        return record
    return None


def in_project(tmp_path: Path) -> dict[str, Any]:
    """Submit fields that run a task in ``tmp_path/project`` (created) as a shared workspace, so that the files an
    agent CLI writes stay there for the test to read (and a later run finds the same working directory)."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    return {"execution_mode": "shared-workspace",
            "workspace": {"project_id": 1, "project_root": str(project), "lock_paths": [str(project)]}}
