"""Console pages of the audit log, mounted at the root of the tenant host."""

from django.urls import path

from audit import views

urlpatterns = [
    path("audit/", views.record_list, name="audit-records"),
    path("audit/records/<int:record_id>/", views.record_detail, name="audit-record"),
    path("audit/verify/", views.verify, name="audit-verify"),
    path("audit/history/", views.history_index, name="audit-history"),
    path("audit/history/<str:label>/", views.history_model, name="audit-history-model"),
]
