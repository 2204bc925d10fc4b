"""Failure modes of tenancy operations."""

from core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed

NOT_A_MEMBER = "You are not a member of this tenant."
MISSING_CAPABILITY = "Your roles in this tenant do not allow: {capability}."
TENANT_EXISTS = "A tenant with slug {slug!r} already exists."
INVALID_SLUG = (
    "A tenant slug is 2-40 lowercase letters, digits or '-', starting with a letter; not a reserved name."
)
UNKNOWN_ROLE = "Unknown role {role!r}; roles are: {roles}."
LAST_ADMIN = "The tenant must keep at least one active admin."
MEMBER_NOT_FOUND = "No active user named {username!r} is a member of this tenant."
MISSING_SCOPE = "This API token's scopes do not allow: {capability} (scopes: {scopes})."
READ_ONLY_TOKEN = "This API token may only read (scopes: {scopes})."
INVALID_TOKEN = "Invalid token."
TOKEN_EXPIRED = "This token expired at {at}; create a new one (contractor login)."
TOKEN_REVOKED = "This token was revoked at {at}."
TOKEN_NOT_FOUND = "No API token {id} that you may see in this tenant."
TOKEN_ALREADY_REVOKED = "API token {name!r} was already revoked at {at}."
INVALID_TOKEN_REQUEST = "The token request is not valid."
TOKEN_NAME_RULE = "a name of 1 to 100 characters"
UNKNOWN_SCOPES = "unknown scope(s) {names}; scopes are: {scopes}"
SCOPES_NOT_HELD = "a token may only create tokens within its own scopes; not held: {names}"
EXPIRY_RULE = "a whole number of days from 1 to {maximum}"
EXPIRY_BEYOND_TOKEN = "a token may not create a token that outlives it ({at})"
INVALID_GROUP_NAME = "A group name is 1 to 64 letters, digits, '.', '_' or '-'."
SIGN_IN_LOCKED = "Too many failed sign-ins: try again in {minutes} minute(s)."


class NotAMember(PermissionDenied):
    """The user holds no active membership in the tenant of the request."""

    code = "not_a_member"
    default_message = NOT_A_MEMBER


class MissingCapability(PermissionDenied):
    """The member's roles do not include the capability the operation needs."""

    code = "missing_role"


class TenantExists(Conflict):
    """A tenant with that slug already exists."""

    code = "tenant_exists"


class InvalidTenantSlug(ValidationFailed):
    """The slug cannot name a schema and a host."""

    code = "invalid_slug"
    default_message = INVALID_SLUG


class UnknownRole(ValidationFailed):
    """A role name that is not one of Role."""

    code = "unknown_role"


class LastAdmin(Conflict):
    """The change would leave the tenant without an active admin."""

    code = "last_admin"
    default_message = LAST_ADMIN


class MemberNotFound(NotFound):
    """The username names no active user who could be a member here (unknown, deactivated, or not a member
    where only members can be changed): one answer for each, so usernames do not leak."""

    code = "member_not_found"


class MissingScope(PermissionDenied):
    """The request came with an API token whose scopes do not cover the capability the operation needs."""

    code = "missing_scope"


class InvalidTokenRequest(ValidationFailed):
    """The name, scopes or lifetime of a new API token are not valid (details name each field)."""

    code = "invalid_token_request"
    default_message = INVALID_TOKEN_REQUEST


class TokenNotFound(NotFound):
    """No API token with that id that the actor may see (their own, or any member's for admins)."""

    code = "token_not_found"


class TokenAlreadyRevoked(Conflict):
    """The API token was revoked before."""

    code = "token_already_revoked"


class SignInLocked(DomainError):
    """Too many failed sign-ins for the username or from the source address: refused until the lock ends."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        super().__init__(SIGN_IN_LOCKED.format(minutes=(self.retry_after + 59) // 60))
        self.details = [{"retry_after": self.retry_after}]
        self.headers = {"Retry-After": str(self.retry_after)}


class InvalidGroupName(ValidationFailed):
    """A group name that is empty, too long, or has characters other than letters, digits, '.', '_', '-'."""

    code = "invalid_group"
    default_message = INVALID_GROUP_NAME
