"""Failure modes of environments, gate runs, promotion requests, deployments and webhooks."""

from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

ENVIRONMENT_NOT_FOUND = "No environment named {name!r}."
PROMOTION_NOT_FOUND = "No promotion request {id}."
GATE_RUN_NOT_FOUND = "No gate run {id}."
WEBHOOK_NOT_FOUND = "No webhook {id}."
USER_NOT_FOUND = "No active member named {username!r} in this tenant."
JUSTIFICATION_REQUIRED = "A justification is required."
COMMENT_REQUIRED = "A rejection needs a comment saying why."
GATES_NOT_PASSED = "The gates of {version} did not pass (gate run {run_id}: {status}); fix the bundle first."
NOT_IN_STAGING = "{version} has never been live in staging; promote it to staging first."
NOT_LIVE_IN_REQUIRED_ENVIRONMENT = (
    "{version} has never been live in {required}; promote it to {required} first."
)
ALREADY_LIVE = "{version} is already live in {environment}."
REQUEST_EXISTS = (
    "Request {id} to promote {bundle} to {environment} is already pending; decide or cancel it first."
)
REQUEST_NOT_PENDING = "Request {id} is {status}; only pending requests can be decided."
SELF_APPROVAL = "You requested this promotion; someone else must decide it."
NOT_AN_APPROVER = "You may not approve promotions to {environment} (needs the approve_promotion grant on it)."
ALREADY_DECIDED = "You already decided request {id}; each reviewer counts once."
NOT_THE_REQUESTER = "Only the requester may cancel request {id}."
NOTHING_LIVE = "Nothing of {bundle} is live in {environment}; there is nothing to roll back."
NOT_PREVIOUSLY_LIVE = (
    "{bundle}@{version} was never live in {environment}; rollback only returns to earlier versions."
)
NO_PREVIOUS_VERSION = "{bundle} has no earlier version live in {environment} to roll back to."
INVALID_ENVIRONMENT_RULE = "{reason}"
REQUIRES_ITSELF = "An environment cannot require itself."
REQUIREMENT_CYCLE = "Requiring {required} would make a cycle: {required} already requires {environment}."
UNKNOWN_EVENTS = "Unknown event(s): {events}; events are: {known}."
INVALID_WEBHOOK_URL = "A webhook URL must be an absolute http or https URL."
WEBHOOK_URL_REFUSED = "The webhook URL is {reason}."

# Reasons written on requests and gate runs (not errors).
GATES_FAILED_REASON = "Gate run {run_id} {status}: {summary}"
GATES_ERRORED_REASON = (
    "Gate run {run_id} ended in error ({error}) after {reruns} automatic re-run(s) of the gates; "
    "request the promotion again once the cause is fixed."
)
GATES_RERUN_REASON = (
    "Gate run {run_id} ended in error ({error}); the gates run again as gate run {new_run_id} "
    "(automatic re-run {rerun} of {limit})."
)
WAITING_FOR_GATES_REASON = "Waiting for gate run {run_id}."
ALREADY_LIVE_REASON = "{version} was already live in {environment} when the request was applied."
NO_SUITES = "the version has no suites: gates prove nothing without test cases"

# Reasons of the gate-run watch and of runs replaced or started again by the system.
WORKER_LOST = "worker lost: no heartbeat for {seconds:g} s on attempt {attempts} of {max_attempts}"
REDISPATCHED = "no heartbeat for {seconds:g} s on attempt {attempts}: sent to the workers again"
NOT_PICKED_UP = "no worker picked the run up: it stayed {status} for {seconds:g} s"
TIME_LIMIT_EXCEEDED = "the run exceeded its time limit of {seconds} s"
REPLACED = "replaced by gate run {run_id}: {why}"
LOST_RUN = "the run was {status} without a heartbeat for {seconds:g} s"
AUTO_RERUN = "gate run {run_id} ended in error ({error}); re-run for pending request(s) {requests}"


class EnvironmentNotFound(NotFound):
    """No environment of that name in this tenant."""

    code = "environment_not_found"


class PromotionNotFound(NotFound):
    """No promotion request with that id in this tenant."""

    code = "promotion_not_found"


class GateRunNotFound(NotFound):
    """No gate run with that id in this tenant."""

    code = "gate_run_not_found"


class WebhookNotFound(NotFound):
    """No (undeleted) webhook with that id in this tenant."""

    code = "webhook_not_found"


class UserNotFound(NotFound):
    """The named user is not an active member of this tenant."""

    code = "user_not_found"


class JustificationRequired(ValidationFailed):
    """A promotion request or a rollback came without a justification."""

    code = "justification_required"
    default_message = JUSTIFICATION_REQUIRED


class CommentRequired(ValidationFailed):
    """A rejection came without a comment."""

    code = "comment_required"
    default_message = COMMENT_REQUIRED


class InvalidEnvironmentRule(ValidationFailed):
    """An environment change that would make its rules inconsistent (self-reference, cycle)."""

    code = "invalid_environment_rule"


class InvalidWebhook(ValidationFailed):
    """A webhook's URL or events are not acceptable."""

    code = "invalid_webhook"


class GatesNotPassed(Conflict):
    """The version's latest gate run for its digest failed."""

    code = "gates_not_passed"


class NotLiveInRequiredEnvironment(Conflict):
    """The environment requires the version to have been live in another environment first."""

    code = "not_live_in_required_environment"


class NotInStaging(NotLiveInRequiredEnvironment):
    """The environment requires the version to have been live in staging first."""

    code = "not_in_staging"


class AlreadyLive(Conflict):
    """The version is already the live one in that environment."""

    code = "already_live"


class RequestExists(Conflict):
    """A request for the same bundle and environment is already pending."""

    code = "request_exists"


class RequestNotPending(Conflict):
    """The request was already promoted, rejected, cancelled or failed."""

    code = "request_not_pending"


class AlreadyDecided(Conflict):
    """The reviewer already approved or rejected this request."""

    code = "already_decided"


class SelfApproval(PermissionDenied):
    """The requester tried to decide their own request."""

    code = "self_approval"
    default_message = SELF_APPROVAL


class NotAnApprover(PermissionDenied):
    """The actor lacks the approve_promotion grant on the request's environment."""

    code = "not_an_approver"


class NotTheRequester(PermissionDenied):
    """Someone other than the requester tried to cancel a request."""

    code = "not_the_requester"


class NothingLive(Conflict):
    """A rollback where nothing of the bundle is live in the environment."""

    code = "nothing_live"


class NotPreviouslyLive(Conflict):
    """The rollback target was never live in that environment."""

    code = "not_previously_live"


class NoPreviousVersion(Conflict):
    """A default rollback where no earlier version was live in the environment."""

    code = "no_previous_version"


SEPARATION_OF_DUTIES = (
    "{environment} separates duties: {username} holds the author role, so may not approve promotions there."
)
AUTHORS_MAY_NOT_APPROVE = (
    "{environment} separates duties: authors (and the version's author) may not approve."
)
AUTHOR_APPROVAL = "{environment} separates duties: the author of {version} may not approve its promotion."
UNKNOWN_GROUP_NAME = "A group name is 1 to 64 letters, digits, '.', '_' or '-'."


class SeparationOfDuties(PermissionDenied):
    """An author would approve (or be granted approval) on an environment that forbids author approval."""

    code = "separation_of_duties"
