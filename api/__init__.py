"""The Falcon (WSGI) REST API: resources that parse a request, call one method of the actor system's service
(actors.service.RunnerService) and render the answer; the domain's errors become HTTP in http_errors.

Entry points: ``api.app:create_app()`` (gunicorn, in its worker), ``api.serve`` (``host-runner serve``: gunicorn
with ``api.gunicorn_settings``, the settings ``gunicorn.conf.py`` re-exports) and ``api.app.create_api(service,
config)`` (tests). This ``__init__`` imports nothing: gunicorn's master process imports ``api.gunicorn_worker``
and must not pull in the actor system before it forks.

May import: actors.service (the facade and its value types), actors.system (which builds it), actors.introspection
(thread stacks), host_runner.domain, host_runner.ops.
"""

__all__ = [
    "app", "auth", "debug", "gunicorn_errors", "gunicorn_settings", "gunicorn_worker", "http_errors", "metrics",
    "openapi", "openapi_schemas", "request_guard", "resources", "serve", "task_output", "ui",
]
