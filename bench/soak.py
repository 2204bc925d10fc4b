"""Soak the runtime under faults and print the ledger: every answer must be JSON and every decision it names
must have exactly one record.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/soak.py --seconds 120

Starts a `make run`-like stack on free loopback ports (the dev model, the runtime on gunicorn gthread with
runtime/gunicorn_runtime.py, the console on contractor_site/gunicorn_console.py) for a throw-away tenant
(dropped at the end) holding two gated versions of the claims-triage example, both deployed to `staging`,
and a runtime key scoped to `staging`. For `--seconds` it drives mixed traffic:

- executions of claims-triage/triage (most requests), invalid inputs (recorded 400s), and idempotent
  executions (each sent twice under one Idempotency-Key: the second must replay the first decision);
- every few seconds a rollback or a promotion of `staging` through the console API (release pointer changes
  under traffic);

while a fault injector rotates through: kill the dev model (restarted 3 s later), terminate the runtime role's
database sessions (pg_terminate_backend, this database only), SIGKILL one runtime worker (gunicorn starts
another). At the end it reads the tenant's decision records and prints the ledger: requests, answers by status
and code, transport errors (a worker killed mid-request), decision records, and mismatches (non-JSON answers,
answered decisions without a record, decisions answered twice, replays that differ, records without an answer
beyond the 503s and transport errors that may explain them). Exit status 1 when there is any mismatch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.runtime import (  # noqa: E402 (the repository root is on the path only now)
    BENCH_ROLES,
    DEV_MODELS,
    RUNTIME_ROLE,
    BenchTenant,
    child_pids,
    drop_bench_tenant,
    free_port,
    runtime_database_url,
    set_up_django,
    stop,
    wait_for,
)

CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}
INVALID_CLAIM = {"claim_id": "C1", "amount": "not a number"}
PATH = "/v1/execute/claims-triage/triage"
VERSIONS = ("1.2.0", "1.2.1")
FAULT_EVERY_SECONDS = 12.0
RELEASE_EVERY_SECONDS = 7.0
MODEL_DOWN_SECONDS = 3.0
RUNTIME_WORKERS = 2
RUNTIME_THREADS = 4
TERMINATE_SQL = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND usename = %s AND pid <> pg_backend_pid()"
)


# --- the stack --------------------------------------------------------------------------------------------


def wait_until_ok(url: str, host: str, process: subprocess.Popen, name: str) -> None:
    """Return once GET `url` with Host `host` answers 200; exit when the process dies or after 40 s."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited with code {process.returncode}")
        try:
            if httpx.get(url, headers={"Host": host}, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    sys.exit(f"{name} did not start within 40 s")


class Stack:
    """The dev model, runtime and console processes of the soak, with their logs in .run/."""

    def __init__(self, log_dir: Path, database_url: str):
        self.log_dir = log_dir
        self.database_url = database_url
        self.model_port, self.runtime_port, self.console_port = free_port(), free_port(), free_port()
        self.model: subprocess.Popen | None = None
        self.runtime: subprocess.Popen | None = None
        self.console: subprocess.Popen | None = None

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"soak-{name}.log").open("a")
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start_model(self) -> None:
        command = [sys.executable, "-m", "devmodel", "--host", "127.0.0.1", "--port", str(self.model_port)]
        self.model = self.spawn("devmodel", command, dict(os.environ))
        wait_for(("127.0.0.1", self.model_port), "/healthz", self.model, "the dev model")

    def start_servers(self) -> None:
        gunicorn = [sys.executable, "-m", "gunicorn"]
        self.runtime = self.spawn(
            "runtime",
            [*gunicorn, "runtime.wsgi", "--config", "python:runtime.gunicorn_runtime"],
            {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "contractor_site.settings.runtime",
                "RUNTIME_DATABASE_URL": runtime_database_url(self.database_url),
                "RUNTIME_BIND": f"127.0.0.1:{self.runtime_port}",
                "RUNTIME_WORKERS": str(RUNTIME_WORKERS),
                "RUNTIME_THREADS": str(RUNTIME_THREADS),
                "RUNTIME_ACCESS_LOG": "0",
                "LOG_LEVEL": "WARNING",
            },
        )
        self.console = self.spawn(
            "console",
            [*gunicorn, "contractor_site.wsgi", "--config", "python:contractor_site.gunicorn_console"],
            {
                **os.environ,
                "CONSOLE_BIND": f"127.0.0.1:{self.console_port}",
                "CONSOLE_WORKERS": "1",
                "LOG_LEVEL": "WARNING",
            },
        )
        wait_for(("127.0.0.1", self.runtime_port), "/healthz", self.runtime, "the runtime")
        wait_until_ok(
            f"http://127.0.0.1:{self.console_port}/healthz", "localhost", self.console, "the console"
        )

    def stop(self) -> None:
        for process in (self.console, self.runtime, self.model):
            if process is not None and process.poll() is None:
                stop(process)


