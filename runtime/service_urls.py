"""URLs of the runtime process (every host): execution, decisions, probes and metrics, nothing else.

The control plane's console, admin and API are not mounted here; any other path answers a JSON 404.
"""

from django.urls import path, re_path

from runtime import door

urlpatterns = [
    path("v1/execute/<str:bundle>/<str:pipeline>", door.execute, name="runtime-execute"),
    path("v1/decisions/<int:decision_id>", door.decision, name="runtime-decision-read"),
    path("v1/decisions/<int:decision_id>/verify", door.verify, name="runtime-decision-verify"),
    path("healthz", door.healthz, name="runtime-healthz"),
    path("readyz", door.readyz, name="runtime-readyz"),
    path("metrics", door.metrics_view, name="runtime-metrics"),
    re_path(r"", door.route_not_found, name="runtime-route-not-found"),
]

handler400 = door.handler_bad_request
handler404 = door.handler_not_found
handler500 = door.handler_server_error
