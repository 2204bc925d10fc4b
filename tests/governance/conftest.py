"""Fixtures of the governance tests: a promotions team with two admins (the tenant is past bootstrap)."""

import pytest

from tests.conftest import token_client
from tests.promotions.promotion_factories import make_team


@pytest.fixture
def team(in_tenant_a, make_member):
    """One member per role in tenant A, both reviewers granted in staging and current, and two admins:
    `admin` (who will try to act alone) and `admin2` (the second pair of eyes). Every other member is made
    before the second admin, while the tenant is still bootstrapping."""
    team = make_team(make_member, in_tenant_a, prefix="g")
    team.admin2 = make_member(in_tenant_a, "g-admin2", ["admin"])
    return team


@pytest.fixture
def clients(team, tenant_a):
    """An API client per member of `team` (tokens with every scope), by attribute name."""
    return {name: token_client(tenant_a, getattr(team, name)) for name in vars(team)}