# --- the tenant -------------------------------------------------------------------------------------------


def create_soak_tenant(model_port: int) -> tuple[BenchTenant, dict[str, str]]:
    """Create the tenant: members, endpoint, two gated versions deployed to staging, a staging key, tokens."""
    from django.db import connection, transaction

    from bundles.language.archive import read_directory
    from bundles.services import bundle_version_push
    from promotions.models import GateStatus
    from promotions.selectors import access_environment
    from promotions.services.environments import environments_ensure_defaults
    from promotions.services.gates import gate_run_execute, gate_run_start
    from promotions.services.promotion_requests import promotion_request_create
    from runtime.services import model_endpoint_create, runtime_key_create
    from tenancy.services import ensure_public_tenant, membership_set, tenant_create, tenant_host, user_create
    from tenancy.tokens import api_token_issue_for

    connection.set_schema_to_public()
    ensure_public_tenant()
    slug = f"soak-{uuid.uuid4().hex[:8]}"
    tenant = tenant_create(actor=None, slug=slug, name=f"Soak {slug}")
    soak = BenchTenant(tenant, tenant_host(slug), "", [f"{slug}-{role}" for role in BENCH_ROLES])
    users = {}
    for role in BENCH_ROLES:
        users[role] = user_create(username=f"{slug}-{role}", password=uuid.uuid4().hex)
        membership_set(actor=None, tenant=tenant, user=users[role], roles=[role])
    connection.set_tenant(tenant)
    environments_ensure_defaults(actor=None)
    staging = access_environment(None, "staging")
    files = read_directory(ROOT / "examples" / "claims-triage")
    with transaction.atomic():
        model_endpoint_create(
            actor=users["operator"],
            name="default",
            base_url=f"http://127.0.0.1:{model_port}/v1",
            allowed_models=DEV_MODELS,
            timeout_seconds=5,
        )
    for version_name in VERSIONS:
        manifest = files["bundle.yaml"].replace(f"version: {VERSIONS[0]}", f"version: {version_name}")
        with transaction.atomic():
            version = bundle_version_push(
                actor=users["author"],
                name="claims-triage",
                files={**files, "bundle.yaml": manifest},
                can_create=True,
            ).version
        run = gate_run_start(actor=users["author"], version=version, enqueue=False)
        if gate_run_execute(gate_run_id=run.pk).status != GateStatus.PASSED:
            sys.exit(f"the gates of {version_name} did not pass")
        promotion_request_create(
            actor=users["author"], version=version, environment=staging, justification="soak"
        )
    with transaction.atomic():
        soak.key = runtime_key_create(actor=users["operator"], name="soak", environment="staging").secret
    connection.set_schema_to_public()
    tokens = {
        role: api_token_issue_for(tenant=tenant, user=users[role]).secret for role in ("author", "operator")
    }
    return soak, tokens


def drop_soak_tenant(soak: BenchTenant) -> None:
    """Drop the tenant (its API tokens first) and deactivate its users."""
    from django.db import connection

    from tenancy.models import ApiToken

    connection.set_schema_to_public()
    ApiToken.objects.filter(tenant=soak.tenant).delete()
    drop_bench_tenant(soak)


