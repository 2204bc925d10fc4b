"""Fixtures: the public tenant and two test tenants (alpha, beta), members, clients, a real Celery worker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.models import Tenant
from tenancy.services import ensure_public_tenant, membership_set, tenant_create, tenant_host
from tenancy.tokens import api_token_issue_for

ROOT = Path(__file__).resolve().parent.parent
TEST_TENANTS = ("alpha", "beta")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Create the public tenant and the test tenants' schemas once (kept with --reuse-db)."""
    with django_db_blocker.unblock():
        ensure_public_tenant()
        for slug in TEST_TENANTS:
            tenant = Tenant.objects.filter(schema_name=slug).first()
            if tenant is None:
                tenant_create(actor=None, slug=slug, name=f"{slug.title()} Corp")
            else:
                tenant.create_schema(check_if_exists=True)


@pytest.fixture(autouse=True)
def public_schema_after_each_test():
    """Leave the connection in public after every test.

    A request through the test client selects its host's schema on the shared connection and leaves it
    selected; the next test (creating a tenant, which only works from public) must not inherit it.
    """
    yield
    connection.set_schema_to_public()


def tenant_named(slug: str) -> Tenant:
    """Return the test tenant `slug`."""
    return Tenant.objects.get(schema_name=slug)


@pytest.fixture
def tenant_a(db) -> Tenant:
    return tenant_named("alpha")


@pytest.fixture
def tenant_b(db) -> Tenant:
    return tenant_named("beta")


@pytest.fixture
def in_tenant(db):
    """Switch the connection to a tenant for the test body; back to public afterwards."""

    def switch(tenant: Tenant) -> Tenant:
        connection.set_tenant(tenant)
        return tenant

    yield switch
    connection.set_schema_to_public()


@pytest.fixture
def in_tenant_a(in_tenant, tenant_a) -> Tenant:
    return in_tenant(tenant_a)


@pytest.fixture
def make_member(db):
    """Create a user with `roles` in `tenant`."""

    def make(tenant: Tenant, username: str, roles: list[str], password: str = "pw-for-tests-1"):  # noqa: S107
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            user = get_user_model().objects.create_user(username=username, password=password)
        membership_set(actor=None, tenant=tenant, user=user, roles=roles)
        return user

    return make


def host_of(tenant: Tenant) -> str:
    """Return the Host header of `tenant`."""
    return tenant_host(tenant.schema_name.replace("_", "-"))


def token_client(tenant: Tenant, user, scopes: list[str] | None = None) -> APIClient:
    """Return an API client authenticated by a new token of `tenant` (every scope unless `scopes`)."""
    client = APIClient(HTTP_HOST=host_of(tenant))
    created = api_token_issue_for(tenant=tenant, user=user, scopes=scopes)
    client.credentials(HTTP_AUTHORIZATION=f"Token {created.secret}")
    return client


def session_client(
    tenant: Tenant, user, *, bound_to: Tenant | None = None, enforce_csrf: bool = False
) -> APIClient:
    """Return a client logged in by session, the session bound to `bound_to` (default: `tenant`)."""
    client = APIClient(HTTP_HOST=host_of(tenant), enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    session = client.session
    session[SESSION_TENANT_KEY] = (bound_to or tenant).schema_name
    session.save()
    return client


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """Run a real Celery worker on the test database and the test queue; stop it afterwards."""
    database = settings.DATABASES["default"]
    user = database["USER"] or "postgres"
    address = f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    url = f"postgres://{user}:{database['PASSWORD'] or ''}@{address}/{connection.settings_dict['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "contractor_site.settings.test",
        "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
    }
    (ROOT / ".run").mkdir(exist_ok=True)
    log = (ROOT / ".run" / "test-worker.log").open("w")
    name = f"contractor-test-{os.getpid()}@localhost"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "contractor_site",
            "worker",
            "-l",
            "info",
            "--concurrency",
            "2",
            "-n",
            name,
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from contractor_site.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited with code {process.returncode}")
        replies = app.control.ping(destination=[name], timeout=1.0)
        if replies:
            break
    else:
        process.kill()
        pytest.fail("the Celery worker did not answer within 60 s")
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def run_committed(function, *args, tenant: Tenant | None = None, **kwargs):
    """Run `function` in a thread with its own connection, so its writes commit and other processes see them.

    The test's own connection stays inside its rolled-back transaction; use this to set up data for a live
    runtime process or for concurrent database sessions.
    """
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def call():
        try:
            if tenant is not None:
                connection.set_tenant(tenant)
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


@pytest.fixture(scope="session")
def committed_tenant(django_db_setup, django_db_blocker):
    """A tenant whose data commits (for live processes and concurrency tests); its schema is dropped after."""
    import uuid

    slug = f"live-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        tenant = tenant_create(actor=None, slug=slug, name=f"Live {slug}")
    yield tenant
    with django_db_blocker.unblock():
        drop_committed_tenant(tenant)


def drop_committed_tenant(tenant: Tenant) -> None:
    """Remove a committed tenant: the public rows that point at it, its schema, then the tenant."""
    from tenancy.models import ApiToken, Domain, Membership, SsoConfig, SsoIdentity

    connection.set_schema_to_public()
    ApiToken.objects.filter(tenant=tenant).delete()
    SsoIdentity.objects.filter(tenant=tenant).delete()
    SsoConfig.objects.filter(tenant=tenant).delete()
    Membership.objects.filter(tenant=tenant).delete()
    Domain.objects.filter(tenant=tenant).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=tenant.pk).delete()
