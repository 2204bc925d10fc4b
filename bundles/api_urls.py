"""API routes of bundles, mounted under /api/v1/ of the tenant host."""

urlpatterns: list = []
