"""Environments API (DESIGN §6, §9): rules, their history, approvers and live versions."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiPagination, errors_on_field, paginated, username_of
from governance.apis import ChangeSerializer, accepted
from governance.models import GovernanceChangeRequest
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
    forbid_author_approval = serializers.BooleanField()
    required_groups = serializers.ListField(child=serializers.CharField())
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
            "forbid_author_approval": environment.forbid_author_approval,
            "required_groups": environment.required_groups,
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
    """Read one environment; admins change its rules (history kept, audited `environment.changed`).

    A change that tightens the rules (or only the description) applies at once: 200. One that loosens any
    rule (fewer approvals, no gates, no prerequisite, no separation of duties, fewer required groups)
    answers 202 with the pending governance change; another admin must approve it.
    """

    required_capabilities = {"GET": Capability.VIEW, "PATCH": Capability.MANAGE_ENVIRONMENTS}

    class InputSerializer(serializers.Serializer):
        description = serializers.CharField(required=False, allow_blank=True)
        requires_gates = serializers.BooleanField(required=False)
        required_approvals = serializers.IntegerField(required=False, min_value=0, max_value=20)
        requires_live_in = serializers.CharField(
            required=False, allow_null=True, allow_blank=True, help_text="Environment name; null drops it."
        )
        forbid_author_approval = serializers.BooleanField(required=False)
        required_groups = serializers.ListField(
            child=serializers.CharField(max_length=64), required=False, max_length=20
        )

    @extend_schema(responses=EnvironmentSerializer)
    def get(self, request, name: str):
        return Response(environment_data(access_environment(request.user, name)))

    @extend_schema(request=InputSerializer, responses={200: EnvironmentSerializer, 202: ChangeSerializer})
    def patch(self, request, name: str):
        environment = access_environment(request.user, name)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        with errors_on_field(invalid_environment_rule="requires_live_in"):
            result = environment_update(
                actor=request.user,
                environment=environment,
                requires_gates=changes.get("requires_gates"),
                required_approvals=changes.get("required_approvals"),
                requires_live_in=changes.get("requires_live_in", ...),
                description=changes.get("description"),
                forbid_author_approval=changes.get("forbid_author_approval"),
                required_groups=changes.get("required_groups"),
            )
        if isinstance(result, GovernanceChangeRequest):
            return accepted(result)
        environment = result
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
    """Grant (PUT) or revoke (DELETE) a member's approve_promotion on an environment (admins; audited).

    A revocation applies at once (200); a grant answers 202 with the pending governance change, which an
    admin other than the requester and the grantee must approve (200 while the tenant has a single admin).
    """

    required_capabilities = {"PUT": Capability.MANAGE_ENVIRONMENTS, "DELETE": Capability.MANAGE_ENVIRONMENTS}

    def change(self, request, name: str, username: str, granted: bool) -> Response:
        environment = access_environment(request.user, name)
        user = active_member(username)
        if user is None:
            raise UserNotFound(USER_NOT_FOUND.format(username=username))
        change = environment_approval_grant(
            actor=request.user, environment=environment, user=user, granted=granted
        )
        if change is not None:
            return accepted(change)
        return Response(environment_data(access_environment(request.user, name)))

    @extend_schema(request=None, responses={200: EnvironmentSerializer, 202: ChangeSerializer})
    def put(self, request, name: str, username: str):
        return self.change(request, name, username, granted=True)

    @extend_schema(request=None, responses={200: EnvironmentSerializer})
    def delete(self, request, name: str, username: str):
        return self.change(request, name, username, granted=False)
