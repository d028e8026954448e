"""gunicorn's settings for host-runner, the one source of them: ``host-runner serve`` (api/serve.py) applies them,
``gunicorn -c python:api.gunicorn_settings 'api.app:create_app()'`` (the Procfile) loads them by module name, and
the checkout's ``gunicorn.conf.py`` (``make run``) re-exports them. A module of the package rather than a file of
the checkout, so that an installed host-runner (a wheel in a virtualenv) serves exactly as ``make run`` does.

Importing this module reads the settings (``load_config``) and exits with status 2, naming the variable, when one
is wrong: gunicorn imports it in the master, before anything listens.

One worker, because all task state lives in actors inside one process: a second worker would run a second
supervisor with its own queue and reservations, and two processes could then start the same task or let two
tasks write the same files. Concurrency comes from the gthread worker's threads instead. The app is not
preloaded: the actors (and their threads) must start in the worker, after fork, never in the master.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import host_runner.executors  # noqa: F401 (registers what each executor needs of the settings, for load_config)
from host_runner.ops.config import ConfigError, load_config

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

try:
    _config = load_config()
except ConfigError as exc:  # refuse to start, saying which variable is wrong
    print(f"host-runner: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

bind = _config.bind
workers = 1
# gthread, with its own errors as JSON, and request heads read in its poller thread: a connection gets one of the
# request threads only once its request line and headers are complete, and is closed (JSON 408) when they are not
# complete within HOST_RUNNER_HEADER_TIMEOUT_SECONDS, so that slow or stalled clients cannot take every thread.
worker_class = "api.gunicorn_worker.JsonErrorThreadWorker"
# gunicorn's default, written out because it is what bounds the connections the worker holds at once (waiting for
# a head, served, or kept alive): at the limit it stops accepting until some close. Each one waiting for its
# head holds at most 64 KiB of it (api/gunicorn_worker.py MAX_HEAD_BYTES).
worker_connections = 1000
threads = int(os.environ.get("HOST_RUNNER_THREADS", "16"))
if _config.max_log_followers >= threads:  # followers hold request threads: some must stay for the API
    print(f"host-runner: HOST_RUNNER_MAX_LOG_FOLLOWERS={_config.max_log_followers} must be below "
          f"HOST_RUNNER_THREADS={threads}", file=sys.stderr)
    raise SystemExit(2)
preload_app = False
# A unix socket is created owner-only (0600): whoever can connect can run commands as this user. With
# HOST_RUNNER_SOCKET_GROUP, when_ready hands it to that group (0660) once it exists.
umask = 0o177
# No control socket: its commands include changing the worker count, which must stay 1.
control_socket_disable = True
# Long enough for the actors to stop cleanly (task processes keep running and are re-adopted on start).
graceful_timeout = 30
timeout = 60
accesslog = os.environ.get("HOST_RUNNER_ACCESS_LOG") or None
errorlog = "-"
loglevel = _config.log_level.lower()
if _config.log_format == "json":  # gunicorn's own lines as JSON too, so that every line of the log parses
    from host_runner.ops.runner_log import gunicorn_json_logger_class

    logger_class = gunicorn_json_logger_class()


def when_ready(server: Arbiter) -> None:
    """Open a unix socket to ``HOST_RUNNER_SOCKET_GROUP`` (group first, then mode: never wider than intended)."""
    if _config.socket_group is not None:
        from host_runner.ops.permissions import share_socket_with_group

        share_socket_with_group(_config.bind, _config.socket_group)


def post_worker_init(worker: Worker) -> None:
    """Let long-lived responses (followed logs) notice a SIGTERM and end, instead of holding up shutdown."""
    from api.app import watch_worker

    watch_worker(lambda: worker.alive)


def worker_exit(server: Arbiter, worker: Worker) -> None:
    """Stop the worker's actors in reverse start order before the process ends."""
    from api.app import shutdown

    shutdown()


#: gunicorn's settings and hooks, nothing of the module's own: what ``host-runner serve`` (api/serve.py) applies and
#: ``from api.gunicorn_settings import *`` (gunicorn.conf.py) takes. ``logger_class`` only with JSON logs: gunicorn
#: keeps its default otherwise. A setting added above must be named here too (tests/service/test_gunicorn.py).
__all__ = [
    "bind", "workers", "worker_class", "worker_connections", "threads", "preload_app", "umask",
    "control_socket_disable", "graceful_timeout", "timeout", "accesslog", "errorlog", "loglevel",
    "when_ready", "post_worker_init", "worker_exit",
    *(["logger_class"] if _config.log_format == "json" else []),
]
