"""Fault tests: Celery workers this package starts and kills itself, on a queue of their own.

Each worker runs in its own process group (its PID is the group's id), with the beat embedded so that the
gate-run watch runs as in production, and with test timings: a heartbeat every 0.5 s, a run stale after 3 s,
the watch every second, and each suite case slowed by CASE_DELAY so that a run lasts long enough to be
interrupted. Its database connections carry an application name of their own, so a test can terminate
exactly them (on its own test database only).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from contractor_site.celery import app

ROOT = Path(__file__).resolve().parent.parent.parent
CASE_DELAY = 0.3
STALE_SECONDS = 3
WORKER_ENV = {
    "DJANGO_SETTINGS_MODULE": "contractor_site.settings.test",
    "CONTRACTOR_GATE_RUN_HEARTBEAT_SECONDS": "0.5",
    "CONTRACTOR_GATE_RUN_STALE_SECONDS": str(STALE_SECONDS),
    "CONTRACTOR_GATE_RUN_WATCH_SECONDS": "1",
    "CONTRACTOR_GATE_RUN_CASE_DELAY_SECONDS": str(CASE_DELAY),
    "CONTRACTOR_GATE_RUN_DB_RETRY_BASE_SECONDS": "0.5",
    "CONTRACTOR_GATE_RUN_DB_RETRY_MAX_SECONDS": "2",
}


def database_url_of_tests(**query) -> str:
    """Return the URL of the test database, with `query` parameters (e.g. application_name)."""
    database = settings.DATABASES["default"]
    user = database["USER"] or "postgres"
    address = f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    url = f"postgres://{user}:{database['PASSWORD'] or ''}@{address}/{connection.settings_dict['NAME']}"
    return url + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")


class FaultWorker:
    """One Celery worker (with embedded beat) that a test may SIGKILL; stopped at teardown if alive."""

    def __init__(self, queue: str, run_dir: Path):
        self.name = f"fault-{uuid.uuid4().hex[:8]}@localhost"
        self.application_name = f"contractor-{self.name.split('@')[0]}"
        self.queue = queue
        self.log_path = run_dir / f"{self.name.split('@')[0]}.log"
        schedule = run_dir / f"{self.name.split('@')[0]}-beat"
        env = {
            **os.environ,
            **WORKER_ENV,
            "DATABASE_URL": database_url_of_tests(application_name=self.application_name),
            "CELERY_TASK_DEFAULT_QUEUE": queue,
        }
        self.log = self.log_path.open("w")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "contractor_site",
            "worker",
            "-B",
            "-s",
            str(schedule),
        ]
        command += ["-l", "info", "--concurrency", "1", "-n", self.name, "-Q", queue]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.wait_until_ready()

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"fault worker exited with {self.process.returncode}; see {self.log_path}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        self.kill()
        pytest.fail(f"fault worker did not answer within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the worker and every process it started (its process group, whose id is its PID)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()


class FaultWorkers:
    """The fault workers of one test module, on a queue of their own."""

    def __init__(self, run_dir: Path):
        self.queue = f"contractor-faults-{uuid.uuid4().hex[:8]}"
        self.run_dir = run_dir
        self.started: list[FaultWorker] = []

    def start(self) -> FaultWorker:
        """Start one more worker."""
        worker = FaultWorker(self.queue, self.run_dir)
        self.started.append(worker)
        return worker

    def running(self) -> FaultWorker:
        """Return a live worker, starting one when none is."""
        alive = [worker for worker in self.started if worker.process.poll() is None]
        return alive[-1] if alive else self.start()

    def stop(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture(scope="module")
def fault_workers(committed_tenant, tmp_path_factory):
    """Fault workers for the module; the test process sends its tasks to their queue meanwhile."""
    workers = FaultWorkers(tmp_path_factory.mktemp("fault-workers"))
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = workers.queue
    yield workers
    app.conf.task_default_queue = previous
    workers.stop()
