"""Failure modes of the runtime (data plane) and of runtime keys and model endpoints (control plane)."""

from core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed

# Data plane.
INVALID_KEY = "A valid runtime key is required: Authorization: Bearer ck_<prefix>_<secret>."
BUNDLE_OUT_OF_SCOPE = "This runtime key may not execute bundle {bundle!r}."
NOT_RELEASED = "Bundle {bundle!r} has no version live in the environment of this runtime key."
UNKNOWN_PIPELINE = "{bundle}@{version} has no pipeline {pipeline!r}."
UNKNOWN_TENANT = "No tenant is served on this host."
DECISION_NOT_FOUND = "No decision {id} in this tenant."
VERSION_NOT_RELEASED = "The version {digest} of this decision was never released; it cannot be recomputed."
PAYLOAD_TOO_LARGE = "The request body is larger than {limit} bytes."
LENGTH_REQUIRED = "Send the body with a Content-Length (chunked request bodies are not accepted)."
MALFORMED_JSON = "The request body is not a JSON document: {reason}."
INVALID_REQUEST = "The request body is not valid."
IDEMPOTENCY_KEY_REUSED = (
    "Idempotency-Key {key!r} was already used by this runtime key for another request; use a new one."
)
IDEMPOTENCY_KEY_INVALID = "An Idempotency-Key is 1 to {limit} printable ASCII characters."
DECISION_NOT_RECORDED = "The decision could not be recorded, so no output is returned (fail closed)."
DATABASE_UNAVAILABLE = "The runtime cannot reach its database; nothing was executed."
ROUTE_NOT_FOUND = "No runtime route matches this path."
METHOD_NOT_ALLOWED = "Method {method} is not allowed here."
SERVER_ERROR = "The runtime failed to process the request; the failure was logged."
BAD_REQUEST = "The request could not be understood."
INVALID_INPUT = (
    "The input does not match the input entity of pipeline {pipeline!r}; the decision is recorded."
)
MODEL_FAILED = "The model could not answer: {reason}"
INVALID_MODEL_OUTPUT = (
    "The model's answer is not a valid output of pipeline {pipeline!r}; the decision is recorded."
)
ENDPOINT_NOT_CONFIGURED = "model endpoint {name!r} is not configured in this tenant"
API_KEY_NOT_SET = "environment variable {variable} holding the API key of endpoint {name!r} is not set"
ENDPOINT_UNUSABLE = "model endpoint {name!r} is misconfigured: {reason}"
API_KEY_ENV_NOT_ALLOWED = (
    "environment variable {variable} may not hold the API key of endpoint {name!r} (not an allowed name)"
)
METRICS_FORBIDDEN = "The metrics are served only to the platform's scraper."
TENANT_BUSY_MESSAGE = (
    "Too many model calls of this tenant or endpoint are in flight; the decision is recorded. Retry after "
    "{seconds} s."
)
TOO_MANY_KEY_FAILURES = "Too many invalid runtime keys from this address; retry after {seconds} s."

# Control plane.
RUNTIME_KEY_NOT_FOUND = "No runtime key {id} in this tenant."
KEY_ALREADY_REVOKED = "Runtime key {name!r} was already revoked at {at}."
KEY_NAME_REQUIRED = "A key needs a name (1 to 100 characters)."
UNSAFE_NAME = "The name must not contain {reason}."
UNKNOWN_SCOPE_BUNDLES = "Unknown bundle(s) in the scope: {names}."
ENDPOINT_NOT_FOUND = "No model endpoint named {name!r}."
ENDPOINT_EXISTS = "A model endpoint named {name!r} already exists."
INVALID_ENDPOINT = "The model endpoint is not valid."
INVALID_DAYS = "days must be an integer from 1 to {limit}."


class MetricsForbidden(PermissionDenied):
    """GET /metrics (every tenant's counters) from a client that is not the platform's scraper."""

    code = "metrics_forbidden"
    default_message = METRICS_FORBIDDEN


class InvalidRuntimeKey(DomainError):
    """The Authorization header is missing, malformed, or names an unknown or revoked key of this tenant."""

    code = "invalid_key"
    status = 401
    default_message = INVALID_KEY


