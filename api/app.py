"""The WSGI application: :func:`create_api` builds it around a :class:`RunnerService` (the actor system's public
face), :func:`create_app` from the environment (the entry point gunicorn calls in its worker, after fork, so the
actors live in that process)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import falcon

from actors.service import RunnerService
from actors.system import ActorSystem
from api.auth import TokenAuth
from api.debug import DebugActorsResource, DebugThreadsResource
from api.event_stream import EventsResource
from api.http_errors import ApiError, add_error_handlers
from api.metrics import MetricsResource, RunnerCollector, metrics_registry
from api.openapi import OpenApiResource
from api.request_guard import RequestGuard
from api.resources import HealthResource, TaskResource, TasksResource
from api.task_output import FollowerSlots, TaskLogsResource
from api.ui import DashboardResource
from host_runner.ops.config import Config, load_config
from host_runner.ops.runner_log import configure_logging as _configure_logging

logger = logging.getLogger(__name__)

_system: ActorSystem | None = None
_system_lock = threading.Lock()
_worker_alive: Callable[[], bool] | None = None


def create_api(service: RunnerService, config: Config, *, stopping: Callable[[], bool] = lambda: False) -> falcon.App:
    """A Falcon app around ``service``; pure, so tests can build one around any actor system.

    ``config`` says who may ask (bind, allowed hosts, token) and how many may follow logs; ``stopping`` tells
    long-lived responses (followed logs) that the server is going down.
    """
    # The guard first: a request from a web page or under a foreign name learns nothing, not even about the token.
    middleware: list[Any] = [RequestGuard(config.bind, config.allowed_hosts)]
    if config.api_token:
        middleware.append(TokenAuth(config.api_token))
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    add_error_handlers(app)
    tasks = TasksResource(service)
    task = TaskResource(service)
    app.add_route("/tasks", tasks)
    app.add_route("/tasks/submit", tasks, suffix="submit")
    app.add_route("/tasks/{task_id}", task)
    app.add_route("/tasks/{task_id}/cancel", task, suffix="cancel")
    app.add_route("/tasks/{task_id}/messages", task, suffix="messages")
    app.add_route("/tasks/{task_id}/close", task, suffix="close")
    settled = service.config  # what the actor system settled at start (the cgroups among it)
    cgroups = None if settled.cgroup_tree is not None else settled.cgroup_note.removeprefix("cgroups: ")
    app.add_route("/health", HealthResource(config, cgroups))
    followers = FollowerSlots(config.max_log_followers)
    app.add_route("/tasks/{task_id}/logs", TaskLogsResource(service, followers, stopping))
    events = EventsResource(service, config, followers, stopping)
    app.add_route("/events", events)
    app.add_route("/tasks/{task_id}/events", events, suffix="task")
    app.add_route("/debug/actors", DebugActorsResource(service))
    app.add_route("/debug/threads", DebugThreadsResource())
    app.add_route("/metrics", MetricsResource(metrics_registry(RunnerCollector(service, config, followers))))
    app.add_route("/openapi.json", OpenApiResource())
    dashboard = DashboardResource()
    app.add_route("/", dashboard)
    app.add_route("/ui", dashboard)
    app.add_route("/ui/{name}", dashboard, suffix="asset")
    return app


def configure_logging(config: Config) -> None:
    _configure_logging(config.log_level, config.log_format)


def watch_worker(alive: Callable[[], bool]) -> None:
    """gunicorn's ``post_worker_init`` hands over the worker's liveness: once it turns False (SIGTERM), followed
    logs end so that the worker can finish its requests and stop the actors within the graceful timeout."""
    global _worker_alive
    _worker_alive = alive


def _worker_stopping() -> bool:
    return _worker_alive is not None and not _worker_alive()


def create_app() -> falcon.App:
    """Read the environment, start the actor system once per process and return the WSGI app."""
    global _system
    config = load_config()
    configure_logging(config)
    with _system_lock:
        if _system is None:
            _system = ActorSystem.start(config)
        assert _system.service is not None
        return create_api(_system.service, config, stopping=_worker_stopping)


def shutdown() -> None:
    """Stop the actor system started by :func:`create_app` (gunicorn's ``worker_exit`` calls this)."""
    global _system
    with _system_lock:
        if _system is not None:
            _system.stop()
            _system = None


__all__ = ["ApiError", "create_api", "create_app", "shutdown", "watch_worker"]
