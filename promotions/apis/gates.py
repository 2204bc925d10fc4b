"""Gate runs API (DESIGN §6, §9): start a version's gates and read their reports."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bundles.selectors import access_version
from core.api import ApiPagination, paginated
from promotions.models import GateStatus
from promotions.selectors import access_gate_run, gate_runs_of
from promotions.services.gates import gate_run_start
from tenancy.roles import Capability


class GateRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bundle = serializers.CharField(source="version.bundle.name")
    version = serializers.CharField(source="version.version")
    digest = serializers.CharField()
    status = serializers.ChoiceField(choices=GateStatus.choices)
    pass_rate = serializers.FloatField(allow_null=True)
    policy_coverage = serializers.FloatField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(
        allow_null=True, help_text="Last sign of life of the worker running it (or when it was queued)."
    )


class GateRunDetailSerializer(GateRunSerializer):
    report = serializers.JSONField(allow_null=True, help_text="Per-suite and per-case results.")


class VersionGateRunsApi(APIView):
    """Start a version's gates (202: queued or running; 200: its digest already passed), or list its runs."""

    required_capabilities = {"GET": Capability.VIEW, "POST": Capability.RUN_GATES}
    pagination_class = ApiPagination

    @extend_schema(responses=GateRunSerializer(many=True))
    def get(self, request, name: str, version: str):
        found = access_version(request.user, name, version)
        return paginated(
            self, request, gate_runs_of(found).select_related("version__bundle"), GateRunSerializer
        )

    @extend_schema(request=None, responses={202: GateRunDetailSerializer, 200: GateRunDetailSerializer})
    def post(self, request, name: str, version: str):
        found = access_version(request.user, name, version)
        run = gate_run_start(actor=request.user, version=found)
        run = access_gate_run(request.user, run.pk)
        finished = run.status in (GateStatus.PASSED, GateStatus.FAILED, GateStatus.ERROR)
        return Response(
            GateRunDetailSerializer(run).data,
            status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED,
        )


class GateRunDetailApi(APIView):
    """One gate run with its report (per suite and per case)."""

    required_capabilities = {"GET": Capability.VIEW}

    @extend_schema(responses=GateRunDetailSerializer)
    def get(self, request, gate_run_id: int):
        return Response(GateRunDetailSerializer(access_gate_run(request.user, gate_run_id)).data)
