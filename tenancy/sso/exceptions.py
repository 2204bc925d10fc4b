"""Failure modes of single sign-on; each renders as a console page naming what went wrong."""

from core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed

SSO_NOT_CONFIGURED = "Single sign-on is not set up for this tenant."
SSO_STATE_INVALID = (
    "This sign-in response does not belong to a sign-in started here (state mismatch). Start again."
)
SSO_FLOW_EXPIRED = "This sign-in took too long. Start again."
SSO_PROVIDER_ERROR = "The identity provider refused the sign-in: {error}."
SSO_PROVIDER_UNAVAILABLE = "The identity provider could not be reached or answered wrongly: {reason}."
SSO_TOKEN_INVALID = "The identity provider's ID token was refused: {reason}."
SSO_NO_ACCOUNT = (
    "Your identity provider account is not linked to a user of this tenant, and new users are not created "
    "automatically here. Ask the tenant's administrators."
)
SSO_NO_ROLE = (
    "Your identity provider grants you no role in this tenant (groups: {groups}). Access is refused."
)
SSO_CLAIM_MISSING = "The identity provider did not send the claim {claim!r}."
SSO_ONLY = "This tenant signs its members in through single sign-on only: use “Sign in with single sign-on”."
SSO_SECRET_UNAVAILABLE = "The client secret of this tenant's single sign-on is not available to the console."
SSO_CONFIG_INVALID = "The single sign-on configuration is not valid."
SSO_NOT_OPERATOR = "Only platform operators change single sign-on configurations."


class SsoError(DomainError):
    """A single sign-on attempt failed; no session was created."""

    code = "sso_failed"


class SsoNotConfigured(NotFound):
    """The tenant has no enabled single sign-on configuration."""

    code = "sso_not_configured"
    default_message = SSO_NOT_CONFIGURED


class SsoStateInvalid(SsoError):
    """The callback's state matches no sign-in started in this session (forged, replayed, other host)."""

    code = "sso_state_invalid"
    default_message = SSO_STATE_INVALID


class SsoFlowExpired(SsoError):
    """The sign-in started longer ago than SSO_FLOW_SECONDS."""

    code = "sso_flow_expired"
    default_message = SSO_FLOW_EXPIRED


class SsoProviderError(SsoError):
    """The provider answered the authorization request (or the code exchange) with an error."""

    code = "sso_provider_error"


class SsoProviderUnavailable(SsoError):
    """Discovery, keys, token or userinfo could not be fetched (down, refused by egress, malformed)."""

    code = "sso_provider_unavailable"
    status = 502


class SsoTokenInvalid(SsoError):
    """The ID token failed verification: signature, algorithm, iss, aud, exp, iat, nonce or subject."""

    code = "sso_token_invalid"


class SsoNoAccount(PermissionDenied):
    """No user is linked to this subject and the tenant does not provision users."""

    code = "sso_no_account"
    default_message = SSO_NO_ACCOUNT


class SsoNoRole(PermissionDenied):
    """The claims map to no role in this tenant: the membership ends."""

    code = "sso_no_role"


class SsoOnly(PermissionDenied):
    """Password sign-in refused: the tenant signs members in through single sign-on only."""

    code = "sso_only"
    default_message = SSO_ONLY


class SsoSecretUnavailable(SsoError):
    """The configured client-secret variable is not allowed or not set in this process."""

    code = "sso_secret_unavailable"
    status = 503
    default_message = SSO_SECRET_UNAVAILABLE


class InvalidSsoConfig(ValidationFailed):
    """A configuration change is not valid; details name each field."""

    code = "invalid_sso_config"
    default_message = SSO_CONFIG_INVALID


class NotPlatformOperator(PermissionDenied):
    """Only the system and platform staff allowed to change SSO configurations may."""

    code = "not_platform_operator"
    default_message = SSO_NOT_OPERATOR
