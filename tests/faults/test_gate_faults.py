"""Faults during gate runs and promotions: a killed worker, lost database connections, nothing stuck or lost.

Each test works on committed data in the shared committed tenant, with real worker processes (see conftest)
and real PostgreSQL backends terminated under them.
"""

import threading
import time
import uuid

import pytest
from django.db import Error as DatabaseError

from tests.conftest import run_committed
from tests.faults import fault_world as world
from tests.faults.conftest import CASE_DELAY, STALE_SECONDS, database_url_of_tests

pytestmark = pytest.mark.worker

FINISHED = ("passed", "failed", "error")
INTERRUPTED = "interrupted by a database error"


def bundle_name(kind: str) -> str:
    return f"fault-{kind}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def team(committed_tenant, db):
    return run_committed(world.set_up_team, tenant=committed_tenant)


def test_a_worker_killed_mid_run_is_replaced_and_the_run_finishes_and_the_request_proceeds(
    fault_workers, committed_tenant, team
):
    tenant = committed_tenant
    worker = fault_workers.start()
    version_id = run_committed(world.push, team["author"], bundle_name("kill"), 10, tenant=tenant)
    request_id = run_committed(world.request, team["author"], version_id, "staging", tenant=tenant)
    run_id = run_committed(world.latest_run_of, version_id, tenant=tenant)
    world.wait_for(
        lambda: world.run_state(run_id),
        tenant,
        lambda state: state["status"] == "running",
        timeout=30,
        what="the first worker did not start the run",
    )
    time.sleep(3 * CASE_DELAY)  # a few cases in: mid-run
    worker.kill()
    killed_at = time.monotonic()
    assert run_committed(world.run_state, run_id, tenant=tenant)["status"] == "running"

    fault_workers.start()
    state = world.wait_for(
        lambda: world.request_state(request_id),
        tenant,
        lambda state: state["status"] != "pending",
        timeout=60,
        what="the request was not decided after the worker was killed",
    )
    recovered_in = time.monotonic() - killed_at
    run = run_committed(world.run_state, run_id, tenant=tenant)
    assert run == {"status": "passed", "attempts": 2, "finished_records": 1, "redispatched_records": 1}
    assert state == {
        "status": "promoted",
        "approvals": 0,
        "approved_records": 0,
        "deployments": 1,
        "deployment_records": 1,
    }
    # Stale after STALE_SECONDS, then re-run (21 cases of CASE_DELAY each): well within a minute.
    assert recovered_in < STALE_SECONDS + 30


def test_lost_database_connections_during_a_run_are_retried_and_the_same_attempt_finishes(
    fault_workers, committed_tenant, team
):
    tenant = committed_tenant
    worker = fault_workers.running()
    interruptions = worker.output().count(INTERRUPTED)
    version_id = run_committed(world.push, team["author"], bundle_name("conn"), 10, tenant=tenant)
    run_id = run_committed(world.start_gates, team["author"], version_id, tenant=tenant)
    world.wait_for(
        lambda: world.run_state(run_id),
        tenant,
        lambda state: state["status"] == "running",
        timeout=30,
        what="the worker did not start the run",
    )
    terminated = 0
    for _ in range(2):  # twice: the retry backs off and resumes each time
        time.sleep(4 * CASE_DELAY)
        terminated += run_committed(world.terminate_backends, worker.application_name)
    assert terminated >= 2
    state = world.wait_for(
        lambda: world.run_state(run_id),
        tenant,
        lambda state: state["status"] in FINISHED,
        timeout=45,
        what="the run did not finish after its connections were terminated",
    )
    assert state == {"status": "passed", "attempts": 1, "finished_records": 1, "redispatched_records": 0}
    assert worker.output().count(INTERRUPTED) - interruptions >= 2


def test_a_connection_lost_in_the_final_write_leaves_nothing_half_applied_and_the_retry_deploys_once(
    fault_workers, committed_tenant, team
):
    tenant = committed_tenant
    worker = fault_workers.running()
    name = bundle_name("final")
    version_id = run_committed(world.push, team["author"], name, 0, tenant=tenant)
    lock = world.DeploymentTableLock(database_url_of_tests(), tenant.schema_name)
    try:
        request_id = run_committed(world.request, team["author"], version_id, "staging", tenant=tenant)
        # The worker's final write (run passed → request applied) now waits on the deployment table.
        world.wait_for(
            lambda: world.waiting_on_a_lock(application_name=worker.application_name),
            tenant,
            bool,
            timeout=30,
            what="the worker's final write did not reach the deployment",
        )
        assert run_committed(world.terminate_backends, worker.application_name) >= 1
    finally:
        lock.release()
    # Nothing of the interrupted transaction remains: the run is still running, the request pending.
    run_id = run_committed(world.latest_run_of, version_id, tenant=tenant)
    state = world.wait_for(
        lambda: world.request_state(request_id),
        tenant,
        lambda state: state["status"] != "pending",
        timeout=45,
        what="the request was not applied after the final write was retried",
    )
    assert state["status"] == "promoted"
    assert (state["deployments"], state["deployment_records"]) == (1, 1)
    assert run_committed(world.run_state, run_id, tenant=tenant) == {
        "status": "passed",
        "attempts": 1,
        "finished_records": 1,
        "redispatched_records": 0,
    }
    assert run_committed(world.pointer_chain_intact, name, tenant=tenant)


def test_a_connection_lost_during_approval_and_deployment_applies_nothing_and_approving_again_deploys_once(
    fault_workers, committed_tenant, team
):
    tenant = committed_tenant
    fault_workers.running()
    name = bundle_name("approve")
    version_id = run_committed(world.push, team["author"], name, 0, tenant=tenant)
    staging = run_committed(world.request, team["author"], version_id, "staging", tenant=tenant)
    world.wait_for(
        lambda: world.request_state(staging),
        tenant,
        lambda state: state["status"] == "promoted",
        timeout=30,
        what="the version did not reach staging",
    )
    request_id = run_committed(world.request, team["author"], version_id, "current", tenant=tenant)
    lock = world.DeploymentTableLock(database_url_of_tests(), tenant.schema_name)
    pids: list[int] = []
    outcome: dict = {}

    def approve():
        try:
            run_committed(world.approve, team["reviewer"], request_id, pids, tenant=tenant)
        except DatabaseError as error:
            outcome["error"] = error

    approving = threading.Thread(target=approve)
    try:
        approving.start()
        world.wait_for(
            lambda: bool(pids) and world.waiting_on_a_lock(pid=pids[0]),
            tenant,
            bool,
            timeout=30,
            what="the approval did not reach the deployment",
        )
        run_committed(world.terminate_pid, pids[0])
        approving.join(timeout=30)
    finally:
        lock.release()
    assert "error" in outcome
    assert run_committed(world.request_state, request_id, tenant=tenant) == {
        "status": "pending",
        "approvals": 0,
        "approved_records": 0,
        "deployments": 0,
        "deployment_records": 0,
    }
    run_committed(world.approve, team["reviewer"], request_id, [], tenant=tenant)
    assert run_committed(world.request_state, request_id, tenant=tenant) == {
        "status": "promoted",
        "approvals": 1,
        "approved_records": 1,
        "deployments": 1,
        "deployment_records": 1,
    }
    assert run_committed(world.pointer_chain_intact, name, tenant=tenant)
