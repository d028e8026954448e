"""The dashboard end to end: headless Chromium drives the page served by the real gunicorn service."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import requests

from support.browser import require_browser, save_screenshot, start_browser, stop_browser
from support.model_server import ModelServer, Reply, codex_settings, custom_tool_call, function_call, message
from support.model_server import require_codex
from support.paths import FAKE_BIN
from support.receivers import CallbackReceiver
from support.service import start_service, stop_service
from support.waiting import wait_for

TOKEN = "dashboard-secret-token"
AGENT_CMD = (sys.executable, str(FAKE_BIN / "fake-agent-runner"))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    require_browser()
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    driver = start_browser(profile)
    try:
        yield driver
    finally:
        stop_browser(driver, profile)


def text(driver: Any, selector: str) -> str:
    """The textContent of the first match ('' when there is none); read in the page, so re-renders don't matter."""
    return driver.execute_script("const n = document.querySelector(arguments[0]); return n ? n.textContent : '';",
                                 selector)


def visible(driver: Any, selector: str) -> bool:
    return driver.execute_script("const n = document.querySelector(arguments[0]);"
                                 "return !!n && n.offsetParent !== null;", selector)


def click(driver: Any, selector: str) -> bool:
    """Click the first match if there is one (the lists re-render every second, so find it and click at once)."""
    return driver.execute_script("const n = document.querySelector(arguments[0]); if (!n) return false;"
                                 "n.click(); return true;", selector)


def log_in(driver: Any, token: str) -> None:
    from selenium.webdriver.common.by import By

    wait_for(lambda: visible(driver, "#token"), what="the token form")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()


def test_the_page_needs_the_token(tmp_path: Path, browser: Any):
    # The access log (on stdout, into gunicorn.log) shows every URL the page asked for.
    process, base = start_service(tmp_path, HOST_RUNNER_API_TOKEN=TOKEN, HOST_RUNNER_ACCESS_LOG="-")
    try:
        # The shell is open; the data is not.
        assert requests.get(f"{base}/ui", timeout=5).status_code == 200
        assert requests.get(f"{base}/tasks", timeout=5).status_code == 401
        assert requests.get(f"{base}/debug/actors", timeout=5).status_code == 401
        browser.get(f"{base}/")
        wait_for(lambda: "needs its API token" in text(browser, "#login-error"), what="the page to ask for the token")
        assert not visible(browser, "#dashboard")
        save_screenshot(browser, tmp_path, "dashboard-login")

        log_in(browser, "wrong-token")
        wait_for(lambda: "refused" in text(browser, "#login-error"), what="the wrong token to be refused")
        assert not visible(browser, "#dashboard")
        assert browser.execute_script("return sessionStorage.getItem('host-runner-token')") is None

        log_in(browser, TOKEN)
        wait_for(lambda: browser.execute_script("return document.body.dataset.connection") == "connected",
                 what="the page to connect")
        assert visible(browser, "#dashboard") and not visible(browser, "#login")
        assert TOKEN not in browser.current_url
        assert browser.execute_script("return sessionStorage.getItem('host-runner-token')") == TOKEN

        # A reload keeps the session's token: no second prompt.
        browser.refresh()
        wait_for(lambda: browser.execute_script("return document.body.dataset.connection") == "connected",
                 what="the reloaded page to connect")
        assert not visible(browser, "#login")
    finally:
        assert stop_service(process) == 0
    # The token went in a header, never in a URL: the access log has the page's requests but not the token.
    log = (tmp_path / "gunicorn.log").read_text()
    assert "/tasks?brief=true" in log and "/debug/actors" in log
    assert TOKEN not in log


