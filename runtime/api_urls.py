"""API routes of runtime, mounted under /api/v1/ of the tenant host."""

urlpatterns: list = []
