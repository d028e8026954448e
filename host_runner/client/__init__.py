"""Talking to a runner over its HTTP API: the Python client (api_client) and the ``host-runner`` command (cli).

May import: host_runner.ops (the API token, read as the runner reads it) and host_runner.domain.names (the
names of modes and executors, for the CLI's choices). Never actors nor api: a client talks
to a runner over HTTP.
"""

from __future__ import annotations

from host_runner.client.api_client import ApiError, Client
from host_runner.client.cli import main, run

__all__ = [
    "ApiError", "Client", "main", "run",
]
