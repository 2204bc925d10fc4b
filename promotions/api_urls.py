"""API routes of promotions, mounted under /api/v1/ of the tenant host."""

from django.urls import path

from promotions.apis import deployments, environments, gates, promotion_requests, webhooks

urlpatterns = [
    path("environments/", environments.EnvironmentListApi.as_view(), name="api-promotions-environments"),
    path(
        "environments/<slug:name>/",
        environments.EnvironmentDetailApi.as_view(),
        name="api-promotions-environment",
    ),
    path(
        "environments/<slug:name>/history/",
        environments.EnvironmentHistoryApi.as_view(),
        name="api-promotions-environment-history",
    ),
    path(
        "environments/<slug:name>/approvers/<str:username>/",
        environments.EnvironmentApproverApi.as_view(),
        name="api-promotions-environment-approver",
    ),
    path(
        "environments/<slug:environment>/bundles/<str:name>/rollback/",
        deployments.RollbackApi.as_view(),
        name="api-promotions-rollback",
    ),
    path(
        "bundles/<str:name>/versions/<str:version>/gate-runs/",
        gates.VersionGateRunsApi.as_view(),
        name="api-promotions-gate-runs",
    ),
    path("gate-runs/<int:gate_run_id>/", gates.GateRunDetailApi.as_view(), name="api-promotions-gate-run"),
    path("promotions/", promotion_requests.PromotionListApi.as_view(), name="api-promotions-list"),
    path(
        "promotions/<int:promotion_id>/",
        promotion_requests.PromotionDetailApi.as_view(),
        name="api-promotions-detail",
    ),
    path(
        "promotions/<int:promotion_id>/approve/",
        promotion_requests.PromotionApproveApi.as_view(),
        name="api-promotions-approve",
    ),
    path(
        "promotions/<int:promotion_id>/reject/",
        promotion_requests.PromotionRejectApi.as_view(),
        name="api-promotions-reject",
    ),
    path(
        "promotions/<int:promotion_id>/cancel/",
        promotion_requests.PromotionCancelApi.as_view(),
        name="api-promotions-cancel",
    ),
    path("deployments/", deployments.DeploymentListApi.as_view(), name="api-promotions-deployments"),
    path("webhooks/", webhooks.WebhookListApi.as_view(), name="api-promotions-webhooks"),
    path("webhooks/<int:webhook_id>/", webhooks.WebhookDetailApi.as_view(), name="api-promotions-webhook"),
    path(
        "webhooks/<int:webhook_id>/deliveries/",
        webhooks.WebhookDeliveryListApi.as_view(),
        name="api-promotions-webhook-deliveries",
    ),
]