def test_a_task_streams_into_the_page_and_is_canceled(tmp_path: Path, browser: Any, receiver: CallbackReceiver):
    more = tmp_path / "more"
    script = ('echo "hello $HOST_RUNNER_PROMPT"; echo "to stderr" >&2; '
              f'while [ ! -e {more} ]; do sleep 0.05; done; echo "second line"; '
              'while true; do sleep 0.05; done')
    process, base = start_service(tmp_path, HOST_RUNNER_API_TOKEN=TOKEN, HOST_RUNNER_EXECUTOR="shell",
                                  HOST_RUNNER_CMD_TEMPLATE=f"sh -c '{script}'", HOST_RUNNER_KILL_GRACE_SECONDS="2")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    running = True
    try:
        browser.get(f"{base}/ui")
        log_in(browser, TOKEN)
        wait_for(lambda: browser.execute_script("return document.body.dataset.connection") == "connected",
                 what="the page to connect")

        project = tmp_path / "project"
        (project / "src").mkdir(parents=True)
        response = requests.post(f"{base}/tasks", json={
            "task_id": "dash-1", "run_id": "r1", "prompt": "browser", "execution_mode": "shared-workspace",
            "workspace": {"project_id": 7, "project_root": str(project), "lock_paths": [str(project / "src")]},
            "status_callback_url": receiver.url,
        }, headers=auth, timeout=10)
        assert response.status_code == 202
        # The task appears in the running list, and its actor under the supervisor in the actor tree.
        wait_for(lambda: "running" in text(browser, '#active-tasks tr[data-task-id="dash-1"]'),
                 timeout=20, what="the task in the running list")
        wait_for(lambda: "dash-1" in text(browser, '#actor-tree li[data-actor="SupervisorActor"] '
                                                   'li[data-actor="TaskActor"][data-task-id="dash-1"]'),
                 what="the task actor in the actor tree")
        # Its lock path is in the reservations, held by it.
        wait_for(lambda: str(project / "src") in text(browser, '#reservations tr[data-task-id="dash-1"]'),
                 what="the lock path in the reservations")
        pid = requests.get(f"{base}/tasks/dash-1", headers=auth, timeout=5).json()["pid"]
        assert str(pid) in text(browser, '#active-tasks tr[data-task-id="dash-1"]')

        # Its output follows live in the detail view.
        assert click(browser, '#active-tasks tr[data-task-id="dash-1"]')
        wait_for(lambda: "hello browser" in text(browser, "#stdout"), what="the first output in the page")
        wait_for(lambda: "to stderr" in text(browser, "#stderr"), what="stderr in the page")
        assert "second line" not in text(browser, "#stdout")
        assert text(browser, '#detail-record td[data-field="pid"]') == str(pid)
        more.touch()
        wait_for(lambda: "second line" in text(browser, "#stdout"), what="new output to stream into the page")
        assert text(browser, "#stdout") == "hello browser\nsecond line\n"
        assert not visible(browser, "#message-form")  # a shell task takes no follow-up messages
        # Its callbacks and their delivery states (the receiver got 'running').
        wait_for(lambda: "delivered" in text(browser, "#detail-callbacks"), what="a delivered callback in the page")
        assert "running" in text(browser, "#detail-callbacks")
        save_screenshot(browser, tmp_path, "dashboard")

        # Cancel asks first; "no" leaves the task alone.
        assert click(browser, "#cancel")
        wait_for(lambda: visible(browser, "#cancel-confirm"), what="the confirmation")
        assert click(browser, "#cancel-no")
        assert not visible(browser, "#cancel-confirm")
        assert requests.get(f"{base}/tasks/dash-1", headers=auth, timeout=5).json()["status"] == "running"
        assert click(browser, "#cancel")
        wait_for(lambda: visible(browser, "#cancel-confirm"), what="the confirmation")
        save_screenshot(browser, tmp_path, "dashboard-cancel-confirm")
        assert click(browser, "#cancel-yes")
        wait_for(lambda: text(browser, "#detail-status") == "canceled", timeout=20, what="the page to show canceled")
        running = False
        assert requests.get(f"{base}/tasks/dash-1", headers=auth, timeout=5).json()["status"] == "canceled"
        wait_for(lambda: "canceled" in text(browser, '#finished-tasks tr[data-task-id="dash-1"]'),
                 what="the task in the finished list")
        wait_for(lambda: not text(browser, '#actor-tree li[data-actor="TaskActor"]'),
                 what="the task actor to leave the tree")
        assert "1 finished in the last hour" in text(browser, "#percentiles")
    finally:
        if running:
            requests.post(f"{base}/tasks/dash-1/cancel", headers=auth, timeout=30)
        assert stop_service(process) == 0

    # A dead runner: the page says so and hides the stale data.
    wait_for(lambda: browser.execute_script("return document.body.dataset.connection") == "disconnected",
             timeout=20, what="the page to notice the runner is gone")
    assert visible(browser, "#disconnected")
    assert not visible(browser, "#active-panel")
    save_screenshot(browser, tmp_path, "dashboard-disconnected")


