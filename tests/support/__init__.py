"""Helpers the test rooms share, each defined once, so that no test module imports another.

Import a module, not the package: ``from support.runner import Runner``. Importing the package loads nothing,
and ``docker`` and ``browser`` need only the standard library and pytest, so bench/ scripts that put tests/ on
``sys.path`` can use them without the service's own packages. The others import host_runner, api or actors:
tests/conftest.py puts the repository on ``sys.path`` before any of them is imported.

- ``paths``: where the repository, tests/ and the fake programs in tests/bin are.
- ``waiting``: :func:`wait_for`, polling instead of fixed sleeps.
- ``processes``: the live members of a process group.
- ``openapi_check``: every response checked against the OpenAPI document.
- ``runner``: a started actor system behind Falcon's TestClient (what the ``make_runner`` fixture builds).
- ``receivers``: a real HTTP callback receiver on 127.0.0.1, and the receiver-side signature check.
- ``service``: the real gunicorn service started and stopped, and free ports.
- ``git_repos``: small real git repositories and isolated-worktree submissions.
- ``docker``: a local Docker engine, the busybox test image, and the containers a test left.
- ``browser``: headless Chromium driven by Selenium for the dashboard tests.
"""

__all__ = ["browser", "docker", "git_repos", "openapi_check", "paths", "processes", "receivers", "runner", "service",
           "waiting"]
