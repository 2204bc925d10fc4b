"""Tenancy API: tokens, the caller's identity, memberships."""

from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import errors_on_field
from core.errors import DomainError, NotFound
from tenancy.exceptions import NotAMember
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, members_of, membership_of
from tenancy.services import membership_set

INVALID_CREDENTIALS = "Unable to log in with the provided credentials."


class InvalidCredentials(DomainError):
    """Username and password do not match an active user."""

    code = "invalid_credentials"
    status = 401
    default_message = INVALID_CREDENTIALS


class TokenApi(APIView):
    """Exchange a member's username and password for an API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request, **serializer.validated_data)
        if user is None:
            raise InvalidCredentials()
        if membership_of(user, current_tenant()) is None:
            raise NotAMember()
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MeApi(APIView):
    """The caller: user, tenant and roles."""

    class OutputSerializer(serializers.Serializer):
        user = serializers.CharField()
        tenant = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())
        capabilities = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        membership = request.membership
        return Response(
            {
                "user": request.user.get_username(),
                "tenant": membership.tenant.schema_name.replace("_", "-"),
                "roles": sorted(membership.roles),
                "capabilities": sorted(membership.capabilities),
            }
        )


class MembershipSerializer(serializers.Serializer):
    user = serializers.CharField(source="user.username")
    roles = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()


class MembershipListApi(APIView):
    """Members of the tenant."""

    required_capabilities = {"GET": Capability.VIEW}

    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request):
        return Response(MembershipSerializer(members_of(current_tenant()), many=True).data)


class MembershipSetApi(APIView):
    """Set a user's roles in the tenant (admins)."""

    required_capabilities = {"PUT": Capability.MANAGE_MEMBERSHIPS}
    error_statuses = {"PUT": (409,)}  # the tenant's last admin

    class InputSerializer(serializers.Serializer):
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=InputSerializer, responses=MembershipSerializer)
    def put(self, request, username: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise NotFound(f"No active user named {username!r}.")
        with errors_on_field(unknown_role="roles"):
            membership = membership_set(
                actor=request.user,
                tenant=current_tenant(),
                user=user,
                roles=serializer.validated_data["roles"],
            )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_200_OK)
