"""The mock, shell and codex executors, run for real, and user text always arriving as literal text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from host_runner.ops.config import ConfigError, load_config
from support.paths import FAKE_BIN
from support.runner import Runner, shell_runner

HOSTILE_PROMPTS = [
    "$(touch {canary}); rm -rf ~",
    "`touch {canary}`",
    "'; touch {canary}; echo '",
    '"; touch {canary}; echo "',
    "a && touch {canary} || touch {canary}",
    "{{task_id}} {{run_id}} {{prompt}} $HOME ${{IFS}}",
    "line1\nline2; touch {canary}",
    "-rf --help",
]


def test_mock_echoes_the_prompt_and_succeeds(runner: Runner):
    submitted = runner.submit(task_id="mock-1", prompt="say hi")
    assert submitted.status_code == 202
    assert submitted.headers["location"] == "/tasks/mock-1"
    assert submitted.json["status"] == "queued"
    record = runner.wait_status("mock-1", "success")
    assert record["stdout"] == "say hi"
    assert record["exit_code"] == 0
    assert record["executor"] == "mock"
    assert record["started_at"] and record["finished_at"] and record["created_at"].endswith("Z")


def test_mock_can_be_canceled_midway(make_runner):
    runner = make_runner(mock_seconds=30)
    runner.submit(task_id="mock-long")
    runner.wait_status("mock-long", "running")
    result = runner.cancel("mock-long")
    assert result.status_code == 200
    assert result.json["status"] == "canceled"
    assert result.json["message"] == "canceled by api"


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
def test_shell_template_receives_prompt_literally(make_runner, tmp_path: Path, prompt: str):
    canary = tmp_path / "canary"
    prompt = prompt.format(canary=canary)
    # The template passes the prompt both as an argv item and through the environment.
    runner = make_runner(executor="shell", cmd_template=(
        "sh", "-c", 'printf "%s" "$1"; printf "|"; printf "%s" "$HOST_RUNNER_PROMPT"', "sh", "{prompt}"))
    runner.submit(task_id="hostile", prompt=prompt)
    record = runner.wait_status("hostile", "success")
    assert record["stdout"] == f"{prompt}|{prompt}"
    assert not canary.exists()


def test_shell_placeholders_are_replaced_once_inside_argv_items(make_runner):
    runner = make_runner(executor="shell", cmd_template=(
        sys_python(), "-c", "import json,sys; print(json.dumps(sys.argv[1:]))",
        "id={task_id}/{run_id}", "{prompt}", "literal {other}"))
    runner.submit(task_id="t-9", run_id="r-3", prompt="p {task_id} {run_id}")
    record = runner.wait_status("t-9", "success")
    assert json.loads(record["stdout"]) == ["id=t-9/r-3", "p {task_id} {run_id}", "literal {other}"]


def sys_python() -> str:
    import sys

    return sys.executable


def test_shell_environment_has_task_identity_but_no_runner_secrets(make_runner):
    env = dict(os.environ, HOST_RUNNER_API_TOKEN="s3cret-token", HOST_RUNNER_CALLBACK_SECRET="other-secret")
    runner = make_runner(env=env, executor="shell", cmd_template=("env",), api_token="s3cret-token")
    runner.submit(task_id="envcheck", run_id="r-7", prompt="the prompt")
    record = runner.wait_status("envcheck", "success")
    lines = record["stdout"].splitlines()
    assert "HOST_RUNNER_TASK_ID=envcheck" in lines
    assert "HOST_RUNNER_RUN_ID=r-7" in lines
    assert "HOST_RUNNER_PROMPT=the prompt" in lines
    assert "s3cret-token" not in record["stdout"]
    assert "other-secret" not in record["stdout"]


def env_of(record: dict) -> dict[str, str]:
    return dict(line.split("=", 1) for line in record["stdout"].splitlines() if "=" in line)


RUNNER_ENV = {"PATH": os.environ["PATH"], "HOME": "/home/someone", "LANG": "C.UTF-8", "LC_TIME": "C", "TZ": "UTC",
              "AWS_SECRET_ACCESS_KEY": "aws-secret", "OPENAI_API_KEY": "sk-openai", "SSH_AUTH_SOCK": "/tmp/agent.sock",
              "HOST_RUNNER_API_TOKEN": "s3cret-token", "HOST_RUNNER_CALLBACK_SECRET": "other-secret"}


def test_tasks_inherit_the_runners_environment_by_default(make_runner):
    runner = make_runner(env=RUNNER_ENV, executor="shell", cmd_template=("env",), api_token="s3cret-token")
    runner.submit(task_id="inherit", prompt="p")
    env = env_of(runner.wait_status("inherit", "success"))
    # Agents that read their credentials from the environment need this (HOST_RUNNER_TASK_ENV=inherit).
    assert env["AWS_SECRET_ACCESS_KEY"] == "aws-secret" and env["SSH_AUTH_SOCK"] == "/tmp/agent.sock"
    assert "HOST_RUNNER_API_TOKEN" not in env and "HOST_RUNNER_CALLBACK_SECRET" not in env


def test_a_minimal_environment_passes_the_basics_and_what_the_operator_names(make_runner):
    runner = make_runner(env=RUNNER_ENV, executor="shell", cmd_template=("env",), api_token="s3cret-token",
                         task_env="minimal", task_env_pass=("OPENAI_API_KEY", "HOST_RUNNER_API_TOKEN", "NOT_SET"))
    runner.submit(task_id="minimal", run_id="r-1", prompt="the prompt")
    env = env_of(runner.wait_status("minimal", "success"))
    assert {name: env[name] for name in ("PATH", "HOME", "LANG", "LC_TIME", "TZ", "OPENAI_API_KEY")} == {
        "PATH": os.environ["PATH"], "HOME": "/home/someone", "LANG": "C.UTF-8", "LC_TIME": "C", "TZ": "UTC",
        "OPENAI_API_KEY": "sk-openai"}
    assert (env["HOST_RUNNER_TASK_ID"], env["HOST_RUNNER_RUN_ID"], env["HOST_RUNNER_PROMPT"]) == (
        "minimal", "r-1", "the prompt")
    # Not the rest, and never the runner's secrets, even when named.
    for name in ("AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK", "HOST_RUNNER_API_TOKEN", "HOST_RUNNER_CALLBACK_SECRET",
                 "NOT_SET"):
        assert name not in env, name


def test_task_env_settings_are_read_and_checked():
    env = {"HOST_RUNNER_TASK_ENV": "minimal", "HOST_RUNNER_TASK_ENV_PASS": "OPENAI_API_KEY, ANTHROPIC_API_KEY"}
    config = load_config(env)
    assert (config.task_env, config.task_env_pass) == ("minimal", ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"))
    for name, value in (("HOST_RUNNER_TASK_ENV", "none"), ("HOST_RUNNER_TASK_ENV_PASS", "A B")):
        with pytest.raises(ConfigError, match=name):
            load_config({name: value})


def test_a_client_cannot_choose_an_executor_the_operator_did_not_allow(make_runner, tmp_path: Path):
    """The operator's default is mock; a client naming codex or shell (or agent) is refused, and nothing runs."""
    canary = tmp_path / "canary"
    runner = make_runner(cmd_template=("touch", str(canary)), codex_bin=str(FAKE_BIN / "codex"))
    for executor in ("shell", "codex", "agent"):
        answer = runner.submit(task_id=f"chose-{executor}", executor=executor, group="g")
        assert answer.status_code == 422, answer.text
        assert answer.json["field"] == "executor" and "HOST_RUNNER_ALLOWED_EXECUTORS" in answer.json["detail"]
    assert runner.submit(task_id="own", executor="mock").status_code == 202
    assert runner.wait_status("own")["status"] == "success"
    assert [task["task_id"] for task in runner.client.simulate_get("/tasks").json["tasks"]] == ["own"]
    assert not canary.exists()


