"""API routes of governance, mounted under /api/v1/ of the tenant host."""

from django.urls import path

from governance import apis

urlpatterns = [
    path("governance/changes/", apis.ChangeListApi.as_view(), name="api-governance-changes"),
    path("governance/changes/<int:change_id>/", apis.ChangeDetailApi.as_view(), name="api-governance-change"),
    path(
        "governance/changes/<int:change_id>/approve/",
        apis.ChangeApproveApi.as_view(),
        name="api-governance-approve",
    ),
    path(
        "governance/changes/<int:change_id>/reject/",
        apis.ChangeRejectApi.as_view(),
        name="api-governance-reject",
    ),
    path(
        "governance/changes/<int:change_id>/cancel/",
        apis.ChangeCancelApi.as_view(),
        name="api-governance-cancel",
    ),
]
