"""A psycopg connection pool per process, through Django's `OPTIONS["pool"]` (production and the runtime).

Each process (a gunicorn worker, a Celery child) keeps at most `max_size` connections, shared by its threads:
a request checks one out at its first query and gives it back when it ends (CONN_MAX_AGE must be 0). So the
connections of a deployment are bounded by replicas x workers x max_size per process kind, whatever the
traffic (README, "Database connections").

Schema per tenant: django-tenants sets `search_path` on the first cursor of every request (its `close()`
forgets what it set), so a connection's previous tenant never leaks into the next request. The pool also
resets what a session may carry when a connection is given back: the search path and any advisory lock (the
runtime's idempotency lock, should an unlock have failed).
"""

from __future__ import annotations

import os
from typing import Any

RESET_SQL = "RESET search_path; SELECT pg_advisory_unlock_all()"


def reset_pooled_connection(connection) -> None:
    """Clear the session state a request may leave on a connection returned to the pool."""
    connection.execute(RESET_SQL)


def pooled(
    database: dict[str, Any], prefix: str, *, max_size: int, min_size: int = 1, timeout: float = 10.0
) -> dict[str, Any]:
    """Return `database` served from a pool sized by `<prefix>_POOL_MIN_SIZE`, `<prefix>_POOL_MAX_SIZE` and
    `<prefix>_POOL_TIMEOUT` (seconds a request waits for a free connection before failing), with defaults."""
    options = {
        "min_size": int(os.environ.get(f"{prefix}_POOL_MIN_SIZE", str(min_size))),
        "max_size": int(os.environ.get(f"{prefix}_POOL_MAX_SIZE", str(max_size))),
        "timeout": float(os.environ.get(f"{prefix}_POOL_TIMEOUT", str(timeout))),
        "reset": reset_pooled_connection,
    }
    return {
        **database,
        "CONN_MAX_AGE": 0,  # required by Django's pool: every request gives its connection back
        "CONN_HEALTH_CHECKS": True,  # the pool checks a connection before handing it out
        "OPTIONS": {**database.get("OPTIONS", {}), "pool": options},
    }
