"""The service facade (actors/service.py) and the one place its domain errors become HTTP (api/http_errors.py):
an unknown task is NotFound → 404, a supervisor that does not answer in time is Busy → 503, a stopped one is
ShuttingDown → 503, an agent task refusing input is InputRefused → 409 without a holder; the JSON bodies are
the ones the API always answered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.service import RunnerService
from api.app import create_api
from support.runner import Runner, ValidatingClient
from host_runner.domain.errors import Busy, InputRefused, NotFound, ShuttingDown
from host_runner.ops.config import Config

HOST = {"Host": "127.0.0.1:8765"}  # the default bind: a name the runner answers to
JSON = {**HOST, "Content-Type": "application/json"}


class StuckSupervisor(pykka.ThreadingActor):
    """Answers nothing until ``release`` is set: a supervisor too busy to answer in time."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_receive(self, message: Any) -> Any:
        self.release.wait(10)
        return None


@pytest.fixture
def stuck(tmp_path: Path) -> Iterator[tuple[RunnerService, ValidatingClient]]:
    """A service whose supervisor never answers within its (short) ask timeout, and an API around it."""
    release = threading.Event()
    ref = StuckSupervisor.start(release)
    config = Config(data_dir=tmp_path / "data")
    service = RunnerService(ref, config, ask_timeout=0.05)  # type: ignore[arg-type]  # a stand-in supervisor
    yield service, ValidatingClient(create_api(service, config))
    release.set()
    ref.stop()


def test_an_unknown_task_is_not_found_and_answers_404(runner: Runner):
    assert runner.system.service is not None
    with pytest.raises(NotFound, match="^no task nope$"):
        runner.system.service.get("nope")
    with pytest.raises(NotFound, match="^no run r9 of task nope$"):
        runner.system.service.logs("nope", "stdout", "r9")
    for result in (runner.client.simulate_get("/tasks/nope", headers=HOST),
                   runner.client.simulate_post("/tasks/nope/cancel", headers=HOST),
                   runner.client.simulate_post("/tasks/nope/close", headers=HOST),
                   runner.client.simulate_post("/tasks/nope/messages", json={"text": "hi"}, headers=JSON)):
        assert result.status_code == 404
        assert result.json == {"error": "Not Found", "detail": "no task nope"}
    logs = runner.client.simulate_get("/tasks/nope/logs", params={"run_id": "r9"}, headers=HOST)
    assert logs.status_code == 404 and logs.json == {"error": "Not Found", "detail": "no run r9 of task nope"}


def test_a_supervisor_too_busy_to_answer_is_busy_and_answers_503(stuck: tuple[RunnerService, ValidatingClient]):
    service, client = stuck
    with pytest.raises(Busy):
        service.get("t1")
    busy = {"error": "Service Unavailable", "detail": "the runner is too busy to answer; try again"}
    for result in (client.simulate_get("/tasks/t1", headers=HOST), client.simulate_get("/tasks", headers=HOST),
                   client.simulate_post("/tasks/submit", json={"task_id": "t1", "run_id": "r1", "prompt": "hi"},
                                        headers=JSON)):
        assert result.status_code == 503
        assert result.json == busy


def test_metrics_and_debug_still_answer_when_the_supervisor_is_busy(stuck: tuple[RunnerService, ValidatingClient]):
    service, client = stuck
    assert service.stats(0.05).tasks is None  # left out of the scrape rather than delaying it
    metrics = client.simulate_get("/metrics", headers=HOST)
    assert metrics.status_code == 200 and 'host_runner_actor_up{actor="supervisor"} 0.0' in metrics.text
    debug = client.simulate_get("/debug/actors", params={"timeout": "0.05"}, headers=HOST)
    assert debug.status_code == 200 and debug.json["supervisor"] is None
    assert "StuckSupervisor" in {entry["class"] for entry in debug.json["not_answering"]}


def test_a_stopped_supervisor_is_shutting_down_and_answers_503(runner: Runner):
    service = runner.system.service
    assert service is not None and runner.system.supervisor is not None
    runner.system.supervisor.stop()
    with pytest.raises(ShuttingDown):
        service.get("t1")
    result = runner.client.simulate_get("/tasks/t1", headers=HOST)
    assert result.status_code == 503
    assert result.json == {"error": "Service Unavailable", "detail": "the runner is shutting down"}


def test_input_to_a_task_that_takes_none_is_refused_with_409_and_no_holder(runner: Runner):
    assert runner.submit(task_id="plain").status_code == 202
    runner.wait_status("plain")
    assert runner.system.service is not None
    with pytest.raises(InputRefused):
        runner.system.service.message("plain", "more")
    result = runner.client.simulate_post("/tasks/plain/messages", json={"text": "more"}, headers=JSON)
    assert result.status_code == 409
    assert set(result.json) == {"error", "detail"} and "plain" in result.json["detail"]

