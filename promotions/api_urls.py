"""API routes of promotions, mounted under /api/v1/ of the tenant host."""

from django.urls import path

from promotions import apis

urlpatterns = [
    path("environments/", apis.EnvironmentListApi.as_view(), name="api-promotions-environments"),
    path("environments/<slug:name>/", apis.EnvironmentDetailApi.as_view(), name="api-promotions-environment"),
    path(
        "environments/<slug:name>/history/",
        apis.EnvironmentHistoryApi.as_view(),
        name="api-promotions-environment-history",
    ),
    path(
        "environments/<slug:name>/approvers/<str:username>/",
        apis.EnvironmentApproverApi.as_view(),
        name="api-promotions-environment-approver",
    ),
    path(
        "environments/<slug:environment>/bundles/<str:name>/rollback/",
        apis.RollbackApi.as_view(),
        name="api-promotions-rollback",
    ),
    path(
        "bundles/<str:name>/versions/<str:version>/gate-runs/",
        apis.VersionGateRunsApi.as_view(),
        name="api-promotions-gate-runs",
    ),
    path("gate-runs/<int:gate_run_id>/", apis.GateRunDetailApi.as_view(), name="api-promotions-gate-run"),
    path("promotions/", apis.PromotionListApi.as_view(), name="api-promotions-list"),
    path("promotions/<int:promotion_id>/", apis.PromotionDetailApi.as_view(), name="api-promotions-detail"),
    path(
        "promotions/<int:promotion_id>/approve/",
        apis.PromotionApproveApi.as_view(),
        name="api-promotions-approve",
    ),
    path(
        "promotions/<int:promotion_id>/reject/",
        apis.PromotionRejectApi.as_view(),
        name="api-promotions-reject",
    ),
    path(
        "promotions/<int:promotion_id>/cancel/",
        apis.PromotionCancelApi.as_view(),
        name="api-promotions-cancel",
    ),
    path("deployments/", apis.DeploymentListApi.as_view(), name="api-promotions-deployments"),
    path("webhooks/", apis.WebhookListApi.as_view(), name="api-promotions-webhooks"),
    path("webhooks/<int:webhook_id>/", apis.WebhookDetailApi.as_view(), name="api-promotions-webhook"),
    path(
        "webhooks/<int:webhook_id>/deliveries/",
        apis.WebhookDeliveryListApi.as_view(),
        name="api-promotions-webhook-deliveries",
    ),
]
