"""The API token's two sources, read the same way by the runner, the CLI and the Python client:
``HOST_RUNNER_API_TOKEN``, or the file ``HOST_RUNNER_API_TOKEN_FILE`` names (not both).

A token in a file others may read is no secret, so such a file is refused (as ssh refuses a readable key),
and so is one that belongs to another user (it could have been planted) or that is not a regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

TOKEN_VARIABLE = "HOST_RUNNER_API_TOKEN"
TOKEN_FILE_VARIABLE = "HOST_RUNNER_API_TOKEN_FILE"
MAX_TOKEN_FILE_BYTES = 64 * 1024


def read_token_file(path: str) -> str:
    """The token kept in ``path`` (its content, surrounding whitespace ignored); ValueError says what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not hang the caller
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_mode & 0o077:
            raise ValueError(f"other users may read it (mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it")
        if info.st_uid != os.geteuid():
            raise ValueError("it belongs to another user")
        token = os.read(fd, MAX_TOKEN_FILE_BYTES).decode("utf-8").strip()
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if not token:
        raise ValueError("it is empty")
    return token


def token_from_environment(env: Mapping[str, str]) -> str | None:
    """The token ``env`` configures, or None; ValueError (naming the variable) for both set or a bad file."""
    token = (env.get(TOKEN_VARIABLE) or "").strip() or None
    path = (env.get(TOKEN_FILE_VARIABLE) or "").strip()
    if not path:
        return token
    if token is not None:
        raise ValueError(f"set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE}, not both")
    try:
        return read_token_file(path)
    except ValueError as exc:
        raise ValueError(f"{TOKEN_FILE_VARIABLE}={path!r}: {exc}") from None


__all__ = ["TOKEN_FILE_VARIABLE", "TOKEN_VARIABLE", "read_token_file", "token_from_environment"]