def test_allowed_executors_may_be_chosen(make_runner, tmp_path: Path):
    canary = tmp_path / "canary"
    runner = make_runner(cmd_template=("touch", str(canary)), allowed_executors=("mock", "shell"))
    assert runner.submit(task_id="shell", executor="shell").status_code == 202
    assert runner.wait_status("shell")["status"] == "success" and canary.exists()
    assert runner.submit(task_id="codex", executor="codex").status_code == 422


def test_a_task_queued_before_its_executor_was_disallowed_does_not_run(make_runner, tmp_path: Path):
    """Restarted with a narrower HOST_RUNNER_ALLOWED_EXECUTORS, the runner does not run what was queued before
    (what was already running is re-adopted and ends as it would)."""
    canary = tmp_path / "canary"
    runner = make_runner(max_concurrency=1, allowed_executors=("mock", "shell"),
                         cmd_template=("sh", "-c", f'sleep "$1"; touch {canary}', "task", "{prompt}"))
    runner.submit(task_id="busy", executor="shell", prompt="1000")
    runner.wait_status("busy", "running")
    assert runner.submit(task_id="queued-shell", executor="shell", prompt="0").json["status"] == "queued"
    runner = runner.restart(allowed_executors=("mock",))
    assert runner.get("busy")["status"] == "running"
    assert runner.cancel("busy").json["status"] == "canceled"
    record = runner.wait_status("queued-shell")
    assert record["status"] == "failed" and "'shell' is not allowed on this runner any more" in record["message"]
    assert not canary.exists()


