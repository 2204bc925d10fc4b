"""Failure modes of tenancy operations."""

from core.errors import Conflict, PermissionDenied, ValidationFailed

NOT_A_MEMBER = "You are not a member of this tenant."
MISSING_CAPABILITY = "Your roles in this tenant do not allow: {capability}."
TENANT_EXISTS = "A tenant with slug {slug!r} already exists."
INVALID_SLUG = (
    "A tenant slug is 2-40 lowercase letters, digits or '-', starting with a letter; not a reserved name."
)
UNKNOWN_ROLE = "Unknown role {role!r}; roles are: {roles}."
LAST_ADMIN = "The tenant must keep at least one active admin."


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
