"""How the decision log's hot paths grow: the same figures at 10k decisions and at N, in one run.

    python bench/scale.py [--rows 1000000] [--small 10000] [--samples 25] [--verify-rows 200000]

Sets up a throw-away tenant in the development database (DATABASE_URL, migrated) as bench/runtime.py does
(claims-triage live in `current`, a runtime key, the dev model), then fills its log with decision records by
the fastest honest path: COPY of records hashed exactly as the runtime hashes them (RFC 8785 canonical form,
SHA-256), spread over 30 days, several bundles, versions and statuses. The rollups are brought up to date as
the beat task would, then, at 10k and again at N decisions, it measures p50/p95 of:

- execute over HTTP on a real runtime (gunicorn, restricted role) without and with an Idempotency-Key;
- the dashboard (with the 7-day coverage panel), governance coverage for 7 and 30 days;
- the decisions list (API and console) page 1 and filtered by bundle + status, the 1,000th page by cursor,
  one decision (API and console), the audit records list;
- full verification throughput (records/s, over the first --verify-rows records);

and prints each figure at both sizes with the ratio, against the targets of the decision-log issue (every page
and API call p95 <= 300 ms and <= 2x its 10k figure; execute with a key within 1 ms of without; verification
>= 100,000 records/s). Bytes per decision (table, indexes) are printed at both sizes. The tenant is dropped at
the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.runtime import (  # noqa: E402 (the path above makes the project importable)
    CLAIM,
    GOVERNED_PATH,
    create_bench_tenant,
    drop_bench_tenant,
    set_up_django,
    start_dev_model,
    start_runtime,
    stop,
)

PAGE_P95_TARGET_MS = 300.0
GROWTH_TARGET = 2.0
KEY_OVERHEAD_TARGET_MS = 1.0
VERIFY_TARGET = 100_000
WINDOW_DAYS = 30
BUNDLES = ("claims-triage", "support-routing", "kyc-check", "fraud-screen")
STATUSES = ("allowed",) * 6 + ("denied", "denied", "error", "invalid_output")
POLICIES = ("amount-limit", "pii-guard", "fraud-signal")
COPY_COLUMNS = (
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "data",
    "record_hash",
)


# --- filling the log --------------------------------------------------------------------------------------


def decision_data(number: int, digest: str) -> dict:
    """Return the data of decision `number`: the shape the runtime records (about 1 KB)."""
    bundle = BUNDLES[number % len(BUNDLES)]
    status = STATUSES[number % len(STATUSES)]
    fired = POLICIES[number % len(POLICIES)] if status == "denied" else None
    return {
        "bundle": bundle,
        "version": f"1.{number % 3}.0",
        "digest": digest if bundle == "claims-triage" else f"sha256:{number % 3:064x}",
        "pipeline": "triage",
        "environment": "current" if number % 10 else "staging",
        "status": status,
        "denied_by": fired,
        "reason": f"policy {fired} denied" if fired else None,
        "policies": [
            {"name": name, "stage": "pre", "effect": "deny", "fired": name == fired} for name in POLICIES
        ],
        "redactions": ["customer_email"],
        "errors": [],
        "hashes": {
            "input": f"{number:064x}",
            "prompt": f"{number * 7:064x}",
            "raw_output": f"{number * 13:064x}",
            "output": f"{number * 17:064x}",
        },
        "decision_hash": f"{number * 19:064x}",
        "usage": {"input_tokens": 180 + number % 50, "output_tokens": 40 + number % 20},
        "model": {"endpoint": "default", "name": "dev-model"},
        "caller": {"key": "bench", "environment": "current"},
        "latency_ms": round(3 + (number % 97) / 10, 3),
    }


def fill(schema: str, key_id: int, version_id: int, digest: str, start: int, stop_at: int) -> float:
    """COPY decisions number `start` .. `stop_at`-1 into `schema`'s log; return the seconds it took."""
    from django.db import connection

    from audit.hashing import canonical_record, record_hash

    began = time.perf_counter()
    now = datetime.now(UTC)
    span = timedelta(days=WINDOW_DAYS).total_seconds()
    total = max(stop_at, 1)
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute(f'SET search_path TO "{schema}", public')
        # The database refuses back-dated decisions from the runtime; the benchmark, as the table's owner,
        # writes a month of history and turns the check off for its own COPY only.
        cursor.execute("ALTER TABLE audit_record DISABLE TRIGGER USER")
        try:
            columns = ", ".join(COPY_COLUMNS)
            with cursor.copy(f"COPY audit_record ({columns}) FROM STDIN") as copy:
                for number in range(start, stop_at):
                    created_at = now - timedelta(seconds=span * (1 - number / total)) - timedelta(minutes=5)
                    data = decision_data(number, digest)
                    fields = {
                        "created_at": created_at,
                        "actor_kind": "runtime_key",
                        "actor_id": str(key_id),
                        "actor_name": "bench",
                        "action": "runtime.decision",
                        "target_type": "bundles.bundleversion",
                        "target_id": str(version_id),
                        "data": data,
                    }
                    digest_hex = record_hash(canonical_record(tenant=schema, **fields))
                    copy.write_row(
                        (
                            created_at,
                            "runtime_key",
                            str(key_id),
                            "bench",
                            "runtime.decision",
                            "bundles.bundleversion",
                            str(version_id),
                            json.dumps(data),
                            digest_hex,
                        )
                    )
        finally:
            cursor.execute("ALTER TABLE audit_record ENABLE TRIGGER USER")
            cursor.execute("ANALYZE audit_record")
    raw.commit()
    return time.perf_counter() - began


