"""Task plumbing: tenant tasks refuse to run in the public schema."""

import functools

from django.db import connection, transaction

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


def enqueue_on_commit(task, **kwargs) -> None:
    """Send `task` when the current transaction commits, to the schema that is current NOW.

    Celery's delay_on_commit reads the schema when the transaction commits; by then a caller that switched
    tenants (tenant_context in a command, a loop over tenants) may be back in public, and the task would be
    refused there. Capturing the schema at enqueue time makes the message carry the right tenant.
    """
    schema_name = connection.schema_name
    transaction.on_commit(
        functools.partial(task.apply_async, kwargs=kwargs, headers={"_schema_name": schema_name}), robust=True
    )
