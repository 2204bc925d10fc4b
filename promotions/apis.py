"""Promotions API (DESIGN §6, §9): environments, gates, promotions, deployments, rollback, webhooks."""

from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bundles.selectors import access_bundle, access_version
from core.api import (
    ApiPagination,
    NonBlankCharField,
    errors_on_field,
    invalid_query,
    paginated,
    parse_query_time,
    username_of,
)
from promotions.exceptions import USER_NOT_FOUND, UserNotFound
from promotions.models import GateStatus, PromotionStatus
from promotions.selectors import (
    access_environment,
    access_gate_run,
    access_promotion,
    access_webhook,
    active_member,
    approval_count,
    approval_eligibility,
    approvals_of,
    deployment_history,
    environment_approvers,
    environment_history,
    environments,
    gate_runs_of,
    gates_summary,
    live_versions,
    promotion_requests,
    webhook_deliveries,
    webhooks,
)
from promotions.services.deployments import deployment_rollback
from promotions.services.environments import environment_approval_grant, environment_update
from promotions.services.gates import gate_run_start
from promotions.services.promotion_requests import (
    promotion_approve,
    promotion_cancel,
    promotion_reject,
    promotion_request_create,
)
from promotions.services.webhooks import EVENT_NAMES, webhook_create, webhook_delete
from tenancy.roles import Capability

INVALID_STATUS = "status must be one of {choices}; got {value!r}."


def parse_as_of(value: str | None) -> datetime | None:
    """Return the time `as_of` names (naive times are UTC; a date means its end), or raise InvalidQuery."""
    return parse_query_time("as_of", value, date_means_end=True)


# Serializers shared by several views ----------------------------------------------------------------------


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


class GateRunDetailSerializer(GateRunSerializer):
    report = serializers.JSONField(allow_null=True, help_text="Per-suite and per-case results.")


class ApprovalSerializer(serializers.Serializer):
    reviewer = serializers.CharField(source="reviewer.username")
    decision = serializers.CharField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class EligibilitySerializer(serializers.Serializer):
    may_decide = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why not (the refusal code), empty when the caller may decide.")


class PromotionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bundle = serializers.CharField()
    version = serializers.CharField()
    digest = serializers.CharField()
    environment = serializers.CharField()
    status = serializers.ChoiceField(choices=PromotionStatus.choices)
    status_reason = serializers.CharField()
    justification = serializers.CharField()
    requested_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    approvals = serializers.IntegerField()
    required_approvals = serializers.IntegerField()
    requires_gates = serializers.BooleanField()
    gates = serializers.JSONField(allow_null=True)
    decisions = ApprovalSerializer(many=True)
    deployment = serializers.IntegerField(allow_null=True)
    caller = EligibilitySerializer()


def promotion_data(request, user) -> dict:
    """Return the API form of promotion request `request`, with what `user` may do about it."""
    deployment = request.deployments.order_by("id").first()
    may_decide, reason = approval_eligibility(user, request)
    return PromotionSerializer(
        {
            "id": request.pk,
            "bundle": request.version.bundle.name,
            "version": request.version.version,
            "digest": request.version.digest,
            "environment": request.environment.name,
            "status": request.status,
            "status_reason": request.status_reason,
            "justification": request.justification,
            "requested_by": username_of(request.requested_by),
            "created_at": request.created_at,
            "decided_at": request.decided_at,
            "approvals": approval_count(request),
            "required_approvals": request.environment.required_approvals,
            "requires_gates": request.environment.requires_gates,
            "gates": gates_summary(request.version),
            "decisions": list(approvals_of(request)),
            "deployment": deployment.pk if deployment else None,
            "caller": {"may_decide": may_decide, "reason": reason},
        }
    ).data


class PromotionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bundle = serializers.CharField(source="version.bundle.name")
    version = serializers.CharField(source="version.version")
    environment = serializers.CharField(source="environment.name")
    status = serializers.ChoiceField(choices=PromotionStatus.choices)
    status_reason = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by.username")
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


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


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField(), help_text="Empty: every event.")
    active = serializers.BooleanField()
    description = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class ActionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class RejectInputSerializer(serializers.Serializer):
    comment = NonBlankCharField(help_text="Why; a rejection needs a comment.")


# Environments ---------------------------------------------------------------------------------------------


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


# Gate runs ------------------------------------------------------------------------------------------------


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


# Promotion requests ---------------------------------------------------------------------------------------


