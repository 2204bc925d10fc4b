"""API routes of the audit log, mounted under /api/v1/ of the tenant host."""

from django.urls import path

from audit import apis

urlpatterns = [
    path("audit/records/", apis.RecordListApi.as_view(), name="api-audit-records"),
    path("audit/records/<int:record_id>/", apis.RecordDetailApi.as_view(), name="api-audit-record"),
    path("audit/verify/", apis.VerifyApi.as_view(), name="api-audit-verify"),
    path("audit/history/", apis.HistoryApi.as_view(), name="api-audit-history"),
]
