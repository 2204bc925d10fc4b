"""Measure the governed runtime against a bare endpoint of the same runtime, in the same run.

    python bench/runtime.py [--workers 2] [--concurrency 4] [--requests 3000] [--seconds 15] [--rounds 3]

Sets up a dedicated tenant in the development database (DATABASE_URL, migrated with migrate_schemas):
members, the claims-triage example pushed, gated and promoted to `current`, a `default` model endpoint on
the dev model, a runtime key, and a row-level security policy letting the runtime role append the bare
endpoint's `bench.bare` records in that tenant only. Starts the dev model (`python -m devmodel`) and one
gunicorn runtime (bench/runtime_settings.py: the runtime's settings plus the bare route, as
contractor_runtime), then alternates rounds of

- governed: `POST /v1/execute/claims-triage/triage` — key, release pointer, validation, policies, template,
  the model call, output validation, post policies, hashes, one audit INSERT (the decision record);
- bare:     `POST /v1/bench/bare/claims-triage/triage` — the same model endpoint called once and the same
  single audit INSERT in one transaction, without any governance;

with the same number of concurrent keep-alive clients on loopback (default: one per worker, so the figures
measure work rather than queueing), each round bounded by a request count and a duration. Prints
executions/s, p50 and p99 latency of each, the ratios against the targets (governed throughput >= 0.7 x
bare, p99 overhead <= 5 ms), and the CPU each component spent per request (runtime workers, dev model,
database sessions, clients), which stays meaningful when other processes share the machine and disturb the
wall-clock figures. The tenant is dropped at the end (its users are deactivated: users are global).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THROUGHPUT_TARGET = 0.7
P99_OVERHEAD_TARGET_MS = 5.0
WARMUP_REQUESTS = 300
START_TIMEOUT_SECONDS = 40
CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}
GOVERNED_PATH = "/v1/execute/claims-triage/triage"
BARE_PATH = "/v1/bench/bare/claims-triage/triage"
DEV_MODELS = ["dev-echo", "dev-error", "dev-model", "dev-slow"]
RUNTIME_ROLE = "contractor_runtime"
RUNTIME_SETTINGS = "bench.runtime_settings"
BENCH_ROLES = ("author", "reviewer", "operator", "admin")
DEFAULT_RUNTIME_PASSWORD = "contractor-runtime-dev"  # noqa: S105 (the documented development default)


# --- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url_host: tuple[str, int], path: str, process: subprocess.Popen, name: str) -> None:
    """Return once GET `path` answers 200; exit when the process dies or the time is up."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited with code {process.returncode}")
        try:
            connection = http.client.HTTPConnection(*url_host, timeout=1)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    sys.exit(f"{name} did not start within {START_TIMEOUT_SECONDS} s")


