"""URLs of the runtime process (every host): execution, decisions, probes and metrics, nothing else.

The control plane's console, admin and API are not mounted here; any other path answers a JSON 404.
"""

from django.urls import path, re_path

from runtime import service_views
from runtime.conf import runtime_setting

urlpatterns = [
    path("v1/execute/<str:bundle>/<str:pipeline>", service_views.execute, name="runtime-execute"),
    path("v1/decisions/<int:decision_id>", service_views.decision, name="runtime-decision-read"),
    path("v1/decisions/<int:decision_id>/verify", service_views.verify, name="runtime-decision-verify"),
    path("healthz", service_views.healthz, name="runtime-healthz"),
    path("readyz", service_views.readyz, name="runtime-readyz"),
    path("metrics", service_views.metrics_view, name="runtime-metrics"),
]

if runtime_setting("RUNTIME_BENCH_BARE_ENDPOINT"):
    urlpatterns.append(
        path("v1/bench/bare/<str:bundle>/<str:pipeline>", service_views.bench_bare, name="runtime-bench-bare")
    )

urlpatterns.append(re_path(r"", service_views.route_not_found, name="runtime-route-not-found"))

handler400 = service_views.handler_bad_request
handler404 = service_views.handler_not_found
handler500 = service_views.handler_server_error
