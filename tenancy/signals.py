"""Receivers that keep credentials in step with who may act: tokens die with the membership or the user.

They only call services: a membership ended by any path (the members page, the API, the admin, a
governance request) or a user deactivated anywhere revokes that user's API tokens, audited.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save

from tenancy.models import Membership
from tenancy.signin import mark_authenticated
from tenancy.tokens import RevokeReason, api_tokens_revoke_all


def note_sign_in_time(sender, request, user, **kwargs) -> None:
    """Remember when this session signed in (fresh authentication for decisive actions)."""
    if request is not None and hasattr(request, "session"):
        mark_authenticated(request.session)


def revoke_tokens_of_ended_membership(sender, instance: Membership, created: bool, **kwargs) -> None:
    """Revoke the member's tokens of that tenant when the membership is saved inactive."""
    if not instance.is_active:
        api_tokens_revoke_all(
            actor=None, user=instance.user, tenant=instance.tenant, reason=RevokeReason.MEMBERSHIP_ENDED
        )


def revoke_tokens_of_deactivated_user(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    """Revoke every token of a user saved inactive."""
    if update_fields is not None and "is_active" not in update_fields:
        return
    if not instance.is_active:
        api_tokens_revoke_all(actor=None, user=instance, reason=RevokeReason.USER_DEACTIVATED)


def connect() -> None:
    """Connect the receivers (from TenancyConfig.ready)."""
    user_logged_in.connect(note_sign_in_time, dispatch_uid="tenancy.note_sign_in_time")
    post_save.connect(revoke_tokens_of_ended_membership, sender=Membership, dispatch_uid="tenancy.membership")
    post_save.connect(
        revoke_tokens_of_deactivated_user, sender=get_user_model(), dispatch_uid="tenancy.user_deactivated"
    )
