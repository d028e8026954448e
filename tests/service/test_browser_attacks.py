"""Web pages the user happens to visit cannot drive the runner: the attacks of a hostile page, tried in the real
headless Chromium against the real gunicorn service with its default settings (loopback bind, no token).

The hostile page is served by a second HTTP server of the test's own. Chromium resolves the made-up names below to
127.0.0.1 (``--host-resolver-rules``), so the page lives on another *site* as on the internet, while every request
stays on this machine (and no private-network rule of the browser interferes: loopback to loopback).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from support.browser import require_browser, start_browser, stop_browser
from support.service import start_service, stop_service
from support.waiting import wait_for

ATTACKER_SITE = "attacker.test"  # where the hostile page comes from
REBOUND_NAME = "rebound.test"  # a name of the attacker's that DNS rebinding points at 127.0.0.1
RESOLVER_RULES = f"--host-resolver-rules=MAP {ATTACKER_SITE} 127.0.0.1, MAP {REBOUND_NAME} 127.0.0.1"

# Each attack submits a task whose prompt names a canary file; the shell executor would create it.
ATTACK_PAGE = """<!doctype html>
<html><body>
<iframe name="sink" style="display:none"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="RUNNER/tasks/submit">
  <input type="hidden" name='{"task_id": "form-post", "run_id": "r1", "x": "' value='", "prompt": "CANARIES/form-post"}'>