def roll_up(tenant) -> float:
    """Bring the tenant's decision rollups up to date as beat runs would; return the seconds it took.

    The runs are stated SETTLE_SECONDS apart (their `now`), as beat would have run them over that time.
    """
    from django.db import connection
    from django.utils import timezone

    from audit.models import Record
    from runtime.rollups import SETTLE_SECONDS, decision_rollup_advance, rolled_up_to

    began = time.perf_counter()
    connection.set_tenant(tenant)
    newest = Record.objects.order_by("-id").values_list("id", flat=True).first() or 0
    clock = timezone.now() + timedelta(days=1)  # past any horizon an earlier call of this function read
    while rolled_up_to() < newest:
        decision_rollup_advance(now=clock)
        clock += timedelta(seconds=SETTLE_SECONDS + 1)
    connection.set_schema_to_public()
    return time.perf_counter() - began


def storage(schema: str) -> tuple[int, int, int]:
    """Return (decisions, table bytes, index bytes) of the tenant's log."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM \"{schema}\".audit_record WHERE action = 'runtime.decision'"  # noqa: S608
        )
        count = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)",
            [f'"{schema}".audit_record'] * 2,
        )
        table, indexes = cursor.fetchone()
    return count, table, indexes


# --- measuring --------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """Latencies (ms) of one operation at one size."""

    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(call, samples: int) -> Figure:
    """Return the latencies of `samples` calls of `call` after one warm-up call."""
    call()
    values = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        values.append((time.perf_counter() - began) * 1000)
    return Figure(values)


class Console:
    """In-process clients of the control plane for one tenant: a signed-in admin and an admin token."""

    def __init__(self, tenant, host: str, username: str):
        from django.contrib.auth import get_user_model
        from django.test import Client

        from tenancy.middleware import SESSION_TENANT_KEY
        from tenancy.tokens import api_token_issue_for

        user = get_user_model().objects.get(username=username)
        self.host = host
        self.session = Client(HTTP_HOST=host)
        self.session.force_login(user)
        session = self.session.session
        session[SESSION_TENANT_KEY] = tenant.schema_name
        session.save()
        token = api_token_issue_for(tenant=tenant, user=user).secret
        self.api = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Token {token}")

    def page(self, path: str, **params):
        def call():
            response = self.session.get(path, params)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}")

        return call

    def json(self, path: str, **params):
        def call():
            response = self.api.get(path, params)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}: {response.content[:300]!r}")
            return response.json()

        return call


def execute_call(port: int, host: str, key: str, keyed: bool):
    """Return a function making one execution over a kept-alive HTTP connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"input": CLAIM})

    def call():
        headers = {"Host": host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if keyed:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        connection.request("POST", GOVERNED_PATH, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"execute answered {response.status}")

    return call


def thousandth_page_cursor(schema: str) -> str:
    """Return the cursor of the 1,000th page (50 a page) of the decisions list, newest first."""
    from django.db import connection

    from core.pagination import FORWARD, encode_cursor

    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT created_at, id FROM "{schema}".audit_record '  # noqa: S608
            "WHERE action = 'runtime.decision' ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            [50 * 999 - 1],
        )
        row = cursor.fetchone()
    if row is None:
        return ""
    return encode_cursor(FORWARD, [row[0].isoformat(), row[1]])