def decision_records(soak: BenchTenant) -> dict[int, dict]:
    """Return {id: data} of every decision record of the soak tenant."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT id, data FROM "{soak.tenant.schema_name}".audit_record '  # noqa: S608 (our own schema)
            "WHERE action = 'runtime.decision'"
        )
        return {row[0]: row[1] for row in cursor.fetchall()}


# --- traffic, faults, ledger ------------------------------------------------------------------------------


class Ledger:
    """What was sent and answered; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses: Counter = Counter()
        self.codes: Counter = Counter()
        self.transport_errors = 0
        self.answered: list[int] = []
        self.mismatches: list[str] = []
        self.control: Counter = Counter()
        self.faults: Counter = Counter()

    def answer(self, response: httpx.Response | None) -> int | None:
        """Count one answer (None: no answer at all); return the decision id it names."""
        with self.lock:
            self.requests += 1
            if response is None:
                self.transport_errors += 1
                return None
            self.statuses[response.status_code] += 1
            if not response.headers.get("content-type", "").startswith("application/json"):
                self.mismatches.append(f"non-JSON answer {response.status_code}")
                return None
            body = response.json()
            error = body.get("error") or {}
            if error:
                self.codes[f"{response.status_code} {error.get('code')}"] += 1
            decision_id = body.get("decision_id") or error.get("decision_id")
            if response.status_code == 200 and decision_id is None:
                self.mismatches.append("a 200 without a decision")
            if decision_id is not None and not response.headers.get("idempotent-replayed"):
                self.answered.append(decision_id)
            return decision_id

    def mismatch(self, text: str) -> None:
        with self.lock:
            self.mismatches.append(text)


def traffic(stack: Stack, soak: BenchTenant, ledger: Ledger, deadline: float, seed: int) -> None:
    """Send executions until `deadline`: plain, invalid and idempotent (each idempotent one twice)."""
    chooser = random.Random(seed)
    headers = {"Host": soak.host, "Authorization": f"Bearer {soak.key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.runtime_port}", timeout=30) as http:

        def post(body: dict, extra: dict[str, str] | None = None) -> httpx.Response | None:
            try:
                return http.post(PATH, json={"input": body}, headers={**headers, **(extra or {})})
            except httpx.HTTPError:
                return None

        while time.monotonic() < deadline:
            roll = chooser.random()
            if roll < 0.1:
                ledger.answer(post(INVALID_CLAIM))
            elif roll < 0.25:
                key = {"Idempotency-Key": uuid.uuid4().hex}
                first = ledger.answer(post(CLAIM, key))
                second = post(CLAIM, key)
                replayed = ledger.answer(second)
                if (
                    first is not None
                    and second is not None
                    and second.status_code < 500
                    and replayed != first
                ):
                    ledger.mismatch(f"replay answered {replayed}, the first answer was {first}")
            else:
                ledger.answer(post(CLAIM))


def releases(stack: Stack, soak: BenchTenant, tokens: dict[str, str], ledger: Ledger, stop_at: float) -> None:
    """Alternate a rollback of staging and a promotion of the other version, through the console API."""
    api = f"http://127.0.0.1:{stack.console_port}/api/v1/"
    turn = 0
    while time.monotonic() + RELEASE_EVERY_SECONDS < stop_at:
        time.sleep(RELEASE_EVERY_SECONDS)
        if turn % 2 == 0:
            url, token, body = (
                f"{api}environments/staging/bundles/claims-triage/rollback/",
                tokens["operator"],
                {"justification": "soak rollback"},
            )
            kind = "rollback"
        else:  # the rollback went back to VERSIONS[0]: promote VERSIONS[1] again
            version = VERSIONS[1]
            url, token, body = (
                f"{api}promotions/",
                tokens["author"],
                {
                    "bundle": "claims-triage",
                    "version": version,
                    "environment": "staging",
                    "justification": "soak",
                },
            )
            kind = "promotion"
        try:
            response = httpx.post(
                url, json=body, headers={"Host": soak.host, "Authorization": f"Token {token}"}, timeout=30
            )
            outcome = str(response.status_code)
        except httpx.HTTPError as error:
            outcome = error.__class__.__name__
        with ledger.lock:
            ledger.control[f"{kind} {outcome}"] += 1
        turn += 1


