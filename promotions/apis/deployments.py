"""Deployments API (DESIGN §6, §9): the release pointer's history, what was live when, rollback."""

from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bundles.selectors import access_bundle
from core.api import ApiPagination, NonBlankCharField, errors_on_field, paginated, parse_query_time
from core.text import MAX_REASON_LENGTH
from promotions.selectors import access_environment, deployment_history
from promotions.services.deployments import deployment_rollback
from tenancy.roles import Capability


def parse_as_of(value: str | None) -> datetime | None:
    """Return the time `as_of` names (naive times are UTC; a date means its end), or raise InvalidQuery."""
    return parse_query_time("as_of", value, date_means_end=True)


class DeploymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bundle = serializers.CharField(source="bundle.name")
    environment = serializers.CharField(source="environment.name")
    version = serializers.CharField(source="version.version")
    digest = serializers.CharField(source="version.digest")
    kind = serializers.CharField()
    request = serializers.IntegerField(source="request_id", allow_null=True)
    actor = serializers.CharField(source="actor.username")
    justification = serializers.CharField()
    created_at = serializers.DateTimeField()
    previous = serializers.IntegerField(source="previous_id", allow_null=True)
    previous_version = serializers.CharField(source="previous.version.version", allow_null=True, default=None)


class DeploymentListApi(APIView):
    """The release pointer history, newest first; with `as_of`, what was live at that time per pair."""

    required_capabilities = {"GET": Capability.VIEW}
    pagination_class = ApiPagination
    error_statuses = {"GET": (404,)}

    @extend_schema(
        parameters=[
            OpenApiParameter("bundle", OpenApiTypes.STR),
            OpenApiParameter("environment", OpenApiTypes.STR),
            OpenApiParameter(
                "as_of",
                OpenApiTypes.DATETIME,
                description="ISO 8601 date-time (naive: UTC) or date (its end); what was live then",
            ),
        ],
        responses=DeploymentSerializer(many=True),
    )
    def get(self, request):
        params = request.query_params
        as_of = parse_as_of(params.get("as_of"))
        bundle = access_bundle(request.user, params["bundle"]) if params.get("bundle") else None
        environment = (
            access_environment(request.user, params["environment"]) if params.get("environment") else None
        )
        rows = deployment_history(bundle=bundle, environment=environment, as_of=as_of)
        return paginated(self, request, rows, DeploymentSerializer)


class RollbackApi(APIView):
    """Point an environment back to a version once live there (default: the one before); operators."""

    required_capabilities = {"POST": Capability.ROLLBACK}
    error_statuses = {"POST": (409,)}

    class InputSerializer(serializers.Serializer):
        to_version = serializers.CharField(
            required=False,
            allow_null=True,
            allow_blank=True,
            default=None,
            help_text="A version once live there; empty or null: the one before the live version.",
        )
        justification = NonBlankCharField(help_text="Why roll back.", max_length=MAX_REASON_LENGTH)

    @extend_schema(request=InputSerializer, responses={201: DeploymentSerializer})
    def post(self, request, environment: str, name: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        found_environment = access_environment(request.user, environment)
        bundle = access_bundle(request.user, name)
        with errors_on_field(justification_required="justification"):
            deployment = deployment_rollback(
                actor=request.user,
                bundle=bundle,
                environment=found_environment,
                to_version=serializer.validated_data["to_version"] or None,
                justification=serializer.validated_data["justification"],
            )
        row = deployment_history().get(pk=deployment.pk)
        return Response(DeploymentSerializer(row).data, status=status.HTTP_201_CREATED)
