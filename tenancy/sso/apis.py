"""Single sign-on API: tenant admins read their tenant's configuration (never the client secret)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from tenancy.roles import Capability
from tenancy.selectors import current_tenant
from tenancy.sso.selectors import sso_config_of


class SsoConfigApi(APIView):
    """The tenant's single sign-on configuration (admins). Changes are made by platform operators."""

    required_capabilities = {"GET": Capability.MANAGE_MEMBERSHIPS}

    class OutputSerializer(serializers.Serializer):
        configured = serializers.BooleanField()
        enabled = serializers.BooleanField(required=False)
        issuer = serializers.CharField(required=False)
        client_id = serializers.CharField(required=False)
        client_secret_configured = serializers.BooleanField(
            required=False, help_text="Whether a client secret is named (the secret is never returned)."
        )
        scopes = serializers.ListField(child=serializers.CharField(), required=False)
        username_claim = serializers.CharField(required=False)
        email_claim = serializers.CharField(required=False)
        groups_claim = serializers.CharField(required=False)
        role_mapping = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False
        )
        group_mapping = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False
        )
        sso_only = serializers.BooleanField(required=False)
        auto_provision = serializers.BooleanField(required=False)
        redirect_uri = serializers.CharField(required=False, help_text="Register this at the provider.")
        updated_at = serializers.DateTimeField(required=False)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        config = sso_config_of(current_tenant())
        if config is None:
            return Response({"configured": False})
        fields = ("enabled", "issuer", "client_id", "scopes", "username_claim", "email_claim", "groups_claim")
        fields += ("role_mapping", "group_mapping", "sso_only", "auto_provision", "updated_at")
        body = {"configured": True, **{name: getattr(config, name) for name in fields}}
        body["client_secret_configured"] = bool(config.client_secret_env)
        body["redirect_uri"] = request.build_absolute_uri("/sso/callback/")
        return Response(self.OutputSerializer(body).data)
