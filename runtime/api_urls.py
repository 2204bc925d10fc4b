"""API routes of runtime, mounted under /api/v1/ of the tenant host (control plane)."""

from django.urls import path

from runtime import apis

urlpatterns = [
    path("runtime-keys/", apis.RuntimeKeyListApi.as_view(), name="api-runtime-keys"),
    path("runtime-keys/<int:key_id>/", apis.RuntimeKeyDetailApi.as_view(), name="api-runtime-key"),
    path("model-endpoints/", apis.ModelEndpointListApi.as_view(), name="api-runtime-model-endpoints"),
    path(
        "model-endpoints/<slug:name>/",
        apis.ModelEndpointDetailApi.as_view(),
        name="api-runtime-model-endpoint",
    ),
    path("decisions/", apis.DecisionListApi.as_view(), name="api-runtime-decisions"),
    path("decisions/<int:decision_id>/", apis.DecisionDetailApi.as_view(), name="api-runtime-decision"),
    path("metrics/governance/", apis.GovernanceCoverageApi.as_view(), name="api-runtime-governance"),
]
