"""Runs one task's command and records how it ended, so the runner can learn it even after a restart.

Started by the runner as ``python -I -S wrapper.py STATUS_FILE COMMAND...`` as the leader of a new session, with
stdin, stdout and stderr already pointing at the run's files. It starts COMMAND in the same process group,
waits for it, and writes ``{"exit_code", "signal", "error", "finished_at"}`` to STATUS_FILE atomically (tmp +
rename). Stopping signals are noted, not obeyed: the runner signals the whole group, so the command receives
them directly, and the wrapper stays to record the outcome (SIGKILL still ends it; the runner knows why).
Standard library only, no package imports: it must start fast and run whatever the runner's state.
"""

import json
import os
import signal
import sys
import time


def _record(path: str, outcome: dict) -> None:
    outcome["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(outcome, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def main(argv: list) -> int:
    status_path, command = argv[1], argv[2:]
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: None)  # a handler, not SIG_IGN: exec resets it for the command
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
