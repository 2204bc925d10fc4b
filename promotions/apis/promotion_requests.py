"""Promotion requests API (DESIGN §6, §9): request, read, approve, reject, cancel."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bundles.selectors import access_version
from core.api import ApiPagination, NonBlankCharField, errors_on_field, invalid_query, paginated, username_of
from core.text import MAX_REASON_LENGTH
from promotions.models import PromotionStatus
from promotions.selectors import (
    access_environment,
    access_promotion,
    approval_count,
    approval_eligibility,
    approvals_of,
    gates_summary,
    promotion_requests,
)
from promotions.services.promotion_requests import (
    promotion_approve,
    promotion_cancel,
    promotion_reject,
    promotion_request_create,
)
from tenancy.roles import Capability

INVALID_STATUS = "status must be one of {choices}; got {value!r}."


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


class ActionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_REASON_LENGTH
    )


class RejectInputSerializer(serializers.Serializer):
    comment = NonBlankCharField(help_text="Why; a rejection needs a comment.", max_length=MAX_REASON_LENGTH)


class PromotionListApi(APIView):
    """List promotion requests (newest first) or request a promotion."""

    required_capabilities = {"GET": Capability.VIEW, "POST": Capability.REQUEST_PROMOTION}
    pagination_class = ApiPagination
    error_statuses = {"GET": (404,), "POST": (404, 409)}

    class InputSerializer(serializers.Serializer):
        bundle = serializers.CharField()
        version = serializers.CharField()
        environment = serializers.CharField()
        justification = NonBlankCharField(
            help_text="Why this version should go live.", max_length=MAX_REASON_LENGTH
        )

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
