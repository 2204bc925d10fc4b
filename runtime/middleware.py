"""Tenant routing of the runtime process: django-tenants' middleware, cached, and answering in JSON."""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.db import Error as DatabaseFailure
from django.db import connection
from django_tenants.middleware.main import TenantMainMiddleware

from runtime.caches import TTLCache
from runtime.conf import cache_seconds
from runtime.door import error_response
from runtime.exceptions import DatabaseUnavailable, UnknownTenant
from tenancy.models import Domain, Tenant

# Probes and metrics answer on any host, without touching the database.
HOST_INDEPENDENT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_tenants: TTLCache[Tenant | None] = TTLCache(cache_seconds)


def tenant_of_host(hostname: str) -> Tenant | None:
    """Return the active tenant routed by `hostname` (cached briefly), or None."""

    def load() -> Tenant | None:
        domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
        if domain is None or not domain.tenant.is_active:
            return None
        return domain.tenant

    return _tenants.get_or_load(hostname, load)


class RuntimeTenantMiddleware(TenantMainMiddleware):
    """Select the tenant's schema by host; unknown hosts get a JSON 404, an unreachable database a 503.

    Unlike its parent it never falls back to HTML answers, and caches the host → tenant lookup for at most
    RUNTIME_CACHE_SECONDS (a deactivated tenant stops being served within that time).
    """

    def process_request(self, request):
        """Set the connection's schema for the request's host, or answer the error."""
        connection.set_schema_to_public()
        if request.path in HOST_INDEPENDENT_PATHS:
            return None
        try:
            hostname = self.hostname_from_request(request).rstrip(".").lower()  # hosts match in any case
        except DisallowedHost:
            return error_response(UnknownTenant())
        try:
            tenant = tenant_of_host(hostname)
        except DatabaseFailure:
            return error_response(DatabaseUnavailable())
        if tenant is None or tenant.schema_name == "public":
            return error_response(UnknownTenant())
        tenant.domain_url = hostname
        request.tenant = tenant
        connection.set_tenant(tenant)
        return None
