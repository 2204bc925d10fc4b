"""API routes of promotions, mounted under /api/v1/ of the tenant host."""

urlpatterns: list = []