def faults(stack: Stack, ledger: Ledger, stop_at: float) -> None:
    """Rotate the faults until `stop_at`: model killed (and restarted), DB sessions ended, worker killed."""
    from django.db import connection

    turn = 0
    while time.monotonic() + FAULT_EVERY_SECONDS < stop_at:
        time.sleep(FAULT_EVERY_SECONDS)
        kind = ("model killed", "database sessions terminated", "runtime worker killed")[turn % 3]
        if turn % 3 == 0:
            stack.model.kill()
            stack.model.wait()
            time.sleep(MODEL_DOWN_SECONDS)
            stack.start_model()
        elif turn % 3 == 1:
            with connection.cursor() as cursor:
                cursor.execute(TERMINATE_SQL, [RUNTIME_ROLE])
                kind += f" ({cursor.fetchone()[0]})"
        else:
            workers = child_pids(stack.runtime.pid)
            if workers:
                os.kill(random.choice(workers), signal.SIGKILL)
        with ledger.lock:
            ledger.faults[kind] += 1
        turn += 1


def report(ledger: Ledger, records: dict[int, dict], seconds: float) -> bool:
    """Print the ledger; return whether it holds no mismatch."""
    answered = Counter(ledger.answered)
    twice = sorted(decision for decision, count in answered.items() if count > 1)
    missing = sorted(set(answered) - set(records))
    unanswered = len(set(records) - set(answered))
    explained = ledger.statuses[503] + ledger.transport_errors
    mismatches = list(ledger.mismatches)
    if twice:
        mismatches.append(f"decisions answered twice: {twice[:10]}")
    if missing:
        mismatches.append(f"answered decisions without a record: {missing[:10]}")
    if unanswered > explained:
        mismatches.append(
            f"{unanswered} records without an answer, only {explained} 503s and transport errors"
        )
    print(f"\nledger after {seconds:.0f} s")
    print(f"  requests           {ledger.requests} ({ledger.requests / seconds:.1f}/s)")
    print(f"  answers by status  {dict(sorted(ledger.statuses.items()))}")
    print(f"  errors by code     {dict(sorted(ledger.codes.items()))}")
    print(f"  transport errors   {ledger.transport_errors}")
    print(f"  decision records   {len(records)} (answered {len(answered)}, without an answer {unanswered})")
    print(f"  releases (API)     {dict(sorted(ledger.control.items()))}")
    print(f"  faults injected    {dict(sorted(ledger.faults.items()))}")
    print(f"  mismatches         {len(mismatches)}")
    for text in mismatches[:20]:
        print(f"    - {text}")
    return not mismatches


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to drive traffic (120)")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (6)")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    os.environ.setdefault("CONTRACTOR_EGRESS_ALLOW", "127.0.0.1")  # the dev model listens on loopback
    set_up_django()
    from django.conf import settings

    logging.getLogger("httpx").setLevel(logging.WARNING)
    log_dir = ROOT / ".run"
    log_dir.mkdir(exist_ok=True)
    stack = Stack(log_dir, os.environ.get("DATABASE_URL", settings.DATABASE_URL))
    soak = None
    try:
        stack.start_model()
        with contextlib.redirect_stdout(io.StringIO()):  # the new schema's migrations
            soak, tokens = create_soak_tenant(stack.model_port)
        stack.start_servers()
        print(
            f"tenant {soak.host}; runtime :{stack.runtime_port} ({RUNTIME_WORKERS} workers x "
            f"{RUNTIME_THREADS} threads), console :{stack.console_port}; "
            f"{options.clients} clients for {options.seconds:g} s"
        )
        started = time.monotonic()
        deadline = started + options.seconds
        ledger = Ledger()
        workers = [
            threading.Thread(target=traffic, args=(stack, soak, ledger, deadline, seed))
            for seed in range(options.clients)
        ]
        workers.append(threading.Thread(target=releases, args=(stack, soak, tokens, ledger, deadline)))
        workers.append(threading.Thread(target=faults, args=(stack, ledger, deadline)))
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - started
        time.sleep(1.0)  # let the last executions' records commit
        return 0 if report(ledger, decision_records(soak), elapsed) else 1
    finally:
        stack.stop()
        if soak is not None:
            drop_soak_tenant(soak)
            print(f"tenant {soak.host} dropped")


if __name__ == "__main__":
    sys.exit(main())
