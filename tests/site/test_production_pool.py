"""Production settings pool the database connections (core/dbpool.py): a console process under production
settings serves two tenants alternately, each request sees its own tenant's schema whichever pooled
connection it gets, and the process holds no more than workers x DB_POOL_MAX_SIZE connections."""

import secrets
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection, transaction

from promotions.services.environments import environments_ensure_defaults
from runtime.services import runtime_key_create
from tenancy.models import ApiToken
from tenancy.services import tenant_create
from tenancy.tokens import api_token_issue_for
from tests import live
from tests.conftest import host_of, run_committed
from tests.runtime.runtime_world import drop_tenant, member

pytestmark = pytest.mark.django_db

APPLICATION_NAME = "contractor-production-pool-test"
WORKERS = 2
THREADS = 4
POOL_MAX = 2  # below the threads: the pool, not the threads, bounds the connections
REQUESTS = 120
CLIENTS = 12


def tenant_with_a_key():
    """Create a committed tenant with an operator, their API token and a runtime key named after it."""
    slug = f"pool-{uuid.uuid4().hex[:8]}"
    tenant = tenant_create(actor=None, slug=slug, name=slug)
    connection.set_tenant(tenant)
    try:
        environments_ensure_defaults(actor=None)
        operator = member(tenant, f"{slug}-operator", ["operator"])
        with transaction.atomic():
            runtime_key_create(actor=operator, name=f"key-of-{slug}")
    finally:
        connection.set_schema_to_public()
    return tenant, api_token_issue_for(tenant=tenant, user=operator).secret, f"key-of-{slug}"


def drop(tenant) -> None:
    ApiToken.objects.filter(tenant=tenant).delete()
    drop_tenant(tenant)


@pytest.fixture(scope="module")
def two_tenants(django_db_setup, django_db_blocker):
    """Two committed tenants, each (tenant, token, runtime key name)."""
    with django_db_blocker.unblock():
        built = [run_committed(tenant_with_a_key) for _ in range(2)]
    yield built
    with django_db_blocker.unblock():
        for tenant, _, _ in built:
            run_committed(drop, tenant)


def server_connections() -> int:
    """Return how many connections the server under test holds to PostgreSQL."""
    return live.connections_named(APPLICATION_NAME)


def test_pooled_connections_serve_each_tenant_its_own_schema_and_stay_bounded(two_tenants):
    port = live.free_port()
    server = live.LiveServer(port=port, log_path=live.ROOT / ".run" / "test-production-pool.log")
    (live.ROOT / ".run").mkdir(exist_ok=True)
    environment = {
        **live.server_environment(),
        "DJANGO_SETTINGS_MODULE": "contractor_site.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"{live.test_database_url()}?application_name={APPLICATION_NAME}",
        "DB_POOL_MAX_SIZE": str(POOL_MAX),
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

    def fetch(index: int) -> tuple[int, int, list[str]]:
        tenant, token, _ = two_tenants[index % 2]
        response = httpx.get(
            f"{server.address}/api/v1/runtime-keys/",
            headers={"Host": host_of(tenant), "Authorization": f"Token {token}"},
            timeout=30,
        )
        names = (
            [key["name"] for key in response.json().get("results", [])] if response.status_code == 200 else []
        )
        return index % 2, response.status_code, names

    with server.log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=live.ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            live.wait_until_healthy(process, server)
            with ThreadPoolExecutor(max_workers=CLIENTS) as clients:
                answers = list(clients.map(fetch, range(REQUESTS)))
            held = server_connections()
        finally:
            process.terminate()
            process.wait(timeout=15)

    assert [status for _, status, _ in answers] == [200] * REQUESTS, server.log_tail()
    for which, _, names in answers:
        assert names == [two_tenants[which][2]]  # its own tenant's key, never the other's
    assert 1 <= held <= WORKERS * POOL_MAX, held
