"""Resuming a codex session and continuing an isolated-worktree task, with the REAL codex CLI (pinned in .ci/run)
against the scripted Responses-API stand-in, which records every request: the resumed run's request carries the
first run's history, and the follow-up's worktree holds the file the first run wrote and did not commit."""

from __future__ import annotations

import json
from pathlib import Path

from support.git_repos import isolated, make_repo
from support.model_server import Reply, codex_runner, custom_tool_call, function_call, message

PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+kept between turns\n*** End Patch\n"


def test_a_session_id_resumes_the_codex_session(make_runner, model, tmp_path: Path):
    model.script = [Reply([message("first answer: the word is PELICAN")]), Reply([message("second answer")])]
    runner = codex_runner(make_runner, model, tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    body = {"execution_mode": "shared-workspace",
            "workspace": {"project_id": 1, "project_root": str(project), "lock_paths": [str(project)]}}
    runner.submit(task_id="talk", prompt="remember a word for me", **body)
    first = runner.wait_status("talk", "success", "failed", timeout=120)
    assert first["status"] == "success", first
    session = first["session_id"]
    assert session and "resumed_session_id" not in first

    result = runner.submit(task_id="talk", run_id="run-2", prompt="which word was it?", session_id=session, **body)
    assert result.status_code == 202 and result.json["resumed_session_id"] == session
    second = runner.wait_status("talk", "success", "failed", timeout=120)
    assert second["run_id"] == "run-2" and second["status"] == "success", second
    assert second["final_message"] == "second answer"
    assert second["resumed_session_id"] == session and second["session_id"] == session  # codex keeps the thread
    assert len(model.requests) == 2
    history = json.dumps(model.requests[1]["input"])
    assert "remember a word for me" in history and "the word is PELICAN" in history
    assert "which word was it?" in history
    assert "PELICAN" not in json.dumps(model.requests[0]["input"])


def test_an_isolated_worktree_follow_up_keeps_the_uncommitted_file(make_runner, model, tmp_path: Path):
    model.script = [
        Reply([custom_tool_call("apply_patch", PATCH)]),
        Reply([message("wrote notes.txt")]),
        Reply([function_call("exec_command", {"cmd": "cat notes.txt", "tty": False})]),
        Reply([message("notes.txt is there")]),
    ]
    runner = codex_runner(make_runner, model, tmp_path)
    repo = make_repo(tmp_path / "repo")
    runner.submit(task_id="wt", prompt="write notes", **isolated(repo, tmp_path / "wt-1", "agent/wt"))
    first = runner.wait_status("wt", "success", "failed", timeout=120)
    assert first["status"] == "success", first
    assert first["files_changed"] == [{"path": str(tmp_path / "wt-1" / "notes.txt"), "kind": "add"}]
    assert first["worktree_commits"] == 0 and first["worktree_changed_files"] == ["notes.txt"]
    assert not (tmp_path / "wt-1").exists()  # removed; the work is in its saved patch only

    runner.submit(task_id="wt", run_id="run-2", prompt="is it there?", session_id=first["session_id"],
                  **isolated(repo, tmp_path / "wt-2", "agent/wt"))
    second = runner.wait_status("wt", "success", "failed", timeout=120)
    assert second["status"] == "success", second
    assert second["commands"] == [{"command": "/bin/bash -lc 'cat notes.txt'", "exit_code": 0}]
    assert "kept between turns" in json.dumps(model.requests[3]["input"])  # the command's output, from wt-2
    assert second["worktree_follow_up"]["run_id"] == "run-1"
    assert second["worktree_changed_files"] == ["notes.txt"]
    assert second["resumed_session_id"] == first["session_id"]
