"""The console process `make run` starts keeps its database connections bounded, whatever the traffic."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests import live
from tests.conftest import host_of

APPLICATION_NAME = "contractor-console-connection-test"
WORKERS = 2
THREADS = 4
REQUESTS = 200
CLIENTS = 16


def server_connections() -> int:
    """Return how many connections the console under test holds to PostgreSQL."""
    return live.connections_named(APPLICATION_NAME)


def test_two_hundred_requests_leave_at_most_one_connection_per_worker_thread(tenant_a):
    port = live.free_port()
    server = live.LiveServer(port=port, log_path=live.ROOT / ".run" / "test-console-connections.log")
    (live.ROOT / ".run").mkdir(exist_ok=True)
    environment = {
        **live.server_environment(),
        "DATABASE_URL": f"{live.test_database_url()}?application_name={APPLICATION_NAME}",
        "CONSOLE_BIND": f"127.0.0.1:{port}",
        "CONSOLE_WORKERS": str(WORKERS),
        "CONSOLE_THREADS": str(THREADS),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "contractor_site.wsgi",
        "--config",
        "python:contractor_site.gunicorn_console",
    ]
    with server.log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=live.ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            live.wait_until_healthy(process, server)
            paths = ["/login/", "/readyz", "/api/v1/me/", "/no-such-page/"]

            def fetch(index: int) -> int:
                response = httpx.get(
                    f"{server.address}{paths[index % len(paths)]}",
                    headers={"Host": host_of(tenant_a)},
                    timeout=30,
                )
                return response.status_code

            with ThreadPoolExecutor(max_workers=CLIENTS) as clients:
                statuses = list(clients.map(fetch, range(REQUESTS)))
            held = server_connections()
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert len(statuses) == REQUESTS
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    # The server really talked to the database (otherwise the bound below proves nothing) ...
    assert held >= 1
    # ... and holds no more than one connection per worker thread, not one per request.
    assert held <= WORKERS * THREADS, held
