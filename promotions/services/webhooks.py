"""Webhooks: create and delete them, and deliver one signed outbox event to one of them.

A delivery record keeps the receiver's HTTP status, or "refused by egress policy", or "the endpoint could not
be reached" (refused, reset, unresolvable and timed-out connections alike): never what the receiver said.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from audit.services import record
from core.egress import EGRESS_REFUSED, ENDPOINT_UNREACHABLE, HTTP_STATUS, EgressRefused, url_refusal
from governance.services import governed_change
from promotions.actions import PromotionAction, PromotionEvent
from promotions.conf import promotion_setting
from promotions.exceptions import INVALID_WEBHOOK_URL, UNKNOWN_EVENTS, WEBHOOK_URL_REFUSED, InvalidWebhook
from promotions.models import OutboxEvent, Webhook, WebhookDelivery
from promotions.services.preconditions import require
from promotions.services.webhook_client import USER_AGENT, webhook_post
from tenancy.roles import Capability

logger = logging.getLogger(__name__)
WEBHOOK_CREATE_KIND = "webhook.create"
WEBHOOK_DELETE_KIND = "webhook.delete"

SIGNATURE_HEADER = "X-Contractor-Signature"
EVENT_HEADER = "X-Contractor-Event"
DELIVERY_HEADER = "X-Contractor-Delivery"
# What a webhook may subscribe to, as plain names (a client sends strings).
EVENT_NAMES = tuple(event.value for event in PromotionEvent)
EGRESS_REFUSED_CODE = "egress_refused"


def webhook_create(
    *, actor, url: str, events: Iterable[str] = (), description: str = "", active: bool = True
):
    """Create a webhook (admins); return it with its signing secret, which is shown only this once.

    A new webhook sends the tenant's events somewhere new, so it is a governance change: unless the tenant is
    still bootstrapping, the first item returned is the pending GovernanceChangeRequest, and the secret works
    once the change applies.
    """
    require(actor, Capability.MANAGE_WEBHOOKS)
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidWebhook(INVALID_WEBHOOK_URL)
    refusal = url_refusal(url)  # names are checked again on every delivery
    if refusal is not None:
        detail = {"field": "url", "code": EGRESS_REFUSED_CODE, "message": refusal}
        raise InvalidWebhook(WEBHOOK_URL_REFUSED.format(reason=refusal), details=[detail])
    events = sorted({str(event) for event in events or ()})
    unknown = [event for event in events if event not in EVENT_NAMES]
    if unknown:
        raise InvalidWebhook(UNKNOWN_EVENTS.format(events=", ".join(unknown), known=", ".join(EVENT_NAMES)))
    secret = "whsec_" + secrets.token_urlsafe(32)
    proposed = {"url": url, "events": events, "description": description, "active": active}
    with transaction.atomic():
        change = governed_change(
            actor=actor,
            kind=WEBHOOK_CREATE_KIND,
            target={"url": url},
            before=None,
            proposed={**proposed, "created_by": actor.get_username() if actor is not None else None},
            loosening=True,  # a new place the tenant's events are sent to
            summary=f"webhook to {url} ({', '.join(events) or 'every event'})",
            sealed={"secret": secret},
        )
        if change is not None:
            return change, secret
        webhook = _create_webhook(proposed, secret, creator=actor, actor=actor)
    return webhook, secret


def _create_webhook(proposed: dict, secret: str, *, creator, actor, approved_by=None) -> Webhook:
    """Store a webhook as `proposed` and audit it."""
    webhook = Webhook(
        url=proposed["url"],
        secret=secret,
        events=proposed["events"],
        description=proposed["description"],
        active=proposed["active"],
        created_by=creator,
    )
    webhook._history_user = actor
    webhook.save()
    data = {"url": webhook.url, "events": webhook.events, "active": webhook.active}
    if approved_by is not None:
        data["approved_by"] = approved_by
    record(actor=actor, action=PromotionAction.WEBHOOK_CREATED, target=webhook, data=data)
    return webhook


def webhook_create_state(target: dict) -> None:
    """A new webhook has no prior state (the governance kind's state)."""
    return None


def webhook_create_apply(
    target: dict, proposed: dict, *, actor, approved_by: list[str], sealed: dict
) -> None:
    """Create an approved webhook, signed with the secret shown to its requester."""
    creator = get_user_model().objects.filter(username=proposed["created_by"]).first() or actor
    _create_webhook(proposed, sealed["secret"], creator=creator, actor=actor, approved_by=approved_by)


def webhook_delete(*, actor, webhook: Webhook):
    """Stop and hide `webhook` (admins); its delivery records are kept.

    Stopping notifications blinds whoever watches them, so it is a governance change: it returns the pending
    request unless the tenant is still bootstrapping (then None, applied).
    """
    require(actor, Capability.MANAGE_WEBHOOKS)
    with transaction.atomic():
        target = {"webhook": webhook.pk}
        change = governed_change(
            actor=actor,
            kind=WEBHOOK_DELETE_KIND,
            target=target,
            before=webhook_delete_state(target),
            proposed={"deleted": True},
            loosening=True,
            summary=f"stop webhook {webhook.pk} to {webhook.url}",
        )
        if change is not None:
            return change
        _delete_webhook(webhook, actor=actor)
    return None


def _delete_webhook(webhook: Webhook, *, actor, approved_by=None) -> None:
    """Deactivate and hide `webhook` and audit it."""
    webhook.active = False
    webhook.deleted_at = timezone.now()
    webhook._history_user = actor
    webhook.save(update_fields=["active", "deleted_at"])
    data = {"url": webhook.url}
    if approved_by is not None:
        data["approved_by"] = approved_by
    record(actor=actor, action=PromotionAction.WEBHOOK_DELETED, target=webhook, data=data)


def webhook_delete_state(target: dict) -> dict:
    """Return whether the target webhook is still in place."""
    webhook = Webhook.objects.filter(pk=target["webhook"]).first()
    return {"deleted": webhook is None or webhook.deleted_at is not None}


def webhook_delete_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Stop an approved webhook."""
    webhook = Webhook.objects.select_for_update().get(pk=target["webhook"])
    _delete_webhook(webhook, actor=actor, approved_by=approved_by)


def webhook_body(event: OutboxEvent) -> bytes:
    """Return the exact bytes POSTed for `event` (what the signature covers)."""
    envelope = {
        "id": event.pk,
        "event": event.event,
        "tenant": connection.schema_name.replace("_", "-"),
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), default=str).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    """Return the X-Contractor-Signature value of `body`: sha256=<hex HMAC-SHA256 keyed by the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_retry_delay(attempt: int) -> float:
    """Return the seconds to wait after failed attempt `attempt` (1-based): base * 2^(attempt-1)."""
    return promotion_setting("WEBHOOK_RETRY_BASE_SECONDS") * 2 ** (attempt - 1)


def webhook_deliver(*, event_id: int, webhook_id: int, attempt: int) -> WebhookDelivery | None:
    """POST event `event_id` to webhook `webhook_id` once, record the attempt and return it.

    Return None when there is nothing to do (webhook gone or inactive); return the earlier record when this
    event already reached this webhook or this attempt was already made (a redelivered task).
    """
    webhook = Webhook.objects.filter(pk=webhook_id, active=True, deleted_at__isnull=True).first()
    event = OutboxEvent.objects.filter(pk=event_id).first()
    if webhook is None or event is None:
        return None
    earlier = WebhookDelivery.objects.filter(webhook=webhook, event=event)
    done = earlier.filter(succeeded=True).first() or earlier.filter(attempt=attempt).first()
    if done is not None:
        return done
    body = webhook_body(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event.event,
        DELIVERY_HEADER: f"{event.pk}.{webhook.pk}.{attempt}",
        SIGNATURE_HEADER: webhook_signature(webhook.secret, body),
    }
    started = time.perf_counter()
    status_code, error = None, ""
    try:
        status_code = webhook_post(webhook.url, body, headers)
        if not 200 <= status_code < 300:
            error = HTTP_STATUS.format(status=status_code)
    except EgressRefused:
        error = EGRESS_REFUSED
    except (httpx.HTTPError, httpx.InvalidURL):
        error = ENDPOINT_UNREACHABLE
    duration_ms = round((time.perf_counter() - started) * 1000)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            event=event,
            attempt=attempt,
            succeeded=not error,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    if error:
        logger.warning("webhook %s: attempt %s of event %s failed: %s", webhook.pk, attempt, event.pk, error)
    return delivery
