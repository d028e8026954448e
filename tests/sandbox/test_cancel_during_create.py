"""A cancel that arrives during a slow ``docker create`` (an image pull, a busy daemon) means the container never
starts: no ``running`` transition, status ``canceled``, the container removed. Real engine; the slowness comes
from a stand-in HOST_RUNNER_DOCKER_BIN that sleeps before it execs the real docker for ``create``."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from host_runner.ops.config import DockerSettings
from support.docker import containers_of, ensure_busybox_image, own_instance_id, require_docker
from support.receivers import CallbackReceiver
from support.waiting import wait_for

CREATE_SECONDS = 2


@pytest.fixture
def instance_id() -> Iterator[str]:
    """A runner instance id of this test's own; every container carrying it is removed afterwards."""
    yield from own_instance_id()


@pytest.mark.docker
def test_a_cancel_during_a_slow_docker_create_means_the_container_never_starts(
        make_runner, tmp_path: Path, instance_id: str, receiver: CallbackReceiver):
    require_docker()
    image = ensure_busybox_image()
    real = shutil.which("docker")
    assert real is not None
    slow = tmp_path / "slow-docker"
    slow.write_text(f'#!/bin/sh\nif [ "$1" = create ]; then sleep {CREATE_SECONDS}; fi\nexec {real} "$@"\n')
    slow.chmod(0o755)
    runner = make_runner(docker=DockerSettings(binary=str(slow)), instance_id=instance_id)
    submitted = runner.submit(task_id="slow-create", execution_mode="docker-sandbox", status_callback_url=receiver.url,
                              sandbox={"image": image, "command": ["sh", "-c", "echo started; sleep 1000"]})
    assert submitted.status_code == 202, submitted.text
    time.sleep(0.5)  # `docker create` is still sleeping: the actor is starting
    assert runner.get("slow-create")["status"] == "queued"
    threading.Thread(target=runner.cancel, args=("slow-create",), daemon=True).start()
    final = runner.wait_status("slow-create", timeout=30)
    assert (final["status"], final["message"]) == ("canceled", "canceled by api"), final
    assert final["started_at"] is None
    events = wait_for(lambda: (got := receiver.for_task("slow-create")) and got[-1].body["status"] == "canceled"
                      and got, what="the terminal callback")
    assert [event.body["status"] for event in events] == ["canceled"]
    wait_for(lambda: not containers_of(instance_id), timeout=30, what="the created container to be removed")
    time.sleep(1)  # generous: a container started by mistake would have printed by now
    assert runner.get("slow-create")["stdout"] == ""
