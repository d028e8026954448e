"""host-runner: runs coding agents and commands on the host for orchestrators that live elsewhere.

Subpackages by concern; imports go downwards only, and each package's __init__ lists exactly which others it
may import (README "Architecture" shows them all):

- domain: what a task is (submission, record, sandbox spec, claims, callback hosts, errors); pure
- ops: running the service (settings, logs, statistics, permissions, API token)
- run: starting, watching and stopping a task's processes (commands, wrapper, process groups, launchers, reactor)
- workspace: where a task works (scratch, shared, git worktrees; admission)
- agent: the agent-runner protocol (stdin object, IPC, frames, output follower)
- agent_cli: agent CLIs' JSON events (the shared transcript: record fields, readable stdout, handoff; codex parser)
- store: persistence (SQLite records and the callback outbox)
- delivery: sending callbacks over HTTP (attempt, retry policy)
- sandbox: docker-sandbox runs on the Docker engine (docker client, container launchers, orphan sweep)
- modes, executors: the registries of execution modes and executors, one module each (neither imports the other)
- client: talking to a runner (Python client, CLI; ``python -m host_runner``)

The actors (actors/) and the HTTP API (api/) build on these.
"""

#: The version of the package (pyproject.toml reads it from here, ``host-runner --version`` prints it).
__version__ = "0.1.0"
