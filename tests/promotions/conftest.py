"""Fixtures shared by the promotions tests (the set-ups themselves are in promotion_factories)."""

import pytest

from tests.conftest import token_client
from tests.promotions.promotion_factories import make_team


@pytest.fixture
def team(in_tenant_a, make_member):
    """One member per role in tenant A, with the default environments and both reviewers' grants."""
    return make_team(make_member, in_tenant_a)


@pytest.fixture
def clients(team, tenant_a):
    """An API client per role of `team`, by role name."""
    return {role: token_client(tenant_a, getattr(team, role)) for role in vars(team)}