def verification_rate(tenant, rows: int) -> float:
    """Return records/s of the full verification's per-record check over the first `rows` records."""
    from django.db import connection

    from audit.models import Record
    from audit.selectors import record_is_intact

    connection.set_tenant(tenant)
    began = time.perf_counter()
    checked = 0
    for entry in Record.objects.order_by("id")[:rows].iterator(chunk_size=2000):
        checked += record_is_intact(entry)
    elapsed = time.perf_counter() - began
    connection.set_schema_to_public()
    return checked / elapsed


def measure(bench, console: Console, port: int, samples: int, verify_rows: int) -> dict[str, object]:
    """Return every figure at the log's current size."""
    from django.db import connection

    schema = bench.tenant.schema_name
    connection.set_schema_to_public()
    sample_id = console.json("/api/v1/decisions/", limit=1)()["results"][0]["id"]
    figures: dict[str, object] = {
        "execute": timed(execute_call(port, bench.host, bench.key, keyed=False), samples * 4),
        "execute + Idempotency-Key": timed(
            execute_call(port, bench.host, bench.key, keyed=True), samples * 4
        ),
        "dashboard (console)": timed(console.page("/"), samples),
        "coverage 7 days (API)": timed(console.json("/api/v1/metrics/governance/", days=7), samples),
        "coverage 30 days (API)": timed(console.json("/api/v1/metrics/governance/", days=30), samples),
        "decisions page 1 (API)": timed(console.json("/api/v1/decisions/"), samples),
        "decisions bundle+status (API)": timed(
            console.json("/api/v1/decisions/", bundle="kyc-check", status="denied"), samples
        ),
        "decisions page 1 (console)": timed(console.page("/decisions/"), samples),
        "decisions bundle+status (console)": timed(
            console.page("/decisions/", bundle="kyc-check", status="denied"), samples
        ),
        "decision (API)": timed(console.json(f"/api/v1/decisions/{sample_id}/"), samples),
        "decision (console)": timed(console.page(f"/decisions/{sample_id}/"), samples),
        "records page 1 (API)": timed(console.json("/api/v1/audit/records/"), samples),
    }
    cursor = thousandth_page_cursor(schema)
    if cursor:
        figures["decisions page 1,000 by cursor (API)"] = timed(
            console.json("/api/v1/decisions/", cursor=cursor), samples
        )
    figures["verification (records/s)"] = verification_rate(bench.tenant, verify_rows)
    return figures


