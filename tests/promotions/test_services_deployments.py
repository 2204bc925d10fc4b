"""The release pointer: append-only history, what was live at a time, and rollback."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from audit.models import Record
from promotions.exceptions import (
    NO_PREVIOUS_VERSION,
    NOT_PREVIOUSLY_LIVE,
    NOTHING_LIVE,
    AlreadyLive,
    JustificationRequired,
    NoPreviousVersion,
    NothingLive,
    NotPreviouslyLive,
)
from promotions.models import Deployment, DeploymentKind, OutboxEvent
from promotions.selectors import deployment_history, live_version, live_versions, rollback_candidates
from promotions.services.deployments import deployment_rollback
from promotions.services.promotion_requests import promotion_request_create
from tenancy.exceptions import MissingCapability
from tests.promotions.promotion_factories import environment, push_version, run_gates


def to_staging(team, version):
    run_gates(team.author, version)
    created = promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="Next."
    )
    assert created.status == "promoted"
    return Deployment.objects.get(request=created)


@pytest.fixture
def three_live(team):
    """1.2.0, 1.3.0, 1.4.0 promoted to staging in that order; 1.4.0 is live."""
    versions = [push_version(team.author, label) for label in ("1.2.0", "1.3.0", "1.4.0")]
    for version in versions:
        to_staging(team, version)
    return versions


def rollback(team, **kwargs):
    bundle = kwargs.pop("bundle", None)
    return deployment_rollback(
        actor=kwargs.pop("actor", team.operator),
        bundle=bundle,
        environment=kwargs.pop("environment", environment("staging")),
        justification=kwargs.pop("justification", "Error rate doubled."),
        **kwargs,
    )


def test_a_member_without_rollback_cannot_roll_back(team, three_live):
    with pytest.raises(MissingCapability) as refused:
        rollback(team, actor=team.author, bundle=three_live[0].bundle)
    assert refused.value.code == "missing_role"
    assert live_version(three_live[0].bundle, environment("staging")) == three_live[2]


def test_a_rollback_needs_a_justification(team, three_live):
    with pytest.raises(JustificationRequired) as refused:
        rollback(team, bundle=three_live[0].bundle, justification="  ")
    assert refused.value.code == "justification_required"


def test_rollback_by_default_returns_to_the_version_live_before(team, three_live):
    bundle = three_live[0].bundle
    before = Deployment.objects.filter(bundle=bundle).order_by("-id").first()
    deployment = rollback(team, bundle=bundle)
    assert deployment.version == three_live[1]
    assert deployment.kind == DeploymentKind.ROLLBACK
    assert deployment.previous == before
    assert deployment.request is None
    assert deployment.justification == "Error rate doubled."
    assert live_version(bundle, environment("staging")) == three_live[1]
    entry = Record.objects.get(action="rollback")
    assert entry.actor_name == team.operator.username
    assert entry.target_id == str(deployment.pk)
    assert entry.data["from_version"] == "1.4.0"
    assert entry.data["to_version"] == "1.3.0"
    assert OutboxEvent.objects.filter(event="deployment.rolled_back").count() == 1


def test_rollback_to_an_explicit_earlier_version(team, three_live):
    deployment = rollback(team, bundle=three_live[0].bundle, to_version="1.2.0")
    assert deployment.version == three_live[0]
    assert rollback_candidates(three_live[0].bundle, environment("staging")) == [three_live[2], three_live[1]]


def test_rollback_refuses_a_version_never_live_in_that_environment(team, three_live):
    newer = push_version(team.author, "1.5.0")
    with pytest.raises(NotPreviouslyLive) as refused:
        rollback(team, bundle=newer.bundle, to_version="1.5.0")
    assert refused.value.code == "not_previously_live"
    assert refused.value.message == NOT_PREVIOUSLY_LIVE.format(
        bundle="claims-triage", version="1.5.0", environment="staging"
    )
    with pytest.raises(NotPreviouslyLive):
        rollback(team, bundle=newer.bundle, to_version="9.9.9")


def test_rollback_refuses_the_version_already_live(team, three_live):
    with pytest.raises(AlreadyLive) as refused:
        rollback(team, bundle=three_live[0].bundle, to_version="1.4.0")
    assert refused.value.code == "already_live"


def test_rollback_with_nothing_live_or_nothing_before_is_refused(team):
    version = push_version(team.author, "1.2.0")
    with pytest.raises(NothingLive) as refused:
        rollback(team, bundle=version.bundle)
    assert refused.value.message == NOTHING_LIVE.format(bundle="claims-triage", environment="staging")
    to_staging(team, version)
    with pytest.raises(NoPreviousVersion) as refused:
        rollback(team, bundle=version.bundle)
    assert refused.value.code == "no_previous_version"
    assert refused.value.message == NO_PREVIOUS_VERSION.format(bundle="claims-triage", environment="staging")


def test_two_default_rollbacks_in_a_row_toggle_between_the_last_two_versions(team, three_live):
    bundle = three_live[0].bundle
    assert rollback(team, bundle=bundle).version == three_live[1]
    assert rollback(team, bundle=bundle).version == three_live[2]


def test_as_of_answers_what_was_live_at_a_time(team):
    v1, v2 = push_version(team.author, "1.2.0"), push_version(team.author, "1.3.0")
    first = to_staging(team, v1)
    second = to_staging(team, v2)
    staging = environment("staging")
    assert live_version(v1.bundle, staging, as_of=first.created_at - timedelta(microseconds=1)) is None
    assert live_version(v1.bundle, staging, as_of=first.created_at) == v1
    assert live_version(v1.bundle, staging, as_of=second.created_at - timedelta(microseconds=1)) == v1
    assert live_version(v1.bundle, staging, as_of=timezone.now()) == v2
    at_first = list(deployment_history(as_of=first.created_at))
    assert [row.pk for row in at_first] == [first.pk]
    assert [row.pk for row in deployment_history(as_of=timezone.now())] == [second.pk]
    assert [row.pk for row in deployment_history(bundle=v1.bundle)] == [second.pk, first.pk]


def test_live_versions_lists_one_row_per_bundle_and_environment(team, three_live):
    rows = live_versions()
    assert [(bundle.name, env.name, row.version.version) for bundle, env, row in rows] == [
        ("claims-triage", "staging", "1.4.0")
    ]


def test_deployment_rows_are_append_only_in_the_database(team, three_live):
    row = Deployment.objects.order_by("-id").first()
    for statement in (
        "UPDATE promotions_deployment SET justification = 'rewritten' WHERE id = %s",
        "DELETE FROM promotions_deployment WHERE id = %s",
    ):
        with (
            pytest.raises(ProgrammingError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [row.pk])
    assert Deployment.objects.get(pk=row.pk).justification == row.justification


def test_the_pointer_cannot_fork_two_rows_cannot_replace_the_same_row(team, three_live):
    bundle, staging = three_live[0].bundle, environment("staging")
    live = Deployment.objects.filter(bundle=bundle, environment=staging).order_by("-id").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.create(
            bundle=bundle,
            environment=staging,
            version=three_live[0],
            kind=DeploymentKind.ROLLBACK,
            actor=team.operator,
            previous=live.previous,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.create(
            bundle=bundle,
            environment=staging,
            version=three_live[0],
            kind=DeploymentKind.ROLLBACK,
            actor=team.operator,
        )
