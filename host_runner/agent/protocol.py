"""The agent executor's domain: the agent-runner protocol's input object, its IPC input directory and the
per-run log file.

An agent-runner (see the README's "Agent executor") reads one JSON object on stdin, prints framed results on
stdout (:mod:`host_runner.agent.frames`) and polls ``$HOST_RUNNER_IPC_DIR/input/`` for follow-up messages and
``_close`` (with container paths, :mod:`host_runner.run.container_paths`, that directory is ``/workspace/ipc``). The runner writes the stdin object to a file in the run directory (the child's stdin is that file,
so nothing depends on a pipe held by the runner) and creates the IPC directory before the agent starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from host_runner.domain.request import TaskRequest, agent_group
from host_runner.ops.config import Config
from host_runner.run.commands import LaunchError, build_process_spec
from host_runner.run.container_paths import IPC, agent_plan
from host_runner.run.process_group import ProcessSpec, RunFiles

logger = logging.getLogger(__name__)

CLOSE_FILE = "_close"


def agent_timeout(requested: float, config: Config) -> float:
    """The hard timeout of an agent task: never shorter than the idle close plus the close grace.

    An agent-runner does not exit after answering: it waits for follow-ups or ``_close``. NanoClaw's own host
    keeps its hard timeout at least 30 s past the idle close so that an agent that answered and waits is closed
    for being idle, not killed for a timeout; here that margin is the close grace the operator gives an agent to
    exit after ``_close`` (60 s by default).
    """
    return max(requested, config.agent_idle_seconds + config.agent_close_grace_seconds)


@dataclass(frozen=True)
class AgentFiles:
    """The agent's files in its run directory."""

    directory: Path

    @classmethod
    def of(cls, files: RunFiles) -> AgentFiles:
        return cls(files.directory)

    @property
    def input(self) -> Path:
        """The stdin object (it holds the prompt: private, and removed when the run ends)."""
        return self.directory / "agent-input.json"

    @property
    def ipc(self) -> Path:
        """``$HOST_RUNNER_IPC_DIR``."""
        return self.directory / "ipc"

    @property
    def ipc_input(self) -> Path:
        return self.ipc / "input"

    @property
    def run_log(self) -> Path:
        return self.directory / "run.log"


def agent_stdin(request: TaskRequest, group: str) -> dict[str, Any]:
    """The object written to the agent's stdin: the protocol's fields, ``agent_input`` supplying the rest."""
    data: dict[str, Any] = {"prompt": request.prompt}
    if request.session_id:
        data["sessionId"] = request.session_id
    data.update(groupFolder=group, chatJid="", isMain=False, isScheduledTask=False)
    data.update(request.agent_input or {})  # validated: it cannot override prompt, sessionId or groupFolder
    return data


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` so that a reader sees either nothing or all of it (``PATH.tmp`` + rename)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def prepare_agent_spec(
    config: Config, request: TaskRequest, argv: tuple[str, ...], cwd: Path, base_env: Mapping[str, str],
    files: RunFiles,
) -> ProcessSpec:
    """Create the IPC directory and the stdin file, and describe the agent's process running ``argv`` (blocking:
    a helper thread)."""
    group = agent_group(request)
    if group is None:  # validation requires one; a request stored by an older runner might not have it
        raise LaunchError("the agent executor needs a group (the task's group or workspace.project_id)")
    agent_files = AgentFiles.of(files)
    agent_files.ipc_input.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(agent_files.input, json.dumps(agent_stdin(request, group)).encode())
    plan = None
    ipc = str(agent_files.ipc)
    if config.agent_paths == "container":  # the agent sees its directories where its container had them
        plan = agent_plan(cwd, agent_files.ipc, config.agent_global_dir, config.agent_extra_dirs)
        ipc = IPC
    extra_env = {"HOST_RUNNER_GROUP": group, "HOST_RUNNER_IPC_DIR": ipc}
    spec = build_process_spec(config, request, argv, cwd, base_env, extra_env=extra_env, stdin_path=agent_files.input)
    return replace(spec, namespace=plan)


class IpcInbox:
    """Writes follow-up messages and ``_close`` where the agent polls for them. Used by one TaskActor only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._last = 0
        try:  # after a restart, pending messages may still be waiting: new names must sort after them
            for name in os.listdir(directory):
                stem = name.split(".", 1)[0]
                if stem.isdigit():
                    self._last = max(self._last, int(stem))
        except FileNotFoundError:
            pass

    def put_message(self, text: str) -> str:
        """Write ``{"type": "message", "text": text}`` atomically; names sort in the order of the calls."""
        self._last = max(time.time_ns(), self._last + 1)
        name = f"{self._last:020d}.json"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.directory / name, json.dumps({"type": "message", "text": text}).encode())
        return name

    def close(self) -> None:
        """Ask the agent to finish its current query and exit (an empty ``_close``)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.directory / CLOSE_FILE, b"")


@dataclass(frozen=True)
class RunSummary:
    """What the per-run log's header says."""

    task_id: str
    run_id: str
    group: str | None
    command: tuple[str, ...]
    started_at: str | None
    finished_at: str
    duration_seconds: float | None
    status: str
    message: str
    exit_code: int | None
    timed_out: bool
    frames: int
    invalid_frames: int
    prompt_chars: int
    prompt_bytes: int
    session_id: str | None
    new_session_id: str | None
    prompt: str | None  # only with HOST_RUNNER_LOG_PROMPTS=true


def write_run_log(path: Path, summary: RunSummary, stderr: Path) -> None:
    """The per-run log: header, input summary, then the agent's stderr (streamed: any size, little memory)."""
    duration = "unknown" if summary.duration_seconds is None else f"{summary.duration_seconds:.3f} s"
    lines = [
        "=== host-runner agent run ===",
        f"task: {summary.task_id}",
        f"run: {summary.run_id}",
        f"group: {summary.group}",
        f"command: {json.dumps(list(summary.command))}",
        f"started: {summary.started_at}",
        f"finished: {summary.finished_at}",
        f"duration: {duration}",
        f"status: {summary.status} ({summary.message})",
        f"exit code: {summary.exit_code}",
        f"timed out: {'yes' if summary.timed_out else 'no'}",
        f"frames: {summary.frames} ({summary.invalid_frames} invalid, skipped)",
        "",
        "=== input ===",
        f"prompt length: {summary.prompt_chars} characters ({summary.prompt_bytes} bytes)",
        f"session id: {summary.session_id or '(new session)'}",
        f"new session id: {summary.new_session_id or '(none)'}",
    ]
    if summary.prompt is not None:
        lines += ["prompt:", summary.prompt]
    lines += ["", "=== stderr ===", ""]
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write("\n".join(lines).encode("utf-8", errors="replace"))
        try:
            with open(stderr, "rb") as source:
                shutil.copyfileobj(source, handle)
        except FileNotFoundError:
            handle.write(b"(no stderr file)\n")
    os.replace(temporary, path)


def finish_run(files: AgentFiles, summary: RunSummary, stderr: Path, log_fields: Mapping[str, Any]) -> dict[str, Any]:
    """Once the run ended (in a helper thread): drop the stdin file (it holds the prompt; the store keeps the
    request) and write the run log; returns the record's ``run_log`` field (none when it could not be written)."""
    files.input.unlink(missing_ok=True)
    try:
        write_run_log(files.run_log, summary, stderr)
    except OSError as exc:
        logger.error("task %s: cannot write its run log: %s", summary.task_id, exc, extra=dict(log_fields))
        return {}
    return {"run_log": str(files.run_log)}
