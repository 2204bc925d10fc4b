"""A real control-plane server process on the test database, for browser and CLI end-to-end tests.

The process sees only committed data: use it with the `committed_tenant` fixture and `run_committed`, and
with the `celery_worker_process` fixture when the scenario needs gates to run. Import the fixture into a test
module or a conftest: `from tests.live import control_plane_server  # noqa: F401`.
"""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tenancy.models import Tenant

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 40
STOP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class LiveServer:
    """Where the server process listens."""

    port: int
    log_path: Path

    @property
    def address(self) -> str:
        """Return the URL of the listening socket (send a Host header to pick a tenant)."""
        return f"http://127.0.0.1:{self.port}"

    def url_of(self, tenant: Tenant, path: str = "/") -> str:
        """Return the URL of `path` on `tenant`'s host (`<slug>.localhost`, which browsers resolve)."""
        host = tenant.domains.get(is_primary=True).domain
        return f"http://{host}:{self.port}{path}"

    def log_tail(self, lines: int = 40) -> str:
        """Return the end of the server's log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_database_url() -> str:
    """Return the DATABASE_URL of the test database this pytest session uses."""
    database = settings.DATABASES["default"]
    user = database["USER"] or "postgres"
    password = database["PASSWORD"] or ""
    address = f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    return f"postgres://{user}:{password}@{address}/{connection.settings_dict['NAME']}"


def connections_named(application_name: str) -> int:
    """Return how many connections the server started with `application_name` holds to the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            [application_name],
        )
        return cursor.fetchone()[0]


def server_environment() -> dict[str, str]:
    """Return the environment of the server process: test settings, test database, the worker's queue."""
    return {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SETTINGS_MODULE": "contractor_site.settings.test",
        "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "PYTHONUNBUFFERED": "1",
    }


def wait_until_healthy(process: subprocess.Popen, server: LiveServer) -> None:
    """Return once /healthz answers 200 on the public host; fail the test run otherwise."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    public_host = settings.CONTRACTOR["BASE_DOMAIN"]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the control-plane server exited with code {process.returncode}:\n{server.log_tail()}"
            )
        try:
            response = httpx.get(f"{server.address}/healthz", headers={"Host": public_host}, timeout=1.0)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"the control-plane server did not answer /healthz within {START_TIMEOUT_SECONDS} s")


@pytest.fixture(scope="session")
def control_plane_server(django_db_setup):
    """Run the control plane (gunicorn, test settings) on a free port against the test database."""
    port = free_port()
    (ROOT / ".run").mkdir(exist_ok=True)
    server = LiveServer(port=port, log_path=ROOT / ".run" / "test-server.log")
    log = server.log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "contractor_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            "--timeout",
            "60",
            "--access-logfile",
            "-",
        ],
        cwd=ROOT,
        env=server_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_healthy(process, server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
