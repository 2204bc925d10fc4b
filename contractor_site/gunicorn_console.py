"""gunicorn settings of the console + API process (`make run` and production alike).

Each worker serves requests on a fixed pool of threads, and Django keeps one database connection per thread
(reused for CONN_MAX_AGE seconds), so the process holds at most CONSOLE_WORKERS x CONSOLE_THREADS connections
to PostgreSQL however many requests arrive. (Django's development server starts a thread, and so a connection,
per request, which exhausted the server's connections: it is not used.)

    gunicorn contractor_site.wsgi --config python:contractor_site.gunicorn_console

Environment: CONSOLE_BIND (default 0.0.0.0:8000), CONSOLE_WORKERS (2), CONSOLE_THREADS (4),
CONSOLE_TIMEOUT (seconds, 60), CONSOLE_RELOAD (1: restart on code changes, for development).
"""

import os

bind = os.environ.get("CONSOLE_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CONSOLE_WORKERS", "2"))
threads = int(os.environ.get("CONSOLE_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("CONSOLE_TIMEOUT", "60"))
reload = os.environ.get("CONSOLE_RELOAD", "0") == "1"
accesslog = "-"