def runtime_database_url(owner_url: str) -> str:
    """Return the development database URL with the runtime role's credentials."""
    if os.environ.get("RUNTIME_DATABASE_URL"):
        return os.environ["RUNTIME_DATABASE_URL"]
    parts = urlsplit(owner_url)
    password = os.environ.get("RUNTIME_DB_PASSWORD", DEFAULT_RUNTIME_PASSWORD)
    netloc = f"{RUNTIME_ROLE}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def start_dev_model(log_dir: Path) -> tuple[subprocess.Popen, int]:
    """Start the dev model server on a free port."""
    port = free_port()
    log = (log_dir / f"bench-devmodel-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devmodel", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for(("127.0.0.1", port), "/healthz", process, "the dev model")
    return process, port


def start_runtime(log_dir: Path, database_url: str, workers: int) -> tuple[subprocess.Popen, int]:
    """Start the gunicorn runtime with the bare benchmark route (bench/runtime_settings.py)."""
    port = free_port()
    log = (log_dir / f"bench-runtime-{port}.log").open("w")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": RUNTIME_SETTINGS,
        "RUNTIME_DATABASE_URL": runtime_database_url(database_url),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "runtime.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for(("127.0.0.1", port), "/healthz", process, "the runtime")
    return process, port


def stop(process: subprocess.Popen) -> None:
    """Stop a child process."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- data -------------------------------------------------------------------------------------------------


@dataclass
class BenchTenant:
    """The tenant the benchmark runs in and what it needs to call the runtime."""

    tenant: object
    host: str
    key: str
    usernames: list[str]


def set_up_django() -> None:
    """Configure Django with the control-plane settings (owner role) for the set-up and the clean-up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contractor_site.settings.base")
    import django

    django.setup()


def create_bench_tenant(dev_model_port: int) -> BenchTenant:
    """Create the tenant, its members, the gated and promoted example, the endpoint and a runtime key."""
    from django.db import connection

    from tenancy.services import ensure_public_tenant, tenant_create, tenant_host

    connection.set_schema_to_public()
    ensure_public_tenant()
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    tenant = tenant_create(actor=None, slug=slug, name=f"Benchmark {slug}")
    bench = BenchTenant(tenant, tenant_host(slug), "", [f"{slug}-{role}" for role in BENCH_ROLES])
    try:
        bench.key = populate_bench_tenant(tenant, slug, dev_model_port)
    except BaseException:
        drop_bench_tenant(bench)
        raise
    return bench


def populate_bench_tenant(tenant, slug: str, dev_model_port: int) -> str:
    """Fill the bench tenant; return the full runtime key."""
    from django.db import connection, transaction

    from bench.bare_runtime import admit_bare_records
    from bundles.language.archive import read_directory
    from bundles.services import bundle_version_push
    from promotions.models import GateStatus
    from promotions.selectors import access_environment
    from promotions.services.environments import environment_approval_grant, environments_ensure_defaults
    from promotions.services.gate_execution import gate_run_execute
    from promotions.services.gates import gate_run_start
    from promotions.services.promotion_requests import promotion_approve, promotion_request_create
    from runtime.services import model_endpoint_create, runtime_key_create
    from tenancy.services import membership_set, user_create

    users = {}
    for role in BENCH_ROLES:
        user = user_create(username=f"{slug}-{role}", password=uuid.uuid4().hex)
        membership_set(actor=None, tenant=tenant, user=user, roles=[role])
        users[role] = user
    connection.set_tenant(tenant)  # services check memberships against the connection's tenant
    with connection.cursor() as cursor:
        admit_bare_records(cursor, tenant.schema_name, RUNTIME_ROLE)
    environments_ensure_defaults(actor=None)
    for name in ("staging", "current"):
        environment_approval_grant(
            actor=users["admin"],
            environment=access_environment(None, name),
            user=users["reviewer"],
            granted=True,
        )
    with transaction.atomic():
        model_endpoint_create(
            actor=users["operator"],
            name="default",
            base_url=f"http://127.0.0.1:{dev_model_port}/v1",
            allowed_models=DEV_MODELS,
            timeout_seconds=10,
        )
        version = bundle_version_push(
            actor=users["author"],
            name="claims-triage",
            files=read_directory(ROOT / "examples" / "claims-triage"),
            can_create=True,
        ).version
    run = gate_run_start(actor=users["author"], version=version, enqueue=False)
    if gate_run_execute(gate_run_id=run.pk).status != GateStatus.PASSED:
        sys.exit("the example's gates did not pass")
    for name in ("staging", "current"):
        environment = access_environment(None, name)
        request = promotion_request_create(
            actor=users["author"], version=version, environment=environment, justification="benchmark"
        )
        if environment.required_approvals:
            promotion_approve(actor=users["reviewer"], request=request, comment="benchmark")
    with transaction.atomic():
        key = runtime_key_create(actor=users["operator"], name="bench").secret
    connection.set_schema_to_public()
    return key


def drop_bench_tenant(bench: BenchTenant) -> None:
    """Drop the tenant's schema and rows; deactivate its users (users are global, DESIGN §4)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from tenancy.models import ApiToken, Domain, Membership, Tenant

    connection.set_schema_to_public()
    ApiToken.objects.filter(tenant=bench.tenant).delete()
    Membership.objects.filter(tenant=bench.tenant).delete()
    Domain.objects.filter(tenant=bench.tenant).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{bench.tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=bench.tenant.pk).delete()
    get_user_model().objects.filter(username__in=bench.usernames).update(is_active=False)


# --- CPU accounting -------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """Return the user+system CPU seconds process `pid` used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(pid: int) -> list[int]:
    """Return the ids of the direct children of `pid` (gunicorn's workers)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def database_pids() -> list[int]:
    """Return the server process ids of the runtime role's database sessions."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", [RUNTIME_ROLE])
        return [row[0] for row in cursor.fetchall()]


class CpuMeter:
    """CPU seconds used by each component between start() and stop()."""

    def __init__(self, runtime_pid: int, dev_model_pid: int):
        self.groups = {
            "runtime": lambda: [runtime_pid, *child_pids(runtime_pid)],
            "dev model": lambda: [dev_model_pid],
            "database": database_pids,
            "clients": lambda: [os.getpid()],
        }
        self.before: dict[str, dict[int, float]] = {}

    def sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self.sample()

    def stop(self) -> dict[str, float]:
        after = self.sample()
        return {
            name: sum(seconds - self.before[name].get(pid, 0.0) for pid, seconds in after[name].items())
            for name in after
        }


# --- load -------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Latencies (seconds) and failures of one endpoint, over all its rounds."""

    name: str
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def add_cpu(self, used: dict[str, float]) -> None:
        for name, seconds in used.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def cpu_ms_per_request(self) -> dict[str, float]:
        count = len(self.latencies) + self.failures
        return {name: seconds * 1000 / count for name, seconds in self.cpu.items()} if count else {}

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, share: float) -> float:
        """Return the latency (ms) below which `share` of the requests finished."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def load(
    port: int, host: str, path: str, headers: dict[str, str], concurrency: int, requests: int, seconds: float
) -> tuple[list[float], int, float]:
    """Send up to `requests` POSTs (or for up to `seconds`) from `concurrency` keep-alive clients."""
    body = json.dumps({"input": CLAIM}).encode()
    all_headers = {
        **headers,
        "Host": host,
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    remaining = [requests]
    lock = threading.Lock()
    latencies: list[float] = []
    failures = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=all_headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                with lock:
                    failures[0] += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures[0], time.perf_counter() - started


def check_endpoints(port: int, host: str, key: str) -> None:
    """Exit unless both endpoints answer 200 with what they should."""
    for path, headers in ((GOVERNED_PATH, {"Authorization": f"Bearer {key}"}), (BARE_PATH, {})):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", path, body=json.dumps({"input": CLAIM}), headers={**headers, "Host": host})
        response = connection.getresponse()
        text = response.read().decode()
        if response.status != 200:
            sys.exit(f"{path} answered {response.status}: {text}")
        print(f"  {path}: {text[:150]}{'…' if len(text) > 150 else ''}")
        connection.close()


def median(values: list[float]) -> float:
    """Return the median of `values`."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def merged(name: str, runs: list[Run]) -> Run:
    """Return one run holding every round's requests, failures, time and CPU."""
    total = Run(name)
    for run in runs:
        total.latencies.extend(run.latencies)
        total.failures += run.failures
        total.elapsed += run.elapsed
        total.add_cpu(run.cpu)
    return total


