"""Control-plane API of the runtime (DESIGN §9): runtime keys, model endpoints, decisions, coverage."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiPagination, errors_on_field, paginated, parse_query_time
from governance.apis import ChangeSerializer, accepted
from governance.models import GovernanceChangeRequest
from runtime.exceptions import InvalidModelEndpoint
from runtime.selectors import (
    MAX_COVERAGE_DAYS,
    DecisionFilters,
    access_decision,
    access_model_endpoint,
    access_runtime_key,
    checked_days,
    decisions,
    governance_coverage,
    model_endpoints,
    runtime_keys,
)
from runtime.services import (
    model_endpoint_create,
    model_endpoint_delete,
    model_endpoint_update,
    runtime_key_create,
    runtime_key_revoke,
)
from tenancy.roles import Capability


class RuntimeKeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="Public part of the key: ck_<prefix>_...")
    environment = serializers.CharField(source="environment.name")
    bundles = serializers.ListField(child=serializers.CharField(), help_text="Empty: every bundle.")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", allow_null=True, default=None)


class RuntimeKeyListApi(APIView):
    """List the tenant's runtime keys, or create one (operators); the secret is returned once, at creation.

    A new key opens execution, so it is a governance change: 202 with the pending change and the key, which
    works once an admin other than the requester approves (201 while the tenant has a single admin).
    """

    required_capabilities = {"GET": Capability.VIEW, "POST": Capability.MANAGE_RUNTIME_KEYS}
    pagination_class = ApiPagination
    error_statuses = {"POST": (404,)}  # an unknown environment

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        environment = serializers.SlugField(required=False, default=None, allow_null=True)
        bundles = serializers.ListField(
            child=serializers.SlugField(max_length=63), required=False, default=list
        )

    class CreatedSerializer(RuntimeKeySerializer):
        key = serializers.CharField(help_text="The full key, shown only now: ck_<prefix>_<secret>.")

    @extend_schema(responses=RuntimeKeySerializer(many=True))
    def get(self, request):
        return paginated(self, request, runtime_keys(), RuntimeKeySerializer)

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer, 202: ChangeSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with errors_on_field(unknown_scope_bundles="bundles"):
            created = runtime_key_create(actor=request.user, **serializer.validated_data)
        if created.change is not None:
            return accepted(created.change, key=created.secret)  # shown once; works once the change applies
        body = {**RuntimeKeySerializer(created.key).data, "key": created.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class RuntimeKeyDetailApi(APIView):
    """Read one runtime key, or revoke it (operators): the runtime refuses it within a second."""

    required_capabilities = {"GET": Capability.VIEW, "DELETE": Capability.MANAGE_RUNTIME_KEYS}
    error_statuses = {"DELETE": (409,)}  # already revoked

    @extend_schema(responses=RuntimeKeySerializer)
    def get(self, request, key_id: int):
        return Response(RuntimeKeySerializer(access_runtime_key(request.user, key_id)).data)

    @extend_schema(responses={200: RuntimeKeySerializer})
    def delete(self, request, key_id: int):
        key = runtime_key_revoke(actor=request.user, key=access_runtime_key(request.user, key_id))
        return Response(RuntimeKeySerializer(access_runtime_key(request.user, key.pk)).data)


class ModelEndpointSerializer(serializers.Serializer):
    name = serializers.CharField()
    base_url = serializers.CharField()
    allowed_models = serializers.ListField(child=serializers.CharField())
    api_key_env = serializers.CharField(
        help_text="Name of the runtime's environment variable holding the key."
    )
    timeout_seconds = serializers.FloatField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ModelEndpointInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    base_url = serializers.CharField(max_length=500)
    allowed_models = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=True)
    api_key_env = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    timeout_seconds = serializers.FloatField(required=False, help_text="Seconds; at most MODEL_TIMEOUT_CAP.")


class ModelEndpointListApi(APIView):
    """List the tenant's model endpoints, or create one (operators; a governance change: 202 until another
    admin approves, unless the tenant has a single admin)."""

    required_capabilities = {"GET": Capability.VIEW, "POST": Capability.MANAGE_MODEL_ENDPOINTS}
    pagination_class = ApiPagination
    error_statuses = {"POST": (409,)}  # the name is taken

    InputSerializer = ModelEndpointInputSerializer

    @extend_schema(responses=ModelEndpointSerializer(many=True))
    def get(self, request):
        return paginated(self, request, model_endpoints(), ModelEndpointSerializer)

    @extend_schema(request=InputSerializer, responses={201: ModelEndpointSerializer, 202: ChangeSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = model_endpoint_create(actor=request.user, **serializer.validated_data)
        if isinstance(endpoint, GovernanceChangeRequest):
            return accepted(endpoint)
        return Response(ModelEndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class ModelEndpointDetailApi(APIView):
    """Read, change (any field but the name) or delete one model endpoint (operators).

    Another URL or API-key variable, or more allowed models, is a governance change (202); a shorter model
    list or another timeout applies at once.
    """

    required_capabilities = {
        "GET": Capability.VIEW,
        "PATCH": Capability.MANAGE_MODEL_ENDPOINTS,
        "DELETE": Capability.MANAGE_MODEL_ENDPOINTS,
    }

    class InputSerializer(serializers.Serializer):
        base_url = serializers.CharField(max_length=500, required=False)
        allowed_models = serializers.ListField(
            child=serializers.CharField(max_length=200), allow_empty=True, required=False
        )
        api_key_env = serializers.CharField(max_length=100, required=False, allow_blank=True)
        timeout_seconds = serializers.FloatField(required=False)

    @extend_schema(responses=ModelEndpointSerializer)
    def get(self, request, name: str):
        return Response(ModelEndpointSerializer(access_model_endpoint(request.user, name)).data)

    @extend_schema(request=InputSerializer, responses={200: ModelEndpointSerializer, 202: ChangeSerializer})
    def patch(self, request, name: str):
        endpoint = access_model_endpoint(request.user, name)
        sent = request.data if isinstance(request.data, dict) else {}  # the serializer refuses a non-object
        unknown = sorted(set(sent) - set(self.InputSerializer().fields))
        if unknown:
            raise InvalidModelEndpoint(
                details=[
                    {"field": field, "code": "unknown_field", "message": "cannot be changed"}
                    for field in unknown
                ]
            )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = model_endpoint_update(
            actor=request.user, endpoint=endpoint, changes=serializer.validated_data
        )
        if isinstance(endpoint, GovernanceChangeRequest):
            return accepted(endpoint)
        return Response(ModelEndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, name: str):
        model_endpoint_delete(actor=request.user, endpoint=access_model_endpoint(request.user, name))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    key_id = serializers.CharField(source="actor_id")
    key_name = serializers.CharField(source="actor_name")
    record_hash = serializers.CharField()
    data = serializers.JSONField()


class DecisionListApi(APIView):
    """Browse the tenant's runtime decisions, newest first."""

    required_capabilities = {"GET": Capability.VIEW}
    pagination_class = ApiPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("bundle", OpenApiTypes.STR),
            OpenApiParameter("version", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR),
            OpenApiParameter("policy", OpenApiTypes.STR, description="A policy that fired."),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="ISO 8601 (naive: UTC; a date: its start)"
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATETIME, description="ISO 8601 (naive: UTC; a date: its start)"
            ),
        ],
        responses=DecisionSerializer(many=True),
    )
    def get(self, request):
        params = request.query_params
        filters = DecisionFilters(
            bundle=params.get("bundle", ""),
            version=params.get("version", ""),
            status=params.get("status", ""),
            policy=params.get("policy", ""),
            since=parse_query_time("since", params.get("since")),
            until=parse_query_time("until", params.get("until")),
        )
        return paginated(self, request, decisions(filters), DecisionSerializer)


