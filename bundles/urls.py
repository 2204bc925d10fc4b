"""Console pages of bundles, mounted at the root of the tenant host."""

urlpatterns: list = []
