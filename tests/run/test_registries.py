"""The registries of execution modes (host_runner/modes) and executors (host_runner/executors): complete,
consistent with the names (host_runner/domain/names.py) and the seams the lower layers use; and, as
documentation, that no other production module decides anything by comparing a mode's or executor's name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import host_runner.executors as executors
import host_runner.modes as modes
from host_runner.domain.names import AGENT_SESSION_EXECUTORS, EXECUTION_MODES, EXECUTORS
from host_runner.domain.seams import executor_rules, mode_rules

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FILES = {"__init__.py", "base.py"}


def module_names(package: str) -> set[str]:
    """The implementation modules of a registry package (every .py but the registry and the base class)."""
    return {path.stem for path in (REPO / "host_runner" / package).glob("*.py") if path.name not in PACKAGE_FILES}


def test_every_mode_name_has_a_module_and_every_module_is_registered():
    assert tuple(modes.MODES) == EXECUTION_MODES
    assert module_names("modes") == {name.replace("-", "_") for name in EXECUTION_MODES}
    for name, mode in modes.MODES.items():
        module = getattr(modes, name.replace("-", "_"))
        assert module.MODE is mode and mode.name == name
        assert mode_rules(name) is mode  # what validation, admission and the store reach


def test_every_executor_name_has_a_module_and_every_module_is_registered():
    assert tuple(executors.EXECUTORS_BY_NAME) == EXECUTORS
    assert module_names("executors") == set(EXECUTORS)
    for name, executor in executors.EXECUTORS_BY_NAME.items():
        assert getattr(executors, name).EXECUTOR is executor and executor.name == name
        assert executor_rules(name) is executor
    assert {name for name in EXECUTORS if executors.speaks_agent_protocol(name)} == AGENT_SESSION_EXECUTORS


def test_names_outside_the_registries_are_no_executor():
    """A sandbox run records the executor ``docker``, which starts nothing of its own."""
    assert executors.find_executor("docker") is None and executors.find_executor(None) is None
    assert not executors.needs_group("docker") and not executors.speaks_agent_protocol("docker")


#: Where a mode's or executor's name may be written in production code: its own module, the registries, the
#: names module, and the OpenAPI document (the client's CLI takes its choices from the names module).
NAMED = ("docker-sandbox", "isolated-worktree", "shared-workspace", "codex", "claude", "agent")
LITERAL = re.compile(r"""["'](%s)["']""" % "|".join(re.escape(name) for name in NAMED))


def allowed(path: Path, name: str) -> bool:
    relative = path.relative_to(REPO).as_posix()
    own = {f"host_runner/modes/{name.replace('-', '_')}.py", f"host_runner/executors/{name}.py"}
    return relative in own | {"host_runner/modes/__init__.py", "host_runner/executors/__init__.py",
                              "host_runner/domain/names.py", "api/openapi.py"}


def test_modes_and_executors_are_named_only_where_they_are_implemented():
    found = []
    for package in ("host_runner", "actors", "api"):
        for path in sorted((REPO / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in LITERAL.finditer(line):
                    if not allowed(path, match.group(1)):
                        found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "compare with a mode's or executor's property instead:\n" + "\n".join(found)


@pytest.mark.parametrize("module", ["host_runner.client.cli", "host_runner.domain.names"])
def test_the_client_side_imports_nothing_heavy(module: str):
    code = (f"import sys, {module}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('actors', 'api', 'docker', 'pykka', 'falcon')"
            " or m.startswith(('host_runner.modes', 'host_runner.executors', 'host_runner.sandbox', "
            "'host_runner.workspace', 'host_runner.run'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
