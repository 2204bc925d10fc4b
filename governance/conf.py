"""Settings of governance changes, read from settings.CONTRACTOR."""

from django.conf import settings

DEFAULTS = {
    # Approvals by admins other than the requester (and the beneficiary) a loosening change needs.
    "GOVERNANCE_REQUIRED_APPROVALS": 1,
}


def governance_setting(name: str):
    """Return setting `name` from settings.CONTRACTOR, or its default."""
    return getattr(settings, "CONTRACTOR", {}).get(name, DEFAULTS[name])
