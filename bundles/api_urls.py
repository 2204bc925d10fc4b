"""API routes of bundles, mounted under /api/v1/ of the tenant host."""

from django.urls import path

from bundles import apis

urlpatterns = [
    path("bundle-schema/", apis.BundleSchemaApi.as_view(), name="api-bundles-schema"),
    path("bundles/", apis.BundleListApi.as_view(), name="api-bundles-list"),
    path("bundles/<str:name>/", apis.BundleDetailApi.as_view(), name="api-bundles-detail"),
    path("bundles/<str:name>/versions/", apis.BundleVersionPushApi.as_view(), name="api-bundles-push"),
    path(
        "bundles/<str:name>/versions/<str:version>/",
        apis.VersionDetailApi.as_view(),
        name="api-bundles-version",
    ),
    path(
        "bundles/<str:name>/versions/<str:version>/files/<path:path>",
        apis.VersionFileApi.as_view(),
        name="api-bundles-version-file",
    ),
    path("bundles/<str:name>/diff/", apis.BundleDiffApi.as_view(), name="api-bundles-diff"),
    path("bundles/<str:name>/push-grants/", apis.PushGrantListApi.as_view(), name="api-bundles-push-grants"),
    path(
        "bundles/<str:name>/push-grants/<str:username>/",
        apis.PushGrantApi.as_view(),
        name="api-bundles-push-grant",
    ),
]
