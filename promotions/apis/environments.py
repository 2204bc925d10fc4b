"""Environments API (DESIGN §6, §9): rules, their history, approvers and live versions."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiPagination, errors_on_field, paginated, username_of
from promotions.exceptions import USER_NOT_FOUND, UserNotFound
from promotions.selectors import (
    access_environment,
    active_member,
    environment_approvers,
    environment_history,
    environments,
    live_versions,
)
from promotions.services.environments import environment_approval_grant, environment_update
from tenancy.roles import Capability


class LiveSerializer(serializers.Serializer):
    bundle = serializers.CharField(source="bundle.name")
    version = serializers.CharField(source="version.version")
    digest = serializers.CharField(source="version.digest")
    deployment = serializers.IntegerField(source="pk")
    kind = serializers.CharField()
    since = serializers.DateTimeField(source="created_at")


class EnvironmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    position = serializers.IntegerField()
    description = serializers.CharField()
    requires_gates = serializers.BooleanField()
    required_approvals = serializers.IntegerField()
    requires_live_in = serializers.CharField(source="requires_live_in.name", allow_null=True, default=None)
    updated_at = serializers.DateTimeField()
    approvers = serializers.ListField(child=serializers.CharField())
    live = LiveSerializer(many=True)


def environment_data(environment, live_by_environment: dict | None = None) -> dict:
    """Return the API form of `environment`: rules, approvers and live versions."""
    if live_by_environment is None:
        live_by_environment = live_index()
    return EnvironmentSerializer(
        {
            "name": environment.name,
            "position": environment.position,
            "description": environment.description,
            "requires_gates": environment.requires_gates,
            "required_approvals": environment.required_approvals,
            "requires_live_in": environment.requires_live_in,
            "updated_at": environment.updated_at,
            "approvers": [username_of(user) for user in environment_approvers(environment)],
            "live": live_by_environment.get(environment.pk, []),
        }
    ).data


def live_index() -> dict[int, list]:
    """Return the live deployment rows keyed by environment id."""
    index: dict[int, list] = {}
    for _, environment, deployment in live_versions():
        index.setdefault(environment.pk, []).append(deployment)
    return index


class EnvironmentListApi(APIView):
    """The tenant's environments in promotion order, with their rules, approvers and live versions."""

    required_capabilities = {"GET": Capability.VIEW}
    pagination_class = ApiPagination

    @extend_schema(responses=EnvironmentSerializer(many=True))
    def get(self, request):
        index = live_index()
        rows = [environment_data(environment, index) for environment in environments()]
        return paginated(self, request, rows)


class EnvironmentDetailApi(APIView):
    """Read one environment; admins change its rules (history kept, audited `environment.changed`)."""

    required_capabilities = {"GET": Capability.VIEW, "PATCH": Capability.MANAGE_ENVIRONMENTS}

    class InputSerializer(serializers.Serializer):
        description = serializers.CharField(required=False, allow_blank=True)
        requires_gates = serializers.BooleanField(required=False)
        required_approvals = serializers.IntegerField(required=False, min_value=0, max_value=20)
        requires_live_in = serializers.CharField(
            required=False, allow_null=True, allow_blank=True, help_text="Environment name; null drops it."
        )

    @extend_schema(responses=EnvironmentSerializer)
    def get(self, request, name: str):
        return Response(environment_data(access_environment(request.user, name)))

    @extend_schema(request=InputSerializer, responses=EnvironmentSerializer)
    def patch(self, request, name: str):
        environment = access_environment(request.user, name)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        with errors_on_field(invalid_environment_rule="requires_live_in"):
            environment = environment_update(
                actor=request.user,
                environment=environment,
                requires_gates=changes.get("requires_gates"),
                required_approvals=changes.get("required_approvals"),
                requires_live_in=changes.get("requires_live_in", ...),
                description=changes.get("description"),
            )
        return Response(environment_data(access_environment(request.user, environment.name)))


class EnvironmentHistoryApi(APIView):
    """The recorded versions of an environment's rules, newest first."""

    required_capabilities = {"GET": Capability.VIEW}
    pagination_class = ApiPagination

    class OutputSerializer(serializers.Serializer):
        history_id = serializers.IntegerField()
        history_date = serializers.DateTimeField()
        history_type = serializers.CharField()
        history_user_id = serializers.IntegerField(allow_null=True)
        description = serializers.CharField()
        requires_gates = serializers.BooleanField()
        required_approvals = serializers.IntegerField()
        requires_live_in = serializers.IntegerField(source="requires_live_in_id", allow_null=True)

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, name: str):
        environment = access_environment(request.user, name)
        return paginated(self, request, environment_history(environment), self.OutputSerializer)


class EnvironmentApproverApi(APIView):
    """Grant (PUT) or revoke (DELETE) a member's approve_promotion on an environment (admins; audited)."""

    required_capabilities = {"PUT": Capability.MANAGE_ENVIRONMENTS, "DELETE": Capability.MANAGE_ENVIRONMENTS}

    def change(self, request, name: str, username: str, granted: bool) -> Response:
        environment = access_environment(request.user, name)
        user = active_member(username)
        if user is None:
            raise UserNotFound(USER_NOT_FOUND.format(username=username))
        environment_approval_grant(actor=request.user, environment=environment, user=user, granted=granted)
        return Response(environment_data(access_environment(request.user, name)))

    @extend_schema(request=None, responses=EnvironmentSerializer)
    def put(self, request, name: str, username: str):
        return self.change(request, name, username, granted=True)

    @extend_schema(request=None, responses={200: EnvironmentSerializer})
    def delete(self, request, name: str, username: str):
        return self.change(request, name, username, granted=False)
