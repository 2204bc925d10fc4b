"""Console pages of promotions, mounted at the root of the tenant host."""

urlpatterns: list = []
