"""Console pages of runtime, mounted at the root of the tenant host."""

urlpatterns: list = []
