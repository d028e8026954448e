"""Every malformed or invalid submission is answered with a JSON error naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.runner import Runner


def valid(tmp_path: Path, **changes):
    body = {"task_id": "t-1", "run_id": "r-1", "prompt": "do it"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


def shared(tmp_path: Path, **workspace):
    (tmp_path / "proj").mkdir(exist_ok=True)
    base = {"project_id": 7, "project_root": str(tmp_path / "proj"), "lock_paths": [str(tmp_path / "proj" / "a")]}
    base.update(workspace)
    return {key: value for key, value in base.items() if value is not ...}


CASES = [
    # (name, body changes, expected field)
    ("missing task_id", {"task_id": ...}, "task_id"),
    ("empty task_id", {"task_id": ""}, "task_id"),
    ("task_id with slash", {"task_id": "../etc"}, "task_id"),
    ("task_id too long", {"task_id": "x" * 500}, "task_id"),
    ("task_id NUL", {"task_id": "a\x00b"}, "task_id"),
    ("missing run_id", {"run_id": ...}, "run_id"),
    ("empty run_id", {"run_id": "  "}, "run_id"),
    ("missing prompt", {"prompt": ...}, "prompt"),
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("prompt not a string", {"prompt": ["a"]}, "prompt"),
    ("prompt with NUL", {"prompt": "a\x00b"}, "prompt"),
    ("prompt too long for argv", {"prompt": "x" * 200_000}, "prompt"),
    ("unknown mode", {"execution_mode": "vm"}, "execution_mode"),
    ("shared without workspace", {"execution_mode": "shared-workspace"}, "workspace"),
    ("callback ftp", {"status_callback_url": "ftp://x/y"}, "status_callback_url"),
    ("callback no host", {"status_callback_url": "http:///x"}, "status_callback_url"),
    ("callback bad port", {"status_callback_url": "http://127.0.0.1:99999/x"}, "status_callback_url"),
    ("timeout zero", {"timeout_seconds": 0}, "timeout_seconds"),
    ("timeout huge", {"timeout_seconds": 86_401}, "timeout_seconds"),
    ("timeout string", {"timeout_seconds": "10"}, "timeout_seconds"),
    ("timeout bool", {"timeout_seconds": True}, "timeout_seconds"),
    ("worktree without path", {"execution_mode": "isolated-worktree",
                               "workspace": {"project_root": "/tmp", "git_branch": "b"}}, "workspace.worktree_path"),
    ("worktree without branch", {"execution_mode": "isolated-worktree",
                                 "workspace": {"project_root": "/tmp", "worktree_path": "/tmp/x"}},
     "workspace.git_branch"),
    ("sandbox missing", {"execution_mode": "docker-sandbox"}, "sandbox"),
    ("sandbox not an object", {"execution_mode": "docker-sandbox", "sandbox": ["x"]}, "sandbox"),
    ("sandbox without command", {"execution_mode": "docker-sandbox", "sandbox": {"image": "x"}}, "sandbox.command"),
    ("limits not an object", {"limits": 64}, "limits"),
    ("limits unknown key", {"limits": {"disk": 1}}, "limits.disk"),
    ("limits memory not a size", {"limits": {"memory": "lots"}}, "limits.memory"),
    ("limits memory tiny", {"limits": {"memory": 1024}}, "limits.memory"),
    ("limits pids zero", {"limits": {"pids": 0}}, "limits.pids"),
    ("limits pids fractional", {"limits": {"pids": 1.5}}, "limits.pids"),
    ("limits cpus bool", {"limits": {"cpus": True}}, "limits.cpus"),
    ("limits cpus beyond any machine", {"limits": {"cpus": 5000}}, "limits.cpus"),
]


@pytest.mark.parametrize("name,changes,field", CASES, ids=[case[0] for case in CASES])
def test_invalid_submissions_answer_422_naming_the_field(runner: Runner, tmp_path: Path, name, changes, field):
    result = runner.client.simulate_post("/tasks/submit", json=valid(tmp_path, **changes))
    assert result.status_code == 422, result.text
    assert result.json["field"] == field
    assert field in result.json["detail"]


WORKSPACE_CASES = [
    ("relative root", {"project_root": "proj"}, "workspace.project_root"),
    ("missing root", {"project_root": "/nonexistent/root/x"}, "workspace.project_root"),
    ("no lock paths", {"lock_paths": []}, "workspace.lock_paths"),
    ("lock paths missing", {"lock_paths": ...}, "workspace.lock_paths"),
    ("lock paths not a list", {"lock_paths": "/x"}, "workspace.lock_paths"),
    ("relative lock path", {"lock_paths": ["a/b"]}, "workspace.lock_paths[0]"),
    ("lock outside root", {"lock_paths": ["/etc/passwd"]}, "workspace.lock_paths[0]"),
    ("lock escaping by ..", {"lock_paths": ["{root}/../outside"]}, "workspace.lock_paths[0]"),
    ("lock escaping by symlink", {"lock_paths": ["{root}/link/file"]}, "workspace.lock_paths[0]"),
    ("project_id list", {"project_id": [1]}, "workspace.project_id"),
]


@pytest.mark.parametrize("name,changes,field", WORKSPACE_CASES, ids=[case[0] for case in WORKSPACE_CASES])
def test_invalid_workspaces_answer_422(runner: Runner, tmp_path: Path, name, changes, field):
    workspace = shared(tmp_path, **changes)
    root = str(tmp_path / "proj")
    (tmp_path / "proj" / "link").symlink_to("/tmp") if not (tmp_path / "proj" / "link").exists() else None
    if isinstance(workspace.get("lock_paths"), list):
        workspace["lock_paths"] = [path.replace("{root}", root) for path in workspace["lock_paths"]]
    body = valid(tmp_path, execution_mode="shared-workspace", workspace=workspace)
    result = runner.client.simulate_post("/tasks/submit", json=body)
    assert result.status_code == 422, result.text
    assert result.json["field"] == field


def test_malformed_json_is_400(runner: Runner):
    result = runner.client.simulate_post("/tasks/submit", body=b'{"task_id": ', content_type="application/json")
    assert result.status_code == 400
    assert "not valid JSON" in result.json["detail"]


def test_deeply_nested_json_is_400_not_500(runner: Runner):
    body = b"[" * 100_000 + b"]" * 100_000
    result = runner.client.simulate_post("/tasks/submit", body=body, content_type="application/json")
    assert result.status_code in (400, 413)
    assert "detail" in result.json


def test_json_that_is_not_an_object_is_422(runner: Runner):
    result = runner.client.simulate_post("/tasks/submit", json=[1, 2])
    assert result.status_code == 422
    assert result.json["field"] == "body"


def test_body_over_one_mebibyte_is_413(runner: Runner):
    body = b'{"task_id": "t", "run_id": "r", "prompt": "' + b"x" * (1024 * 1024) + b'"}'
    result = runner.client.simulate_post("/tasks/submit", body=body, content_type="application/json")
    assert result.status_code == 413
    assert result.json["error"]


def test_wrong_content_type_is_415(runner: Runner):
    result = runner.client.simulate_post("/tasks/submit", body="task_id=x", content_type="application/x-www-form-urlencoded")
    assert result.status_code == 415


def test_unknown_fields_are_ignored(runner: Runner):
    result = runner.submit(task_id="extra", handoff_context={"anything": [1, 2]}, another="x")
    assert result.status_code == 202, result.text


def test_unknown_task_is_404_json(runner: Runner):
    for result in (runner.client.simulate_get("/tasks/nope"), runner.client.simulate_post("/tasks/nope/cancel")):
        assert result.status_code == 404
        assert result.json["detail"] == "no task nope"


def test_unknown_route_and_method_are_json(runner: Runner):
    assert runner.client.simulate_get("/nowhere").json["error"]
    result = runner.client.simulate_delete("/tasks")
    assert result.status_code == 405
    assert result.json["error"]


def test_list_filters_are_validated(runner: Runner):
    assert runner.client.simulate_get("/tasks", params={"status": "weird"}).json["field"] == "status"
    assert runner.client.simulate_get("/tasks", params={"limit": "0"}).json["field"] == "limit"
    assert runner.client.simulate_get("/tasks", params={"limit": "x"}).status_code == 422


def test_lone_surrogates_are_422_not_500(runner: Runner, tmp_path: Path):
    # Valid JSON, but no command line, environment, HTTP header or file name can carry a lone surrogate.
    shared = {"execution_mode": "shared-workspace",
              "workspace": {"project_root": str(tmp_path), "lock_paths": [f"{tmp_path}/a\ud800"]}}
    for field, changes in (("prompt", {"prompt": "a\ud800b"}), ("status_callback_token", {
            "status_callback_token": "a\ud800b"}), ("workspace.lock_paths[0]", shared),
            ("workspace.project_id", {"workspace": {"project_id": "\udc80"}}),
            ("handoff_context.notes[1]", {"handoff_context": {"notes": ["fine", "\ud800"]}})):
        body = {"task_id": "t", "run_id": "r", "prompt": "p", **changes}
        result = runner.client.simulate_post("/tasks/submit", body=json.dumps(body), content_type="application/json")
        assert result.status_code == 422, result.text
        assert result.json["field"] == field


@pytest.mark.parametrize(("limits", "field", "setting"), [
    ({"memory": "1G"}, "limits.memory", "at most 512M (HOST_RUNNER_TASK_MEMORY_MAX)"),
    ({"memory": 512 * 1024**2 + 1}, "limits.memory", "at most 512M (HOST_RUNNER_TASK_MEMORY_MAX)"),
    ({"pids": 101}, "limits.pids", "at most 100 (HOST_RUNNER_TASK_PIDS_MAX)"),
    ({"cpus": 0.75, "pids": 10}, "limits.cpus", "at most 0.5 (HOST_RUNNER_TASK_CPUS)"),
])
def test_limits_above_the_operators_maximum_are_422_naming_the_field(make_runner, tmp_path: Path, limits, field,
                                                                      setting):
    runner = make_runner(task_memory_max=512 * 1024**2, task_pids_max=100, task_cpus=0.5)
    result = runner.client.simulate_post("/tasks/submit", json=valid(tmp_path, limits=limits))
    assert result.status_code == 422, result.text
    assert (result.json["field"], result.json["detail"]) == (field, f"{field}: must be {setting}")
    lower = runner.client.simulate_post("/tasks/submit", json=valid(tmp_path, limits={"memory": "256M", "pids": 100}))
    assert lower.status_code == 202, lower.text
