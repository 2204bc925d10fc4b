"""Demo seeding contributed by apps, so seed_demo depends on none of them.

An app registers a seeder in its AppConfig.ready(); each runs inside the demo tenant's schema and must be
idempotent.
"""

from collections.abc import Callable

from django.db import transaction
from django_tenants.utils import tenant_context

_seeders: list[tuple[int, Callable]] = []


def register_seeder(seeder: Callable, *, order: int = 100) -> None:
    """Add `seeder(tenant=, users=, stdout=)` to the demo seeding, ordered by `order`."""
    if all(existing is not seeder for _, existing in _seeders):
        _seeders.append((order, seeder))
        _seeders.sort(key=lambda item: item[0])


def seed_apps(*, tenant, users: dict, stdout) -> None:
    """Run every registered seeder in the tenant's schema."""
    # The transaction opens inside the tenant, so work queued on commit is sent to this tenant.
    with tenant_context(tenant), transaction.atomic():
        for _, seeder in _seeders:
            seeder(tenant=tenant, users=users, stdout=stdout)
