"""Runs one task's command and records how it ended, so the runner can learn it even after a restart.

Started by the runner as ``python -I -S wrapper.py STATUS_FILE GO_FD COMMAND...`` as the leader of a new session,
with stdin, stdout and stderr already pointing at the run's files. Protocol:

1. It waits for the runner to write ``g`` on the pipe GO_FD. The runner does so only after it has persisted the
   task as running with this process's pid. If the runner dies first, the pipe closes and the wrapper exits (125)
   without running anything: a restarted runner queues the task again, and it never runs twice.
2. It creates ``launched`` beside STATUS_FILE (the command may now be running: a restarted runner adopts it),
   starts COMMAND in the same process group and waits for it.
3. It writes ``{"exit_code", "signal", "error", "finished_at"}`` to STATUS_FILE atomically (tmp + rename).

Stopping signals are noted, not obeyed: the runner signals the whole group, so the command receives them
directly, and the wrapper stays to record the outcome (SIGKILL still ends it; the runner knows why).
Standard library only, no package imports: it must start fast and run whatever the runner's state.
"""

import os
import _signal as signal  # the C module: "signal" imports enum, ~5 ms of start-up
import sys
import time

NOT_STARTED = 125


def _json(value: object) -> str:
    """JSON for the few value types we write (the json module costs ~10 ms of start-up: too slow here)."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    text = "".join(ch if ch >= " " and ch not in '"\\' else f"\\u{ord(ch):04x}" for ch in str(value))
    return f'"{text}"'


def _record(path: str, outcome: dict) -> None:
    outcome["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        handle.write("{" + ", ".join(f'"{key}": {_json(value)}' for key, value in outcome.items()) + "}")
    os.replace(temporary, path)


def main(argv: list) -> int:
    status_path, go_fd, command = argv[1], int(argv[2]), argv[3:]
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: None)  # a handler, not SIG_IGN: exec resets it for the command
    try:
        go = os.read(go_fd, 1)
    except OSError:
        go = b""
    os.close(go_fd)
    if go != b"g":
        return NOT_STARTED
    open(os.path.join(os.path.dirname(status_path), "launched"), "w").close()
    try:
        pid = os.posix_spawnp(command[0], command, os.environ)
    except OSError as exc:
        message = f"cannot start {command[0]!r}: {exc.strerror or exc}"
        print(f"host-runner: {message}", file=sys.stderr, flush=True)
        _record(status_path, {"exit_code": 127, "signal": None, "error": message})
        return 127
    _, wait_status = os.waitpid(pid, 0)  # retried by Python on EINTR (PEP 475)
    code = os.waitstatus_to_exitcode(wait_status)
    if code < 0:
        _record(status_path, {"exit_code": 128 - code, "signal": -code, "error": None})
        return 128 - code
    _record(status_path, {"exit_code": code, "signal": None, "error": None})
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
