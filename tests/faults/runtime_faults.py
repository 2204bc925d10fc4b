"""Fixtures of the runtime fault tests: a dev model in its own process (to kill and restart), two committed
tenants served by one runtime process with a tight time budget and tight concurrency limits, and the ledger
that matches every answer with the decision records in the database.

Used by tests/faults/test_runtime_faults.py, which binds the fixtures in its namespace (not a conftest: the
folder is shared with other fault tests). The runtime process runs exactly as in production (gunicorn
gthread, runtime settings, the restricted role); only its limits are smaller, so that a fault shows in
seconds:

- RUNTIME_WORKER_TIMEOUT 8 s, MODEL_TIMEOUT_CAP 2 s, RUNTIME_RECORD_MARGIN 2 s: the endpoints' stored timeout
  (5 s) is clamped to 2 s, and dev-slow sleeps SLOW_SECONDS (30 s), far beyond both;
- one worker with THREADS threads; RUNTIME_ENDPOINT_CONCURRENCY 3, RUNTIME_TENANT_CONCURRENCY 4.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from tenancy.services import tenant_host
from tests.conftest import run_committed
from tests.live import free_port
from tests.runtime.conftest import (
    ROOT,
    RuntimeProcess,
    owner_connection,
    runtime_database_url,
    start_runtime,
    stop_runtime,
)
from tests.runtime.runtime_world import World, build_world, create_tenant, drop_tenant

SLOW_SECONDS = 30
WORKER_TIMEOUT = 8
MODEL_TIMEOUT_CAP = 2
RECORD_MARGIN = 2
ENDPOINT_CONCURRENCY = 3
TENANT_CONCURRENCY = 4
THREADS = 8
CLAIM = {"claim_id": "C1", "amount": 10, "description": "car"}
JSON = "application/json"


class DevModelProcess:
    """`python -m devmodel` on a fixed loopback port, which a test may kill and start again."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        env = {**os.environ, "DEV_MODEL_SLOW_SECONDS": str(SLOW_SECONDS), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "devmodel", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the dev model did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def fault_model():
    """A dev model server process (dev-slow sleeps SLOW_SECONDS)."""
    model = DevModelProcess()
    model.start()
    yield model
    model.kill()


def committed_world(django_db_blocker, model_url: str):
    """Build a world in a new committed tenant; return (world, teardown)."""
    with django_db_blocker.unblock():
        tenant = run_committed(create_tenant)
    host = tenant_host(tenant.schema_name.replace("_", "-"))
    with django_db_blocker.unblock():
        world = run_committed(build_world, tenant, host, model_url, tenant=tenant)

    def teardown():
        with django_db_blocker.unblock():
            run_committed(drop_tenant, tenant)

    return world, teardown


@pytest.fixture(scope="module")
def fault_worlds(django_db_setup, django_db_blocker, fault_model):
    """Two committed tenants ("slow" and "fast"), both with the fault dev model as their endpoint."""
    built, teardowns = {}, []
    try:
        for name in ("slow", "fast"):
            world, teardown = committed_world(django_db_blocker, fault_model.base_url)
            built[name] = world
            teardowns.append(teardown)
        yield built
    finally:
        for teardown in teardowns:
            teardown()


@pytest.fixture(scope="module")
def fault_runtime(fault_worlds, tmp_path_factory) -> RuntimeProcess:
    """One runtime process (gthread, one worker) with the small time budget and limits of this module."""
    budget = {
        "RUNTIME_WORKER_TIMEOUT": str(WORKER_TIMEOUT),
        "MODEL_TIMEOUT_CAP": str(MODEL_TIMEOUT_CAP),
        "RUNTIME_RECORD_MARGIN": str(RECORD_MARGIN),
        "RUNTIME_ENDPOINT_CONCURRENCY": str(ENDPOINT_CONCURRENCY),
        "RUNTIME_TENANT_CONCURRENCY": str(TENANT_CONCURRENCY),
    }
    process = start_runtime(
        runtime_database_url(),
        "faults",
        tmp_path_factory.mktemp("fault-metrics"),
        workers=1,
        threads=THREADS,
        extra_env=budget,
    )
    yield process
    stop_runtime(process)


@dataclass
class Answer:
    """One HTTP answer of the runtime, as the ledger needs it."""

    status: int
    content_type: str
    body: dict | None
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def decision_id(self) -> int | None:
        if not self.body:
            return None
        return self.body.get("decision_id") or (self.body.get("error") or {}).get("decision_id")

    @property
    def code(self) -> str | None:
        return (self.body or {}).get("error", {}).get("code") if self.status >= 400 else None


def execute(runtime: RuntimeProcess, world: World, pipeline: str, **headers: str) -> Answer:
    """POST one execution of claims-lab/`pipeline` with the world's main key; return its answer."""
    started = time.monotonic()
    sent = {"Host": world.host, "Authorization": f"Bearer {world.keys['main']}", **headers}
    response = httpx.post(
        f"{runtime.address}/v1/execute/claims-lab/{pipeline}", json={"input": CLAIM}, headers=sent, timeout=60
    )
    content_type = response.headers.get("content-type", "")
    body = response.json() if content_type.startswith(JSON) else None
    return Answer(
        response.status_code, content_type, body, time.monotonic() - started, dict(response.headers)
    )


def last_decision_id(world: World) -> int:
    """Return the highest audit record id of the world's tenant (decisions after it are new)."""
    with owner_connection() as owner:
        row = owner.execute(
            f'SELECT coalesce(max(id), 0) FROM "{world.tenant.schema_name}".audit_record'  # noqa: S608 (test schema)
        )
        return row.fetchone()[0]


def decisions_since(world: World, after: int) -> dict[int, dict]:
    """Return {id: data} of the tenant's decision records with an id above `after`."""
    with owner_connection() as owner:
        rows = owner.execute(
            f'SELECT id, data FROM "{world.tenant.schema_name}".audit_record '  # noqa: S608 (a test schema)
            "WHERE action = 'runtime.decision' AND id > %s",
            [after],
        ).fetchall()
    return {row[0]: row[1] for row in rows}


@dataclass
class Ledger:
    """Answers against records: every answer is JSON, every answer with a decision has exactly one record."""

    answers: list[Answer]
    records: dict[int, dict]
    statuses: Counter = field(init=False)

    def __post_init__(self):
        self.statuses = Counter(answer.status for answer in self.answers)

    def problems(self) -> list[str]:
        """Return every breach of the runtime's invariants seen in this ledger."""
        found = []
        answered = [answer.decision_id for answer in self.answers if answer.decision_id is not None]
        for answer in self.answers:
            if not answer.content_type.startswith(JSON) or answer.body is None:
                found.append(f"non-JSON answer {answer.status} {answer.content_type!r}")
            elif answer.status == 200 and answer.decision_id is None:
                found.append("a 200 without a decision_id")
            elif answer.status in (429, 502) and answer.decision_id is None:
                found.append(f"a {answer.status} {answer.code} without a decision_id")
        duplicates = [item for item, count in Counter(answered).items() if count > 1]
        if duplicates:
            found.append(f"decision ids answered twice: {duplicates}")
        missing = sorted(set(answered) - set(self.records))
        if missing:
            found.append(f"answered decisions without a record: {missing}")
        unanswered = len(set(self.records) - set(answered))
        withheld = self.statuses[503]
        if unanswered > withheld:  # a record whose answer was lost can only come with a 503
            found.append(f"{unanswered} records without an answer, {withheld} answers 503")
        return found
