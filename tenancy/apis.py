"""Tenancy API: tokens, the caller's identity, memberships."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import errors_on_field
from core.errors import DomainError
from governance.apis import ChangeSerializer, accepted
from governance.models import GovernanceChangeRequest
from tenancy.exceptions import MEMBER_NOT_FOUND, MemberNotFound, NotAMember
from tenancy.forms import may_use_password
from tenancy.roles import Capability, Scope
from tenancy.selectors import current_tenant, members_of, membership_of
from tenancy.services import membership_groups_set, membership_set
from tenancy.signin import authenticate_or_lock
from tenancy.sso.exceptions import SsoOnly
from tenancy.tokens import (
    DEFAULT_NAME,
    access_token,
    api_token_create,
    api_token_revoke,
    tokens_visible_to,
)

INVALID_CREDENTIALS = "Unable to log in with the provided credentials."


class InvalidCredentials(DomainError):
    """Username and password do not match an active user."""

    code = "invalid_credentials"
    status = 401
    default_message = INVALID_CREDENTIALS


class TokenRequestSerializer(serializers.Serializer):
    """What a new token may ask for; the service checks the name, the scopes and the lifetime."""

    name = serializers.CharField(required=False, default=DEFAULT_NAME, help_text="Your name for the token.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices),
        required=False,
        allow_empty=False,
        help_text="Default: the scopes your roles use.",
    )
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, help_text="Default 90; at most CONTRACTOR['TOKEN_MAX_DAYS']."
    )


class TokenApi(APIView):
    """Exchange a member's username and password for a new named API token (shown once).

    Wrong passwords count towards the sign-in lockout: 429 with Retry-After while locked.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    error_statuses = {"POST": (403, 429)}

    class InputSerializer(TokenRequestSerializer):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not may_use_password(data["username"], current_tenant()):
            raise SsoOnly()
        user = authenticate_or_lock(request, username=data["username"], password=data["password"])
        if user is None:
            raise InvalidCredentials()
        tenant = current_tenant()
        if membership_of(user, tenant) is None:
            raise NotAMember()
        created = api_token_create(
            actor=user,
            tenant=tenant,
            name=data["name"],
            scopes=data.get("scopes"),
            expires_in_days=data.get("expires_in_days"),
        )
        return Response({"token": created.secret})


class ApiTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    user = serializers.CharField(source="user.username")
    prefix = serializers.CharField(source="display")
    scopes = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_reason = serializers.CharField()


class ApiTokenListApi(APIView):
    """The caller's API tokens (admins: `?all=true`, every member's); create one (shown once)."""

    required_capabilities = {"GET": Capability.VIEW, "POST": Capability.VIEW}
    read_only_tokens_may_write = True  # a token may create tokens within its own scopes

    class CreatedSerializer(ApiTokenSerializer):
        token = serializers.CharField(help_text="The full token: shown only in this answer.")

    @extend_schema(responses=ApiTokenSerializer(many=True))
    def get(self, request):
        every_member = request.query_params.get("all", "").lower() in {"1", "true", "yes"}
        tokens = tokens_visible_to(request.user, current_tenant(), all_members=every_member)
        return Response(ApiTokenSerializer(tokens, many=True).data)

    @extend_schema(request=TokenRequestSerializer, responses={201: CreatedSerializer})
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = api_token_create(
            actor=request.user,
            tenant=current_tenant(),
            name=data["name"],
            scopes=data.get("scopes"),
            expires_in_days=data.get("expires_in_days"),
        )
        body = {**ApiTokenSerializer(created.token).data, "token": created.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiTokenDetailApi(APIView):
    """Read or revoke one API token: your own, or (admins) any member's of this tenant."""

    required_capabilities = {"GET": Capability.VIEW, "DELETE": Capability.VIEW}
    read_only_tokens_may_write = True  # revoking only takes power away
    error_statuses = {"DELETE": (409,)}  # already revoked

    @extend_schema(responses=ApiTokenSerializer)
    def get(self, request, token_id: int):
        return Response(ApiTokenSerializer(access_token(request.user, current_tenant(), token_id)).data)

    @extend_schema(responses=ApiTokenSerializer)
    def delete(self, request, token_id: int):
        token = access_token(request.user, current_tenant(), token_id)
        return Response(ApiTokenSerializer(api_token_revoke(actor=request.user, token=token)).data)


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
    groups = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()


class MembershipListApi(APIView):
    """Members of the tenant."""

    required_capabilities = {"GET": Capability.VIEW}

    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request):
        return Response(MembershipSerializer(members_of(current_tenant()), many=True).data)


class MembershipSetApi(APIView):
    """Set a user's roles in the tenant (admins).

    200 when the change applied (it removes roles, or the tenant is bootstrapping with a single admin); 202
    with the pending governance change when it adds a role: another admin, never the member it benefits,
    must approve it (POST governance/changes/{id}/approve/).
    """

    required_capabilities = {"PUT": Capability.MANAGE_MEMBERSHIPS}
    error_statuses = {"PUT": (409,)}  # the tenant's last admin

    class InputSerializer(serializers.Serializer):
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=InputSerializer, responses={200: MembershipSerializer, 202: ChangeSerializer})
    def put(self, request, username: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        roles = serializer.validated_data["roles"]
        tenant = current_tenant()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        # One answer for an unknown user and for a non-member whose roles would stay empty: only adding
        # roles needs the user to exist, so nothing else tells whether the username exists.
        if user is None or (not roles and membership_of(user, tenant) is None):
            raise MemberNotFound(MEMBER_NOT_FOUND.format(username=username))
        with errors_on_field(unknown_role="roles"):
            result = membership_set(actor=request.user, tenant=tenant, user=user, roles=roles)
        if isinstance(result, GovernanceChangeRequest):
            return accepted(result)
        return Response(MembershipSerializer(result).data, status=status.HTTP_200_OK)


class MembershipGroupsApi(APIView):
    """Set a member's tenant-configured groups (admins); adding a group is a governance change (202)."""

    required_capabilities = {"PUT": Capability.MANAGE_MEMBERSHIPS}

    class InputSerializer(serializers.Serializer):
        groups = serializers.ListField(child=serializers.CharField(max_length=64), max_length=50)

    @extend_schema(request=InputSerializer, responses={200: MembershipSerializer, 202: ChangeSerializer})
    def put(self, request, username: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = current_tenant()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None or membership_of(user, tenant) is None:
            raise MemberNotFound(MEMBER_NOT_FOUND.format(username=username))
        with errors_on_field(invalid_group="groups"):
            result = membership_groups_set(
                actor=request.user, tenant=tenant, user=user, groups=serializer.validated_data["groups"]
            )
        if isinstance(result, GovernanceChangeRequest):
            return accepted(result)
        return Response(MembershipSerializer(result).data, status=status.HTTP_200_OK)
