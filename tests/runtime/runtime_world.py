"""The committed world the live runtime tests run against: members, bundles, gates, promotions, keys.

Built once per session in a dedicated tenant (its schema is dropped at the end), through the real services,
so that a separate runtime process (connected as contractor_runtime) sees it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from django.db import connection, transaction

from bundles.models import BundleVersion
from bundles.services import bundle_version_push
from promotions.models import GateStatus
from promotions.selectors import access_environment
from promotions.services.environments import environment_approval_grant, environments_ensure_defaults
from promotions.services.gate_execution import gate_run_execute
from promotions.services.gates import gate_run_start
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from runtime.services import model_endpoint_create, runtime_key_create, runtime_key_revoke
from tenancy.models import Domain, Membership, Tenant
from tenancy.services import membership_set, tenant_create, user_create
from tests.bundles.bundle_factories import CLAIMS, SUPPORT, example_files, with_version

LAB = "claims-lab"
DEV_MODELS = ["dev-echo", "dev-error", "dev-model", "dev-slow"]
LOWER_LIMIT = 50000

LAB_MANIFEST = """apiVersion: contractor/v1
name: claims-lab
version: 1.0.0
description: Claims triage with probe pipelines for the runtime tests
pipelines:
  - name: triage
    input: Claim
    output: TriageDecision
    template: triage
    model: {endpoint: default, name: dev-model, temperature: 0, seed: 7, max_tokens: 256}
    policies: [amount-limit, no-pii-to-model, long-description, allowed-queues]
  - name: echo
    input: Claim
    output: TriageDecision
    template: echo
    model: {endpoint: default, name: dev-echo}
    policies: [amount-limit, no-pii-to-model]
    store_payload: true
  - name: slow
    input: Claim
    output: TriageDecision
    template: triage
    model: {endpoint: default, name: dev-slow}
    policies: [amount-limit, no-pii-to-model]
  - name: failing
    input: Claim
    output: TriageDecision
    template: triage
    model: {endpoint: default, name: dev-error}
    policies: [amount-limit, no-pii-to-model]
  - name: elsewhere
    input: Claim
    output: TriageDecision
    template: triage
    model: {endpoint: nowhere, name: dev-model}
    policies: [amount-limit, no-pii-to-model]
"""
# dev-echo answers the prompt itself: this prompt is a TriageDecision whose reason is the JSON of exactly the
# input the template saw, so a test can read what reached the model.
ECHO_TEMPLATE = """name: echo
system: 'Echo the claims routing request.'
prompt: '{"queue": "auto", "reason": {{ input | tojson | tojson }}}'
"""


def lower_limit_files() -> dict[str, str]:
    """Return claims-triage 1.3.0: amounts above 50k (not 100k) are denied; the suite follows."""
    files = with_version(example_files(CLAIMS), "1.3.0")
    policy, suite = "policies/amount-limit.yaml", "suites/golden.yaml"
    return {
        **files,
        policy: files[policy].replace("input.amount > 100000", f"input.amount > {LOWER_LIMIT}"),
        suite: files[suite].replace("amount: 100000", f"amount: {LOWER_LIMIT}"),
    }


def lab_files() -> dict[str, str]:
    """Return claims-lab 1.0.0: claims-triage plus echo, slow, failing and misconfigured pipelines."""
    files = example_files(CLAIMS)
    return {**files, "bundle.yaml": LAB_MANIFEST, "templates/echo.yaml": ECHO_TEMPLATE}


@dataclass
class World:
    """Everything the live tests need to address the committed data."""

    tenant: Tenant
    host: str
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    users: dict[str, object] = field(default_factory=dict)


def create_tenant() -> Tenant:
    """Create a dedicated tenant for the runtime tests (its data commits)."""
    slug = f"rt-{uuid.uuid4().hex[:8]}"
    return tenant_create(actor=None, slug=slug, name=f"Runtime {slug}")


def drop_tenant(tenant: Tenant) -> None:
    """Drop the tenant's schema and rows."""
    connection.set_schema_to_public()
    Membership.objects.filter(tenant=tenant).delete()
    Domain.objects.filter(tenant=tenant).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=tenant.pk).delete()


def member(tenant: Tenant, username: str, roles: list[str]):
    """Create user `username` with `roles` in `tenant`."""
    user = user_create(username=username, password="pw-for-tests-1")
    membership_set(actor=None, tenant=tenant, user=user, roles=roles)
    return user


def push(actor, name: str, files: dict[str, str]) -> BundleVersion:
    """Push a version and return it."""
    with transaction.atomic():
        return bundle_version_push(actor=actor, name=name, files=files, can_create=True).version


def pass_gates(actor, version: BundleVersion) -> None:
    """Run the version's gates inline; fail loudly when they do not pass."""
    run = gate_run_start(actor=actor, version=version, enqueue=False)
    run = gate_run_execute(gate_run_id=run.pk)
    assert run.status == GateStatus.PASSED, (version, run.status, run.error, run.report)


def promote(version: BundleVersion, environment_name: str, *, author, reviewer) -> None:
    """Request the promotion of `version` and approve it when the environment needs approvals."""
    environment = access_environment(None, environment_name)
    request = promotion_request_create(
        actor=author, version=version, environment=environment, justification="runtime tests"
    )
    if environment.required_approvals:
        promotion_approve(actor=reviewer, request=request, comment="ok")
    request.refresh_from_db()
    assert request.status == "promoted", (request.status, request.status_reason)


def build_world(tenant: Tenant, host: str, dev_model_url: str) -> World:
    """Create members, the default endpoint, bundles with passed gates, promotions and runtime keys."""
    slug = re.sub(r"[^a-z0-9]", "", tenant.schema_name)
    world = World(tenant=tenant, host=host)
    author = member(tenant, f"{slug}-author", ["author"])
    reviewer = member(tenant, f"{slug}-reviewer", ["reviewer"])
    operator = member(tenant, f"{slug}-operator", ["operator"])
    admin = member(tenant, f"{slug}-admin", ["admin"])
    world.users = {"author": author, "reviewer": reviewer, "operator": operator, "admin": admin}
    environments_ensure_defaults(actor=None)
    for name in ("staging", "current"):
        environment_approval_grant(
            actor=admin, environment=access_environment(None, name), user=reviewer, granted=True
        )
    with transaction.atomic():
        model_endpoint_create(
            actor=operator,
            name="default",
            base_url=dev_model_url,
            allowed_models=DEV_MODELS,
            timeout_seconds=5,
        )
    first = push(author, CLAIMS, example_files(CLAIMS))
    second = push(author, CLAIMS, lower_limit_files())
    lab = push(author, LAB, lab_files())
    support = push(author, SUPPORT, example_files(SUPPORT))
    for version in (first, second, lab, support):
        pass_gates(author, version)
    for version in (first, second, lab):
        promote(version, "staging", author=author, reviewer=reviewer)
        promote(version, "current", author=author, reviewer=reviewer)
    promote(support, "staging", author=author, reviewer=reviewer)
    world.versions = {"1.2.0": first.pk, "1.3.0": second.pk, LAB: lab.pk, SUPPORT: support.pk}
    keys = {
        "main": {},
        "lab_only": {"bundles": [LAB]},
        "staging": {"environment": "staging"},
        "revoked": {},
    }
    for name, options in keys.items():
        with transaction.atomic():
            created = runtime_key_create(actor=operator, name=f"rt-{name}", **options)
        world.keys[name] = created.secret
        world.key_ids[name] = created.key.pk
    with transaction.atomic():
        runtime_key_revoke(actor=operator, key=created.key)
    return world