class DecisionDetailApi(APIView):
    """One runtime decision record."""

    required_capabilities = {"GET": Capability.VIEW}

    @extend_schema(responses=DecisionSerializer)
    def get(self, request, decision_id: int):
        return Response(DecisionSerializer(access_decision(request.user, decision_id)).data)


class CoverageSerializer(serializers.Serializer):
    bundle = serializers.CharField(allow_null=True, help_text="null: every bundle.")
    executions = serializers.IntegerField()
    through_current = serializers.IntegerField()
    with_passed_gates = serializers.IntegerField()
    with_verifying_record = serializers.IntegerField()
    ratio = serializers.FloatField(allow_null=True, help_text="with_verifying_record / executions.")


class GovernanceCoverageApi(APIView):
    """Governance coverage over the last `days` (default 7): overall and per bundle (DESIGN §1)."""

    required_capabilities = {"GET": Capability.VIEW}

    class OutputSerializer(serializers.Serializer):
        days = serializers.IntegerField()
        since = serializers.DateTimeField()
        overall = CoverageSerializer()
        bundles = CoverageSerializer(many=True)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "days",
                {"type": "integer", "minimum": 1, "maximum": MAX_COVERAGE_DAYS},
                description="The window in days (default 7).",
            )
        ],
        responses=OutputSerializer,
    )
    def get(self, request):
        with errors_on_field(invalid_days="days"):
            days = checked_days(request.query_params.get("days"))
        return Response(governance_coverage(days))
