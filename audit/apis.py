"""Audit API: browse records, verify their hashes, read change history.

Access is declared by capability name (the tenant-membership permission of the API enforces it), so this
module imports no other app.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import history
from audit.exceptions import INVALID_TIME, UNKNOWN_HISTORY_MODEL, InvalidTimeFilter, UnknownHistoryModel
from audit.models import Record
from audit.selectors import record_is_intact, records
from audit.verification import latest_run, run_report, verification_run_request
from core.api import ApiPagination, InvalidQuery, invalid_query, paginated, parse_query_time
from core.errors import NotFound

VIEW_AUDIT = "view_audit"
INVALID_OBJECT_ID = "object_id must be an id of a {model} ({reason}); got {value!r}."


class RecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = Record
        fields = [
            "id",
            "created_at",
            "actor_kind",
            "actor_id",
            "actor_name",
            "action",
            "target_type",
            "target_id",
            "data",
            "record_hash",
        ]


def parse_time_filter(request, name: str):
    """Return the ISO-8601 time in query parameter `name` (naive: UTC), or None; raise if malformed."""
    value = request.query_params.get(name)
    try:
        return parse_query_time(name, value)
    except InvalidQuery:
        message = INVALID_TIME.format(name=name, value=value)
        raise invalid_query(name, message, error_class=InvalidTimeFilter) from None


def checked_object_id(label: str, value: str | None) -> str | None:
    """Return `value` if it can be the primary key of tracked model `label`; raise InvalidQuery naming it."""
    if not value:
        return None
    model = history.tracked_models()[label]
    try:
        model._meta.pk.to_python(value)
    except DjangoValidationError as error:
        reason = " ".join(str(message) for message in error.messages)
        message = INVALID_OBJECT_ID.format(model=label, reason=reason, value=value)
        raise invalid_query("object_id", message) from None
    return value


class RecordListApi(APIView):
    """The tenant's audit records, newest first."""

    required_capabilities = {"GET": VIEW_AUDIT}
    pagination_class = ApiPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("action", str),
            OpenApiParameter("actor", str),
            OpenApiParameter("target_type", str),
            OpenApiParameter("target_id", str),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="ISO 8601 (naive: UTC; a date: its start)"
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATETIME, description="ISO 8601 (naive: UTC; a date: its start)"
            ),
        ],
        responses=RecordSerializer(many=True),
    )
    def get(self, request):
        queryset = records(
            action=request.query_params.get("action"),
            target_type=request.query_params.get("target_type"),
            target_id=request.query_params.get("target_id"),
            actor_name=request.query_params.get("actor"),
            since=parse_time_filter(request, "since"),
            until=parse_time_filter(request, "until"),
        )
        return paginated(self, request, queryset, RecordSerializer)


class RecordDetailApi(APIView):
    """One audit record and whether its hash verifies."""

    required_capabilities = {"GET": VIEW_AUDIT}

    class OutputSerializer(RecordSerializer):
        intact = serializers.BooleanField()

        class Meta(RecordSerializer.Meta):
            fields = [*RecordSerializer.Meta.fields, "intact"]

    @extend_schema(responses=OutputSerializer)
    def get(self, request, record_id: int):
        entry = Record.objects.filter(pk=record_id).first()
        if entry is None:
            raise NotFound(f"No audit record {record_id}.")
        entry.intact = record_is_intact(entry)
        return Response(self.OutputSerializer(entry).data)


class VerificationReportSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["never_run", "queued", "running", "finished"])
    intact = serializers.BooleanField(allow_null=True, help_text="Null until the run has finished.")
    checked = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Records to check (estimated past 100,000).")
    first_bad_record = serializers.IntegerField(allow_null=True)
    bad_records = serializers.IntegerField()
    findings = serializers.ListField(child=serializers.DictField(), help_text="The first 100 bad records.")
    records_per_second = serializers.IntegerField(allow_null=True)
    requested_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class VerifyApi(APIView):
    """Full verification of the log: GET the latest run's report; POST to start a run (202).

    A run checks every record written before it was requested, on a worker, and reports its progress; a
    request never re-hashes the log itself. POST while a run is queued or running returns that run (200).
    """

    required_capabilities = {"GET": VIEW_AUDIT, "POST": VIEW_AUDIT}

    @extend_schema(responses=VerificationReportSerializer)
    def get(self, request):
        return Response(run_report(latest_run()))

    @extend_schema(
        request=None, responses={200: VerificationReportSerializer, 202: VerificationReportSerializer}
    )
    def post(self, request):
        run, created = verification_run_request(actor=request.user)
        return Response(run_report(run), status=202 if created else 200)


class HistoryApi(APIView):
    """Change history of one tracked model (`model=bundles.bundle`), newest first."""

    required_capabilities = {"GET": VIEW_AUDIT}

    class OutputSerializer(serializers.Serializer):
        model = serializers.CharField(source="model_label")
        object_id = serializers.CharField()
        object = serializers.CharField(source="object_repr")
        history_id = serializers.IntegerField()
        type = serializers.CharField(source="history_type")
        date = serializers.DateTimeField(source="history_date")
        user = serializers.CharField()
        changes = serializers.SerializerMethodField()

        def get_changes(self, change) -> list[dict]:
            return [{"field": field, "old": str(old), "new": str(new)} for field, old, new in change.changes]

    @extend_schema(
        parameters=[
            OpenApiParameter("model", str, required=True, enum=sorted(history.tracked_models())),
            OpenApiParameter(
                "object_id", OpenApiTypes.INT, description="The primary key (an id) of one object of `model`."
            ),
        ],
        responses=OutputSerializer(many=True),
    )
    def get(self, request):
        label = request.query_params.get("model", "")
        if label not in history.tracked_models():
            message = UNKNOWN_HISTORY_MODEL.format(model=label, models=", ".join(history.tracked_models()))
            raise invalid_query("model", message, error_class=UnknownHistoryModel)
        object_id = checked_object_id(label, request.query_params.get("object_id"))
        changes = history.recent_changes(label, object_id=object_id)
        return Response(self.OutputSerializer(changes, many=True).data)