def report(rounds: list[dict[str, Run]]) -> bool:
    """Print the figures and whether the targets hold; return True when they do.

    The verdict uses the medians over the paired rounds (each round runs both endpoints back to back), which
    resist a burst of load from other processes hitting one endpoint's turn; the totals are printed too.
    """
    governed = merged("governed", [pair["governed"] for pair in rounds])
    bare = merged("bare", [pair["bare"] for pair in rounds])
    print()
    print(f"{'endpoint':<10} {'requests':>9} {'failed':>7} {'exec/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for run in (governed, bare):
        print(
            f"{run.name:<10} {len(run.latencies):>9} {run.failures:>7} {run.throughput:>9.1f} "
            f"{run.percentile(0.50):>8.2f} {run.percentile(0.99):>8.2f}"
        )
    print()
    print(f"CPU ms per request ({os.cpu_count()} CPUs shared by every process of the machine):")
    for run in (governed, bare):
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in run.cpu_ms_per_request().items())
        print(f"  {run.name:<10} {parts}, total {sum(run.cpu_ms_per_request().values()):.2f}")
    governed_cpu, bare_cpu = (sum(run.cpu_ms_per_request().values()) for run in (governed, bare))
    if governed_cpu:
        print(f"  CPU-bound throughput ratio (bare CPU / governed CPU): {bare_cpu / governed_cpu:.3f}")
    ratios = [
        pair["governed"].throughput / pair["bare"].throughput for pair in rounds if pair["bare"].throughput
    ]
    p99_overheads = [pair["governed"].percentile(0.99) - pair["bare"].percentile(0.99) for pair in rounds]
    p50_overheads = [pair["governed"].percentile(0.50) - pair["bare"].percentile(0.50) for pair in rounds]
    print()
    print(f"{'':<34} {'all requests':>13} {'median of rounds':>17}")
    total_ratio = governed.throughput / bare.throughput if bare.throughput else 0.0
    print(f"{'throughput governed / bare':<34} {total_ratio:>13.3f} {median(ratios):>17.3f}")
    total_p50 = governed.percentile(0.50) - bare.percentile(0.50)
    print(f"{'p50 overhead (ms)':<34} {total_p50:>+13.2f} {median(p50_overheads):>+17.2f}")
    total_p99 = governed.percentile(0.99) - bare.percentile(0.99)
    print(f"{'p99 overhead (ms)':<34} {total_p99:>+13.2f} {median(p99_overheads):>+17.2f}")
    throughput_ok = median(ratios) >= THROUGHPUT_TARGET
    p99_ok = median(p99_overheads) <= P99_OVERHEAD_TARGET_MS
    print()
    print(f"target throughput >= {THROUGHPUT_TARGET} x bare: {'met' if throughput_ok else 'MISSED'}")
    print(f"target p99 overhead <= {P99_OVERHEAD_TARGET_MS:g} ms: {'met' if p99_ok else 'MISSED'}")
    return throughput_ok and p99_ok and not governed.failures and not bare.failures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="concurrent clients (default: as many as workers)"
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint per round (3000)")
    parser.add_argument("--seconds", type=float, default=6.0, help="time bound per endpoint per round (6 s)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per endpoint (default 6)")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    options.concurrency = options.concurrency or options.workers
    # The dev model listens on a free loopback port; the runtime process inherits this environment.
    os.environ.setdefault("CONTRACTOR_EGRESS_ALLOW", "127.0.0.1")
    set_up_django()
    from django.conf import settings

    log_dir = ROOT / ".run"
    log_dir.mkdir(exist_ok=True)
    print(
        f"database {settings.DATABASES['default']['NAME']}; workers {options.workers}; "
        f"{options.concurrency} clients; {options.rounds} rounds of <= {options.requests} requests "
        f"or {options.seconds:g} s per endpoint"
    )
    dev_model, dev_model_port = start_dev_model(log_dir)
    bench = None
    runtime = None
    try:
        bench = create_bench_tenant(dev_model_port)
        print(f"tenant {bench.host} ready (claims-triage live in current)")
        runtime, port = start_runtime(
            log_dir, os.environ.get("DATABASE_URL", settings.DATABASE_URL), options.workers
        )
        check_endpoints(port, bench.host, bench.key)
        targets = {
            "governed": (GOVERNED_PATH, {"Authorization": f"Bearer {bench.key}"}),
            "bare": (BARE_PATH, {}),
        }
        for path, headers in targets.values():
            load(port, bench.host, path, headers, options.concurrency, WARMUP_REQUESTS, options.seconds)
        meter = CpuMeter(runtime.pid, dev_model.pid)
        rounds: list[dict[str, Run]] = []
        for round_number in range(options.rounds):
            order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
            pair: dict[str, Run] = {}
            for name in order:
                path, headers = targets[name]
                meter.start()
                latencies, failures, elapsed = load(
                    port, bench.host, path, headers, options.concurrency, options.requests, options.seconds
                )
                pair[name] = Run(name, latencies, failures, elapsed)
                pair[name].add_cpu(meter.stop())
                print(f"  round {round_number + 1} {name:<8} {pair[name].throughput:8.1f} exec/s")
            rounds.append(pair)
        return 0 if report(rounds) else 1
    finally:
        if runtime is not None:
            stop(runtime)
        stop(dev_model)
        if bench is not None:
            drop_bench_tenant(bench)
            print(f"tenant {bench.host} dropped")


if __name__ == "__main__":
    sys.exit(main())
