"""Console pages of runtime, mounted at the root of the tenant host (control plane only)."""

from django.urls import path

from runtime import views

urlpatterns = [
    path("decisions/", views.decision_list, name="runtime-decisions"),
    path("decisions/<int:decision_id>/", views.decision_detail, name="runtime-decision"),
    path("runtime-keys/", views.key_list, name="runtime-keys"),
    path("runtime-keys/<int:key_id>/revoke/", views.key_revoke, name="runtime-key-revoke"),
    path("model-endpoints/", views.endpoint_list, name="runtime-endpoints"),
    path("model-endpoints/<slug:name>/", views.endpoint_detail, name="runtime-endpoint"),
    path("model-endpoints/<slug:name>/delete/", views.endpoint_delete, name="runtime-endpoint-delete"),
]