def test_an_agent_task_takes_a_follow_up_message_from_the_page(tmp_path: Path, browser: Any):
    """The follow-up box against the real agent executor (tests/bin/fake-agent-runner answers "echo: TEXT")."""
    process, base = start_service(tmp_path, HOST_RUNNER_API_TOKEN=TOKEN, HOST_RUNNER_EXECUTOR="agent",
                                  HOST_RUNNER_AGENT_CMD=shlex.join(AGENT_CMD), HOST_RUNNER_AGENT_IDLE_SECONDS="600",
                                  HOST_RUNNER_AGENT_CLOSE_GRACE_SECONDS="20", HOST_RUNNER_KILL_GRACE_SECONDS="2")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        for task_id, prompt in (("agent-1", "frames:1 loop"), ("agent-2", "frames:1")):
            response = requests.post(f"{base}/tasks", json={"task_id": task_id, "run_id": "r1", "prompt": prompt,
                                                            "group": "team"}, headers=auth, timeout=10)
            assert response.status_code == 202, response.text
        browser.get(f"{base}/")
        log_in(browser, TOKEN)
        # The first runs; the second waits for its group, and the page says so.
        wait_for(lambda: "running" in text(browser, '#active-tasks tr[data-task-id="agent-1"]'),
                 timeout=20, what="the agent task in the running list")
        assert "team" in text(browser, '#active-tasks tr[data-task-id="agent-1"]')
        wait_for(lambda: "queued #1 (group #1)" in text(browser, '#active-tasks tr[data-task-id="agent-2"]'),
                 what="the second task waiting for its group")
        # Its actor (an AgentTaskActor) sits under the supervisor, next to the queue entry of the other.
        wait_for(lambda: "AgentTaskActor agent-1" in text(browser, '#actor-tree li[data-actor="SupervisorActor"] '
                                                                   'li[data-actor="TaskActor"][data-task-id="agent-1"]'),
                 what="the agent's task actor in the actor tree")
        assert "queued: agent-2" in text(browser, '#actor-tree li[data-actor="SupervisorActor"] li[data-queued]')
        # the long-lived actors: supervisor, callbacks, registry and retention
        assert browser.execute_script("return document.querySelectorAll('#actor-tree > ul > li').length") == 4
        assert "RetentionActor" in text(browser, '#actor-tree li[data-actor="RetentionActor"]')

        assert click(browser, '#active-tasks tr[data-task-id="agent-1"]')
        wait_for(lambda: "frame 1" in text(browser, "#answers"), what="the agent's first answer in the page")
        wait_for(lambda: visible(browser, "#message-form"), what="the follow-up box")
        from selenium.webdriver.common.by import By
        browser.find_element(By.ID, "message").send_keys("hello from the page")
        browser.find_element(By.ID, "message-send").click()
        wait_for(lambda: text(browser, "#message-result").startswith("sent"), what="the message to be accepted")
        assert browser.find_element(By.ID, "message").get_attribute("value") == ""
        # The agent's answer arrives in the page and in the record.
        wait_for(lambda: "echo: hello from the page" in text(browser, "#answers"), timeout=20,
                 what="the agent's answer in the page")
        record = requests.get(f"{base}/tasks/agent-1", headers=auth, timeout=5).json()
        assert "echo: hello from the page" in [output["result"] for output in record["outputs"]]
        assert record["status"] == "running"
        wait_for(lambda: "echo: hello from the page" in text(browser, "#stdout"), what="the frame in stdout")
        save_screenshot(browser, tmp_path, "dashboard-agent")

        # "close session" writes _close: the agent finishes, the box goes away, and the group's next task runs.
        assert click(browser, "#agent-close")
        wait_for(lambda: text(browser, "#detail-status") == "success", timeout=30, what="the agent to finish")
        assert not visible(browser, "#message-form")
        assert requests.get(f"{base}/tasks/agent-1", headers=auth, timeout=5).json()["closing"] is True
        wait_for(lambda: requests.get(f"{base}/tasks/agent-2", headers=auth, timeout=5).json()["status"] == "success",
                 timeout=30, what="the group's next task to run")
        wait_for(lambda: "success" in text(browser, '#finished-tasks tr[data-task-id="agent-2"]'),
                 what="the second task in the finished list")
    finally:
        for task_id in ("agent-1", "agent-2"):
            requests.post(f"{base}/tasks/{task_id}/cancel", headers=auth, timeout=30)
        assert stop_service(process) == 0


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> done & <b>bold</b>'


