"""URLs of the public host (localhost): platform sign-in, the admin, probes."""

from django.contrib import admin
from django.urls import path, re_path

from core.api import api_route_not_found
from core.health import healthz, readyz
from tenancy import views as tenancy_views

urlpatterns = [
    path("", tenancy_views.LoginView.as_view(), name="home"),
    path("login/", tenancy_views.LoginView.as_view(), name="login"),
    path("logout/", tenancy_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    re_path(r"^api/", api_route_not_found, name="api-route-not-found"),
]
