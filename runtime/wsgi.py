"""WSGI entry point of the runtime process: `gunicorn runtime.wsgi` with contractor_site.settings.runtime."""

import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contractor_site.settings.runtime")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (configured by get_wsgi_application)

if settings.WSGI_APPLICATION != "runtime.wsgi.application":
    # Serving the runtime with the control plane's settings would run it as the owner role.
    raise ImproperlyConfigured(
        "runtime.wsgi needs the runtime settings (DJANGO_SETTINGS_MODULE=contractor_site.settings.runtime), "
        f"not {os.environ['DJANGO_SETTINGS_MODULE']}"
    )
