"""The WSGI application: :func:`create_api` builds it from its collaborators, :func:`create_app` from the
environment (the entry point gunicorn calls in its worker, after fork, so the actors live in that process)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import falcon
import pykka

from actors.system import ActorSystem
from api.auth import TokenAuth
from api.errors import ApiError, handle_unexpected, serialize_error
from api.resources import HealthResource, TaskResource, TasksResource
from host_runner.config import Config, load_config

logger = logging.getLogger(__name__)

_system: ActorSystem | None = None
_system_lock = threading.Lock()


def create_api(supervisor: pykka.ActorRef[Any], config: Config) -> falcon.App:
    """A Falcon app that talks to ``supervisor``; pure, so tests can build one around any actor system."""
    middleware = [TokenAuth(config.api_token)] if config.api_token else []
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    tasks = TasksResource(supervisor, config)
    task = TaskResource(supervisor, config)
    app.add_route("/tasks", tasks)
    app.add_route("/tasks/submit", tasks, suffix="submit")
    app.add_route("/tasks/{task_id}", task)
    app.add_route("/tasks/{task_id}/cancel", task, suffix="cancel")
    app.add_route("/tasks/{task_id}/messages", task, suffix="messages")
    app.add_route("/tasks/{task_id}/close", task, suffix="close")
    app.add_route("/health", HealthResource())
    return app


def configure_logging(config: Config) -> None:
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(config.log_level)


def create_app() -> falcon.App:
    """Read the environment, start the actor system once per process and return the WSGI app."""
    global _system
    config = load_config()
    configure_logging(config)
    with _system_lock:
        if _system is None:
            _system = ActorSystem.start(config)
        assert _system.supervisor is not None
        return create_api(_system.supervisor, config)


def shutdown() -> None:
    """Stop the actor system started by :func:`create_app` (gunicorn's ``worker_exit`` calls this)."""
    global _system
    with _system_lock:
        if _system is not None:
            _system.stop()
            _system = None


__all__ = ["ApiError", "create_api", "create_app", "shutdown"]
