"""Console pages of bundles, mounted at the root of the tenant host."""

from django.urls import path

from bundles import views

# `_upload` can never be a bundle name (names start with a letter or digit), so it cannot shadow one.
urlpatterns = [
    path("bundles/", views.bundle_list_page, name="bundles-list"),
    path("bundles/_upload/", views.upload_page, name="bundles-upload"),
    path("bundles/<str:name>/", views.bundle_page, name="bundles-detail"),
    path("bundles/<str:name>/push-grants/", views.push_grant_change, name="bundles-push-grant"),
    path("bundles/<str:name>/diff/", views.diff_page, name="bundles-diff"),
    path("bundles/<str:name>/versions/<str:version>/", views.version_page, name="bundles-version"),
    path("bundles/<str:name>/drafts/", views.draft_start, name="bundles-draft-start"),
    path("bundles/<str:name>/drafts/<int:draft_id>/", views.draft_page, name="bundles-draft"),
    path(
        "bundles/<str:name>/drafts/<int:draft_id>/discard/",
        views.draft_remove,
        name="bundles-draft-discard",
    ),
]
