"""What a task is asked to be: the validated submission (:class:`TaskRequest`) and the rules it is checked by.

Validation is a pure function of the JSON body, so the API can answer 422 naming the field before any actor is
involved. Unknown fields are ignored: real clients send extras such as ``handoff_context``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from host_runner.domain.callback_hosts import HostAllowlist
from host_runner.domain.errors import ValidationError
from host_runner.domain.sandbox_spec import SandboxSpec, parse_sandbox

#: The executors (``HOST_RUNNER_EXECUTOR`` and a task's optional ``executor`` field).
EXECUTORS = ("mock", "shell", "codex", "agent")
EXECUTION_MODES = ("no-workspace", "shared-workspace", "isolated-worktree", "docker-sandbox")

#: Task and run ids become directory names, so they are restricted to a safe alphabet.
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:@+=-]{0,199}")
#: Linux refuses a single argv item or environment string longer than 131,071 bytes (MAX_ARG_STRLEN, NUL
#: included). The prompt travels as one argv item and as the environment string ``HOST_RUNNER_PROMPT=<prompt>``,
#: so the variable's name counts too.
MAX_PROMPT_BYTES = 131_071 - len("HOST_RUNNER_PROMPT=")
MAX_TIMEOUT_SECONDS = 86_400
#: Fields of the agent's stdin object that come from the task's own fields, never from ``agent_input``.
AGENT_OWN_FIELDS = ("prompt", "sessionId", "groupFolder")
#: Types of the known ``agent_input`` fields (anything else is passed to the agent as given).
AGENT_INPUT_TYPES: dict[str, type | tuple[type, ...]] = {
    "chatJid": str, "isMain": bool, "isScheduledTask": bool, "assistantName": str, "script": str,
}


@dataclass(frozen=True)
class Workspace:
    """Where a task works. Only the fields its execution mode needs are set."""

    project_id: int | str | None = None
    project_root: str | None = None
    lock_paths: tuple[str, ...] = ()
    worktree_path: str | None = None
    git_branch: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lock_paths"] = list(self.lock_paths)
        return {key: value for key, value in data.items() if value not in (None, [])}


@dataclass(frozen=True)
class TaskRequest:
    """A validated submission."""

    task_id: str
    run_id: str
    prompt: str
    execution_mode: str = "no-workspace"
    workspace: Workspace | None = None
    sandbox: SandboxSpec | None = None
    status_callback_url: str | None = None
    status_callback_token: str | None = field(default=None, repr=False)
    timeout_seconds: float = 600.0
    #: None until the supervisor pins it to the runner's default at submission.
    executor: str | None = None
    #: The agent executor's group (its one-at-a-time queue); see :func:`agent_group`.
    group: str | None = None
    session_id: str | None = None
    agent_input: dict[str, Any] | None = None


def agent_group(request: TaskRequest) -> str | None:
    """The group of an agent task: its ``group`` field, else ``workspace.project_id`` (as text)."""
    if request.group is not None:
        return request.group
    if request.workspace is not None and request.workspace.project_id is not None:
        return str(request.workspace.project_id)
    return None


def _require_string(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(name, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL bytes")
    if required and not value.strip():
        raise ValidationError(name, "must not be empty")
    return value


def _require_id(body: dict[str, Any], name: str) -> str:
    value = _require_string(body, name)
    assert value is not None
    if not ID_PATTERN.fullmatch(value):
        raise ValidationError(
            name, "must be 1-200 characters of letters, digits and . _ : @ + = -, not starting with . or -"
        )
    return value


def _absolute_path(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(name, "must be a non-empty string")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL bytes")
    if not os.path.isabs(value):
        raise ValidationError(name, "must be an absolute path")
    return value


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _parse_workspace(raw: Any, mode: str) -> Workspace | None:
    if raw is None:
        if mode in ("shared-workspace", "isolated-worktree"):
            raise ValidationError("workspace", f"is required for execution_mode {mode}")
        return None
    if not isinstance(raw, dict):
        raise ValidationError("workspace", "must be an object")
    project_id = raw.get("project_id")
    if project_id is not None and (isinstance(project_id, bool) or not isinstance(project_id, (int, str))):
        raise ValidationError("workspace.project_id", "must be an integer or a string")
    project_root = raw.get("project_root")
    if project_root is not None or mode in ("shared-workspace", "isolated-worktree"):
        if project_root is None:
            raise ValidationError("workspace.project_root", f"is required for execution_mode {mode}")
        project_root = _absolute_path(project_root, "workspace.project_root")
        if not os.path.isdir(project_root):
            raise ValidationError("workspace.project_root", "is not an existing directory")

    lock_paths_raw = raw.get("lock_paths")
    lock_paths: list[str] = []
    if lock_paths_raw is not None:
        if not isinstance(lock_paths_raw, list):
            raise ValidationError("workspace.lock_paths", "must be a list of absolute paths")
        real_root = os.path.realpath(project_root) if project_root else None
        for index, item in enumerate(lock_paths_raw):
            name = f"workspace.lock_paths[{index}]"
            path = _absolute_path(item, name)
            if real_root is None:
                raise ValidationError("workspace.project_root", "is required when lock_paths are given")
            # realpath resolves symlinks and '..', so neither can smuggle a lock outside the project.
            if not _is_within(os.path.realpath(path), real_root):
                raise ValidationError(name, "is outside workspace.project_root")
            lock_paths.append(path)
    if mode == "shared-workspace" and not lock_paths:
        raise ValidationError("workspace.lock_paths", "must list at least one path for shared-workspace")

    worktree_path = raw.get("worktree_path")
    git_branch = raw.get("git_branch")
    if mode == "isolated-worktree":
        worktree_path = _absolute_path(worktree_path, "workspace.worktree_path")
        if not isinstance(git_branch, str) or not git_branch.strip():
            raise ValidationError("workspace.git_branch", "is required for execution_mode isolated-worktree")
        if "\x00" in git_branch:
            raise ValidationError("workspace.git_branch", "must not contain NUL bytes")
        if git_branch.startswith("-"):  # git would read it as an option
            raise ValidationError("workspace.git_branch", "must not start with '-'")
        # What needs git (a repository, a free path, a branch name git accepts) is checked by
        # host_runner.workspace.admission once the submission is known not to be a retry.
    else:
        worktree_path = worktree_path if isinstance(worktree_path, str) else None
        git_branch = git_branch if isinstance(git_branch, str) else None
    return Workspace(
        project_id=project_id,
        project_root=project_root,
        lock_paths=tuple(lock_paths),
        worktree_path=worktree_path,
        git_branch=git_branch,
    )


def _parse_timeout(raw: Any, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ValidationError("timeout_seconds", "must be a number")
    if not 1 <= raw <= MAX_TIMEOUT_SECONDS:
        raise ValidationError("timeout_seconds", f"must be between 1 and {MAX_TIMEOUT_SECONDS}")
    return float(raw)


#: A callback host: a DNS name (IDNs in their xn-- form) or an IP address (IPv6 as urlsplit gives it, unbracketed).
CALLBACK_HOST = re.compile(r"[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?")


def _parse_callback_url(body: dict[str, Any], allowed: HostAllowlist | None = None) -> str | None:
    """The callback URL, checked against ``allowed`` (``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS``) when set: by name
    or IP literal only, never by resolving the name (see host_runner/domain/callback_hosts.py for why)."""
    url = _require_string(body, "status_callback_url", required=False)
    if not url:
        return None
    if any(ch <= " " or ch == "\x7f" for ch in url):
        # urlsplit silently drops tabs and line breaks, and a header line must never carry them: refuse.
        raise ValidationError("status_callback_url", "must not contain spaces or control characters")
    if "\\" in url:
        # The sender (urllib3, like browsers) ends the host at a backslash, urlsplit does not: in
        # http://127.0.0.1:8\@allowed.example/ they would disagree on the host. Encode it (%5C) in a path.
        raise ValidationError("status_callback_url", "must not contain a backslash")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number in 0..65535)
    except ValueError:
        raise ValidationError("status_callback_url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("status_callback_url", "must be an http:// or https:// URL")
    if not CALLBACK_HOST.fullmatch(parts.hostname):
        raise ValidationError("status_callback_url", "its host must be a DNS name (letters, digits, '.', '-', '_') "
                                                     "or an IP address")
    if allowed is not None and not allowed.allows_host(parts.hostname):
        raise ValidationError(
            "status_callback_url",
            "its host is not allowed by HOST_RUNNER_CALLBACK_ALLOWED_HOSTS (a name must be listed by name; "
            "an IP address must be a listed address or inside a listed CIDR)",
        )
    return url


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _reject_lone_surrogates(body: dict[str, Any]) -> None:
    """JSON can spell lone surrogates (a \\ud800 escape), which are not text: no argv, environment, file name,
    header or SQLite column can hold them. Refuse them anywhere in the body, naming where (iteratively: the
    body may be nested as deeply as the JSON parser allowed)."""
    pending: list[tuple[str, Any]] = [("body", body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str) and not _is_text(value):
            raise ValidationError(path, "must be valid Unicode text (no lone surrogates)")
        if isinstance(value, dict):
            for key, item in value.items():
                if not _is_text(key):
                    raise ValidationError(path, "has a field name that is not valid Unicode text")
                pending.append((key if path == "body" else f"{path}.{key}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


def _parse_agent_fields(body: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """``group``, ``session_id`` and ``agent_input`` (validated whatever the executor: they are cheap to check)."""
    group = body.get("group")
    if group is not None:
        if not isinstance(group, str) or not ID_PATTERN.fullmatch(group):
            raise ValidationError(
                "group", "must be 1-200 characters of letters, digits and . _ : @ + = -, not starting with . or -"
            )
    session_id = _require_string(body, "session_id", required=False)
    if session_id is not None and (not session_id.strip() or len(session_id) > 1000):
        raise ValidationError("session_id", "must be a non-empty string of at most 1000 characters")
    raw = body.get("agent_input")
    if raw is None:
        return group, session_id, None
    if not isinstance(raw, dict):
        raise ValidationError("agent_input", "must be an object")
    for name, value in raw.items():
        if name in AGENT_OWN_FIELDS:
            raise ValidationError(f"agent_input.{name}", "is set from the task (prompt, session_id, group)")
        expected = AGENT_INPUT_TYPES.get(name)
        if expected is not None and (not isinstance(value, expected) or (expected is str and "\x00" in value)):
            kind = "a boolean" if expected is bool else "a string without NUL bytes"
            raise ValidationError(f"agent_input.{name}", f"must be {kind}")
    return group, session_id, dict(raw)


@dataclass(frozen=True)
class SubmitRules:
    """What the operator allows a submission (built from the settings by ``Config.submit_rules``)."""

    default_timeout: float = 600.0
    #: The runner's executor: a task that names none runs it (and it decides whether a group is required).
    default_executor: str = "mock"
    #: The executors a task may name (HOST_RUNNER_ALLOWED_EXECUTORS); None: the default one alone.
    allowed_executors: tuple[str, ...] | None = None
    #: When not empty, the only host directories a sandbox may mount from (HOST_RUNNER_SANDBOX_MOUNT_ROOTS).
    sandbox_mount_roots: tuple[str, ...] = ()
    #: The runner's data directory: never mounted into a sandbox, like the host's system directories.
    sandbox_data_dir: str | os.PathLike[str] | None = None
    #: When set, the only hosts ``status_callback_url`` may name (HOST_RUNNER_CALLBACK_ALLOWED_HOSTS).
    callback_allowed_hosts: HostAllowlist | None = None


def parse_task_request(body: Any, rules: SubmitRules = SubmitRules()) -> TaskRequest:
    """Validate a submission body under ``rules``; raise :class:`ValidationError` naming the first bad field."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    _reject_lone_surrogates(body)
    task_id = _require_id(body, "task_id")
    run_id = _require_id(body, "run_id")
    prompt = _require_string(body, "prompt")
    assert prompt is not None
    if len(prompt.encode("utf-8")) > MAX_PROMPT_BYTES:
        raise ValidationError(
            "prompt", f"is longer than {MAX_PROMPT_BYTES} bytes, the most a program argument and variable can hold"
        )

    mode = body.get("execution_mode") or "no-workspace"
    if mode not in EXECUTION_MODES:
        raise ValidationError("execution_mode", f"must be one of {', '.join(EXECUTION_MODES)}")
    workspace = _parse_workspace(body.get("workspace"), mode)

    sandbox_raw = body.get("sandbox")
    if mode == "docker-sandbox" and sandbox_raw is None:
        raise ValidationError("sandbox", "is required for execution_mode docker-sandbox")
    if sandbox_raw is not None and not isinstance(sandbox_raw, dict):
        raise ValidationError("sandbox", "must be an object")
    # Other modes ignore a sandbox, as they ignore any unknown field.
    sandbox = (parse_sandbox(sandbox_raw, rules.sandbox_mount_roots, rules.sandbox_data_dir)
               if mode == "docker-sandbox" else None)

    executor = body.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise ValidationError("executor", f"must be one of {', '.join(EXECUTORS)}")
    allowed = (rules.default_executor,) if rules.allowed_executors is None else rules.allowed_executors
    if executor is not None and executor not in allowed:
        # A client must not pick a way of running things that the operator did not turn on.
        raise ValidationError("executor", f"{executor!r} is not allowed on this runner (HOST_RUNNER_ALLOWED_EXECUTORS: "
                                          f"{','.join(allowed)})")
    group, session_id, agent_input = _parse_agent_fields(body)
    token = _require_string(body, "status_callback_token", required=False) or None
    request = TaskRequest(
        task_id=task_id,
        run_id=run_id,
        prompt=prompt,
        execution_mode=mode,
        workspace=workspace,
        sandbox=sandbox,
        status_callback_url=_parse_callback_url(body, rules.callback_allowed_hosts),
        status_callback_token=token,
        timeout_seconds=_parse_timeout(body.get("timeout_seconds"), rules.default_timeout),
        executor=executor,
        group=group,
        session_id=session_id,
        agent_input=agent_input,
    )
    if mode == "docker-sandbox":
        if executor is not None:  # the sandbox names its own image and command
            raise ValidationError("executor", "does not apply to execution_mode docker-sandbox")
    elif (executor or rules.default_executor) == "agent" and agent_group(request) is None:
        raise ValidationError("group", "is required for the agent executor (or give workspace.project_id)")
    return request