def test_allowed_executors_setting():
    assert load_config({}).executors_allowed == ("mock",)
    assert load_config({"HOST_RUNNER_EXECUTOR": "shell"}).executors_allowed == ("shell",)
    config = load_config({"HOST_RUNNER_ALLOWED_EXECUTORS": "mock, codex"})
    assert config.executors_allowed == ("mock", "codex")
    with pytest.raises(ConfigError, match="HOST_RUNNER_ALLOWED_EXECUTORS"):
        load_config({"HOST_RUNNER_ALLOWED_EXECUTORS": "mock,bash"})
    with pytest.raises(ConfigError, match="HOST_RUNNER_EXECUTOR=mock is not in HOST_RUNNER_ALLOWED_EXECUTORS"):
        load_config({"HOST_RUNNER_ALLOWED_EXECUTORS": "codex"})


def test_shell_without_template_fails_clearly(make_runner):
    runner = make_runner(executor="shell", cmd_template=None)
    runner.submit(task_id="notemplate")
    record = runner.wait_status("notemplate", "failed")
    assert "HOST_RUNNER_CMD_TEMPLATE" in record["message"]


def test_shell_command_not_found_fails_clearly(make_runner):
    runner = make_runner(executor="shell", cmd_template=("no-such-program-xyz", "{prompt}"))
    runner.submit(task_id="noprog")
    record = runner.wait_status("noprog", "failed")
    assert record["message"] == "command not found: 'no-such-program-xyz'"


def test_exit_code_and_stderr_are_recorded(make_runner):
    runner = shell_runner(make_runner, 'echo out; echo problem >&2; exit 3')
    runner.submit(task_id="exit3")
    record = runner.wait_status("exit3", "failed")
    assert record["exit_code"] == 3
    assert record["message"] == "exited with code 3"
    assert record["stdout"] == "out\n"
    assert record["stderr"] == "problem\n"
    assert Path(record["logs"]["stderr"]).read_text() == "problem\n"


