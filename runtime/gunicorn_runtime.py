"""gunicorn settings of the runtime process (`make run` and production alike).

Each worker process serves requests on a fixed pool of threads (gthread), so one slow model call holds one
thread, not a whole worker, and the per-tenant and per-endpoint limits of runtime/limits.py keep one tenant's
slow endpoint from holding all of them. Django keeps one database connection per thread: the process holds at
most RUNTIME_WORKERS x RUNTIME_THREADS connections (production: see the pool in settings/production.py).

The worker timeout is RUNTIME_WORKER_TIMEOUT, the same variable the settings check MODEL_TIMEOUT_CAP +
RUNTIME_RECORD_MARGIN against (runtime/checks.py), so a request always ends with its recorded decision before
gunicorn would cut it off.

    gunicorn runtime.wsgi --config python:runtime.gunicorn_runtime

Environment: RUNTIME_BIND (default 0.0.0.0:8001), RUNTIME_WORKERS (2), RUNTIME_THREADS (8),
RUNTIME_WORKER_TIMEOUT (seconds, 30), RUNTIME_ACCESS_LOG (1: one line per request on stdout, the default).
With PROMETHEUS_MULTIPROC_DIR set, dead workers' gauges are dropped (runtime/gunicorn_hooks.py).
"""

import os

from runtime.gunicorn_hooks import child_exit  # noqa: F401 (a gunicorn server hook, found by its name)

bind = os.environ.get("RUNTIME_BIND", "0.0.0.0:8001")
workers = int(os.environ.get("RUNTIME_WORKERS", "2"))
threads = int(os.environ.get("RUNTIME_THREADS", "8"))
worker_class = "gthread"
timeout = int(float(os.environ.get("RUNTIME_WORKER_TIMEOUT", "30")))
graceful_timeout = timeout
keepalive = 5
accesslog = "-" if os.environ.get("RUNTIME_ACCESS_LOG", "1") == "1" else None
