"""Governance change requests API: list, read, approve, reject, cancel (DESIGN §11)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiPagination, NonBlankCharField, errors_on_field, invalid_query, paginated, username_of
from core.text import MAX_REASON_LENGTH
from governance.models import ChangeStatus, GovernanceChangeRequest
from governance.selectors import access_change, governance_changes
from governance.services import change_approve, change_cancel, change_reject
from tenancy.roles import Capability

INVALID_STATUS = "status must be one of {choices}; got {value!r}."


class ChangeApprovalSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    decision = serializers.CharField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class ChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    target = serializers.JSONField()
    summary = serializers.CharField()
    before = serializers.JSONField()
    proposed = serializers.JSONField()
    status = serializers.ChoiceField(choices=ChangeStatus.choices)
    status_reason = serializers.CharField()
    requested_by = serializers.CharField(allow_null=True)
    beneficiary = serializers.CharField(allow_null=True)
    required_approvals = serializers.IntegerField()
    approvals = ChangeApprovalSerializer(many=True)
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


def change_data(change: GovernanceChangeRequest) -> dict:
    """Return the API form of `change`."""
    return ChangeSerializer(
        {
            "id": change.pk,
            "kind": change.kind,
            "target": change.target,
            "summary": change.summary,
            "before": change.before,
            "proposed": change.proposed,
            "status": change.status,
            "status_reason": change.status_reason,
            "requested_by": username_of(change.requested_by),
            "beneficiary": username_of(change.beneficiary),
            "required_approvals": change.required_approvals,
            "approvals": list(change.approvals.all()),
            "created_at": change.created_at,
            "decided_at": change.decided_at,
        }
    ).data


def accepted(change: GovernanceChangeRequest, **extra) -> Response:
    """Answer 202 with a change request (and `extra` fields): it waits for another admin's approval."""
    fresh = GovernanceChangeRequest.objects.select_related("requested_by", "beneficiary").get(pk=change.pk)
    return Response({"governance_change": change_data(fresh), **extra}, status=status.HTTP_202_ACCEPTED)


class ChangeListApi(APIView):
    """The tenant's governance change requests, newest first (`?status=pending`)."""

    required_capabilities = {"GET": Capability.VIEW}
    pagination_class = ApiPagination

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=ChangeStatus.values)],
        responses=ChangeSerializer(many=True),
    )
    def get(self, request):
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in ChangeStatus.values:
            choices = ", ".join(ChangeStatus.values)
            raise invalid_query("status", INVALID_STATUS.format(choices=choices, value=wanted))
        rows = [change_data(change) for change in governance_changes(status=wanted)]
        return paginated(self, request, rows)


class ChangeDetailApi(APIView):
    """One governance change request with its approvals."""

    required_capabilities = {"GET": Capability.VIEW}

    @extend_schema(responses=ChangeSerializer)
    def get(self, request, change_id: int):
        return Response(change_data(access_change(request.user, change_id)))


class ChangeActionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_REASON_LENGTH
    )


class ChangeRejectInputSerializer(serializers.Serializer):
    comment = NonBlankCharField(help_text="Why; a rejection needs a comment.", max_length=MAX_REASON_LENGTH)


class ChangeDecisionApi(APIView):
    """Base of the decisions on a change request."""

    decide = None  # the service, set by each subclass
    InputSerializer = ChangeActionInputSerializer
    error_statuses = {"POST": (409,)}

    @extend_schema(request=ChangeActionInputSerializer, responses=ChangeSerializer)
    def post(self, request, change_id: int):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        found = access_change(request.user, change_id)
        with errors_on_field(comment_required="comment"):
            type(self).decide(actor=request.user, change=found, comment=serializer.validated_data["comment"])
        return Response(change_data(access_change(request.user, change_id)))


class ChangeApproveApi(ChangeDecisionApi):
    """Approve a change (another admin: never the requester nor the beneficiary; tokens: admin + approve).

    409 `stale_change` when the state it was proposed against changed meanwhile (the request is superseded).
    """

    required_capabilities = {"POST": Capability.APPROVE_GOVERNANCE}
    decide = change_approve


class ChangeRejectApi(ChangeDecisionApi):
    """Reject a change with a comment; one rejection ends it."""

    required_capabilities = {"POST": Capability.APPROVE_GOVERNANCE}
    decide = change_reject
    InputSerializer = ChangeRejectInputSerializer

    @extend_schema(request=ChangeRejectInputSerializer, responses=ChangeSerializer)
    def post(self, request, change_id: int):
        return super().post(request, change_id)


class ChangeCancelApi(ChangeDecisionApi):
    """Cancel a pending change (its requester only)."""

    required_capabilities = {"POST": Capability.VIEW}
    decide = change_cancel