def test_a_codex_task_shows_its_final_message_usage_and_commands(tmp_path: Path, browser: Any):
    """The real codex CLI against the scripted model: its answer and commands are model output, shown as text."""
    model = ModelServer([
        Reply([function_call("exec_command", {"cmd": "echo '<b>x</b>' > made.html", "tty": False})]),
        Reply([function_call("exec_command", {"cmd": "ls no-such-file", "tty": False}, call_id="call-2")]),
        Reply([custom_tool_call("apply_patch", "*** Begin Patch\n*** Add File: a<i>.txt\n+x\n*** End Patch\n",
                                call_id="call-3")]),
        Reply([message(HOSTILE)]),
    ])
    config, env = codex_settings(require_codex(), model, tmp_path / "codex-home")
    project = tmp_path / "project"
    project.mkdir()
    process, base = start_service(tmp_path, HOST_RUNNER_API_TOKEN=TOKEN, HOST_RUNNER_EXECUTOR="codex",
                                  HOST_RUNNER_CODEX_BIN=config["codex_bin"],
                                  HOST_RUNNER_CODEX_ARGS=shlex.join(config["codex_args"]), **env)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        workspace = {"project_id": 1, "project_root": str(project), "lock_paths": [str(project)]}
        response = requests.post(f"{base}/tasks", json={"task_id": "cx", "run_id": "r1", "prompt": "go",
                                                        "execution_mode": "shared-workspace",
                                                        "workspace": workspace}, headers=auth, timeout=10)
        assert response.status_code == 202, response.text
        wait_for(lambda: requests.get(f"{base}/tasks/cx", headers=auth, timeout=5).json()["status"] == "success",
                 timeout=120, what="the codex task to succeed")
        browser.get(f"{base}/")
        log_in(browser, TOKEN)
        wait_for(lambda: click(browser, '#finished-tasks tr[data-task-id="cx"]'), what="the finished codex task")
        wait_for(lambda: text(browser, "#cli-final") == HOSTILE, what="the final message as text")
        assert visible(browser, "#cli-panel") and not visible(browser, "#answers-panel")
        assert browser.execute_script("return window.__pwned === undefined")  # nothing of it ran
        assert browser.execute_script("return document.querySelector('#cli-panel img, #cli-panel script, "
                                      "#cli-panel b, #cli-panel i') === null")
        requests_made = len(model.requests)
        assert text(browser, "#cli-usage") == (f"input {120 * requests_made} (cached {20 * requests_made}) · "
                                               f"output {7 * requests_made}")
        rows = browser.execute_script(
            "return [...document.querySelectorAll('#cli-commands tbody tr')].map((row) => "
            "[...row.cells].map((cell) => cell.textContent).concat(row.className))")
        assert rows == [["0", "/bin/bash -lc \"echo '<b>x</b>' > made.html\"", ""],
                        ["2", "/bin/bash -lc 'ls no-such-file'", "failed"]]
        assert text(browser, "#cli-files") == f"add {project / 'a<i>.txt'}"
        assert text(browser, '#detail-record td[data-field="session_id"]')
        save_screenshot(browser, tmp_path, "dashboard-codex")
    finally:
        stop_service(process)
        model.close()


def test_lists_are_paged(tmp_path: Path, browser: Any):
    process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="mock", HOST_RUNNER_MAX_CONCURRENCY="8")
    try:
        for index in range(60):
            requests.post(f"{base}/tasks", json={"task_id": f"m{index:03d}", "run_id": "r", "prompt": "p"},
                          timeout=10)
        wait_for(lambda: len(requests.get(f"{base}/tasks?status=success&limit=100", timeout=5).json()["tasks"]) == 60,
                 timeout=60, what="60 finished tasks")
        browser.get(f"{base}/")  # no token set on this runner: the page connects without asking
        wait_for(lambda: "(60)" in text(browser, "#finished-count"), what="the finished count")
        rows = browser.execute_script("return document.querySelectorAll('#finished-tasks tbody tr').length")
        assert rows == 25
        assert text(browser, "#finished-pager .page") == "page 1 of 3"
        assert click(browser, "#finished-pager .next")
        wait_for(lambda: text(browser, "#finished-pager .page") == "page 2 of 3", what="the second page")
        assert "60 finished in the last hour" in text(browser, "#percentiles")
        assert browser.execute_script("return document.getElementById('chart').dataset.started") == "60"

        # A runner that stops answering (frozen, not gone): after the request timeout the page says so and hides
        # the stale data; once it answers again the panels come back.
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: browser.execute_script("return document.body.dataset.connection") == "disconnected",
                     timeout=30, what="the page to notice the runner does not answer")
            assert visible(browser, "#disconnected") and not visible(browser, "#finished-panel")
            save_screenshot(browser, tmp_path, "dashboard-frozen-runner")
        finally:
            os.killpg(process.pid, signal.SIGCONT)
        wait_for(lambda: browser.execute_script("return document.body.dataset.connection") == "connected",
                 timeout=30, what="the page to reconnect")
        assert visible(browser, "#finished-panel") and not visible(browser, "#disconnected")
        assert "(60)" in text(browser, "#finished-count")
    finally:
        assert stop_service(process) == 0


