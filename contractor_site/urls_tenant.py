"""URLs of a tenant host (acme.localhost): the console and the control-plane API.

The apps' routes are included by dotted path, so this module imports none of them (runtime least of all:
its control-plane pages live in runtime/ and are mounted here).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api import api_route_not_found
from core.health import healthz, readyz
from tenancy import apis as tenancy_apis
from tenancy import views as tenancy_views
from tenancy.sso import apis as sso_apis
from tenancy.sso import views as sso_views

APPS = ("audit", "bundles", "promotions", "governance", "runtime")

api_v1 = [
    path("auth/token/", tenancy_apis.TokenApi.as_view(), name="api-token"),
    path("me/", tenancy_apis.MeApi.as_view(), name="api-me"),
    path("memberships/", tenancy_apis.MembershipListApi.as_view(), name="api-memberships"),
    path("memberships/<str:username>/", tenancy_apis.MembershipSetApi.as_view(), name="api-membership-set"),
    path(
        "memberships/<str:username>/groups/",
        tenancy_apis.MembershipGroupsApi.as_view(),
        name="api-membership-groups",
    ),
    path("tokens/", tenancy_apis.ApiTokenListApi.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>/", tenancy_apis.ApiTokenDetailApi.as_view(), name="api-token-detail"),
    path("sso/", sso_apis.SsoConfigApi.as_view(), name="api-sso"),
    *[path("", include(f"{app}.api_urls")) for app in APPS],
]

urlpatterns = [
    path("", tenancy_views.dashboard, name="dashboard"),
    path("login/", tenancy_views.LoginView.as_view(), name="login"),
    path("logout/", tenancy_views.LogoutView.as_view(), name="logout"),
    path("sso/login/", sso_views.sso_start, name="sso-login"),
    path("sso/callback/", sso_views.sso_callback, name="sso-callback"),
    path("members/", tenancy_views.memberships, name="memberships"),
    path("members/groups/", tenancy_views.membership_groups, name="membership-groups"),
    path("tokens/", tenancy_views.api_tokens, name="tokens"),
    path("tokens/created/", tenancy_views.api_token_created, name="tokens-created"),
    path("tokens/<int:token_id>/revoke/", tenancy_views.api_token_revoke_view, name="tokens-revoke"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api_route_not_found, name="api-route-not-found"),
    *[path("", include(f"{app}.urls")) for app in APPS],
]