</form>
<script>
const runner = "RUNNER";
const body = (id) => JSON.stringify({task_id: id, run_id: "r1", prompt: "CANARIES/" + id});
const outcomes = {};
async function attack(name, run) {
  try { outcomes[name] = await run(); } catch (error) { outcomes[name] = "rejected: " + error; }
}
(async () => {
  // No Content-Type at all, no preflight: the request that ran a task before.
  await attack("no-cors-blob", () => fetch(runner + "/tasks/submit",
      {method: "POST", mode: "no-cors", body: new Blob([body("no-cors-blob")])}).then(r => "sent " + r.type));
  await attack("no-cors-text", () => fetch(runner + "/tasks/submit",
      {method: "POST", mode: "no-cors", body: body("no-cors-text")}).then(r => "sent " + r.type));
  await attack("beacon", async () => navigator.sendBeacon(runner + "/tasks/submit", new Blob([body("beacon")]))
      ? "queued" : "not queued");
  // The browser asks first (CORS preflight); the runner grants nothing, so this one is never sent.
  await attack("cors-json", () => fetch(runner + "/tasks/submit", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: body("cors-json")}).then(r => "answered " + r.status));
  await attack("cancel", () => fetch(runner + "/tasks/victim/cancel", {method: "POST", mode: "no-cors"})
      .then(r => "sent " + r.type));
  document.getElementById("form").submit();
  outcomes["form-post"] = "submitted";
  window.attackDone = true;
})();
</script>
</body></html>
"""

ATTACKS = ("no-cors-blob", "no-cors-text", "beacon", "cors-json", "form-post")


class AttackerSite:
    """The hostile page's own server (another port, so another origin); it records nothing and serves one page."""

    def __init__(self, page: str) -> None:
        body = page.encode("utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server interface)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    require_browser()
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    driver = start_browser(profile, RESOLVER_RULES)
    try:
        yield driver
    finally:
        stop_browser(driver, profile)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The runner as a user starts it (defaults), with a shell executor that creates the file its prompt names."""
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell",
                                  HOST_RUNNER_CMD_TEMPLATE='sh -c \'touch "$1"\' task {prompt}')
    try:
        yield base, canaries
    finally:
        assert stop_service(process) == 0


def test_a_hostile_page_cannot_submit_or_cancel(service: tuple[str, Path], browser: Any, tmp_path: Path):
    base, canaries = service
    # A task of the user's own, running, that the page will try to cancel.
    victim = requests.post(f"{base}/tasks/submit", json={"task_id": "victim", "run_id": "r1",
                                                         "prompt": str(canaries / "victim")}, timeout=10)
    assert victim.status_code == 202, victim.text
    site = AttackerSite(ATTACK_PAGE.replace("RUNNER", base).replace("CANARIES", str(canaries)))
    try:
        browser.get(f"http://{ATTACKER_SITE}:{site.port}/")
        wait_for(lambda: browser.execute_script("return window.attackDone === true"), timeout=20,
                 what="the page's attacks to be sent")
        outcomes = browser.execute_script("return outcomes")
        # The attacks really left the page (the browser did not stop them itself) ...
        assert outcomes["no-cors-blob"] == "sent opaque" and outcomes["beacon"] == "queued", outcomes
        # ... and the one that needs a preflight was refused by the browser, since the runner allows no other origin.
        assert outcomes["cors-json"].startswith("rejected"), outcomes
        # Give the beacon and the form time to arrive, then look from the user's side: nothing of the page's ran.
        wait_for(lambda: browser.execute_script("return document.readyState") == "complete", what="the page")
        assert requests.get(f"{base}/tasks/victim", timeout=10).json()["status"] == "success"
        for task_id in ATTACKS:
            wait_for(lambda: requests.get(f"{base}/tasks/{task_id}", timeout=10).status_code == 404, timeout=2,
                     what=f"{task_id} to be unknown")
        # The form post is a navigation: its frame shows the runner's refusal.
        browser.switch_to.frame("sink")
        wait_for(lambda: "403" in browser.page_source or "Forbidden" in browser.page_source, timeout=10,
                 what="the form's answer")
        browser.switch_to.default_content()
    finally:
        site.close()
    tasks = requests.get(f"{base}/tasks", timeout=10).json()["tasks"]
    assert [task["task_id"] for task in tasks] == ["victim"]
    assert sorted(path.name for path in canaries.iterdir()) == ["victim"]


def test_a_rebound_name_reaches_nothing(service: tuple[str, Path], browser: Any):
    """DNS rebinding: the page's own name now resolves to 127.0.0.1, so its requests are same-origin for the
    browser and it could read the answers; they name the attacker's host, and the runner answers none of them."""
    base, canaries = service
    port = base.rsplit(":", 1)[1]
    rebound = f"http://{REBOUND_NAME}:{port}"
    browser.get(f"{rebound}/ui")  # the attacker's page, now served by the runner's port
    assert "403" in browser.title or "does not answer to the name" in browser.page_source
    answers = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const body = JSON.stringify({task_id: "rebound", run_id: "r1", prompt: arguments[0]});
        Promise.all([
          fetch("/tasks").then(r => r.status),
          fetch("/tasks/submit", {method: "POST", headers: {"Content-Type": "application/json"}, body})
            .then(async r => [r.status, await r.text()]),
          fetch("/health").then(r => r.status),
        ]).then(done, (error) => done("rejected: " + error));
    """, str(canaries / "rebound"))
    listed, (submitted, detail), health = answers
    assert listed == 403 and submitted == 403, answers
    assert json.loads(detail)["detail"].startswith("this runner does not answer to the name 'rebound.test'")
    assert health == 200  # /health answers any name (health checks from containers use theirs)
    assert requests.get(f"{base}/tasks/rebound", timeout=10).status_code == 404
    assert not (canaries / "rebound").exists()


def test_the_dashboard_still_works_from_its_own_origin(service: tuple[str, Path], browser: Any):
    """The page's own requests (same origin) pass the guard: it lists tasks and cancels one."""
    base, canaries = service
    browser.get(f"{base}/")
    wait_for(lambda: browser.execute_script("return document.body.dataset.connection") == "connected",
             what="the page to connect")
    answers = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const body = JSON.stringify({task_id: "from-page", run_id: "r1", prompt: arguments[0]});
        fetch("/tasks/submit", {method: "POST", headers: {"Content-Type": "application/json"}, body})
          .then(r => r.status).then(done, (error) => done("rejected: " + error));
    """, str(canaries / "from-page"))
    assert answers == 202
    wait_for(lambda: (canaries / "from-page").exists(), what="the page's own task to run")
