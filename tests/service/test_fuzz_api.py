"""API fuzzing with schemathesis against the real service (gunicorn on 127.0.0.1) and its own /openapi.json:
no 5xx, every answer with the status code, content type, headers and body schema the document declares (so
every error is the JSON Error schema), with and without the token.

``HOST_RUNNER_FUZZ_EXAMPLES`` sets the examples per operation and phase (25 here: about 900 requests per run;
``make soak`` runs thousands).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from support.service import start_service, stop_service

ST = Path(sys.executable).with_name("st")
TOKEN = "fuzz-token-7f3a"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance")
EXAMPLES = os.environ.get("HOST_RUNNER_FUZZ_EXAMPLES", "25")


def schemathesis(spec: Path, base: str, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ST), "run", str(spec), "--url", base, "--checks", CHECKS, "--max-examples", EXAMPLES,
         "--generation-database", "none", "--request-timeout", "30", "--report", "junit",
         "--report-junit-path", str(report), *extra],
        capture_output=True, text=True, timeout=1800, cwd=spec.parent,
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    process, base = start_service(tmp_path, HOST_RUNNER_API_TOKEN=TOKEN, HOST_RUNNER_EXECUTOR="mock",
                                  HOST_RUNNER_MOCK_SECONDS="0.05")
    spec = tmp_path / "openapi.json"
    spec.write_text(requests.get(f"{base}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=10).text)
    try:
        yield tmp_path, base, spec
    finally:
        assert stop_service(process) == 0
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log and "unhandled error" not in log, log[-5000:]


def assert_clean(result: subprocess.CompletedProcess[str], report: Path) -> None:
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert report.exists() and "<testcase" in report.read_text(), "schemathesis must have run test cases"
    assert " generated," in result.stdout and " passed" in result.stdout, summary


def test_fuzzing_without_the_token_gets_only_documented_401s(service):
    tmp_path, base, spec = service
    result = schemathesis(spec, base, tmp_path / "anonymous.xml")
    assert_clean(result, tmp_path / "anonymous.xml")
    listing = requests.get(f"{base}/tasks", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
    assert listing["count"] == 0, "nothing may be submitted without the token"


def test_fuzzing_with_the_token(service):
    tmp_path, base, spec = service
    result = schemathesis(spec, base, tmp_path / "authorized.xml", "--header", f"Authorization: Bearer {TOKEN}")
    assert_clean(result, tmp_path / "authorized.xml")
    health = requests.get(f"{base}/health", timeout=10)
    assert health.status_code == 200 and json.loads(health.text) == {"status": "ok", "disk": "ok"}
