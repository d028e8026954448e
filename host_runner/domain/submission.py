"""What a task is asked to be: validating a submission body into a :class:`TaskRequest`.

Validation is a pure function of the JSON body, so the API can answer 422 naming the field before any actor is
involved. Unknown fields are ignored: real clients send extras such as ``handoff_context``. What depends on the
execution mode (its workspace and sandbox) or on the executor (whether it needs a group) is asked of the mode
and executor named, through :mod:`host_runner.domain.seams` (their implementations are in host_runner.modes and
host_runner.executors, which this package may not import).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import urlsplit

from host_runner.domain.callback_hosts import HostAllowlist
from host_runner.domain.errors import ValidationError
from host_runner.domain.fields import ID_PATTERN, require_id as _require_id, require_string as _require_string
from host_runner.domain.limits import parse_limits
from host_runner.domain.names import DEFAULT_EXECUTION_MODE, EXECUTION_MODES, EXECUTORS
from host_runner.domain.request import SubmitRules, TaskRequest, Workspace, agent_group
from host_runner.domain.seams import executor_rules, mode_rules

#: Linux refuses a single argv item or environment string longer than 131,071 bytes (MAX_ARG_STRLEN, NUL
#: included). The prompt travels as one argv item and as the environment string ``HOST_RUNNER_PROMPT=<prompt>``,
#: so the variable's name counts too.
MAX_PROMPT_BYTES = 131_071 - len("HOST_RUNNER_PROMPT=")
MAX_TIMEOUT_SECONDS = 86_400
#: ``agent_input`` serialised (compact JSON, UTF-8) at most: it is stored with the task and written to its stdin.
MAX_AGENT_INPUT_BYTES = 64 * 1024
#: Fields of the agent's stdin object that come from the task's own fields, never from ``agent_input``.
AGENT_OWN_FIELDS = ("prompt", "sessionId", "groupFolder")
#: Types of the known ``agent_input`` fields (anything else is passed to the agent as given).
AGENT_INPUT_TYPES: dict[str, type | tuple[type, ...]] = {
    "chatJid": str, "isMain": bool, "isScheduledTask": bool, "assistantName": str, "script": str,
}

__all__ = [
    "EXECUTION_MODES", "EXECUTORS", "ID_PATTERN", "MAX_PROMPT_BYTES", "MAX_TIMEOUT_SECONDS", "SubmitRules",
    "TaskRequest", "Workspace", "agent_group", "parse_task_request",
]


CALLBACK_EVENTS = ("status", "progress")


def _parse_callback_events(raw: Any) -> tuple[str, ...]:
    """``status_callback_events``: ``["status"]`` (the default, the contract's) or ``["status", "progress"]``."""
    if raw is None:
        return ("status",)
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ValidationError("status_callback_events", "must be a list of strings")
    if any(item not in CALLBACK_EVENTS for item in raw) or len(set(raw)) != len(raw):
        raise ValidationError("status_callback_events", f"may hold each of {', '.join(CALLBACK_EVENTS)} once")
    if "status" not in raw:
        raise ValidationError("status_callback_events", "must include status (status callbacks are the contract's)")
    return tuple(item for item in CALLBACK_EVENTS if item in raw)


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
    if len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8")) > MAX_AGENT_INPUT_BYTES:
        raise ValidationError("agent_input", f"is over {MAX_AGENT_INPUT_BYTES} bytes serialised as JSON")
    for name, value in raw.items():
        if name in AGENT_OWN_FIELDS:
            raise ValidationError(f"agent_input.{name}", "is set from the task (prompt, session_id, group)")
        expected = AGENT_INPUT_TYPES.get(name)
        if expected is not None and (not isinstance(value, expected) or (expected is str and "\x00" in value)):
            kind = "a boolean" if expected is bool else "a string without NUL bytes"
            raise ValidationError(f"agent_input.{name}", f"must be {kind}")
    return group, session_id, dict(raw)


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

    mode_name = body.get("execution_mode") or DEFAULT_EXECUTION_MODE
    if mode_name not in EXECUTION_MODES:
        raise ValidationError("execution_mode", f"must be one of {', '.join(EXECUTION_MODES)}")
    mode = mode_rules(mode_name)
    workspace = mode.parse_workspace(body.get("workspace"))
    sandbox_raw = body.get("sandbox")
    if sandbox_raw is not None and not isinstance(sandbox_raw, dict):
        raise ValidationError("sandbox", "must be an object")
    sandbox = mode.parse_sandbox(sandbox_raw, rules)  # the modes without a sandbox ignore it, like unknown fields

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
    callback_events = _parse_callback_events(body.get("status_callback_events"))
    request = TaskRequest(
        task_id=task_id,
        run_id=run_id,
        prompt=prompt,
        execution_mode=mode_name,
        workspace=workspace,
        sandbox=sandbox,
        status_callback_url=_parse_callback_url(body, rules.callback_allowed_hosts),
        status_callback_token=token,
        timeout_seconds=_parse_timeout(body.get("timeout_seconds"), rules.default_timeout),
        executor=executor,
        group=group,
        session_id=session_id,
        agent_input=agent_input,
        status_callback_events=callback_events,
        limits=parse_limits(body.get("limits"), rules.max_limits),
    )
    if not mode.runs_executor and executor is not None:  # the mode names its own command
        raise ValidationError("executor", f"does not apply to execution_mode {mode_name}")
    chosen = executor_rules(executor or rules.default_executor) if mode.runs_executor else None
    if chosen is not None and chosen.needs_group and agent_group(request) is None:
        raise ValidationError("group", f"is required for the {chosen.name} executor (or give workspace.project_id)")
    if agent_input is not None and (chosen is None or not chosen.speaks_agent_protocol):
        ran = f"the {chosen.name} executor" if chosen is not None else f"execution_mode {mode_name}"
        raise ValidationError("agent_input", f"is only for an executor that speaks the agent protocol, not {ran}")
    return request