def test_codex_executor_runs_codex_exec_with_args_in_the_project(make_runner, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    env = dict(os.environ, PATH=f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    runner = make_runner(env=env, executor="codex", codex_args=("--full-auto", "--model", "m 1"), codex_json=False)
    runner.submit(task_id="cx", prompt="fix it; $(rm -rf /)", execution_mode="shared-workspace",
                  workspace={"project_id": 1, "project_root": str(project), "lock_paths": [str(project)]})
    record = runner.wait_status("cx", "success")
    seen = json.loads(record["stdout"])
    assert seen["argv"] == ["exec", "--full-auto", "--model", "m 1", "--", "fix it; $(rm -rf /)"]
    assert seen["cwd"] == str(project)


def test_codex_bin_setting_is_used_in_json_mode_by_default(make_runner, tmp_path: Path):
    runner = make_runner(executor="codex", codex_bin=str(FAKE_BIN / "codex"))
    runner.submit(task_id="cxbin", prompt="p")
    record = runner.wait_status("cxbin", "success")
    # The stand-in's line is no codex event: counted, kept in stdout.log, and the readable stdout is empty.
    assert json.loads(Path(record["logs"]["stdout"]).read_text())["argv"] == ["exec", "--json", "--", "p"]
    assert record["events"] == 1 and record["stdout"] == "" and record["handoff"] is None


@pytest.mark.parametrize(("session_id", "prompt", "argv"), [
    (None, "resume", ["exec", "--json", "--model", "m", "--", "resume"]),  # a prompt is never a subcommand
    (None, "--help", ["exec", "--json", "--model", "m", "--", "--help"]),  # nor an option
    ("--last", "go on", ["exec", "--json", "--model", "m", "resume", "--", "--last", "go on"]),
])
def test_codex_argv_keeps_user_text_out_of_its_options(make_runner, session_id, prompt, argv):
    runner = make_runner(executor="codex", codex_bin=str(FAKE_BIN / "codex"), codex_args=("--model", "m"))
    runner.submit(task_id="cxargv", prompt=prompt, **({"session_id": session_id} if session_id else {}))
    record = runner.wait_status("cxargv", "success")
    assert json.loads(Path(record["logs"]["stdout"]).read_text())["argv"] == argv
    if session_id:
        assert record["resumed_session_id"] == session_id
    else:
        assert "resumed_session_id" not in record


def test_codex_missing_binary_fails(make_runner):
    runner = make_runner(env={"PATH": "/nonexistent"}, executor="codex")
    runner.submit(task_id="nocodex")
    record = runner.wait_status("nocodex", "failed")
    assert record["message"].startswith("codex binary not found")


def test_no_workspace_runs_in_a_private_scratch_dir_removed_afterwards(make_runner):
    runner = shell_runner(make_runner, "pwd; touch made-here")
    runner.submit(task_id="scratch")
    record = runner.wait_status("scratch", "success")
    cwd = Path(record["stdout"].strip())
    assert cwd == Path(record["logs"]["dir"]) / "work"
    assert not cwd.exists()


def test_shared_workspace_runs_in_project_root(make_runner, tmp_path: Path):
    project = tmp_path / "repo"
    project.mkdir()
    runner = shell_runner(make_runner, "pwd")
    runner.submit(task_id="shared", execution_mode="shared-workspace",
                  workspace={"project_id": "p", "project_root": str(project), "lock_paths": [str(project / "src")]})
    record = runner.wait_status("shared", "success")
    assert record["stdout"].strip() == str(project)
    assert record["workspace"]["lock_paths"] == [str(project / "src")]


def test_the_longest_prompt_fits_in_both_the_argv_and_the_environment(make_runner):
    from host_runner.domain.submission import MAX_PROMPT_BYTES

    # Linux limits each argv item and each NAME=value environment string to 131,071 bytes.
    runner = make_runner(executor="shell", cmd_template=(
        "sh", "-c", 'printf "%s" "$1" | wc -c; printf "%s" "$HOST_RUNNER_PROMPT" | wc -c', "sh", "{prompt}"))
    runner.submit(task_id="longest", prompt="p" * MAX_PROMPT_BYTES)
    record = runner.wait_status("longest", "success")
    assert record["stdout"].split() == [str(MAX_PROMPT_BYTES)] * 2
    assert runner.submit(task_id="too-long", prompt="p" * (MAX_PROMPT_BYTES + 1)).status_code == 422
