"""Failure modes of governance change requests."""

from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

CHANGE_NOT_FOUND = "No governance change request {id} in this tenant."
CHANGE_NOT_PENDING = "Change request {id} is {status}, not pending."
SELF_APPROVAL = "The requester of a governance change cannot approve it; another admin must."
BENEFICIARY_APPROVAL = "A governance change cannot be approved by the member it benefits ({user})."
ALREADY_DECIDED = "You already decided change request {id}."
NOT_THE_REQUESTER = "Only the requester may cancel change request {id}."
STALE_CHANGE = (
    "Change request {id} was proposed against a state that no longer holds; it is superseded. "
    "Propose the change again."
)
COMMENT_REQUIRED = "A rejection needs a comment."


class ChangeNotFound(NotFound):
    """No change request with that id in this tenant."""

    code = "change_not_found"


class ChangeNotPending(Conflict):
    """The change request was already applied, rejected, cancelled or superseded."""

    code = "change_not_pending"


class SelfApprovalOfChange(PermissionDenied):
    """The requester tried to approve or reject their own governance change."""

    code = "self_approval"
    default_message = SELF_APPROVAL


class BeneficiaryApproval(PermissionDenied):
    """The member a change benefits (a role, a grant, a group for them) tried to approve it."""

    code = "beneficiary_approval"


class ChangeAlreadyDecided(Conflict):
    """This admin already approved or rejected the change request."""

    code = "already_decided"


class NotTheChangeRequester(PermissionDenied):
    """Someone other than the requester tried to cancel a change request."""

    code = "not_the_requester"


class StaleChange(Conflict):
    """The state the change was proposed against no longer holds; the request was superseded."""

    code = "stale_change"


class ChangeCommentRequired(ValidationFailed):
    """A rejection without a comment."""

    code = "comment_required"
    default_message = COMMENT_REQUIRED
