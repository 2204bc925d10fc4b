"""Console pages of promotions, mounted at the root of the tenant host."""

from django.urls import path

from promotions import views

urlpatterns = [
    path("promotions/", views.promotion_list, name="promotions-list"),
    path("promotions/new/", views.promotion_request_view, name="promotions-request"),
    path("promotions/<int:promotion_id>/", views.promotion_detail, name="promotions-detail"),
    path("promotions/<int:promotion_id>/approve/", views.promotion_approve_view, name="promotions-approve"),
    path("promotions/<int:promotion_id>/reject/", views.promotion_reject_view, name="promotions-reject"),
    path("promotions/<int:promotion_id>/cancel/", views.promotion_cancel_view, name="promotions-cancel"),
    path("gate-runs/new/", views.gate_run_view, name="promotions-gates-run"),
    path("environments/", views.environment_list, name="promotions-environments"),
    path("environments/<slug:name>/", views.environment_detail, name="promotions-environment"),
    path(
        "environments/<slug:name>/rollback/",
        views.environment_rollback_view,
        name="promotions-environment-rollback",
    ),
    path(
        "environments/<slug:name>/rules/", views.environment_rules_view, name="promotions-environment-rules"
    ),
    path(
        "environments/<slug:name>/approvers/",
        views.environment_approvers_view,
        name="promotions-environment-approvers",
    ),
]