def test_the_shell_is_open_and_the_data_is_not(make_runner):
    """Without a browser: the page and its files need no token, hold no data, and only the listed files exist."""
    runner = make_runner(api_token=TOKEN)
    for path, kind in (("/", "text/html"), ("/ui", "text/html"), ("/ui/app.js", "text/javascript"),
                       ("/ui/app.css", "text/css")):
        result = runner.client.simulate_get(path)
        assert result.status_code == 200 and result.headers["content-type"].startswith(kind), path
        assert "connect-src 'self'" in result.headers["content-security-policy"]
        assert TOKEN not in result.text
    page = runner.client.simulate_get("/").text
    assert "http://" not in page and "https://" not in page  # nothing from another host
    for path in ("/ui/index.html", "/ui/..%2Fapp.py", "/ui/__init__.py"):
        assert runner.client.simulate_get(path).status_code == 404, path
    # The open prefix opens nothing else: dot segments and encoded slashes reach no data route. (A plain
    # TestClient: the OpenAPI check would resolve the dot segments itself before matching a path.)
    raw = falcon.testing.TestClient(runner.client.app)
    for path in ("/ui/../tasks", "/ui/%2e%2e/tasks", "/ui/..%2Ftasks", "/ui/x/../../debug/actors"):
        result = raw.simulate_get(path, host="127.0.0.1")
        assert result.status_code == 404 and "tasks" not in result.json, path
    for path in ("/tasks", "/debug/actors", "/metrics"):
        assert runner.client.simulate_get(path).status_code == 401, path


def test_the_brief_list_leaves_out_output_but_not_the_running_tasks(make_runner, tmp_path: Path):
    """What the dashboard polls: GET /tasks?brief=true has every field but stdout, stderr and agent outputs, for
    running tasks too (whose full records read their tails from disk)."""
    go = tmp_path / "go"
    runner = make_runner(executor="shell", agent_cmd=AGENT_CMD, allowed_executors=("shell", "agent"),
                         cmd_template=("sh", "-c", f'head -c 70000 /dev/zero | tr "\\0" x; '
                                                   f'while [ ! -e {go} ]; do sleep 0.05; done'))
    assert runner.submit(task_id="loud", prompt="p").status_code == 202
    assert runner.submit(task_id="agent", prompt="frames:2", executor="agent", group="g").status_code == 202
    runner.wait_status("agent", "success")
    wait_for(lambda: len(runner.get("loud")["stdout"]) == 65536, what="the running task's live tail")

    full = runner.client.simulate_get("/tasks", headers=runner.headers()).json["tasks"]
    brief = runner.client.simulate_get("/tasks", params={"brief": "true"}, headers=runner.headers()).json["tasks"]
    by_id = {task["task_id"]: task for task in full}
    assert [task["task_id"] for task in brief] == [task["task_id"] for task in full] == ["agent", "loud"]
    for task in brief:
        assert not {"stdout", "stderr", "outputs"} & task.keys()
        # Everything else is the same as in the full record.
        assert task == {key: value for key, value in by_id[task["task_id"]].items()
                        if key not in ("stdout", "stderr", "outputs")}
    assert brief[0]["frames"] == 2 and brief[0]["group"] == "g" and len(by_id["agent"]["outputs"]) == 2
    assert brief[1]["status"] == "running" and brief[1]["pid"]
    go.touch()
    runner.wait_status("loud", "success")
