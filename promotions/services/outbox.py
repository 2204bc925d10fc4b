"""The notification outbox: events written with the change that caused them, dispatched once it commits."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from promotions.actions import PromotionEvent
from promotions.conf import promotion_setting
from promotions.models import OutboxEvent, Webhook
from promotions.queue import DELIVER_WEBHOOK, DISPATCH_EVENT, enqueue_task


def outbox_publish(event: PromotionEvent, payload: dict) -> OutboxEvent:
    """Write notification `event` in the caller's transaction; dispatch it once that commits."""
    entry = OutboxEvent.objects.create(event=str(event), payload=payload)
    # robust: a broker outage must not fail a committed change; the sweep dispatches the event later.
    enqueue_task(DISPATCH_EVENT, event_id=entry.pk)
    return entry


def outbox_dispatch(*, event_id: int) -> list[int]:
    """Queue a delivery of event `event_id` to each subscribed active webhook; return the webhook ids."""
    with transaction.atomic():
        event = OutboxEvent.objects.select_for_update(skip_locked=True).filter(pk=event_id).first()
        if event is None or event.dispatched_at is not None:
            return []
        targets = [
            webhook.pk
            for webhook in Webhook.objects.filter(active=True, deleted_at__isnull=True)
            if webhook.wants(event.event)
        ]
        for webhook_id in targets:
            enqueue_task(DELIVER_WEBHOOK, event_id=event.pk, webhook_id=webhook_id)
        event.dispatched_at = timezone.now()
        event.save(update_fields=["dispatched_at"])
    return targets


def outbox_redispatch_stale() -> list[int]:
    """Dispatch again the events whose dispatch never ran (the broker was down when they committed)."""
    cutoff = timezone.now() - timedelta(seconds=promotion_setting("OUTBOX_REDISPATCH_SECONDS"))
    stale = list(
        OutboxEvent.objects.filter(dispatched_at__isnull=True, created_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )
    for event_id in stale:
        outbox_dispatch(event_id=event_id)
    return stale
