"""``host-runner serve`` runs this module (``python -P -m api.serve``): gunicorn, in this process, with the
package's settings (api/gunicorn_settings.py) and ``api.app:create_app()`` as the app, the same service as
``make run`` without needing the checkout.

gunicorn's own command line puts the working directory first on ``sys.path`` before it imports the settings and
the app, so started from a directory that happens to hold an ``api/`` package it would serve that one. Here gunicorn
runs through its ``BaseApplication``, which touches neither the working directory nor ``sys.path``, and the
settings and the app are imported by this module, from the package it belongs to. The working directory stays
where the operator started the command: a relative ``HOST_RUNNER_DATA_DIR`` (the default ``./.host-runner``
included), token file or unix socket path is relative to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication


class HostRunnerApplication(BaseApplication):
    """gunicorn's arbiter with api.gunicorn_settings applied and api.app's WSGI app loaded in the worker."""

    def init(self, parser: Any, opts: Any, args: Any) -> None:
        """Not used: BaseApplication reads no command line (the settings come from the environment)."""

    def load_config(self) -> None:
        # Imported here, in the master, as gunicorn -c would: reading the settings may exit(2) naming a variable.
        from api import gunicorn_settings

        for name in gunicorn_settings.__all__:
            self.cfg.set(name, getattr(gunicorn_settings, name))

    def load(self) -> Callable[..., Any]:
        # In the worker, after fork (preload_app is off): the actors must start there, never in the master.
        from api.app import create_app

        return create_app()


def main() -> None:
    """Serve until SIGTERM (or SIGINT); gunicorn exits the process with its own status."""
    HostRunnerApplication().run()


if __name__ == "__main__":
    main()
