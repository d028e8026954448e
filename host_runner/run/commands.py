"""What every task process gets, whichever executor chose its argv (see host_runner.executors): the environment
(the runner's, filtered, plus the task's identity and prompt), its program found on PATH, and the
:class:`ProcessSpec` that starts it; and :class:`LaunchError`, which says why a task cannot start.

User text is never spliced into shell code: placeholders are replaced inside argv items (:func:`substitute`), and
the same values travel in environment variables so a template that needs a shell can quote them itself
(``sh -c 'echo "$HOST_RUNNER_PROMPT"'``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from host_runner.domain.request import TaskRequest
from host_runner.ops.config import SECRET_VARIABLES, Config
from host_runner.run.process_group import ProcessSpec

PLACEHOLDER = re.compile(r"\{(prompt|task_id|run_id)\}")


class LaunchError(Exception):
    """The task cannot be started; the message is recorded on the task."""


def substitute(item: str, values: Mapping[str, str]) -> str:
    """Replace ``{prompt}``, ``{task_id}`` and ``{run_id}`` in one pass (a value is never expanded again)."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], item)


#: What a task gets of the runner's environment with ``HOST_RUNNER_TASK_ENV=minimal``: enough for programs to find
#: each other, their home and the user's language, and nothing that could be a credential. ``LC_*`` too.
MINIMAL_ENVIRONMENT = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TZ", "TMPDIR"})
MINIMAL_ENVIRONMENT_PREFIXES = ("LC_",)


def inherited_environment(config: Config, base: Mapping[str, str]) -> dict[str, str]:
    """What a task inherits of the runner's environment ``base`` (``HOST_RUNNER_TASK_ENV``): all of it but the
    runner's own secrets (``inherit``, for agents that read their credentials from the environment), or only the
    basics and the names the operator passes on (``minimal``)."""
    if config.task_env == "minimal":
        passed = MINIMAL_ENVIRONMENT.union(config.task_env_pass)
        chosen = {name: value for name, value in base.items()
                  if name in passed or name.startswith(MINIMAL_ENVIRONMENT_PREFIXES)}
    else:
        chosen = dict(base)
    for name in SECRET_VARIABLES:
        chosen.pop(name, None)
    return chosen


def child_environment(config: Config, base: Mapping[str, str], request: TaskRequest) -> dict[str, str]:
    """The environment a task inherits of the runner's (see :func:`inherited_environment`), plus its identity and
    prompt."""
    env = inherited_environment(config, base)
    env.update(
        HOST_RUNNER_TASK_ID=request.task_id,
        HOST_RUNNER_RUN_ID=request.run_id,
        HOST_RUNNER_PROMPT=request.prompt,
    )
    return env


def resolve_program(program: str, env: Mapping[str, str], cwd: Path) -> str | None:
    """Where ``program`` would be found by exec in ``cwd`` with ``env``'s PATH, or None."""
    if os.sep in program:
        candidate = program if os.path.isabs(program) else os.path.join(cwd, program)
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def build_process_spec(
    config: Config,
    request: TaskRequest,
    argv: tuple[str, ...],
    cwd: Path,
    base_env: Mapping[str, str],
    *,
    extra_env: Mapping[str, str] | None = None,
    stdin_path: Path | None = None,
    not_found: str | None = None,
) -> ProcessSpec:
    """Everything needed to start ``argv`` for the task; raises :class:`LaunchError` with a clear message
    (``not_found`` when its program is not there: an executor may say what the program is)."""
    env = child_environment(config, base_env, request)
    env.update(extra_env or {})
    if resolve_program(argv[0], env, cwd) is None:
        raise LaunchError(not_found or f"command not found: {argv[0]!r}")
    return ProcessSpec(argv=argv, env=env, cwd=cwd, stdin_path=stdin_path)
