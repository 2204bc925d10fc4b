"""Settings of the runtime process as the benchmark starts it: the runtime's own plus the bare route.

`DJANGO_SETTINGS_MODULE=bench.runtime_settings gunicorn runtime.wsgi` (bench/runtime.py does it): the same
process, role and middleware as production's runtime, serving bench/bare_runtime.py's URLconf.
"""

from contractor_site.settings.runtime import *  # noqa: F403

ROOT_URLCONF = "bench.bare_runtime"
PUBLIC_SCHEMA_URLCONF = "bench.bare_runtime"