class TooManyKeyFailures(DomainError):
    """The request's source sent RUNTIME_KEY_FAILURE_LIMIT invalid keys within the window: refused unread."""

    code = "too_many_key_failures"
    status = 429

    def __init__(self, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        super().__init__(TOO_MANY_KEY_FAILURES.format(seconds=self.retry_after))
        self.details = [{"retry_after": self.retry_after}]


class BundleOutOfScope(PermissionDenied):
    """The key is scoped to bundles that do not include the requested one."""

    code = "bundle_out_of_scope"


class NotReleased(NotFound):
    """No version of the bundle is live in the key's environment."""

    code = "not_released"


class UnknownPipeline(NotFound):
    """The live version of the bundle has no pipeline of that name."""

    code = "unknown_pipeline"


class UnknownTenant(NotFound):
    """The host names no tenant (the public host serves only the probes)."""

    code = "unknown_tenant"
    default_message = UNKNOWN_TENANT


class DecisionNotFound(NotFound):
    """No runtime decision with that id in the key's tenant."""

    code = "decision_not_found"


class VersionNotReleased(NotFound):
    """The decision's version cannot be read through the released-versions view."""

    code = "version_not_released"


class RouteNotFound(NotFound):
    """No runtime route matches the path."""

    code = "route_not_found"
    default_message = ROUTE_NOT_FOUND


class MethodNotAllowed(DomainError):
    """The route exists but not for this HTTP method."""

    code = "method_not_allowed"
    status = 405


class PayloadTooLarge(DomainError):
    """The request body exceeds RUNTIME_MAX_BODY_BYTES."""

    code = "payload_too_large"
    status = 413


class LengthRequired(DomainError):
    """The body was sent chunked, without a Content-Length."""

    code = "length_required"
    status = 411
    default_message = LENGTH_REQUIRED


class MalformedJson(ValidationFailed):
    """The request body does not parse as JSON."""

    code = "malformed_json"


class InvalidRequest(ValidationFailed):
    """The request body parses but has the wrong shape (details list each problem)."""

    code = "invalid_request"
    default_message = INVALID_REQUEST


class IdempotencyKeyReused(DomainError):
    """The Idempotency-Key was used by the same runtime key for a request with another body or route."""

    code = "idempotency_key_reused"
    status = 422


class InvalidIdempotencyKey(ValidationFailed):
    """The Idempotency-Key header is empty, too long or not printable ASCII."""

    code = "invalid_idempotency_key"


class DecisionNotRecorded(DomainError):
    """The decision record could not be written: no output may leave the runtime (fail closed)."""

    code = "decision_not_recorded"
    status = 503
    default_message = DECISION_NOT_RECORDED


class DatabaseUnavailable(DomainError):
    """The database did not answer before anything was executed."""

    code = "database_unavailable"
    status = 503
    default_message = DATABASE_UNAVAILABLE


class RuntimeKeyNotFound(NotFound):
    """No runtime key with that id in this tenant."""

    code = "runtime_key_not_found"


class KeyAlreadyRevoked(Conflict):
    """The runtime key was revoked before."""

    code = "key_already_revoked"


class InvalidKeyName(ValidationFailed):
    """A runtime key needs a name of 1 to 100 characters."""

    code = "invalid_key_name"
    default_message = KEY_NAME_REQUIRED


class UnknownScopeBundles(ValidationFailed):
    """The bundle scope of a new key names bundles this tenant does not have."""

    code = "unknown_scope_bundles"


class ModelEndpointNotFound(NotFound):
    """No model endpoint with that name in this tenant."""

    code = "model_endpoint_not_found"


class ModelEndpointExists(Conflict):
    """A model endpoint with that name exists already."""

    code = "model_endpoint_exists"


class InvalidModelEndpoint(ValidationFailed):
    """The model endpoint's fields are not valid (details name each field)."""

    code = "invalid_model_endpoint"
    default_message = INVALID_ENDPOINT


class InvalidDays(ValidationFailed):
    """The governance window is not a whole number of days within the limit."""

    code = "invalid_days"