def report(small: dict, large: dict, small_rows: int, large_rows: int) -> bool:
    """Print both sizes side by side with ratios and targets; return whether every target is met."""
    small_head, large_head = f"{small_rows:,} p50/p95 ms", f"{large_rows:,} p50/p95 ms"
    print(f"\n{'figure':<40} {small_head:>22} {large_head:>22} {'p95 ratio':>10}")
    met = True
    for name, figure in small.items():
        other = large.get(name)
        if name.startswith("verification"):
            ok = other >= VERIFY_TARGET
            met &= ok
            print(
                f"{name:<40} {figure:>22,.0f} {other:>22,.0f} {other / figure:>10.2f}  "
                f"target >= {VERIFY_TARGET:,} {'ok' if ok else 'MISSED'}"
            )
            continue
        if other is None:
            print(f"{name:<40} {figure.p50:>10.1f}/{figure.p95:<10.1f} {'(fewer rows)':>22}")
            continue
        ratio = other.p95 / figure.p95 if figure.p95 else float("inf")
        ok = name.startswith("execute") or (other.p95 <= PAGE_P95_TARGET_MS and ratio <= GROWTH_TARGET)
        met &= ok
        print(
            f"{name:<40} {figure.p50:>10.1f}/{figure.p95:<10.1f} {other.p50:>10.1f}/{other.p95:<10.1f} "
            f"{ratio:>10.2f}  {'ok' if ok else 'MISSED'}"
        )
    for size, figures in (("small", small), ("large", large)):
        overhead = figures["execute + Idempotency-Key"].p50 - figures["execute"].p50
        ok = overhead <= KEY_OVERHEAD_TARGET_MS
        met &= ok
        print(f"Idempotency-Key overhead at the {size} size: {overhead:+.2f} ms p50 (target <= 1 ms)")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="decisions at the large size (1,000,000)")
    parser.add_argument("--small", type=int, default=10_000, help="decisions at the small size (10,000)")
    parser.add_argument("--samples", type=int, default=25, help="samples per figure (25; execute: 4x)")
    parser.add_argument("--verify-rows", type=int, default=200_000, help="records timed for verification")
    options = parser.parse_args(argv)
    os.environ.setdefault("CONTRACTOR_EGRESS_ALLOW", "127.0.0.1")
    set_up_django()
    from django.conf import settings
    from django.db import connection

    from bundles.models import BundleVersion
    from runtime.models import RuntimeKey

    log_dir = ROOT / ".run"
    log_dir.mkdir(exist_ok=True)
    print(f"database {settings.DATABASES['default']['NAME']}; sizes {options.small:,} and {options.rows:,}")
    dev_model, dev_model_port = start_dev_model(log_dir)
    bench = runtime = None
    try:
        bench = create_bench_tenant(dev_model_port)
        schema = bench.tenant.schema_name
        connection.set_tenant(bench.tenant)
        key_id = RuntimeKey.objects.get(name="bench").pk
        version = BundleVersion.objects.get(bundle__name="claims-triage")
        connection.set_schema_to_public()
        runtime, port = start_runtime(log_dir, os.environ.get("DATABASE_URL", settings.DATABASE_URL), 2)
        console = Console(bench.tenant, bench.host, bench.usernames[-1])
        results = {}
        filled = 0
        for rows in (options.small, options.rows):
            seconds = fill(schema, key_id, version.pk, version.digest, filled, rows)
            added, filled = rows - filled, rows
            rolled = roll_up(bench.tenant)
            count, table, indexes = storage(schema)
            print(
                f"\n{count:,} decisions: {added:,} added by COPY in {seconds:.1f} s "
                f"({added / seconds:,.0f}/s), "
                f"rolled up in {rolled:.1f} s; {table / count:,.0f} B/decision in the table, "
                f"{indexes / count:,.0f} B/decision in indexes"
            )
            results[rows] = measure(bench, console, port, options.samples, min(rows, options.verify_rows))
        return 0 if report(results[options.small], results[options.rows], options.small, options.rows) else 1
    finally:
        if runtime is not None:
            stop(runtime)
        stop(dev_model)
        if bench is not None:
            connection.set_schema_to_public()
            drop_bench_tenant(bench)
            print(f"tenant {bench.host} dropped")


if __name__ == "__main__":
    sys.exit(main())
