"""``gunicorn -c gunicorn.conf.py 'api.app:create_app()'`` (``make run``) from the checkout: the settings are the
package's own (api/gunicorn_settings.py), so that this file, the Procfile and ``host-runner serve`` of an installed
wheel cannot drift apart."""

from api.gunicorn_settings import *  # noqa: F401,F403 (gunicorn reads the names this module ends up with)
