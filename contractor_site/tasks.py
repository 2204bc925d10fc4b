"""Task plumbing: tenant tasks refuse to run in the public schema."""

import functools

from django.db import connection

PUBLIC_SCHEMA_REFUSED = "Tenant task {name} refused to run in the public schema (no tenant header)."


class TenantTaskInPublicSchema(RuntimeError):
    """A tenant task arrived without a tenant: it would read or write the wrong schema."""


def tenant_task(function):
    """Wrap a task body so that it refuses to run in the public schema."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if connection.schema_name == "public":
            raise TenantTaskInPublicSchema(PUBLIC_SCHEMA_REFUSED.format(name=function.__name__))
        return function(*args, **kwargs)

    return wrapper
