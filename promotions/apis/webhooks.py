"""Webhooks API: create, read and delete webhooks; their delivery attempts."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiPagination, errors_on_field, paginated
from governance.apis import ChangeSerializer, accepted
from governance.models import GovernanceChangeRequest
from promotions.selectors import access_webhook, webhook_deliveries, webhooks
from promotions.services.webhooks import EVENT_NAMES, webhook_create, webhook_delete
from tenancy.roles import Capability


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField(), help_text="Empty: every event.")
    active = serializers.BooleanField()
    description = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


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

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer, 202: ChangeSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with errors_on_field(invalid_webhook="url"):  # events are checked by the serializer above
            webhook, secret = webhook_create(actor=request.user, **serializer.validated_data)
        if isinstance(webhook, GovernanceChangeRequest):
            return accepted(webhook, secret=secret)  # shown once; deliveries start once the change applies
        return Response({**WebhookSerializer(webhook).data, "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    """Read or delete one webhook (admins); deleting keeps its delivery records."""

    required_capabilities = {"GET": Capability.MANAGE_WEBHOOKS, "DELETE": Capability.MANAGE_WEBHOOKS}

    @extend_schema(responses=WebhookSerializer)
    def get(self, request, webhook_id: int):
        return Response(WebhookSerializer(access_webhook(request.user, webhook_id)).data)

    @extend_schema(responses={204: None, 202: ChangeSerializer})
    def delete(self, request, webhook_id: int):
        change = webhook_delete(actor=request.user, webhook=access_webhook(request.user, webhook_id))
        if change is not None:
            return accepted(change)
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
