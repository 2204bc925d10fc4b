"""Liveness and readiness probes, on every host."""

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

READINESS_TIMEOUT_SECONDS = 2


def healthz(request):
    """Answer 200 while the process is up."""
    return JsonResponse({"status": "ok"})


def check_database() -> str | None:
    """Return None if the database answers, else the reason."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any failure means not ready
        return f"database: {error.__class__.__name__}"
    return None


def check_broker() -> str | None:
    """Return None if the Celery broker (Redis) answers, else the reason."""
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL,
            socket_connect_timeout=READINESS_TIMEOUT_SECONDS,
            socket_timeout=READINESS_TIMEOUT_SECONDS,
        )
        client.ping()
        client.close()
    except Exception as error:  # any failure means not ready
        return f"broker: {error.__class__.__name__}"
    return None


def readyz(request):
    """Answer 200 when the database and the broker answer, else 503 with the reasons."""
    problems = [problem for problem in (check_database(), check_broker()) if problem]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ready"})
