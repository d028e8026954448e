"""Headless Chromium for the dashboard tests: Debian's ``chromium`` and ``chromium-driver`` driven by Selenium.

Outside CI a machine without the browser skips those tests; under ``CI=true`` (where .ci/run installs it) a
missing browser fails them. Every browser gets a fresh profile directory, and :func:`stop_browser` makes sure no
process started with that profile outlives the test.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from support.paths import REPO

__all__ = ["ARTIFACTS", "require_browser", "save_screenshot", "start_browser", "stop_browser"]

CHROMIUM = Path(os.environ.get("HOST_RUNNER_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("HOST_RUNNER_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1100")
ARTIFACTS = Path(os.environ.get("HOST_RUNNER_TEST_ARTIFACTS", REPO / ".test-artifacts"))


def require_browser() -> None:
    """Skip (fail under CI) unless Selenium, chromium and chromedriver are all here."""
    problems = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append("the selenium package")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            problems.append(str(path))
    if problems:
        message = "the dashboard tests need " + ", ".join(problems) + " (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


def start_browser(profile: Path, *flags: str) -> Any:
    """A headless Chromium with a fresh profile in ``profile`` and any further command-line ``flags``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *flags):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile.parent / "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


def _processes_using(profile: Path) -> list[int]:
    marker = f"--user-data-dir={profile}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def stop_browser(driver: Any, profile: Path) -> None:
    """Quit the browser, then kill whatever is still running with this test's profile (only ours)."""
    try:
        driver.quit()
    finally:
        deadline = time.monotonic() + 10
        while (left := _processes_using(profile)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in _processes_using(profile):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def save_screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    """Save a screenshot in the test's tmp dir and in the artifacts directory; return the artifact's path."""
    png = driver.get_screenshot_as_png()
    (tmp_path / f"{name}.png").write_bytes(png)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    target.write_bytes(png)
    return target