class PromotionListApi(APIView):
    """List promotion requests (newest first) or request a promotion."""

    required_capabilities = {"GET": Capability.VIEW, "POST": Capability.REQUEST_PROMOTION}
    pagination_class = ApiPagination
    error_statuses = {"GET": (404,), "POST": (404, 409)}

    class InputSerializer(serializers.Serializer):
        bundle = serializers.CharField()
        version = serializers.CharField()
        environment = serializers.CharField()
        justification = NonBlankCharField(help_text="Why this version should go live.")

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=PromotionStatus.values),
            OpenApiParameter("environment", OpenApiTypes.STR),
            OpenApiParameter("bundle", OpenApiTypes.STR),
        ],
        responses=PromotionSummarySerializer(many=True),
    )
    def get(self, request):
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in PromotionStatus.values:
            choices = ", ".join(PromotionStatus.values)
            raise invalid_query("status", INVALID_STATUS.format(choices=choices, value=wanted))
        environment = request.query_params.get("environment") or None
        if environment is not None:
            access_environment(request.user, environment)
        rows = promotion_requests(
            status=wanted, environment=environment, bundle=request.query_params.get("bundle") or None
        )
        return paginated(self, request, rows, PromotionSummarySerializer)

    @extend_schema(request=InputSerializer, responses={201: PromotionSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = access_version(request.user, data["bundle"], data["version"])
        environment = access_environment(request.user, data["environment"])
        with errors_on_field(justification_required="justification"):
            created = promotion_request_create(
                actor=request.user,
                version=version,
                environment=environment,
                justification=data["justification"],
            )
        fresh = access_promotion(request.user, created.pk)
        return Response(promotion_data(fresh, request.user), status=status.HTTP_201_CREATED)


class PromotionDetailApi(APIView):
    """One promotion request: state, approvals, gates, the deployment it made, what the caller may do."""

    required_capabilities = {"GET": Capability.VIEW}

    @extend_schema(responses=PromotionSerializer)
    def get(self, request, promotion_id: int):
        return Response(promotion_data(access_promotion(request.user, promotion_id), request.user))


class PromotionDecisionApi(APIView):
    """Base of the decisions on a request: validate the comment, call the service, answer the new state."""

    decide = None  # the service, set by each subclass
    InputSerializer = ActionInputSerializer
    error_statuses = {"POST": (409,)}

    @extend_schema(request=ActionInputSerializer, responses=PromotionSerializer)
    def post(self, request, promotion_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        found = access_promotion(request.user, promotion_id)
        with errors_on_field(comment_required="comment"):
            type(self).decide(actor=request.user, request=found, comment=serializer.validated_data["comment"])
        return Response(promotion_data(access_promotion(request.user, promotion_id), request.user))


class PromotionApproveApi(PromotionDecisionApi):
    """Approve a request (holders of approve_promotion on its environment; never the requester)."""

    required_capabilities = {"POST": Capability.APPROVE_PROMOTION}
    decide = promotion_approve


class PromotionRejectApi(PromotionDecisionApi):
    """Reject a request with a comment; one rejection ends it."""

    required_capabilities = {"POST": Capability.APPROVE_PROMOTION}
    decide = promotion_reject
    InputSerializer = RejectInputSerializer

    @extend_schema(request=RejectInputSerializer, responses=PromotionSerializer)
    def post(self, request, promotion_id: int):
        return super().post(request, promotion_id)


class PromotionCancelApi(PromotionDecisionApi):
    """Cancel a pending request (its requester only)."""

    required_capabilities = {"POST": Capability.VIEW}
    decide = promotion_cancel


# Deployments and rollback ---------------------------------------------------------------------------------


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
        justification = NonBlankCharField(help_text="Why roll back.")

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


# Webhooks -------------------------------------------------------------------------------------------------


class WebhookListApi(APIView):
    """List webhooks or create one (admins); the signing secret is returned once, at creation."""

    required_capabilities = {"GET": Capability.MANAGE_WEBHOOKS, "POST": Capability.MANAGE_WEBHOOKS}
    pagination_class = ApiPagination

    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=500)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=EVENT_NAMES), required=False, default=list
        )
        description = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
        active = serializers.BooleanField(required=False, default=True)

    class CreatedSerializer(WebhookSerializer):
        secret = serializers.CharField(help_text="Shown only now: keep it to verify X-Contractor-Signature.")

    @extend_schema(responses=WebhookSerializer(many=True))
    def get(self, request):
        return paginated(self, request, webhooks().select_related("created_by"), WebhookSerializer)

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with errors_on_field(invalid_webhook="url"):  # events are checked by the serializer above
            webhook, secret = webhook_create(actor=request.user, **serializer.validated_data)
        return Response({**WebhookSerializer(webhook).data, "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    """Read or delete one webhook (admins); deleting keeps its delivery records."""

    required_capabilities = {"GET": Capability.MANAGE_WEBHOOKS, "DELETE": Capability.MANAGE_WEBHOOKS}

    @extend_schema(responses=WebhookSerializer)
    def get(self, request, webhook_id: int):
        return Response(WebhookSerializer(access_webhook(request.user, webhook_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, webhook_id: int):
        webhook_delete(actor=request.user, webhook=access_webhook(request.user, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(APIView):
    """Every delivery attempt of one webhook, newest first."""

    required_capabilities = {"GET": Capability.MANAGE_WEBHOOKS}
    pagination_class = ApiPagination

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        event_id = serializers.IntegerField()
        event = serializers.CharField(source="event.event")
        attempt = serializers.IntegerField()
        succeeded = serializers.BooleanField()
        status_code = serializers.IntegerField(allow_null=True)
        error = serializers.CharField()
        duration_ms = serializers.IntegerField()
        created_at = serializers.DateTimeField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, webhook_id: int):
        webhook = access_webhook(request.user, webhook_id)
        return paginated(self, request, webhook_deliveries(webhook), self.OutputSerializer)
