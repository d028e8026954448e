"""Shared-workspace lock paths: collisions are refused with 409 naming the holder, and released at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.runner import Runner, shell_runner


@pytest.fixture
def slow_runner(make_runner) -> Runner:
    return shell_runner(make_runner, "sleep 1000")


def shared(root: Path, *locks: str, project_id: int = 1) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    return {"execution_mode": "shared-workspace",
            "workspace": {"project_id": project_id, "project_root": str(root),
                          "lock_paths": [str(root / lock) if lock else str(root) for lock in locks]}}


@pytest.mark.parametrize("held,wanted", [
    (("src/a.py",), ("src/a.py",)),          # same path
    (("src",), ("src/deep/b.py",)),          # child of a held path
    (("src/deep/b.py",), ("src",)),          # parent of a held path
    (("",), ("docs",)),                      # the whole project
    (("x", "src"), ("y", "src/z")),          # any of several
])
def test_colliding_lock_paths_answer_409_naming_the_holder(slow_runner: Runner, tmp_path: Path, held, wanted):
    root = tmp_path / "proj"
    assert slow_runner.submit(task_id="holder", **shared(root, *held)).status_code == 202
    result = slow_runner.submit(task_id="second", **shared(root, *wanted))
    assert result.status_code == 409, result.text
    assert result.json["holder_task_id"] == "holder"
    assert "holder" in result.json["detail"]
    slow_runner.cancel("holder")


def test_disjoint_paths_and_sibling_prefixes_do_not_collide(slow_runner: Runner, tmp_path: Path):
    root = tmp_path / "proj"
    assert slow_runner.submit(task_id="a", **shared(root, "src")).status_code == 202
    assert slow_runner.submit(task_id="b", **shared(root, "src2")).status_code == 202  # not inside "src"
    assert slow_runner.submit(task_id="c", **shared(root, "docs/x")).status_code == 202
    for name in ("a", "b", "c"):
        slow_runner.cancel(name)


def test_different_project_roots_do_not_collide(slow_runner: Runner, tmp_path: Path):
    assert slow_runner.submit(task_id="p1", **shared(tmp_path / "one", "src", project_id=1)).status_code == 202
    assert slow_runner.submit(task_id="p2", **shared(tmp_path / "two", "src", project_id=2)).status_code == 202
    for name in ("p1", "p2"):
        slow_runner.cancel(name)


def test_symlinked_spelling_of_a_held_path_collides(slow_runner: Runner, tmp_path: Path):
    root = tmp_path / "proj"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real")
    assert slow_runner.submit(task_id="real", **shared(root, "real/file")).status_code == 202
    result = slow_runner.submit(task_id="alias", **shared(root, "alias/file"))
    assert result.status_code == 409
    slow_runner.cancel("real")


def test_lock_is_released_when_the_holder_ends(slow_runner: Runner, tmp_path: Path):
    root = tmp_path / "proj"
    slow_runner.submit(task_id="first", **shared(root, "src"))
    assert slow_runner.submit(task_id="second", **shared(root, "src")).status_code == 409
    slow_runner.cancel("first")
    assert slow_runner.submit(task_id="second", **shared(root, "src")).status_code == 202
    slow_runner.cancel("second")


def test_queued_tasks_hold_their_locks_and_release_them_when_canceled(make_runner, tmp_path: Path):
    runner = shell_runner(make_runner, "sleep 1000", max_concurrency=1)
    root = tmp_path / "proj"
    runner.submit(task_id="running", **shared(root, "a"))
    assert runner.submit(task_id="waiting", **shared(root, "b")).json["status"] == "queued"
    assert runner.submit(task_id="blocked", **shared(root, "b")).status_code == 409
    runner.cancel("waiting")
    assert runner.submit(task_id="blocked", **shared(root, "b")).status_code == 202
    runner.cancel("running")
    runner.cancel("blocked")
