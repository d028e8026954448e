"""Process control: start a task's command in its own session and read what it left (stopping it:
:mod:`host_runner.run.stopping`).

A task's command runs under :mod:`host_runner.run.wrapper` as the leader of a new session, so its process group id
is the wrapper's pid and one ``killpg`` reaches every descendant that stayed in the group. Output goes straight
from the command to files; the runner never holds a pipe to it, so its memory does not depend on what a task
prints and a task can outlive the runner.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from host_runner.ops.permissions import original_umask
from host_runner.run.container_paths import MountPlan

WRAPPER = Path(__file__).with_name("wrapper.py")
#: The argv prefix of the Python wrapper; :mod:`host_runner.run.wrapper_build` may settle on the native build instead.
PYTHON_WRAPPER: tuple[str, ...] = (sys.executable, "-I", "-S", str(WRAPPER))
TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class RunFiles:
    """The files of one run, under ``<data dir>/runs/<task_id>/<run_id>/``."""

    directory: Path

    @classmethod
    def for_run(cls, runs_dir: Path, task_id: str, run_id: str) -> RunFiles:
        return cls(runs_dir / task_id / run_id)

    @property
    def stdout(self) -> Path:
        return self.directory / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.directory / "stderr.log"

    @property
    def exit_status(self) -> Path:
        return self.directory / "exit_status.json"

    @property
    def launched(self) -> Path:
        """Created by the wrapper once the runner let it start the command (see :mod:`host_runner.run.wrapper`)."""
        return self.directory / "launched"

    @property
    def transcript(self) -> Path:
        """The readable transcript an agent CLI's session writes from its JSON events (absent for other runs)."""
        return self.directory / "transcript.log"

    @property
    def readable_stdout(self) -> Path:
        """What the record shows as ``stdout``: the transcript when the run has one, else stdout.log."""
        return self.transcript if self.transcript.exists() else self.stdout

    @property
    def scratch(self) -> Path:
        return self.directory / "work"

    def create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in (self.stdout, self.stderr):
            path.touch(mode=0o600)


@dataclass(frozen=True)
class ProcessSpec:
    """What to run: an argv list (never a shell string), its environment and working directory."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    stdin_path: Path | None = None
    #: Container paths: the mount namespace the wrapper makes for the command (see host_runner.run.container_paths).
    namespace: MountPlan | None = None


@dataclass(frozen=True)
class ExitStatus:
    """How a command ended, as the wrapper recorded it."""

    exit_code: int
    signal: int | None = None
    error: str | None = None


class Spawned:
    """A wrapper process waiting for :meth:`release` before it starts the task's command."""

    def __init__(self, popen: subprocess.Popen[bytes], go_fd: int) -> None:
        self.popen = popen
        self._go_fd: int | None = go_fd

    def release(self) -> None:
        """Let the command start. Call it only after the pid was persisted (see :mod:`host_runner.run.wrapper`)."""
        self._close(b"g")

    def abandon(self) -> None:
        """Make the wrapper exit without running the command."""
        self._close(b"")

    def _close(self, data: bytes) -> None:
        if self._go_fd is None:
            return
        try:
            if data:
                os.write(self._go_fd, data)
        except BrokenPipeError:
            pass  # the wrapper is gone already (stopped before "go"): its exit tells the rest
        finally:
            os.close(self._go_fd)
            self._go_fd = None


def spawn(spec: ProcessSpec, files: RunFiles, wrapper: Sequence[str] | None = None, grace: float = 5.0) -> Spawned:
    """Start the wrapper for ``spec`` in a new session; stdout/stderr are appended to the run's files.

    ``wrapper`` is the argv prefix that starts it (``Config.wrapper_argv``; the Python wrapper when None).
    ``grace``: how long the wrapper lets daemons that left the group live after SIGTERM, once the command ended
    (see :mod:`host_runner.run.wrapper`). The command itself starts only when :meth:`Spawned.release` is called.
    """
    go_read, go_write = os.pipe()
    plan = spec.namespace.wrapper_words() if spec.namespace is not None else []
    argv = [*(wrapper or PYTHON_WRAPPER), str(files.exit_status), str(go_read), f"{grace:g}", *plan, *spec.argv]
    stdin_path = spec.stdin_path or Path(os.devnull)
    try:
        with open(stdin_path, "rb") as stdin, open(files.stdout, "ab") as stdout, open(files.stderr, "ab") as stderr:
            popen = subprocess.Popen(
                argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=spec.cwd, env=spec.env,
                start_new_session=True, close_fds=True, pass_fds=(go_read,), umask=original_umask(),
            )
    except BaseException:
        os.close(go_write)
        raise
    finally:
        os.close(go_read)
    return Spawned(popen, go_write)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), None if gone.

    Together with the pid it identifies a process for good: a reused pid has a different start time. A zombie
    counts as gone: it has ended, and only waits for its parent to collect its status (a runner restarted in the
    same process, as in tests, may find its own former child in that state).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def read_exit_status(path: Path) -> ExitStatus | None:
    """What the wrapper recorded, or None when it recorded nothing (killed, or still running)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return ExitStatus(exit_code=int(data["exit_code"]), signal=data.get("signal"), error=data.get("error"))


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a log file as text (undecodable bytes replaced), '' if absent."""
    # Four system calls (open, fstat, pread, close) rather than a buffered file's ten: every one lets another
    # thread take the GIL, and a GET of a running task reads two tails (issue 22).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - limit)
        return os.pread(fd, size - start, start).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
