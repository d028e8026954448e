"""Shared test fixtures: a runner (real actors, real processes) behind Falcon's TestClient, and a real HTTP
callback receiver on 127.0.0.1, and the scripted model server of the agent CLI tests. The helpers they are built from live in tests/support/ (see tests/README.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Every test room imports the support package (in tests/) and this checkout's host_runner, api and actors.
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # pytest's default import mode put it there already; importlib mode does not
    sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))  # first, before any installed copy of the service

import os  # noqa: E402

from host_runner.ops.config import Config  # noqa: E402
from support.cgroups import TEST_CGROUP_ROOT, remove_test_root  # noqa: E402
from support.model_server import ModelServer  # noqa: E402
from support.receivers import CallbackReceiver  # noqa: E402
from support.runner import Runner  # noqa: E402

# Runners under test (here and the gunicorn services the tests start) put their task cgroups under one test root.
os.environ.setdefault("HOST_RUNNER_CGROUP_ROOT", TEST_CGROUP_ROOT)


@pytest.fixture(scope="session", autouse=True)
def _cgroup_test_root() -> Iterator[None]:
    yield
    remove_test_root()


@pytest.fixture
def make_runner(tmp_path: Path) -> Iterator[Callable[..., Runner]]:
    runners: list[Runner] = []

    def make(env: dict[str, str] | None = None, **settings: Any) -> Runner:
        settings.setdefault("data_dir", tmp_path / "data")
        settings.setdefault("kill_grace_seconds", 2.0)
        settings.setdefault("callback_backoff_seconds", 0.05)
        settings.setdefault("cgroup_root", TEST_CGROUP_ROOT)
        return Runner(Config(**settings), env, runners)

    yield make
    for runner in reversed(runners):
        if runner.system.supervisor is not None:
            runner.stop()


@pytest.fixture
def runner(make_runner: Callable[..., Runner]) -> Runner:
    return make_runner()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver()
    yield server
    server.close()


@pytest.fixture
def model() -> Iterator[ModelServer]:
    """The scripted model server (support/model_server.py) an agent CLI test points the real CLI at."""
    server = ModelServer()
    yield server
    server.close()
