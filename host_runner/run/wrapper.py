"""Runs one task's command and records how it ended, so the runner can learn it even after a restart.

Started by the runner as ``python -I -S wrapper.py STATUS_FILE GO_FD GRACE COMMAND...`` as the leader of a new session,
with stdin, stdout and stderr already pointing at the run's files. Protocol:

1. It waits for the runner to write ``g`` on the pipe GO_FD. The runner does so only after it has persisted the
   task as running with this process's pid. If the runner dies first, the pipe closes and the wrapper exits (125)
   without running anything: a restarted runner queues the task again, and it never runs twice.
2. It creates ``launched`` beside STATUS_FILE (the command may now be running: a restarted runner adopts it),
   starts COMMAND in the same process group and waits for it.
3. It writes ``{"exit_code", "signal", "error", "finished_at"}`` to STATUS_FILE atomically (tmp + rename). If
   that fails (the data disk is full), its own exit code is still the command's, which the runner reads instead.
4. It is a child subreaper: a daemon the command forked, which left the process group with ``setsid`` (so the
   runner's group signals miss it), is re-parented to the wrapper rather than to init. Once the command has
   ended, the wrapper TERMs such escaped descendants, KILLs those still there after GRACE seconds, reaps them,
   and only then exits: a task leaves nothing running behind. (Descendants still in the group are left to the
   runner, which signals the group once the wrapper has exited.)

Stopping signals are noted, not obeyed: the runner signals the whole group, so the command receives them
directly, and the wrapper stays to record the outcome (SIGKILL still ends it; the runner knows why). One noted
before the command started (before "go", or before the spawn) means it never starts: the wrapper exits 125.
If ``launched`` cannot be created, the command does not start either (fail closed): the status file says why.
A mount plan (``--namespace``, container paths) is only for the native wrapper (wrapper.c): this one refuses it
like a command that cannot start. Standard library only, no package imports: it must start fast and run whatever the runner's state.
"""

import os
import _signal as signal  # the C module: "signal" imports enum, ~5 ms of start-up
import select
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
    try:
        # 0600: the run directory's files are the runner user's alone, whatever umask the command gets.
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write("{" + ", ".join(f'"{key}": {_json(value)}' for key, value in outcome.items()) + "}")
        os.replace(temporary, path)
    except OSError:  # a full disk: the exit code of this process still carries the outcome
        try:
            os.unlink(temporary)
        except OSError:
            pass


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphaned descendants (daemons that left the group) become our children, so we can stop them."""
    try:
        import ctypes  # only here: ~2 ms, and a failure must not keep the command from running

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:
        pass


def _escaped_descendants() -> list:
    """Live descendants of this process that are no longer in its process group (read from /proc)."""
    me, group = os.getpid(), os.getpgrp()
    children: dict = {}
    states: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        states[int(entry)] = (fields[0], int(fields[2]))
    found, todo = [], list(children.get(me, ()))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        state, pgid = states[pid]
        if state != "Z" and pgid != group:
            found.append(pid)
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(pids: list, signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def _stop_escaped(grace: float) -> None:
    """TERM the descendants that left the group, KILL what is left after ``grace`` seconds, reap them."""
    _reap()
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return  # no child at all, so no descendant either (orphans would be ours): no /proc scan
    escaped = _escaped_descendants()
    if escaped:
        _signal_all(escaped, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while escaped and time.monotonic() < deadline:
            time.sleep(0.05)
            _reap()
            escaped = _escaped_descendants()
        for _ in range(100):  # one may fork while being killed: repeat until none is left
            if not escaped:
                break
            _signal_all(escaped, signal.SIGKILL)
            time.sleep(0.02)
            _reap()
            escaped = _escaped_descendants()
    _reap()


def _wait_for_go(go_fd: int, stopped: list) -> bytes:
    """The byte the runner writes on GO_FD (b"" at EOF), or b"" as soon as a stopping signal was noted."""
    go = b""
    try:
        while not stopped:
            # select, not a bare read: a read interrupted by a signal is retried (PEP 475) and waits on.
            if select.select([go_fd], [], [], 0.05)[0]:
                go = os.read(go_fd, 1)
                break
    except OSError:
        go = b""
    os.close(go_fd)
    return go


def main(argv: list) -> int:
    status_path, go_fd, grace, command = argv[1], int(argv[2]), float(argv[3]), argv[4:]
    stopped: list = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # A handler, not SIG_IGN: exec resets it for the command. Noted: a stop before "go" means never start.
        signal.signal(signum, lambda signum, _frame: stopped.append(signum))
    go = _wait_for_go(go_fd, stopped)
    if go != b"g" or stopped:
        return NOT_STARTED
    try:
        os.close(os.open(os.path.join(os.path.dirname(status_path), "launched"), os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:  # fail closed: without it a restarted runner could not tell the command ran
        _record(status_path, {"exit_code": NOT_STARTED, "signal": None,
                              "error": f"not started: cannot create its launched file: {exc.strerror or exc}"})
        return NOT_STARTED
    _become_subreaper()
    if stopped:
        return NOT_STARTED
    try:
        if command[0] == "--namespace":  # container paths (see wrapper.c): the runner never sends one here
            raise OSError(0, "the Python wrapper cannot make a mount namespace; container paths need wrapper.c")
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
        code = 128 - code
    else:
        _record(status_path, {"exit_code": code, "signal": None, "error": None})
    _stop_escaped(grace)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
