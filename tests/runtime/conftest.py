"""Live runtime fixtures: a real dev model server, the committed world, and runtime processes (gunicorn).

The runtime process runs with contractor_site.settings.runtime, connected AS contractor_runtime to the test
database; everything it reads was committed through the real services (runtime_world.build_world).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from devmodel.server import DevModelSettings, load_rules, serve_in_background
from tenancy.services import tenant_host
from tests.conftest import run_committed
from tests.live import free_port
from tests.runtime.runtime_world import World, build_world, create_tenant, drop_tenant

ROOT = Path(__file__).resolve().parent.parent.parent
RUNTIME_ROLE = "contractor_runtime"
RUNTIME_PASSWORD = "contractor-runtime-dev"
SLOW_SECONDS = 2.0
START_TIMEOUT_SECONDS = 40
STOP_TIMEOUT_SECONDS = 15
CACHE_SECONDS = 0.5
RUNTIME_THREADS = 4  # per worker, each with its database connection: the test server's connections are shared


def database_address() -> tuple[str, int, str]:
    """Return (host, port, name) of the test database."""
    database = settings.DATABASES["default"]
    return database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432), connection.settings_dict["NAME"]


def runtime_database_url(port: int | None = None) -> str:
    """Return the URL connecting as the runtime role to the test database (optionally on another port)."""
    host, real_port, name = database_address()
    return f"postgres://{RUNTIME_ROLE}:{RUNTIME_PASSWORD}@{host}:{port or real_port}/{name}"


def owner_connection() -> psycopg.Connection:
    """Return an autocommit connection to the test database as the owner role."""
    host, port, name = database_address()
    database = settings.DATABASES["default"]
    return psycopg.connect(
        host=host,
        port=port,
        dbname=name,
        user=database["USER"] or "postgres",
        password=database["PASSWORD"] or "",
        autocommit=True,
    )


def runtime_role_connection(schema: str) -> psycopg.Connection:
    """Return a connection AS contractor_runtime with `schema` first on the search path."""
    host, port, name = database_address()
    connection_ = psycopg.connect(
        host=host, port=port, dbname=name, user=RUNTIME_ROLE, password=RUNTIME_PASSWORD
    )
    connection_.execute(f'SET search_path TO "{schema}", public')
    connection_.commit()
    return connection_


@dataclass
class RuntimeProcess:
    """A runtime (gunicorn) process listening on loopback."""

    port: int
    log_path: Path
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_runtime(
    database_url: str,
    name: str,
    metrics_dir: Path,
    workers: int = 2,
    threads: int = RUNTIME_THREADS,
    extra_env: dict[str, str] | None = None,
) -> RuntimeProcess:
    """Start `gunicorn runtime.wsgi` as configured for production (runtime/gunicorn_runtime.py: threads) with
    the runtime settings; return once /healthz answers."""
    port = free_port()
    (ROOT / ".run").mkdir(exist_ok=True)
    log_path = ROOT / ".run" / f"test-runtime-{name}-{port}.log"
    log = log_path.open("w")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "contractor_site.settings.runtime",
        "RUNTIME_DATABASE_URL": database_url,
        "RUNTIME_CACHE_SECONDS": str(CACHE_SECONDS),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONUNBUFFERED": "1",
        "CONTRACTOR_EGRESS_ALLOW": "127.0.0.0/8,::1",  # the test dev model listens on loopback
        "RUNTIME_BIND": f"127.0.0.1:{port}",
        "RUNTIME_WORKERS": str(workers),
        "RUNTIME_THREADS": str(threads),
        # The tests send many invalid keys from loopback on purpose; the throttle has its own tests.
        "RUNTIME_KEY_FAILURE_LIMIT": "100000",
        **(extra_env or {}),
    }
    env.pop("RUNTIME_DEBUG", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "runtime.wsgi",
            "--config",
            "python:runtime.gunicorn_runtime",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    runtime = RuntimeProcess(port, log_path, process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the runtime exited with code {process.returncode}:\n{runtime.log_tail()}")
        try:
            if httpx.get(f"{runtime.address}/healthz", timeout=1.0).status_code == 200:
                return runtime
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(
        f"the runtime did not answer /healthz within {START_TIMEOUT_SECONDS} s:\n{runtime.log_tail()}"
    )


def stop_runtime(runtime: RuntimeProcess) -> None:
    """Stop a runtime process."""
    runtime.process.terminate()
    try:
        runtime.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        runtime.process.kill()
        runtime.process.wait()


@pytest.fixture(scope="session")
def dev_model():
    """A real dev model server (loopback, free port); dev-slow sleeps SLOW_SECONDS."""
    dev_settings = DevModelSettings(rulebook=load_rules(), api_key=None, slow_seconds=SLOW_SECONDS)
    with serve_in_background(dev_settings) as server:
        yield server


@pytest.fixture(scope="session")
def world(django_db_setup, django_db_blocker, dev_model) -> World:
    """The committed world in a dedicated tenant (dropped at the end of the session)."""
    with django_db_blocker.unblock():
        tenant = run_committed(create_tenant)
    host = tenant_host(tenant.schema_name.replace("_", "-"))
    try:
        with django_db_blocker.unblock():
            built = run_committed(build_world, tenant, host, dev_model.base_url, tenant=tenant)
        yield built
    finally:
        with django_db_blocker.unblock():
            run_committed(drop_tenant, tenant)


@pytest.fixture(scope="session")
def runtime(world, tmp_path_factory) -> RuntimeProcess:
    """The runtime process on the test database, as contractor_runtime (two workers, shared metrics)."""
    process = start_runtime(runtime_database_url(), "main", tmp_path_factory.mktemp("runtime-metrics"))
    yield process
    stop_runtime(process)


class RuntimeClient:
    """An HTTP client of a runtime process for one host and one runtime key."""

    def __init__(self, runtime: RuntimeProcess, host: str, key: str | None):
        self.runtime = runtime
        self.host = host
        self.key = key
        self.http = httpx.Client(base_url=runtime.address, timeout=30.0)

    def headers(self, extra: dict[str, str] | None = None, key: str | None = None) -> dict[str, str]:
        headers = {"Host": self.host}
        if key or self.key:
            headers["Authorization"] = f"Bearer {key or self.key}"
        return {**headers, **(extra or {})}

    def execute(self, bundle: str, pipeline: str, input: dict, *, headers: dict | None = None, key=None):
        return self.http.post(
            f"/v1/execute/{bundle}/{pipeline}", json={"input": input}, headers=self.headers(headers, key)
        )

    def post(self, path: str, *, content: bytes | None = None, json=None, headers: dict | None = None):
        return self.http.post(path, content=content, json=json, headers=self.headers(headers))

    def get(self, path: str, *, headers: dict | None = None):
        return self.http.get(path, headers=self.headers(headers))

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def client(runtime, world):
    """A client of the runtime on the world's host with the main key (current, every bundle)."""
    runtime_client = RuntimeClient(runtime, world.host, world.keys["main"])
    yield runtime_client
    runtime_client.close()
